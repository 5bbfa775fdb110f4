-- The data an app keeps in a session (API.md, "Session data"): one JSON object per session
-- that has written any, with the number of writes that made it. A table of its own, so the
-- sessions table that every check reads stays narrow; rows go with their session (revoking
-- deletes them, purging a session cascades). Kept as the compact text latchkey wrote, so a
-- read returns exactly what was written.
CREATE TABLE session_data (
    session_id TEXT PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
    version    BIGINT NOT NULL CHECK (version > 0),
    data       TEXT NOT NULL
);

-- latchkey's embedded schema. Times are integer microseconds since the Unix epoch (UTC), ids
-- are UUID text: the PostgreSQL schema uses the same representations so one store serves both.
-- Secrets are never stored: cookie sessions keep the SHA-256 of their secret, token sessions
-- keep only a rotation counter (refresh tokens are derived from it under the server secret).

CREATE TABLE accounts (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE sessions (
    id                  TEXT PRIMARY KEY,
    user_id             TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    kind                TEXT NOT NULL CHECK (kind IN ('cookie', 'token')),
    secret_digest       BLOB UNIQUE,
    refresh_counter     INTEGER NOT NULL DEFAULT 0,
    rotated_at          INTEGER,
    created_at          INTEGER NOT NULL,
    last_seen_at        INTEGER NOT NULL,
    absolute_expires_at INTEGER NOT NULL,
    idle_timeout_us     INTEGER NOT NULL,
    user_agent          TEXT,
    ip                  TEXT,
    revoked_at          INTEGER
) STRICT;

CREATE INDEX sessions_by_user ON sessions (user_id, created_at DESC);
CREATE INDEX sessions_by_expiry ON sessions (absolute_expires_at);

-- The revocation log: its position orders it for instances and feed clients that catch up.
CREATE TABLE revocations (
    position     INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id   TEXT NOT NULL,
    kind         TEXT NOT NULL,
    revoked_at   INTEGER NOT NULL,
    active_until INTEGER NOT NULL
);

CREATE INDEX revocations_by_active_until ON revocations (active_until);

CREATE TABLE keys (
    kid        TEXT PRIMARY KEY,
    alg        TEXT NOT NULL,
    material   TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    retired_at INTEGER
) STRICT;

-- Exactly one signing key per algorithm, even when several instances start at once.
CREATE UNIQUE INDEX keys_one_active_per_alg ON keys (alg) WHERE retired_at IS NULL;

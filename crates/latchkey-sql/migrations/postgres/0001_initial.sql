-- latchkey's PostgreSQL schema: the same tables and representations as the SQLite one
-- (integer microseconds since the Unix epoch, UUID text), so one store serves both.

CREATE TABLE accounts (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    disabled      BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE sessions (
    id                  TEXT PRIMARY KEY,
    user_id             TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    kind                TEXT NOT NULL CHECK (kind IN ('cookie', 'token')),
    secret_digest       BYTEA UNIQUE,
    refresh_counter     BIGINT NOT NULL DEFAULT 0,
    rotated_at          BIGINT,
    created_at          BIGINT NOT NULL,
    last_seen_at        BIGINT NOT NULL,
    absolute_expires_at BIGINT NOT NULL,
    idle_timeout_us     BIGINT NOT NULL,
    user_agent          TEXT,
    ip                  TEXT,
    revoked_at          BIGINT
);

CREATE INDEX sessions_by_user ON sessions (user_id, created_at DESC);
CREATE INDEX sessions_by_expiry ON sessions (absolute_expires_at);

-- The revocation log. Writers serialise on an advisory lock (see the store), so positions
-- become visible in order and a reader that resumes after position N never skips one.
CREATE TABLE revocations (
    position     BIGSERIAL PRIMARY KEY,
    session_id   TEXT NOT NULL,
    kind         TEXT NOT NULL,
    revoked_at   BIGINT NOT NULL,
    active_until BIGINT NOT NULL
);

CREATE INDEX revocations_by_active_until ON revocations (active_until);

CREATE TABLE keys (
    kid        TEXT PRIMARY KEY,
    alg        TEXT NOT NULL,
    material   TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    retired_at BIGINT
);

CREATE UNIQUE INDEX keys_one_active_per_alg ON keys (alg) WHERE retired_at IS NULL;

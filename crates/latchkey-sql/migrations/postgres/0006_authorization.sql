-- The authorization code flow (API.md, "Single sign-on for other apps"). A code is kept only as
-- the SHA-256 of the code the browser carried; `redeemed_at` makes its redemption happen once,
-- and `issued_session_id` names what that redemption created, for a replay to revoke.
CREATE TABLE authorization_codes (
    digest            BYTEA PRIMARY KEY,
    client_id         TEXT NOT NULL,
    redirect_uri      TEXT NOT NULL,
    code_challenge    TEXT NOT NULL,
    user_id           TEXT NOT NULL,
    sso_session_id    TEXT NOT NULL,
    scopes            TEXT NOT NULL,
    nonce             TEXT,
    auth_time         BIGINT NOT NULL,
    issued_at         BIGINT NOT NULL,
    redeemed_at       BIGINT,
    issued_session_id TEXT
);

CREATE INDEX authorization_codes_by_issue ON authorization_codes (issued_at);

-- What each user has allowed each app to see; withdrawn by deleting the row.
CREATE TABLE consents (
    user_id    TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    scopes     TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

-- Apps that sign their users in through latchkey (API.md, "Single sign-on for other apps").
-- URI lists are JSON arrays of the URIs exactly as registered; a confidential client keeps only
-- the SHA-256 of its secret, a public one none.
CREATE TABLE clients (
    id                        TEXT PRIMARY KEY,
    name                      TEXT NOT NULL,
    redirect_uris             TEXT NOT NULL,
    post_logout_redirect_uris TEXT NOT NULL,
    backchannel_logout_uri    TEXT,
    secret_digest             BLOB,
    skip_consent              INTEGER NOT NULL,
    id_token_alg              TEXT NOT NULL,
    created_at                INTEGER NOT NULL
) STRICT;

-- Which apps signed in under which sign-in at latchkey (single sign-on), and the back-channel
-- logout delivery each one's end makes (API.md, "Logout"). A row is made when an app redeems
-- its first code under a sign-in; `ended_at` is set when the sign-in ends (revoked, or found
-- expired by the sweep); for an app that takes logout tokens (`notify`) `state` then becomes
-- pending, delivered or failed. `next_attempt_at` of a pending delivery is its next attempt,
-- or the end of the lease of the instance attempting it.
CREATE TABLE app_sign_ins (
    client_id       TEXT NOT NULL,
    sso_session_id  TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    notify          INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    ended_at        INTEGER,
    state           TEXT,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    PRIMARY KEY (client_id, sso_session_id)
) STRICT;

CREATE INDEX app_sign_ins_open ON app_sign_ins (sso_session_id) WHERE ended_at IS NULL;
CREATE INDEX app_sign_ins_due ON app_sign_ins (next_attempt_at) WHERE state = 'pending';

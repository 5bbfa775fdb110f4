-- An app's session (single sign-on) is a token session that names its app, the user's sign-in
-- at latchkey it was authorized under (and ends with), and the scopes granted. First-party
-- sessions leave the three empty.
ALTER TABLE sessions ADD COLUMN client_id TEXT;
ALTER TABLE sessions ADD COLUMN sso_session_id TEXT;
ALTER TABLE sessions ADD COLUMN scope TEXT;

-- Ending a sign-in finds the app sessions under it.
CREATE INDEX sessions_by_sso_session ON sessions (sso_session_id) WHERE sso_session_id IS NOT NULL;

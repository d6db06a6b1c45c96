-- OAuth connects in progress (Google Calendar): the state's hash, what binds
-- it to the browser session that started it, and the sealed PKCE verifier.
-- Each is taken once; expired ones are deleted when new ones are saved.
CREATE TABLE oauth_states (
    state_hash      TEXT    PRIMARY KEY,
    binding         TEXT    NOT NULL,
    account_id      INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    integration     TEXT    NOT NULL,
    sealed_verifier BLOB    NOT NULL,
    expires_at      INTEGER NOT NULL
);
CREATE INDEX oauth_states_expires_at ON oauth_states (expires_at);

-- OAuth connects in progress (Google Calendar): the state's hash, what binds
-- it to the browser session that started it, and the sealed PKCE verifier.
-- Each is taken once; expired ones are deleted when new ones are saved.
CREATE TABLE oauth_states (
    state_hash      text        PRIMARY KEY,
    binding         text        NOT NULL,
    account_id      bigint      NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    integration     text        NOT NULL,
    sealed_verifier bytea       NOT NULL,
    expires_at      timestamptz NOT NULL
);
CREATE INDEX oauth_states_expires_at ON oauth_states (expires_at);

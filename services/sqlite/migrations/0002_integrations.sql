-- Integration credentials (sealed with AVA_SECRET_KEY), their health, and
-- the audit trail of setting changes.
CREATE TABLE integration_credentials (
    account_id  INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    integration TEXT    NOT NULL,
    sealed      BLOB    NOT NULL,
    hints       TEXT    NOT NULL, -- JSON object of masked values
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (account_id, integration)
);

CREATE TABLE integration_health (
    account_id    INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    integration   TEXT    NOT NULL,
    last_error    TEXT,
    last_error_at INTEGER,
    last_ok_at    INTEGER,
    PRIMARY KEY (account_id, integration)
);

CREATE TABLE setting_changes (
    id          INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    user_id     INTEGER REFERENCES users (id) ON DELETE SET NULL,
    integration TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    old_value   TEXT    NOT NULL, -- JSON
    new_value   TEXT    NOT NULL, -- JSON
    changed_at  INTEGER NOT NULL
);
CREATE INDEX setting_changes_account ON setting_changes (account_id, integration, id);

-- The development stub's outbox: what the Email stub "sent" (nothing leaves
-- the machine), newest first on the Email page.
CREATE TABLE email_outbox (
    id         INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    message_id TEXT    NOT NULL,
    sender     TEXT    NOT NULL,
    recipient  TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    body       TEXT    NOT NULL,
    sent_at    INTEGER NOT NULL
);
CREATE INDEX email_outbox_account ON email_outbox (account_id, id);

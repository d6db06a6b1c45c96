package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/ava/console/services"
)

// FirstAccountID returns the id of the first account created (the lowest:
// the one first-run setup or the first `ava user create` made); ENOTFOUND
// while there is none.
func (db *DB) FirstAccountID(ctx context.Context) (int64, error) {
	var id sql.NullInt64
	if err := db.queryRow(ctx, "SELECT min(id) FROM accounts").Scan(&id); err != nil {
		return 0, err
	}
	if !id.Valid {
		return 0, services.Errorf(services.ENOTFOUND, "There is no account yet.")
	}
	return id.Int64, nil
}

// SaveCredentials stores (or replaces) an account's credentials for an integration.
func (db *DB) SaveCredentials(ctx context.Context, c services.StoredCredentials) error {
	hints, err := json.Marshal(c.Hints)
	if err != nil {
		return err
	}
	_, err = db.exec(ctx, `
		INSERT INTO integration_credentials (account_id, integration, sealed, hints, updated_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (account_id, integration) DO UPDATE SET sealed = excluded.sealed, hints = excluded.hints, updated_at = excluded.updated_at`,
		c.AccountID, c.Integration, c.Sealed, string(hints), millis(c.UpdatedAt))
	return err
}

// Credentials returns an account's stored credentials for an integration.
func (db *DB) Credentials(ctx context.Context, accountID int64, integration string) (services.StoredCredentials, error) {
	c := services.StoredCredentials{AccountID: accountID, Integration: integration}
	var hints string
	var updated int64
	err := db.queryRow(ctx,
		"SELECT sealed, hints, updated_at FROM integration_credentials WHERE account_id = ? AND integration = ?",
		accountID, integration).Scan(&c.Sealed, &hints, &updated)
	if err != nil {
		return services.StoredCredentials{}, notFound(err, "Credentials")
	}
	if err := json.Unmarshal([]byte(hints), &c.Hints); err != nil {
		return services.StoredCredentials{}, err
	}
	c.UpdatedAt = fromMillis(updated)
	return c, nil
}

// RecordIntegrationError remembers an integration's last error for an account.
func (db *DB) RecordIntegrationError(ctx context.Context, accountID int64, integration, message string, at time.Time) error {
	_, err := db.exec(ctx, `
		INSERT INTO integration_health (account_id, integration, last_error, last_error_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (account_id, integration) DO UPDATE SET last_error = excluded.last_error, last_error_at = excluded.last_error_at`,
		accountID, integration, message, millis(at))
	return err
}

// RecordIntegrationOK remembers an integration's last successful call for an account.
func (db *DB) RecordIntegrationOK(ctx context.Context, accountID int64, integration string, at time.Time) error {
	_, err := db.exec(ctx, `
		INSERT INTO integration_health (account_id, integration, last_ok_at) VALUES (?, ?, ?)
		ON CONFLICT (account_id, integration) DO UPDATE SET last_ok_at = excluded.last_ok_at`,
		accountID, integration, millis(at))
	return err
}

// IntegrationHealth returns what is known of an integration's last calls; zero values if nothing.
func (db *DB) IntegrationHealth(ctx context.Context, accountID int64, integration string) (services.IntegrationHealth, error) {
	var h services.IntegrationHealth
	var msg sql.NullString
	var errAt, okAt sql.NullInt64
	err := db.queryRow(ctx,
		"SELECT last_error, last_error_at, last_ok_at FROM integration_health WHERE account_id = ? AND integration = ?",
		accountID, integration).Scan(&msg, &errAt, &okAt)
	if errors.Is(err, sql.ErrNoRows) {
		return h, nil
	}
	if err != nil {
		return h, err
	}
	h.LastError, h.LastErrorAt, h.LastOKAt = msg.String, fromNullMillis(errAt), fromNullMillis(okAt)
	return h, nil
}

// RecordSettingChange appends to the audit trail.
func (db *DB) RecordSettingChange(ctx context.Context, c services.SettingChange) error {
	_, err := db.exec(ctx, `
		INSERT INTO setting_changes (account_id, user_id, integration, key, old_value, new_value, changed_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`,
		c.AccountID, c.UserID, c.Integration, c.Key, c.OldValue, c.NewValue, millis(c.ChangedAt))
	return err
}

// changeColumns are a setting change's columns as scanChange reads them
// (c: setting_changes, u: its user).
const changeColumns = "c.id, c.account_id, coalesce(c.user_id, 0), coalesce(u.email, ''), c.integration, c.key, c.old_value, c.new_value, c.changed_at"

// scanChange reads one setting change of changeColumns.
func scanChange(row interface{ Scan(dest ...any) error }) (services.SettingChange, error) {
	var c services.SettingChange
	var at int64
	if err := row.Scan(&c.ID, &c.AccountID, &c.UserID, &c.UserEmail, &c.Integration, &c.Key, &c.OldValue, &c.NewValue, &at); err != nil {
		return services.SettingChange{}, err
	}
	c.ChangedAt = fromMillis(at)
	return c, nil
}

// collectChanges reads every setting change of rows and closes them.
func collectChanges(rows *sql.Rows) ([]services.SettingChange, error) {
	defer func() { _ = rows.Close() }()
	var out []services.SettingChange
	for rows.Next() {
		c, err := scanChange(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// SettingChanges returns an account's latest setting changes of an
// integration (of every integration when integration is ""), newest first.
func (db *DB) SettingChanges(ctx context.Context, accountID int64, integration string, limit int) ([]services.SettingChange, error) {
	rows, err := db.query(ctx, `
		SELECT `+changeColumns+`
		FROM setting_changes c LEFT JOIN users u ON u.id = c.user_id
		WHERE c.account_id = ? AND (? = '' OR c.integration = ?) ORDER BY c.id DESC LIMIT ?`,
		accountID, integration, integration, limit)
	if err != nil {
		return nil, err
	}
	return collectChanges(rows)
}

// LatestSettingChange returns an account's newest change of one setting of
// an integration; found is false when the trail has none.
func (db *DB) LatestSettingChange(ctx context.Context, accountID int64, integration, key string) (c services.SettingChange, found bool, err error) {
	c, err = scanChange(db.queryRow(ctx, `
		SELECT `+changeColumns+`
		FROM setting_changes c LEFT JOIN users u ON u.id = c.user_id
		WHERE c.account_id = ? AND c.integration = ? AND c.key = ? ORDER BY c.id DESC LIMIT 1`,
		accountID, integration, key))
	if errors.Is(err, sql.ErrNoRows) {
		return services.SettingChange{}, false, nil
	}
	if err != nil {
		return services.SettingChange{}, false, err
	}
	return c, true, nil
}

// LatestSettingChanges returns an account's newest change of each setting
// of an integration, newest first.
func (db *DB) LatestSettingChanges(ctx context.Context, accountID int64, integration string) ([]services.SettingChange, error) {
	rows, err := db.query(ctx, `
		SELECT `+changeColumns+`
		FROM setting_changes c LEFT JOIN users u ON u.id = c.user_id
		WHERE c.id IN (SELECT max(id) FROM setting_changes WHERE account_id = ? AND integration = ? GROUP BY key)
		ORDER BY c.id DESC`,
		accountID, integration)
	if err != nil {
		return nil, err
	}
	return collectChanges(rows)
}

// DeleteCredentials removes an account's credentials for an integration and
// reports whether there were any.
func (db *DB) DeleteCredentials(ctx context.Context, accountID int64, integration string) (bool, error) {
	res, err := db.exec(ctx,
		"DELETE FROM integration_credentials WHERE account_id = ? AND integration = ?", accountID, integration)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// AddOutboxEmail keeps an email the development stub "sent".
func (db *DB) AddOutboxEmail(ctx context.Context, e services.OutboxEmail) error {
	_, err := db.exec(ctx, `
		INSERT INTO email_outbox (account_id, message_id, sender, recipient, subject, body, sent_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`,
		e.AccountID, e.MessageID, e.From, e.To, e.Subject, e.Text, millis(e.SentAt))
	return err
}

// OutboxEmails returns the stub's latest emails for an account, newest first.
func (db *DB) OutboxEmails(ctx context.Context, accountID int64, limit int) ([]services.OutboxEmail, error) {
	rows, err := db.query(ctx, `
		SELECT account_id, message_id, sender, recipient, subject, body, sent_at
		FROM email_outbox WHERE account_id = ? ORDER BY id DESC LIMIT ?`, accountID, limit)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }()
	var out []services.OutboxEmail
	for rows.Next() {
		var e services.OutboxEmail
		var at int64
		if err := rows.Scan(&e.AccountID, &e.MessageID, &e.From, &e.To, &e.Subject, &e.Text, &at); err != nil {
			return nil, err
		}
		e.SentAt = fromMillis(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

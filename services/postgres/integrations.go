package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ava/console/services"
)

// FirstAccountID returns the id of the first account created (the lowest:
// the one first-run setup or the first `ava user create` made); ENOTFOUND
// while there is none.
func (db *DB) FirstAccountID(ctx context.Context) (int64, error) {
	var id *int64
	if err := db.pool.QueryRow(ctx, "SELECT min(id) FROM accounts").Scan(&id); err != nil {
		return 0, err
	}
	if id == nil {
		return 0, services.Errorf(services.ENOTFOUND, "There is no account yet.")
	}
	return *id, nil
}

// SaveCredentials stores (or replaces) an account's credentials for an integration.
func (db *DB) SaveCredentials(ctx context.Context, c services.StoredCredentials) error {
	hints, err := json.Marshal(c.Hints)
	if err != nil {
		return err
	}
	_, err = db.pool.Exec(ctx, `
		INSERT INTO integration_credentials (account_id, integration, sealed, hints, updated_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (account_id, integration) DO UPDATE SET sealed = excluded.sealed, hints = excluded.hints, updated_at = excluded.updated_at`,
		c.AccountID, c.Integration, c.Sealed, string(hints), ms(c.UpdatedAt))
	return err
}

// Credentials returns an account's stored credentials for an integration.
func (db *DB) Credentials(ctx context.Context, accountID int64, integration string) (services.StoredCredentials, error) {
	c := services.StoredCredentials{AccountID: accountID, Integration: integration}
	var hints string
	err := db.pool.QueryRow(ctx,
		"SELECT sealed, hints, updated_at FROM integration_credentials WHERE account_id = $1 AND integration = $2",
		accountID, integration).Scan(&c.Sealed, &hints, &c.UpdatedAt)
	if err != nil {
		return services.StoredCredentials{}, notFound(err, "Credentials")
	}
	if err := json.Unmarshal([]byte(hints), &c.Hints); err != nil {
		return services.StoredCredentials{}, err
	}
	c.UpdatedAt = c.UpdatedAt.UTC()
	return c, nil
}

// DeleteCredentials removes an account's credentials for an integration and
// reports whether there were any.
func (db *DB) DeleteCredentials(ctx context.Context, accountID int64, integration string) (bool, error) {
	tag, err := db.pool.Exec(ctx,
		"DELETE FROM integration_credentials WHERE account_id = $1 AND integration = $2", accountID, integration)
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() > 0, nil
}

// RecordIntegrationError remembers an integration's last error for an account.
func (db *DB) RecordIntegrationError(ctx context.Context, accountID int64, integration, message string, at time.Time) error {
	_, err := db.pool.Exec(ctx, `
		INSERT INTO integration_health (account_id, integration, last_error, last_error_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (account_id, integration) DO UPDATE SET last_error = excluded.last_error, last_error_at = excluded.last_error_at`,
		accountID, integration, message, ms(at))
	return err
}

// RecordIntegrationOK remembers an integration's last successful call for an account.
func (db *DB) RecordIntegrationOK(ctx context.Context, accountID int64, integration string, at time.Time) error {
	_, err := db.pool.Exec(ctx, `
		INSERT INTO integration_health (account_id, integration, last_ok_at) VALUES ($1, $2, $3)
		ON CONFLICT (account_id, integration) DO UPDATE SET last_ok_at = excluded.last_ok_at`,
		accountID, integration, ms(at))
	return err
}

// IntegrationHealth returns what is known of an integration's last calls; zero values if nothing.
func (db *DB) IntegrationHealth(ctx context.Context, accountID int64, integration string) (services.IntegrationHealth, error) {
	var h services.IntegrationHealth
	var msg *string
	err := db.pool.QueryRow(ctx,
		"SELECT last_error, last_error_at, last_ok_at FROM integration_health WHERE account_id = $1 AND integration = $2",
		accountID, integration).Scan(&msg, &h.LastErrorAt, &h.LastOKAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return services.IntegrationHealth{}, nil
	}
	if err != nil {
		return services.IntegrationHealth{}, err
	}
	if msg != nil {
		h.LastError = *msg
	}
	h.LastErrorAt, h.LastOKAt = utc(h.LastErrorAt), utc(h.LastOKAt)
	return h, nil
}

// RecordSettingChange appends to the audit trail.
func (db *DB) RecordSettingChange(ctx context.Context, c services.SettingChange) error {
	_, err := db.pool.Exec(ctx, `
		INSERT INTO setting_changes (account_id, user_id, integration, key, old_value, new_value, changed_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		c.AccountID, c.UserID, c.Integration, c.Key, c.OldValue, c.NewValue, ms(c.ChangedAt))
	return err
}

const changeColumns = `c.id, c.account_id, coalesce(c.user_id, 0), coalesce(u.email, ''), c.integration, c.key,
	c.old_value, c.new_value, c.changed_at`

func scanChange(row pgx.Row) (services.SettingChange, error) {
	var c services.SettingChange
	err := row.Scan(&c.ID, &c.AccountID, &c.UserID, &c.UserEmail, &c.Integration, &c.Key, &c.OldValue, &c.NewValue, &c.ChangedAt)
	c.ChangedAt = c.ChangedAt.UTC()
	return c, err
}

// collectChanges reads every setting change of rows and closes them.
func collectChanges(rows pgx.Rows) ([]services.SettingChange, error) {
	defer rows.Close()
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
// A negative limit means no limit, as in SQLite.
func (db *DB) SettingChanges(ctx context.Context, accountID int64, integration string, limit int) ([]services.SettingChange, error) {
	rows, err := db.pool.Query(ctx, `
		SELECT `+changeColumns+`
		FROM setting_changes c LEFT JOIN users u ON u.id = c.user_id
		WHERE c.account_id = $1 AND ($2::text = '' OR c.integration = $2) ORDER BY c.id DESC LIMIT $3`,
		accountID, integration, sqlLimit(limit))
	if err != nil {
		return nil, err
	}
	return collectChanges(rows)
}

// LatestSettingChange returns an account's newest change of one setting of
// an integration; found is false when the trail has none.
func (db *DB) LatestSettingChange(ctx context.Context, accountID int64, integration, key string) (services.SettingChange, bool, error) {
	c, err := scanChange(db.pool.QueryRow(ctx, `
		SELECT `+changeColumns+`
		FROM setting_changes c LEFT JOIN users u ON u.id = c.user_id
		WHERE c.account_id = $1 AND c.integration = $2 AND c.key = $3 ORDER BY c.id DESC LIMIT 1`,
		accountID, integration, key))
	if errors.Is(err, pgx.ErrNoRows) {
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
	rows, err := db.pool.Query(ctx, `
		SELECT `+changeColumns+`
		FROM setting_changes c LEFT JOIN users u ON u.id = c.user_id
		WHERE c.id IN (SELECT max(id) FROM setting_changes WHERE account_id = $1 AND integration = $2 GROUP BY key)
		ORDER BY c.id DESC`,
		accountID, integration)
	if err != nil {
		return nil, err
	}
	return collectChanges(rows)
}

// AddOutboxEmail keeps an email the development stub "sent".
func (db *DB) AddOutboxEmail(ctx context.Context, e services.OutboxEmail) error {
	_, err := db.pool.Exec(ctx, `
		INSERT INTO email_outbox (account_id, message_id, sender, recipient, subject, body, sent_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		e.AccountID, e.MessageID, e.From, e.To, e.Subject, e.Text, ms(e.SentAt))
	return err
}

// OutboxEmails returns the stub's latest emails for an account, newest first.
func (db *DB) OutboxEmails(ctx context.Context, accountID int64, limit int) ([]services.OutboxEmail, error) {
	rows, err := db.pool.Query(ctx, `
		SELECT account_id, message_id, sender, recipient, subject, body, sent_at
		FROM email_outbox WHERE account_id = $1 ORDER BY id DESC LIMIT $2`, accountID, sqlLimit(limit))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []services.OutboxEmail
	for rows.Next() {
		var e services.OutboxEmail
		if err := rows.Scan(&e.AccountID, &e.MessageID, &e.From, &e.To, &e.Subject, &e.Text, &e.SentAt); err != nil {
			return nil, err
		}
		e.SentAt = e.SentAt.UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

// sqlLimit is a LIMIT value: SQLite reads a negative one as no limit,
// PostgreSQL refuses it but reads NULL so.
func sqlLimit(limit int) *int {
	if limit < 0 {
		return nil
	}
	return &limit
}

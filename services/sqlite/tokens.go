package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/ava/console/services"
)

const tokenColumns = "id, user_id, name, hash, last4, created_at, last_used_at, revoked_at" //nolint:gosec // column names, not a credential

func scanToken(row interface{ Scan(...any) error }) (services.APIToken, error) {
	var t services.APIToken
	var created int64
	var used, revoked sql.NullInt64
	if err := row.Scan(&t.ID, &t.UserID, &t.Name, &t.Hash, &t.Last4, &created, &used, &revoked); err != nil {
		return services.APIToken{}, err
	}
	t.CreatedAt = fromMillis(created)
	t.LastUsedAt = fromNullMillis(used)
	t.RevokedAt = fromNullMillis(revoked)
	return t, nil
}

// CreateToken stores a token (its hash) and returns it with its id.
func (db *DB) CreateToken(ctx context.Context, t services.APIToken) (services.APIToken, error) {
	res, err := db.exec(ctx,
		"INSERT INTO api_tokens (user_id, name, hash, last4, created_at) VALUES (?, ?, ?, ?, ?)",
		t.UserID, t.Name, t.Hash, t.Last4, millis(t.CreatedAt))
	if err != nil {
		return services.APIToken{}, err
	}
	if t.ID, err = res.LastInsertId(); err != nil {
		return services.APIToken{}, err
	}
	t.CreatedAt = fromMillis(millis(t.CreatedAt))
	return t, nil
}

// ListTokens returns the user's tokens, newest first, revoked ones included.
func (db *DB) ListTokens(ctx context.Context, userID int64) ([]services.APIToken, error) {
	rows, err := db.query(ctx,
		"SELECT "+tokenColumns+" FROM api_tokens WHERE user_id = ? ORDER BY id DESC", userID)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }()
	var out []services.APIToken
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// TokenByHash returns the token with that hash.
func (db *DB) TokenByHash(ctx context.Context, hash string) (services.APIToken, error) {
	t, err := scanToken(db.queryRow(ctx, "SELECT "+tokenColumns+" FROM api_tokens WHERE hash = ?", hash))
	if err != nil {
		return services.APIToken{}, notFound(err, "API token")
	}
	return t, nil
}

// RevokeToken marks the user's token revoked at the given time; revoking a
// revoked token keeps its first revocation time.
func (db *DB) RevokeToken(ctx context.Context, userID, tokenID int64, at time.Time) (services.APIToken, error) {
	res, err := db.exec(ctx,
		"UPDATE api_tokens SET revoked_at = coalesce(revoked_at, ?) WHERE id = ? AND user_id = ?",
		millis(at), tokenID, userID)
	if err != nil {
		return services.APIToken{}, err
	}
	if n, err := res.RowsAffected(); err != nil {
		return services.APIToken{}, err
	} else if n == 0 {
		return services.APIToken{}, services.Errorf(services.ENOTFOUND, "API token not found.")
	}
	t, err := scanToken(db.queryRow(ctx, "SELECT "+tokenColumns+" FROM api_tokens WHERE id = ?", tokenID))
	return t, notFound(err, "API token")
}

// TouchToken records when a token was last used.
func (db *DB) TouchToken(ctx context.Context, id int64, at time.Time) error {
	_, err := db.exec(ctx, "UPDATE api_tokens SET last_used_at = ? WHERE id = ?", millis(at), id)
	return err
}

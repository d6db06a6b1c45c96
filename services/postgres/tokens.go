package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ava/console/services"
)

const tokenColumns = "id, user_id, name, hash, last4, created_at, last_used_at, revoked_at" //nolint:gosec // column names, not a credential

func scanToken(row pgx.Row) (services.APIToken, error) {
	var t services.APIToken
	if err := row.Scan(&t.ID, &t.UserID, &t.Name, &t.Hash, &t.Last4, &t.CreatedAt, &t.LastUsedAt, &t.RevokedAt); err != nil {
		return services.APIToken{}, err
	}
	t.CreatedAt = t.CreatedAt.UTC()
	t.LastUsedAt, t.RevokedAt = utc(t.LastUsedAt), utc(t.RevokedAt)
	return t, nil
}

// CreateToken stores a token (its hash) and returns it with its id.
func (db *DB) CreateToken(ctx context.Context, t services.APIToken) (services.APIToken, error) {
	t.CreatedAt = ms(t.CreatedAt)
	err := db.pool.QueryRow(ctx,
		"INSERT INTO api_tokens (user_id, name, hash, last4, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
		t.UserID, t.Name, t.Hash, t.Last4, t.CreatedAt).Scan(&t.ID)
	if err != nil {
		return services.APIToken{}, err
	}
	return t, nil
}

// ListTokens returns the user's tokens, newest first, revoked ones included.
func (db *DB) ListTokens(ctx context.Context, userID int64) ([]services.APIToken, error) {
	rows, err := db.pool.Query(ctx,
		"SELECT "+tokenColumns+" FROM api_tokens WHERE user_id = $1 ORDER BY id DESC", userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
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
	t, err := scanToken(db.pool.QueryRow(ctx, "SELECT "+tokenColumns+" FROM api_tokens WHERE hash = $1", hash))
	if err != nil {
		return services.APIToken{}, notFound(err, "API token")
	}
	return t, nil
}

// RevokeToken marks the user's token revoked at the given time; revoking a
// revoked token keeps its first revocation time.
func (db *DB) RevokeToken(ctx context.Context, userID, tokenID int64, at time.Time) (services.APIToken, error) {
	t, err := scanToken(db.pool.QueryRow(ctx,
		"UPDATE api_tokens SET revoked_at = coalesce(revoked_at, $1) WHERE id = $2 AND user_id = $3 RETURNING "+tokenColumns,
		ms(at), tokenID, userID))
	if err != nil {
		return services.APIToken{}, notFound(err, "API token")
	}
	return t, nil
}

// TouchToken records when a token was last used.
func (db *DB) TouchToken(ctx context.Context, id int64, at time.Time) error {
	_, err := db.pool.Exec(ctx, "UPDATE api_tokens SET last_used_at = $1 WHERE id = $2", ms(at), id)
	return err
}

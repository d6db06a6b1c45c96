package sqlite

import (
	"context"
	"time"

	"github.com/ava/console/services"
)

// SaveOAuthState stores an OAuth connect in progress, and deletes the
// expired ones.
func (db *DB) SaveOAuthState(ctx context.Context, s services.OAuthState) error {
	if _, err := db.exec(ctx, "DELETE FROM oauth_states WHERE expires_at <= ?", millis(time.Now())); err != nil {
		return err
	}
	_, err := db.exec(ctx, `
		INSERT INTO oauth_states (state_hash, binding, account_id, integration, sealed_verifier, expires_at)
		VALUES (?, ?, ?, ?, ?, ?)`,
		s.Hash, s.Binding, s.AccountID, s.Integration, s.SealedVerifier, millis(s.ExpiresAt))
	return err
}

// TakeOAuthState deletes the state and returns it when it had not expired:
// one statement, so two callbacks with the same state cannot both take it.
func (db *DB) TakeOAuthState(ctx context.Context, hash string, now time.Time) (services.OAuthState, error) {
	s := services.OAuthState{Hash: hash}
	var expires int64
	db.writes.Add(1) // a DELETE, on the writer
	err := db.db.QueryRowContext(ctx, `
		DELETE FROM oauth_states WHERE state_hash = ?
		RETURNING binding, account_id, integration, sealed_verifier, expires_at`, hash).
		Scan(&s.Binding, &s.AccountID, &s.Integration, &s.SealedVerifier, &expires)
	if err != nil {
		return services.OAuthState{}, notFound(err, "OAuth state")
	}
	s.ExpiresAt = fromMillis(expires)
	if !now.Before(s.ExpiresAt) {
		return services.OAuthState{}, services.Errorf(services.ENOTFOUND, "OAuth state not found.")
	}
	return s, nil
}

package postgres

import (
	"context"
	"time"

	"github.com/ava/console/services"
)

// SaveOAuthState stores an OAuth connect in progress, and deletes the
// expired ones.
func (db *DB) SaveOAuthState(ctx context.Context, s services.OAuthState) error {
	if _, err := db.pool.Exec(ctx, "DELETE FROM oauth_states WHERE expires_at <= $1", ms(time.Now())); err != nil {
		return err
	}
	_, err := db.pool.Exec(ctx, `
		INSERT INTO oauth_states (state_hash, binding, account_id, integration, sealed_verifier, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6)`,
		s.Hash, s.Binding, s.AccountID, s.Integration, s.SealedVerifier, ms(s.ExpiresAt))
	return err
}

// TakeOAuthState deletes the state and returns it when it had not expired:
// one statement, so two callbacks with the same state, on any instances,
// cannot both take it.
func (db *DB) TakeOAuthState(ctx context.Context, hash string, now time.Time) (services.OAuthState, error) {
	s := services.OAuthState{Hash: hash}
	err := db.pool.QueryRow(ctx, `
		DELETE FROM oauth_states WHERE state_hash = $1
		RETURNING binding, account_id, integration, sealed_verifier, expires_at`, hash).
		Scan(&s.Binding, &s.AccountID, &s.Integration, &s.SealedVerifier, &s.ExpiresAt)
	if err != nil {
		return services.OAuthState{}, notFound(err, "OAuth state")
	}
	s.ExpiresAt = s.ExpiresAt.UTC()
	if !now.Before(s.ExpiresAt) {
		return services.OAuthState{}, services.Errorf(services.ENOTFOUND, "OAuth state not found.")
	}
	return s, nil
}

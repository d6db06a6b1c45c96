package services

import (
	"context"
	"time"
)

// OAuthState is an OAuth connect the owner has started and not finished:
// kept in the database (never in one process's memory) so the consent can
// come back to any instance, used once, and forgotten when it expires.
type OAuthState struct {
	// Hash is the SHA-256 of the state parameter, hex: the state itself is
	// never stored.
	Hash string
	// Binding is the hash of what ties the state to the browser session
	// that started it.
	Binding     string
	AccountID   int64
	Integration string
	// SealedVerifier is the PKCE verifier, sealed with AVA_SECRET_KEY.
	SealedVerifier []byte
	ExpiresAt      time.Time
}

// OAuthStateStore keeps OAuth connects in progress.
type OAuthStateStore interface {
	// SaveOAuthState stores a new state (and forgets expired ones).
	SaveOAuthState(ctx context.Context, s OAuthState) error
	// TakeOAuthState removes the state with that hash and returns it, once:
	// a second take of the same state, or a take after it expired, is
	// ENOTFOUND.
	TakeOAuthState(ctx context.Context, hash string, now time.Time) (OAuthState, error)
}

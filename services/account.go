package services

import (
	"context"
	"time"
)

// User is an account owner who signs in to the console.
type User struct {
	ID        int64
	AccountID int64
	Email     string
	CreatedAt time.Time
}

// Session is a signed-in browser. The cookie holds a random token; storage
// keeps only its keyed hash.
type Session struct {
	TokenHash string
	UserID    int64
	CreatedAt time.Time
	ExpiresAt time.Time
}

// APIToken is a bearer token for the JSON API. Storage keeps its hash and its
// last four characters, never the token itself.
type APIToken struct {
	ID         int64
	UserID     int64
	Name       string
	Hash       string
	Last4      string
	CreatedAt  time.Time
	LastUsedAt *time.Time
	RevokedAt  *time.Time
}

// Revoked reports whether the token may no longer be used.
func (t APIToken) Revoked() bool { return t.RevokedAt != nil }

// UserStore keeps account owners.
type UserStore interface {
	// CreateUser creates a new account with u as its owner; ECONFLICT when
	// the email is taken. When onlyFirst is set it succeeds only while no
	// owner exists at all (first-run setup), atomically.
	CreateUser(ctx context.Context, email, passwordHash string, onlyFirst bool) (User, error)
	// UserByEmail returns the user and their password hash; ENOTFOUND if none.
	UserByEmail(ctx context.Context, email string) (User, string, error)
	UserByID(ctx context.Context, id int64) (User, error)
	CountUsers(ctx context.Context) (int, error)
}

// SessionStore keeps browser sessions.
type SessionStore interface {
	CreateSession(ctx context.Context, s Session) error
	// SessionByHash returns an unexpired session; ENOTFOUND otherwise.
	SessionByHash(ctx context.Context, hash string, now time.Time) (Session, error)
	DeleteSession(ctx context.Context, hash string) error
	DeleteExpiredSessions(ctx context.Context, now time.Time) (int64, error)
}

// TokenStore keeps API tokens.
type TokenStore interface {
	CreateToken(ctx context.Context, t APIToken) (APIToken, error)
	ListTokens(ctx context.Context, userID int64) ([]APIToken, error)
	// TokenByHash returns the token with that hash, revoked or not; ENOTFOUND if none.
	TokenByHash(ctx context.Context, hash string) (APIToken, error)
	// RevokeToken marks the user's token revoked; ENOTFOUND when the user has no such token.
	RevokeToken(ctx context.Context, userID, tokenID int64, at time.Time) (APIToken, error)
	TouchToken(ctx context.Context, id int64, at time.Time) error
}

// Store is everything the console keeps in its database.
type Store interface {
	UserStore
	SessionStore
	TokenStore
	IntegrationStore
	OutboxStore
	OAuthStateStore
	Ping(ctx context.Context) error
	Close() error
}

package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ava/console/services"
)

func errEmailTaken() error {
	return &services.Error{Code: services.ECONFLICT, Field: "email", Message: "An account with this email already exists."}
}

// CreateUser creates an account and its owner in one transaction.
func (db *DB) CreateUser(ctx context.Context, email, passwordHash string, onlyFirst bool) (services.User, error) {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return services.User{}, err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()

	// One owner is created at a time, on every instance, as under SQLite's
	// write lock: this mode conflicts with itself and with writes to users,
	// not with reads. The count and the email check below then see every
	// owner committed before, so two first-run setups cannot both see an
	// empty table.
	if _, err := tx.Exec(ctx, "LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE"); err != nil {
		return services.User{}, err
	}
	if onlyFirst {
		var n int
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM users").Scan(&n); err != nil {
			return services.User{}, err
		}
		if n > 0 {
			return services.User{}, services.Errorf(services.ECONFLICT, "The owner account already exists.")
		}
	}
	var exists bool
	err = tx.QueryRow(ctx,
		`SELECT EXISTS (SELECT 1 FROM users WHERE lower(email COLLATE "C") = lower($1 COLLATE "C"))`, email).Scan(&exists)
	if err != nil {
		return services.User{}, err
	}
	if exists {
		return services.User{}, errEmailTaken()
	}
	now := ms(time.Now())
	var accountID, id int64
	if err := tx.QueryRow(ctx, "INSERT INTO accounts (created_at) VALUES ($1) RETURNING id", now).Scan(&accountID); err != nil {
		return services.User{}, err
	}
	err = tx.QueryRow(ctx,
		"INSERT INTO users (account_id, email, password_hash, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
		accountID, email, passwordHash, now).Scan(&id)
	if err != nil {
		if isUniqueViolation(err, "users_email") {
			return services.User{}, errEmailTaken()
		}
		return services.User{}, fmt.Errorf("insert user: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return services.User{}, err
	}
	return services.User{ID: id, AccountID: accountID, Email: email, CreatedAt: now}, nil
}

const userColumns = "id, account_id, email, created_at"

func scanUser(row pgx.Row, extra ...any) (services.User, error) {
	var u services.User
	if err := row.Scan(append([]any{&u.ID, &u.AccountID, &u.Email, &u.CreatedAt}, extra...)...); err != nil {
		return services.User{}, err
	}
	u.CreatedAt = u.CreatedAt.UTC()
	return u, nil
}

// UserByEmail returns the user with that email (any case of its ASCII
// letters) and their password hash.
func (db *DB) UserByEmail(ctx context.Context, email string) (services.User, string, error) {
	var hash string
	u, err := scanUser(db.pool.QueryRow(ctx,
		"SELECT "+userColumns+`, password_hash FROM users WHERE lower(email COLLATE "C") = lower($1 COLLATE "C")`, email), &hash)
	if err != nil {
		return services.User{}, "", notFound(err, "User")
	}
	return u, hash, nil
}

// UserByID returns the user with that id.
func (db *DB) UserByID(ctx context.Context, id int64) (services.User, error) {
	u, err := scanUser(db.pool.QueryRow(ctx, "SELECT "+userColumns+" FROM users WHERE id = $1", id))
	if err != nil {
		return services.User{}, notFound(err, "User")
	}
	return u, nil
}

// CountUsers returns how many owners exist.
func (db *DB) CountUsers(ctx context.Context) (int, error) {
	var n int
	err := db.pool.QueryRow(ctx, "SELECT count(*) FROM users").Scan(&n)
	return n, err
}

// CreateSession stores a session.
func (db *DB) CreateSession(ctx context.Context, s services.Session) error {
	_, err := db.pool.Exec(ctx,
		"INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
		s.TokenHash, s.UserID, ms(s.CreatedAt), ms(s.ExpiresAt))
	return err
}

// SessionByHash returns the session with that hash unless it expired before now.
func (db *DB) SessionByHash(ctx context.Context, hash string, now time.Time) (services.Session, error) {
	var s services.Session
	err := db.pool.QueryRow(ctx,
		"SELECT token_hash, user_id, created_at, expires_at FROM sessions WHERE token_hash = $1 AND expires_at > $2",
		hash, ms(now)).Scan(&s.TokenHash, &s.UserID, &s.CreatedAt, &s.ExpiresAt)
	if err != nil {
		return services.Session{}, notFound(err, "Session")
	}
	s.CreatedAt, s.ExpiresAt = s.CreatedAt.UTC(), s.ExpiresAt.UTC()
	return s, nil
}

// DeleteSession removes a session (sign-out). Removing a missing one is no error.
func (db *DB) DeleteSession(ctx context.Context, hash string) error {
	_, err := db.pool.Exec(ctx, "DELETE FROM sessions WHERE token_hash = $1", hash)
	return err
}

// DeleteExpiredSessions removes sessions that expired before now.
func (db *DB) DeleteExpiredSessions(ctx context.Context, now time.Time) (int64, error) {
	tag, err := db.pool.Exec(ctx, "DELETE FROM sessions WHERE expires_at <= $1", ms(now))
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

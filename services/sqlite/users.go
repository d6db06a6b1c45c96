package sqlite

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ava/console/services"
)

// CreateUser creates an account and its owner in one transaction.
func (db *DB) CreateUser(ctx context.Context, email, passwordHash string, onlyFirst bool) (services.User, error) {
	tx, err := db.db.BeginTx(ctx, nil)
	if err != nil {
		return services.User{}, err
	}
	defer func() { _ = tx.Rollback() }()

	// The transaction takes SQLite's write lock at BEGIN (_txlock=immediate),
	// so two first-run setups cannot both see an empty table.
	if onlyFirst {
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM users").Scan(&n); err != nil {
			return services.User{}, err
		}
		if n > 0 {
			return services.User{}, services.Errorf(services.ECONFLICT, "The owner account already exists.")
		}
	}
	var exists int
	err = tx.QueryRowContext(ctx, "SELECT count(*) FROM users WHERE email = ?", email).Scan(&exists)
	if err != nil {
		return services.User{}, err
	}
	if exists > 0 {
		return services.User{}, &services.Error{Code: services.ECONFLICT, Field: "email", Message: "An account with this email already exists."}
	}
	now := time.Now()
	res, err := db.execTx(ctx, tx, "INSERT INTO accounts (created_at) VALUES (?)", millis(now))
	if err != nil {
		return services.User{}, err
	}
	accountID, err := res.LastInsertId()
	if err != nil {
		return services.User{}, err
	}
	res, err = tx.ExecContext(ctx,
		"INSERT INTO users (account_id, email, password_hash, created_at) VALUES (?, ?, ?, ?)",
		accountID, email, passwordHash, millis(now))
	if err != nil {
		if strings.Contains(err.Error(), "UNIQUE") {
			return services.User{}, &services.Error{Code: services.ECONFLICT, Field: "email", Message: "An account with this email already exists."}
		}
		return services.User{}, fmt.Errorf("insert user: %w", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return services.User{}, err
	}
	if err := tx.Commit(); err != nil {
		return services.User{}, err
	}
	return services.User{ID: id, AccountID: accountID, Email: email, CreatedAt: fromMillis(millis(now))}, nil
}

const userColumns = "id, account_id, email, created_at"

func scanUser(row interface{ Scan(...any) error }, extra ...any) (services.User, error) {
	var u services.User
	var created int64
	if err := row.Scan(append([]any{&u.ID, &u.AccountID, &u.Email, &created}, extra...)...); err != nil {
		return services.User{}, err
	}
	u.CreatedAt = fromMillis(created)
	return u, nil
}

// UserByEmail returns the user with that email (any case) and their password hash.
func (db *DB) UserByEmail(ctx context.Context, email string) (services.User, string, error) {
	var hash string
	u, err := scanUser(db.queryRow(ctx,
		"SELECT "+userColumns+", password_hash FROM users WHERE email = ?", email), &hash)
	if err != nil {
		return services.User{}, "", notFound(err, "User")
	}
	return u, hash, nil
}

// UserByID returns the user with that id.
func (db *DB) UserByID(ctx context.Context, id int64) (services.User, error) {
	u, err := scanUser(db.queryRow(ctx, "SELECT "+userColumns+" FROM users WHERE id = ?", id))
	if err != nil {
		return services.User{}, notFound(err, "User")
	}
	return u, nil
}

// CountUsers returns how many owners exist.
func (db *DB) CountUsers(ctx context.Context) (int, error) {
	var n int
	err := db.queryRow(ctx, "SELECT count(*) FROM users").Scan(&n)
	return n, err
}

// CreateSession stores a session.
func (db *DB) CreateSession(ctx context.Context, s services.Session) error {
	_, err := db.exec(ctx,
		"INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
		s.TokenHash, s.UserID, millis(s.CreatedAt), millis(s.ExpiresAt))
	return err
}

// SessionByHash returns the session with that hash unless it expired before now.
func (db *DB) SessionByHash(ctx context.Context, hash string, now time.Time) (services.Session, error) {
	var s services.Session
	var created, expires int64
	err := db.queryRow(ctx,
		"SELECT token_hash, user_id, created_at, expires_at FROM sessions WHERE token_hash = ? AND expires_at > ?",
		hash, millis(now)).Scan(&s.TokenHash, &s.UserID, &created, &expires)
	if err != nil {
		return services.Session{}, notFound(err, "Session")
	}
	s.CreatedAt, s.ExpiresAt = fromMillis(created), fromMillis(expires)
	return s, nil
}

// DeleteSession removes a session (sign-out). Removing a missing one is no error.
func (db *DB) DeleteSession(ctx context.Context, hash string) error {
	_, err := db.exec(ctx, "DELETE FROM sessions WHERE token_hash = ?", hash)
	return err
}

// DeleteExpiredSessions removes sessions that expired before now.
func (db *DB) DeleteExpiredSessions(ctx context.Context, now time.Time) (int64, error) {
	res, err := db.exec(ctx, "DELETE FROM sessions WHERE expires_at <= ?", millis(now))
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

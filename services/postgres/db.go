// Package postgres stores the console's data in PostgreSQL through pgx/v5
// (a pgxpool of connections), the implementation of services.Store for
// several instances sharing one database. It behaves as package sqlite does:
// the same errors, the same ids, times in UTC at millisecond precision.
//
// Migrations are embedded (migrations/NNNN_name.sql, numbered like SQLite's),
// recorded in schema_migrations, and applied at Open under a PostgreSQL
// advisory lock, so instances starting at the same moment apply each one
// once and all start on the same schema.
//
// Statements are prepared: pgx's default query mode prepares each distinct
// SQL text once per connection and keeps it (up to 512 per connection), so
// a statement is parsed and planned once per connection, not per call.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ava/console/services"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// The pool of one instance, unless DATABASE_URL says otherwise
// (pool_max_conns=..., pool_max_conn_idle_time=...). With several
// instances, MaxConns times the instances must stay under the server's
// max_connections (100 by default).
const (
	defaultMaxConns        = 10
	defaultMaxConnIdleTime = 5 * time.Minute
)

// migrationLock is the advisory lock key held while migrating: any
// constant works, as long as every instance uses the same one.
const migrationLock int64 = 0x61766120636f6e73 // "ava cons"

// DB is the PostgreSQL implementation of services.Store.
type DB struct {
	pool *pgxpool.Pool
	// writes counts the statements that change the database (counters.go).
	writes *writeTracer
}

var _ services.Store = (*DB)(nil)

// ParseURL checks a postgres:// (or postgresql://) URL and returns the pool
// configuration it makes, with this package's pool sizes where the URL sets
// none. Its errors never contain the password.
func ParseURL(dsn string) (*pgxpool.Config, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return nil, errors.New("is not a URL")
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return nil, errors.New("is not a postgres:// URL")
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's message quotes the URL (redacted, at best effort): keep
		// only the cause.
		var pe *pgconn.ParseConfigError
		if errors.As(err, &pe) && pe.Unwrap() != nil {
			return nil, fmt.Errorf("cannot be read: %w", pe.Unwrap())
		}
		return nil, errors.New("cannot be read as a PostgreSQL URL")
	}
	q := u.Query()
	if !q.Has("pool_max_conns") {
		cfg.MaxConns = defaultMaxConns
	}
	if !q.Has("pool_max_conn_idle_time") {
		cfg.MaxConnIdleTime = defaultMaxConnIdleTime
	}
	return cfg, nil
}

// Open connects to the database of a postgres:// URL and brings its schema
// up to date. A search_path parameter in the URL chooses the schema (the
// tests give each test its own).
func Open(ctx context.Context, dsn string) (*DB, error) {
	cfg, err := ParseURL(dsn)
	if err != nil {
		return nil, err
	}
	tracer := &writeTracer{}
	cfg.ConnConfig.Tracer = tracer
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	db := &DB{pool: pool, writes: tracer}
	if err := db.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	tracer.startCounting()
	return db, nil
}

// Ping reports whether the database answers.
func (db *DB) Ping(ctx context.Context) error { return db.pool.Ping(ctx) }

// Close closes every connection of the pool.
func (db *DB) Close() error {
	db.pool.Close()
	return nil
}

// migration is one embedded migration file.
type migration struct {
	version int
	name    string
	body    string
}

func migrations() ([]migration, error) {
	names, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	out := make([]migration, 0, len(names))
	for _, name := range names {
		base := path.Base(name)
		n, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil {
			return nil, fmt.Errorf("migration %s: name must start with its number", name)
		}
		body, err := migrationFS.ReadFile(name)
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: n, name: base, body: string(body)})
	}
	return out, nil
}

// migrate applies, in order and each in its own transaction, the embedded
// migrations schema_migrations does not list. It holds the advisory lock
// on one connection for the whole step: another instance migrating at the
// same moment waits, then finds everything applied.
func (db *DB) migrate(ctx context.Context) error {
	all, err := migrations()
	if err != nil {
		return err
	}
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("connect to the database: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrationLock); err != nil {
		return fmt.Errorf("take the migration lock: %w", err)
	}
	defer func() {
		// The lock is the session's: should unlocking fail, closing the
		// connection releases it.
		if _, err := conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrationLock); err != nil {
			_ = conn.Hijack().Close(context.WithoutCancel(ctx))
		}
	}()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer     PRIMARY KEY,
		name       text        NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now()
	)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	applied := map[int]bool{}
	rows, err := conn.Query(ctx, "SELECT version FROM schema_migrations")
	if err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	for _, v := range versions {
		applied[v] = true
	}
	for _, m := range all {
		if applied[m.version] {
			continue
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			// No arguments: pgx sends the file as one simple query, all
			// its statements at once.
			if _, err := tx.Exec(ctx, m.body); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name)
			return err
		})
		if err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
	}
	return nil
}

// ms is t as the store keeps it: UTC, whole milliseconds (what SQLite's
// Unix milliseconds give back).
func ms(t time.Time) time.Time { return time.UnixMilli(t.UnixMilli()).UTC() }

// utc is a time read back, in UTC (pgx reads timestamptz in local time).
func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func notFound(err error, what string) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return services.Errorf(services.ENOTFOUND, "%s not found.", what)
	}
	return err
}

// isUniqueViolation reports whether err is PostgreSQL's unique_violation
// on the named constraint or index.
func isUniqueViolation(err error, constraint string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505" && pe.ConstraintName == constraint
}

// Package sqlite stores the console's data in SQLite (modernc.org/sqlite, pure
// Go) in WAL mode, with embedded numbered migrations tracked by PRAGMA
// user_version.
package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ava/console/services"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// DB is the SQLite implementation of services.Store.
//
// It holds two pools on the one file, sized for WAL: db, the writer, has
// one connection (SQLite lets one writer in at a time: in-process writers
// queue for it instead of meeting SQLITE_BUSY), and read, the readers,
// has a few (WAL readers never block each other nor the writer). Every
// connection is opened once and kept: a new one parses the whole schema
// again, which under load cost more than the queries themselves. Reads go
// through statements prepared once per connection (stmt).
type DB struct {
	db   *sql.DB
	read *sql.DB
	// stmts are the prepared read statements, by SQL text.
	stmts sync.Map
	// writes counts the statements that change the database (Writes);
	// opened, the connections opened (ConnectionsOpened).
	writes atomic.Uint64
	opened atomic.Uint64
}

// readConns is the size of the reader pool: enough to keep every core busy
// with reads while one waits; more would only hold memory.
const readConns = 4

var _ services.Store = (*DB)(nil)

// Open opens (creating when needed) the database file at path, its folder
// included, and brings its schema up to date.
func Open(ctx context.Context, path string) (*DB, error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create database folder: %w", err)
		}
	}
	db := &DB{}
	pool := func(readOnly bool, conns int) (*sql.DB, error) {
		q := url.Values{}
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "busy_timeout(5000)")
		q.Add("_pragma", "foreign_keys(1)")
		q.Add("_pragma", "synchronous(NORMAL)")
		if readOnly {
			q.Add("_pragma", "query_only(1)")
		} else {
			q.Set("_txlock", "immediate")
		}
		p := sql.OpenDB(countingConnector{dsn: "file:" + path + "?" + q.Encode(), opened: &db.opened})
		p.SetMaxOpenConns(conns)
		p.SetMaxIdleConns(conns)
		p.SetConnMaxIdleTime(0)
		p.SetConnMaxLifetime(0)
		return p, nil
	}
	writer, err := pool(false, 1)
	if err != nil {
		return nil, err
	}
	db.db = writer
	// The writer migrates (and so creates the file, in WAL mode) before
	// any reader opens it.
	if err := db.migrate(ctx); err != nil {
		_ = writer.Close()
		return nil, err
	}
	if db.read, err = pool(true, readConns); err != nil {
		_ = writer.Close()
		return nil, err
	}
	return db, nil
}

// Ping reports whether the database answers, to readers and the writer.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.read.PingContext(ctx); err != nil {
		return err
	}
	return db.db.PingContext(ctx)
}

// Close closes the database.
func (db *DB) Close() error {
	db.stmts.Range(func(_, v any) bool {
		_ = v.(*sql.Stmt).Close()
		return true
	})
	return errors.Join(db.read.Close(), db.db.Close())
}

// Writes returns how many statements that change the database (INSERT,
// UPDATE, DELETE) this store has run since it was opened, migrations aside:
// the console exposes it as ava_db_writes_total.
func (db *DB) Writes() uint64 { return db.writes.Load() }

// ConnectionsOpened returns how many connections to the file this store
// has opened (ava_db_connections_opened_total): a handful at start, then
// none while its pools keep them.
func (db *DB) ConnectionsOpened() uint64 { return db.opened.Load() }

// countingConnector opens connections as sql.Open("sqlite", dsn) does,
// counting them.
type countingConnector struct {
	dsn    string
	opened *atomic.Uint64
}

// sqliteDriver is the driver modernc.org/sqlite registers.
var sqliteDriver = func() driver.Driver {
	db, err := sql.Open("sqlite", "")
	if err != nil {
		panic(err) // registered by the import above: cannot fail
	}
	defer func() { _ = db.Close() }()
	return db.Driver()
}()

func (c countingConnector) Connect(context.Context) (driver.Conn, error) {
	conn, err := sqliteDriver.Open(c.dsn)
	if err == nil {
		c.opened.Add(1)
	}
	return conn, err
}

func (c countingConnector) Driver() driver.Driver { return sqliteDriver }

// Pools returns the connection pools by name, for their metrics.
func (db *DB) Pools() map[string]*sql.DB {
	return map[string]*sql.DB{"sqlite_write": db.db, "sqlite_read": db.read}
}

// exec runs a statement that changes the database, on the writer.
func (db *DB) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	db.writes.Add(1)
	return db.db.ExecContext(ctx, query, args...)
}

// execTx runs a statement that changes the database within tx.
func (db *DB) execTx(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	db.writes.Add(1)
	return tx.ExecContext(ctx, query, args...)
}

// stmt returns the read statement of that SQL text, prepared on the reader
// pool (database/sql prepares it once on each connection it runs on).
func (db *DB) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if s, ok := db.stmts.Load(query); ok {
		return s.(*sql.Stmt), nil
	}
	s, err := db.read.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if prev, loaded := db.stmts.LoadOrStore(query, s); loaded {
		_ = s.Close()
		return prev.(*sql.Stmt), nil
	}
	return s, nil
}

// row is what a one-row query returns: *sql.Row, or the error of preparing it.
type row interface{ Scan(dest ...any) error }

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// queryRow runs a read that returns at most one row, on a reader.
func (db *DB) queryRow(ctx context.Context, query string, args ...any) row {
	s, err := db.stmt(ctx, query)
	if err != nil {
		return errRow{err}
	}
	return s.QueryRowContext(ctx, args...)
}

// query runs a read, on a reader.
func (db *DB) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	s, err := db.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return s.QueryContext(ctx, args...)
}

// migrate applies, in order and each in its own transaction, the embedded
// migrations numbered above the database's user_version. Each transaction
// holds the write lock from its start (_txlock=immediate) and reads the
// version again under it, so processes opening one new file at the same
// moment apply each migration once.
func (db *DB) migrate(ctx context.Context) error {
	names, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	var current int
	if err := db.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&current); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	for _, name := range names {
		n, err := strconv.Atoi(strings.SplitN(filepath.Base(name), "_", 2)[0])
		if err != nil {
			return fmt.Errorf("migration %s: name must start with its number", name)
		}
		if n <= current {
			continue
		}
		body, err := migrationFS.ReadFile(name)
		if err != nil {
			return err
		}
		tx, err := db.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&current); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("read schema version: %w", err)
		}
		if n <= current {
			_ = tx.Rollback() // another process applied it meanwhile
			continue
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("migration %s: %w", name, err)
		}
		// PRAGMA takes no bind parameters; n is a parsed integer.
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", n)); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("migration %s: %w", name, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migration %s: %w", name, err)
		}
		current = n
	}
	return nil
}

func millis(t time.Time) int64 { return t.UTC().UnixMilli() }

func fromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

func fromNullMillis(ms sql.NullInt64) *time.Time {
	if !ms.Valid {
		return nil
	}
	t := fromMillis(ms.Int64)
	return &t
}

func notFound(err error, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return services.Errorf(services.ENOTFOUND, "%s not found.", what)
	}
	return err
}

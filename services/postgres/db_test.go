package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ava/console/services"
	"github.com/ava/console/services/postgres"
	"github.com/ava/console/services/storetest"
)

// testURL is the PostgreSQL the tests use: POSTGRES_TEST_URL, by default
// the machine's (127.0.0.1:5432, database test, user postgres). It runs on
// every development and CI machine of this project: its absence is a
// failure, not a skip.
func testURL() string {
	if u := os.Getenv("POSTGRES_TEST_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

var (
	adminOnce sync.Once
	admin     *pgxpool.Pool
	adminErr  error
)

// adminPool is one pool for the whole package, to create and drop schemas.
func adminPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	adminOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if admin, adminErr = pgxpool.New(ctx, testURL()); adminErr == nil {
			adminErr = admin.Ping(ctx)
		}
	})
	if adminErr != nil {
		t.Fatalf("PostgreSQL at %s does not answer (set POSTGRES_TEST_URL, see README): %v", redacted(testURL()), adminErr)
	}
	return admin
}

func redacted(dsn string) string {
	if u, err := url.Parse(dsn); err == nil {
		return u.Redacted()
	}
	return "(unreadable URL)"
}

// freshSchema creates an empty schema for one test, dropped when it ends,
// and returns the URL of the test database with search_path set to it (pgx
// sends unknown URL parameters as run-time parameters of each connection).
func freshSchema(t *testing.T) (schema, dsn string) {
	t.Helper()
	pool := adminPool(t)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema = "ava_test_" + hex.EncodeToString(b)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := pool.Exec(context.Background(), "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(testURL())
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return schema, u.String()
}

// TestStore runs the shared store suite on PostgreSQL: each test in a
// schema of its own.
func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		_, dsn := freshSchema(t)
		return func() (services.Store, error) { return postgres.Open(context.Background(), dsn) }
	})
}

// TestMigrationsOnceUnderTheLock: instances starting at the same moment on
// one empty schema all open it, and schema_migrations lists each migration
// once, with the name of its file.
func TestMigrationsOnceUnderTheLock(t *testing.T) {
	t.Parallel()
	schema, dsn := freshSchema(t)
	const n = 6
	var wg sync.WaitGroup
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			db, err := postgres.Open(context.Background(), dsn)
			if err == nil {
				err = db.Close()
			}
			errs[i] = err
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("open %d of %d: %v", i+1, n, err)
		}
	}
	files, err := os.ReadDir("migrations")
	if err != nil {
		t.Fatal(err)
	}
	rows, err := adminPool(t).Query(context.Background(),
		"SELECT version, name FROM "+pgx.Identifier{schema, "schema_migrations"}.Sanitize()+" ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	type applied struct {
		Version int
		Name    string
	}
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[applied])
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(files) {
		t.Fatalf("schema_migrations lists %d migrations, the folder holds %d: %+v", len(got), len(files), got)
	}
	for i, f := range files {
		if got[i].Name != f.Name() || got[i].Version != i+1 {
			t.Errorf("migration %d: %+v, want version %d from %s", i, got[i], i+1, f.Name())
		}
	}
}

// TestMigrationsMirrorSQLite: every SQLite migration has its PostgreSQL
// twin under the same number and name, so both stores are at the same
// version of the schema.
func TestMigrationsMirrorSQLite(t *testing.T) {
	names := func(dir string) []string {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".sql") {
				out = append(out, e.Name())
			}
		}
		return out
	}
	pg, lite := names("migrations"), names("../sqlite/migrations")
	if strings.Join(pg, " ") != strings.Join(lite, " ") {
		t.Fatalf("PostgreSQL migrations %v, SQLite migrations %v: each needs its twin", pg, lite)
	}
}

// TestPoolSizes: the pool is sized on purpose, and DATABASE_URL may say
// otherwise; a password never shows in an error.
func TestPoolSizes(t *testing.T) {
	cfg, err := postgres.ParseURL("postgres://ava:hunter2@db.internal:5432/ava?sslmode=require")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MaxConns != 10 || cfg.MaxConnIdleTime != 5*time.Minute || cfg.ConnConfig.Host != "db.internal" || cfg.ConnConfig.Database != "ava" {
		t.Fatalf("defaults: max %d idle %s host %s db %s", cfg.MaxConns, cfg.MaxConnIdleTime, cfg.ConnConfig.Host, cfg.ConnConfig.Database)
	}
	cfg, err = postgres.ParseURL("postgresql://ava@db/ava?pool_max_conns=25&pool_max_conn_idle_time=1m")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MaxConns != 25 || cfg.MaxConnIdleTime != time.Minute {
		t.Fatalf("from the URL: max %d idle %s", cfg.MaxConns, cfg.MaxConnIdleTime)
	}
	for _, bad := range []string{
		"mysql://ava:hunter2@db/ava",
		"postgres://ava:hunter2@db:port/ava",
		"postgres://ava:hunter2@db/ava?sslmode=sometimes",
		"postgres://ava:hunter2@db/ava?pool_max_conns=many",
	} {
		_, err := postgres.ParseURL(bad)
		if err == nil {
			t.Errorf("%s accepted", bad)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("the error shows the password: %v", err)
		}
	}
}

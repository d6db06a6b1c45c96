package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/ava/console/services"
	"github.com/ava/console/services/sqlite"
	"github.com/ava/console/services/storetest"
)

// TestStore runs the shared store suite on SQLite: each test its own
// database file (in a folder Open must create).
func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		path := filepath.Join(t.TempDir(), "nested", "ava.db")
		return func() (services.Store, error) { return sqlite.Open(context.Background(), path) }
	})
}

// open opens the SQLite database at path, failing the test on error.
func open(t *testing.T, path string) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

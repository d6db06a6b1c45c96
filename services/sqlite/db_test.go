package sqlite_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ava/console/services"
	"github.com/ava/console/services/sqlite"
)

func open(t *testing.T, path string) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func TestDataSurvivesARestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "nested", "ava.db")
	db := open(t, path)
	u, err := db.CreateUser(ctx, "a@example.com", "hash", true)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := db.CreateToken(ctx, services.APIToken{UserID: u.ID, Name: "ci", Hash: "h1", Last4: "abcd", CreatedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = open(t, path) // migrations run again and must be a no-op
	defer func() { _ = db.Close() }()
	got, hash, err := db.UserByEmail(ctx, "A@Example.com")
	if err != nil || got.ID != u.ID || hash != "hash" {
		t.Fatalf("user after restart: %+v %q %v", got, hash, err)
	}
	gt, err := db.TokenByHash(ctx, "h1")
	if err != nil || gt.ID != tok.ID || gt.Name != "ci" || gt.Revoked() {
		t.Fatalf("token after restart: %+v %v", gt, err)
	}
}

func TestFirstOwnerOnlyOnce(t *testing.T) {
	ctx := context.Background()
	db := open(t, filepath.Join(t.TempDir(), "ava.db"))
	defer func() { _ = db.Close() }()

	// Two setups racing: exactly one wins.
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = db.CreateUser(ctx, []string{"x@example.com", "y@example.com"}[i], "h", true)
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch services.ErrorCode(err) {
		case "":
			ok++
		case services.ECONFLICT:
		default:
			t.Fatalf("unexpected error: %v", err)
		}
	}
	if n, _ := db.CountUsers(ctx); ok != 1 || n != 1 {
		t.Fatalf("%d setups succeeded, %d users exist; want 1 and 1", ok, n)
	}
	// Later owners come from the command line (onlyFirst off), emails stay unique.
	if _, err := db.CreateUser(ctx, "z@example.com", "h", false); err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateUser(ctx, "Z@example.com", "h", false); services.ErrorCode(err) != services.ECONFLICT {
		t.Fatalf("duplicate email (other case): %v", err)
	}
}

func TestSessionsExpire(t *testing.T) {
	ctx := context.Background()
	db := open(t, filepath.Join(t.TempDir(), "ava.db"))
	defer func() { _ = db.Close() }()
	u, _ := db.CreateUser(ctx, "a@example.com", "h", true)
	now := time.Now()
	for _, s := range []services.Session{
		{TokenHash: "live", UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(time.Hour)},
		{TokenHash: "dead", UserID: u.ID, CreatedAt: now.Add(-2 * time.Hour), ExpiresAt: now.Add(-time.Hour)},
	} {
		if err := db.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.SessionByHash(ctx, "live", now); err != nil {
		t.Fatal(err)
	}
	if _, err := db.SessionByHash(ctx, "dead", now); services.ErrorCode(err) != services.ENOTFOUND {
		t.Fatalf("expired session: %v", err)
	}
	if n, err := db.DeleteExpiredSessions(ctx, now); err != nil || n != 1 {
		t.Fatalf("deleted %d, %v; want 1", n, err)
	}
	if err := db.DeleteSession(ctx, "live"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.SessionByHash(ctx, "live", now); services.ErrorCode(err) != services.ENOTFOUND {
		t.Fatalf("deleted session: %v", err)
	}
}

func TestRevokeOnlyOwnTokens(t *testing.T) {
	ctx := context.Background()
	db := open(t, filepath.Join(t.TempDir(), "ava.db"))
	defer func() { _ = db.Close() }()
	a, _ := db.CreateUser(ctx, "a@example.com", "h", false)
	b, _ := db.CreateUser(ctx, "b@example.com", "h", false)
	tok, _ := db.CreateToken(ctx, services.APIToken{UserID: a.ID, Name: "a's", Hash: "ha", Last4: "1234", CreatedAt: time.Now()})

	if _, err := db.RevokeToken(ctx, b.ID, tok.ID, time.Now()); services.ErrorCode(err) != services.ENOTFOUND {
		t.Fatalf("b revoked a's token: %v", err)
	}
	first := time.Now().Add(-time.Minute)
	got, err := db.RevokeToken(ctx, a.ID, tok.ID, first)
	if err != nil || !got.Revoked() {
		t.Fatalf("revoke: %+v %v", got, err)
	}
	again, _ := db.RevokeToken(ctx, a.ID, tok.ID, time.Now())
	if !again.RevokedAt.Equal(*got.RevokedAt) {
		t.Fatalf("second revoke moved the time from %v to %v", got.RevokedAt, again.RevokedAt)
	}
	list, _ := db.ListTokens(ctx, b.ID)
	if len(list) != 0 {
		t.Fatalf("b sees %d tokens", len(list))
	}
}

package account_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ava/console/services"
	"github.com/ava/console/services/account"
	"github.com/ava/console/services/cache"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// A token in constant use has its last use written once every
// TouchInterval, not on every request; "Last used" stays exact to that.
func TestTokenUseIsWrittenOnceAnInterval(t *testing.T) {
	ctx := context.Background()
	s, db := newService(t)
	clk := &clock{now: time.Now().UTC().Truncate(time.Millisecond)}
	account.SetClock(s, clk.Now)
	u, _ := s.CreateOwner(ctx, "o@example.com", "correct horse battery", true)
	plain, _, err := s.CreateToken(ctx, u.ID, "deploy")
	if err != nil {
		t.Fatal(err)
	}
	lastUsed := func() time.Time {
		t.Helper()
		list, err := s.Tokens(ctx, u.ID)
		if err != nil || len(list) != 1 || list[0].LastUsedAt == nil {
			t.Fatalf("tokens %+v %v", list, err)
		}
		return *list[0].LastUsedAt
	}
	use := func(advance time.Duration) uint64 {
		t.Helper()
		clk.advance(advance)
		before := db.Writes()
		if _, err := s.TokenUser(ctx, plain); err != nil {
			t.Fatal(err)
		}
		return db.Writes() - before
	}
	if n := use(0); n != 1 || !lastUsed().Equal(clk.Now()) {
		t.Fatalf("first use: %d writes, last used %v, want 1 at %v", n, lastUsed(), clk.Now())
	}
	first := clk.Now()
	// Within the interval, also after the cached token is read again.
	for _, d := range []time.Duration{time.Second, cache.Staleness, account.TouchInterval / 2} {
		if n := use(d); n != 0 {
			t.Errorf("use %s later: %d writes", d, n)
		}
	}
	if !lastUsed().Equal(first) {
		t.Errorf("last used moved to %v within the interval", lastUsed())
	}
	if n := use(account.TouchInterval / 2); n != 1 || !lastUsed().Equal(clk.Now()) {
		t.Errorf("use an interval after the first: %d writes, last used %v, want 1 at %v", n, lastUsed(), clk.Now())
	}
}

// A session kept in memory still ends when it expires, and at once when
// its browser signs out.
func TestCachedSessionsEnd(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t)
	clk := &clock{now: time.Now()}
	account.SetClock(s, clk.Now)
	u, _ := s.CreateOwner(ctx, "o@example.com", "correct horse battery", true)
	cookie, expires, err := s.StartSession(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SessionUser(ctx, cookie); err != nil {
		t.Fatal(err)
	}
	csrf := s.CSRFToken(cookie)
	if csrf == "" {
		t.Fatal("no CSRF token for a session")
	}
	clk.now = expires.Add(-time.Millisecond)
	if _, err := s.SessionUser(ctx, cookie); err != nil {
		t.Fatalf("just before it expires: %v", err)
	}
	if again := s.CSRFToken(cookie); again != csrf {
		t.Errorf("the CSRF token changed from %q to %q", csrf, again)
	}
	clk.now = expires
	if _, err := s.SessionUser(ctx, cookie); services.ErrorCode(err) != services.EUNAUTHORIZED {
		t.Errorf("once expired: %v", err)
	}

	clk.now = time.Now()
	other, _, _ := s.StartSession(ctx, u.ID)
	if _, err := s.SessionUser(ctx, other); err != nil {
		t.Fatal(err)
	}
	if err := s.EndSession(ctx, other); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SessionUser(ctx, other); services.ErrorCode(err) != services.EUNAUTHORIZED {
		t.Errorf("signed out: %v", err)
	}
}

package handlers_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ava/console/services/cache"
	"github.com/ava/console/services/vapi/vapitest"
)

// fakeClock is a clock a test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// A revoked API token stops working at once on the instance that revoked
// it, and on another instance sharing the database (which keeps what it
// read of a token for cache.Staleness) once that much time has passed.
func TestRevokedTokenStopsOnEveryInstance(t *testing.T) {
	t.Parallel()
	a := newTestApp(t)
	u := a.signedIn()
	b, err := a.restart() // another instance on the same database
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{now: time.Now()}
	b.accounts.SetClock(clock.Now)
	token, id := a.apiToken(u.ID, "ci")
	for name, inst := range map[string]*testApp{"a": a, "b": b} {
		if resp, body := inst.apiGet("/api/v1/me", token); resp.StatusCode != http.StatusOK {
			t.Fatalf("instance %s before revoking: %d %s", name, resp.StatusCode, body)
		}
	}

	if resp, body := a.postForm(fmt.Sprintf("/tokens/%d/revoke", id), nil, "HX-Request", "true"); resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %d %s", resp.StatusCode, body)
	}
	if resp, body := a.apiGet("/api/v1/me", token); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the revoking instance, at once: %d %s, want 401", resp.StatusCode, body)
	}
	clock.Advance(cache.Staleness)
	if resp, body := b.apiGet("/api/v1/me", token); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the other instance, %s later: %d %s, want 401", cache.Staleness, resp.StatusCode, body)
	}
}

// Reading the same settings again and again, through the API and the
// page's fragment, writes nothing to the database once the first read has
// recorded the token's use and the integration's success, and opens no
// database connection: the store's pools keep theirs.
func TestRepeatedReadsWriteNothing(t *testing.T) {
	t.Parallel()
	const envKey, envAssistant = "sk-env-repeated-reads-key", "asst-repeated"
	a := newTestApp(t, withConfig(noLimitOnLists), withVapiEnv(envKey, envAssistant))
	a.vapi.AddKey(envKey)
	a.vapi.PutAssistant(vapitest.DefaultAssistant(envAssistant))
	token := a.apiOwner(true)
	read := func() {
		t.Helper()
		if resp, body := a.apiGet("/api/v1/vapi/settings", token); resp.StatusCode != http.StatusOK {
			t.Fatalf("API: %d %s", resp.StatusCode, body)
		}
		if resp, body := a.get("/fragments/vapi/settings", "HX-Request", "true"); resp.StatusCode != http.StatusOK || !strings.Contains(body, "Greeting") {
			t.Fatalf("fragment: %d %s", resp.StatusCode, body)
		}
	}
	db, ok := a.db.(interface {
		Writes() uint64
		ConnectionsOpened() uint64
	})
	if !ok {
		t.Fatalf("the store %T counts neither its writes nor its connections", a.db)
	}
	read()
	writes, opened := db.Writes(), db.ConnectionsOpened()
	for range 30 {
		read()
	}
	if n := db.Writes() - writes; n != 0 {
		t.Errorf("30 repeated reads wrote %d times", n)
	}
	if n := db.ConnectionsOpened() - opened; n != 0 {
		t.Errorf("30 repeated reads opened %d database connections", n)
	}
	_, metrics := a.get("/metrics")
	for _, want := range []string{
		fmt.Sprintf("ava_db_writes_total %d\n", writes),
		fmt.Sprintf("ava_db_connections_opened_total %d\n", opened),
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("the metrics lack %q", strings.TrimSpace(want))
		}
	}
}

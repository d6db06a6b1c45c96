package integrations_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ava/console/services"
	"github.com/ava/console/services/cache"
	"github.com/ava/console/services/events"
	"github.com/ava/console/services/integrations"
)

// clock is a clock a test moves by hand.
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

func (s *store) registryAt(t *testing.T, clk *clock, all ...integrations.Integration) *integrations.Registry {
	t.Helper()
	r, err := integrations.NewRegistry(s.DB, s.sealer, integrations.Options{Now: clk.Now}, all...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// The outcome of calls is written when it changes, and an unchanged one
// again once HealthRefresh has passed: repeated successful reads write
// nothing. Test connection, asked for by the owner, always writes.
func TestHealthIsWrittenWhenItChanges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	clk := &clock{now: time.Now().UTC().Truncate(time.Millisecond)}
	r := s.registryAt(t, clk, acme().withEnv(acmeValues(acmeSecret)))
	id := s.account(t)
	call := func(err error) {
		t.Helper()
		if got := r.Use(ctx, id, "acme", func(context.Context, integrations.Resolved) error { return err }); !errors.Is(got, err) {
			t.Fatalf("Use returned %v, want %v", got, err)
		}
	}
	down := services.Errorf(services.EUPSTREAM, "Acme is down.")
	steps := []struct {
		name    string
		advance time.Duration
		err     error
		writes  uint64
	}{
		{"first success", 0, nil, 1},
		{"success again", time.Second, nil, 0},
		{"success, half a refresh later", integrations.HealthRefresh / 2, nil, 0},
		{"an error", time.Second, down, 1},
		{"the same error", time.Second, down, 0},
		{"another error", time.Second, services.Errorf(services.EUPSTREAM, "Acme is slow."), 1},
		{"success", time.Second, nil, 1},
		{"success a refresh later", integrations.HealthRefresh, nil, 1},
	}
	for _, st := range steps {
		clk.advance(st.advance)
		before := s.Writes()
		call(st.err)
		if n := s.Writes() - before; n != st.writes {
			t.Errorf("%s: %d writes, want %d", st.name, n, st.writes)
		}
	}
	if h := s.health(t, id, "acme"); h.LastOKAt == nil || !h.LastOKAt.Equal(clk.Now()) || h.LastError != "Acme is slow." {
		t.Errorf("health %+v, want the last success at %v after the error", h, clk.Now())
	}
	before := s.Writes()
	if _, err := r.Test(ctx, id, "acme"); err != nil {
		t.Fatal(err)
	}
	if n := s.Writes() - before; n != 1 {
		t.Errorf("Test connection wrote %d times, want 1", n)
	}
}

// An instance sees credentials saved or removed by another instance within
// cache.Staleness; the instance that saved or removed them at once.
func TestCredentialsChangeOnEveryInstance(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	clk1, clk2 := &clock{now: time.Now()}, &clock{now: time.Now()}
	r1, r2 := s.registryAt(t, clk1, acme()), s.registryAt(t, clk2, acme())
	id := s.account(t)
	source := func(r *integrations.Registry) string { return acmeSource(t, r, id) }
	if source(r1) != "" || source(r2) != "" {
		t.Fatal("configured before connecting")
	}
	if _, err := r1.Connect(ctx, id, "acme", acmeValues(acmeSecret)); err != nil {
		t.Fatal(err)
	}
	if got := source(r1); got != integrations.SourceAccount {
		t.Errorf("the connecting instance, at once: source %q", got)
	}
	clk2.advance(cache.Staleness)
	if got := source(r2); got != integrations.SourceAccount {
		t.Errorf("the other instance, %s later: source %q", cache.Staleness, got)
	}

	if err := r2.Disconnect(ctx, id, "acme"); err != nil {
		t.Fatal(err)
	}
	if got := source(r2); got != "" {
		t.Errorf("the disconnecting instance, at once: source %q", got)
	}
	clk1.advance(cache.Staleness)
	if got := source(r1); got != "" {
		t.Errorf("the other instance, %s later: source %q", cache.Staleness, got)
	}
}

// acmeSource is where r resolves the account's acme credentials from.
func acmeSource(t *testing.T, r *integrations.Registry, id int64) string {
	t.Helper()
	conn, err := r.Resolve(context.Background(), id, "acme")
	if err != nil {
		t.Fatal(err)
	}
	return conn.Source
}

// What Resolve returns is the caller's: changing it changes nothing kept.
func TestResolvedIsACopy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	r := s.registry(t, integrations.StubsOff, acme())
	id := s.account(t)
	if _, err := r.Connect(ctx, id, "acme", acmeValues(acmeSecret)); err != nil {
		t.Fatal(err)
	}
	first, err := r.Resolve(ctx, id, "acme")
	if err != nil {
		t.Fatal(err)
	}
	first.Values["key"], first.Hints["key"] = "changed", "changed"
	again, err := r.Resolve(ctx, id, "acme")
	if err != nil || again.Values["key"] != acmeSecret || again.Hints["key"] == "changed" {
		t.Fatalf("after changing a result: %+v %v", again, err)
	}
}

// linked carries the events of one hub to another, as Redis does between
// instances.
type linked struct {
	mu      sync.Mutex
	deliver []func(events.Event)
}

func (l *linked) Send(_ context.Context, e events.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, d := range l.deliver {
		d(e)
	}
}

func (l *linked) Run(ctx context.Context, deliver func(events.Event), _ func()) {
	l.mu.Lock()
	l.deliver = append(l.deliver, deliver)
	l.mu.Unlock()
	<-ctx.Done()
}

// With events between instances, credentials connected or removed on one
// reach the other at once (it forgets what it cached when it hears), and
// the instances' outcomes of calls do not set each other off: each writes
// its unchanged outcome at most once a HealthRefresh.
func TestEventsInvalidateAcrossInstances(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := newStore(t)
	link := &linked{}
	hubs := make([]*events.Hub, 2)
	regs := make([]*integrations.Registry, 2)
	clk := &clock{now: time.Now().UTC()}
	for i := range hubs {
		h, err := events.New(string(rune('a'+i)), link, nil)
		if err != nil {
			t.Fatal(err)
		}
		hubs[i] = h
		if regs[i], err = integrations.NewRegistry(s.DB, s.sealer, integrations.Options{Now: clk.Now, Events: h}, acme()); err != nil {
			t.Fatal(err)
		}
		h.OnRemote(regs[i].Invalidate)
		go h.Run(ctx)
	}
	for {
		link.mu.Lock()
		n := len(link.deliver)
		link.mu.Unlock()
		if n == 2 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	id := s.account(t)
	source := func(r *integrations.Registry) string { return acmeSource(t, r, id) }
	if source(regs[1]) != "" {
		t.Fatal("configured before connecting")
	}
	if _, err := regs[0].Connect(ctx, id, "acme", acmeValues(acmeSecret)); err != nil {
		t.Fatal(err)
	}
	if got := source(regs[1]); got != integrations.SourceAccount {
		t.Errorf("the other instance, told by the event: source %q, want the account's at once", got)
	}

	ok := func(context.Context, integrations.Resolved) error { return nil }
	for range 3 { // each instance learns the outcome once
		for _, r := range regs {
			if err := r.Use(ctx, id, "acme", ok); err != nil {
				t.Fatal(err)
			}
		}
	}
	before := s.Writes()
	for range 5 {
		for _, r := range regs {
			if err := r.Use(ctx, id, "acme", ok); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n := s.Writes() - before; n != 0 {
		t.Errorf("alternating successful calls on two instances wrote %d times, want none", n)
	}
}

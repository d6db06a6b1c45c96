package events_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/ava/console/services/events"
)

func newHub(t *testing.T, origin string, tr events.Transport) (*events.Hub, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	h, err := events.New(origin, tr, reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h, reg
}

// next waits for the subscription's next event.
func next(t *testing.T, s *events.Subscription) events.Event {
	t.Helper()
	select {
	case e, ok := <-s.Events():
		if !ok {
			t.Fatal("subscription closed, want an event")
		}
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5 s")
	}
	return events.Event{}
}

func none(t *testing.T, s *events.Subscription, within time.Duration) {
	t.Helper()
	select {
	case e, ok := <-s.Events():
		if ok {
			t.Fatalf("got %+v, want no event", e)
		}
		t.Fatal("subscription closed, want it open and quiet")
	case <-time.After(within):
	}
}

func TestEventsReachOnlyTheirAccount(t *testing.T) {
	h, reg := newHub(t, "a", nil)
	one, other := h.Subscribe(1), h.Subscribe(2)
	defer one.Close()
	defer other.Close()

	h.Publish(context.Background(), events.Event{Kind: events.SettingChanged, AccountID: 1, Integration: "vapi", Key: "firstMessage"})
	if e := next(t, one); e.Kind != events.SettingChanged || e.Key != "firstMessage" || e.Origin != "a" {
		t.Errorf("account 1 got %+v", e)
	}
	none(t, other, 100*time.Millisecond)

	// An event for every account (a breaker) reaches both.
	h.Publish(context.Background(), events.Event{Kind: events.BreakerChanged, Upstream: "vapi", State: "open"})
	if e := next(t, one); e.Kind != events.BreakerChanged {
		t.Errorf("account 1 got %+v", e)
	}
	if e := next(t, other); e.Kind != events.BreakerChanged {
		t.Errorf("account 2 got %+v", e)
	}
	if got := published(t, reg, "setting_changed"); got != 1 {
		t.Errorf("ava_events_published_total{kind=setting_changed} = %v, want 1", got)
	}
}

// published reads ava_events_published_total{kind} from reg.
func published(t *testing.T, reg *prometheus.Registry, kind string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if mf.GetName() == "ava_events_published_total" && l.GetName() == "kind" && l.GetValue() == kind {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no ava_events_published_total{kind=%q}", kind)
	return 0
}

func TestSubscriberThatFallsBehindIsLost(t *testing.T) {
	h, _ := newHub(t, "a", nil)
	slow := h.Subscribe(1)
	for range events.SubscriptionBuffer + 1 {
		h.Publish(context.Background(), events.Event{Kind: events.IntegrationChanged, AccountID: 1, Integration: "vapi"})
	}
	n := 0
	for range slow.Events() {
		n++
	}
	if n != events.SubscriptionBuffer || !slow.Lost() {
		t.Errorf("read %d events then the end (lost %v), want %d and lost", n, slow.Lost(), events.SubscriptionBuffer)
	}
}

// A page subscribes a moment after it was served: SubscribeSince returns the
// events of its account (and of every account) that came in between, which
// the page did not see, oldest first; not those older than the page (unless
// the page came from another instance, whose clock may differ by up to
// SinceMargin), another account's, or a page's older than MissWindow.
func TestSubscribeSinceReturnsWhatWasMissed(t *testing.T) {
	h, _ := newHub(t, "a", nil)
	ctx := context.Background()
	served := time.Now()
	if _, missed := h.SubscribeSince(1, served, "a"); len(missed) != 0 {
		t.Errorf("missed %v with no event at all", missed)
	}
	h.Publish(ctx, events.Event{Kind: events.SettingChanged, AccountID: 1, Integration: "vapi", Key: "one"})
	h.Publish(ctx, events.Event{Kind: events.BreakerChanged, Integration: "vapi"})
	h.Publish(ctx, events.Event{Kind: events.SettingChanged, AccountID: 1, Integration: "vapi", Key: "two"})
	h.Publish(ctx, events.Event{Kind: events.SettingChanged, AccountID: 2, Integration: "vapi", Key: "other"})
	afterwards := time.Now().Add(time.Millisecond)
	for _, c := range []struct {
		name    string
		account int64
		since   time.Time
		origin  string
		want    string
	}{
		{"its account's events and every account's, in order", 1, served, "a", "one,breaker,two"},
		{"another account: its own and every account's", 2, served, "a", "breaker,other"},
		{"a page served after them here", 1, afterwards, "a", ""},
		{"a page served just after them by another instance", 1, afterwards, "b", "one,breaker,two"},
		{"a page served by another instance beyond the margin", 1, afterwards.Add(events.SinceMargin), "b", ""},
		{"no time", 1, time.Time{}, "a", ""},
	} {
		s, missed := h.SubscribeSince(c.account, c.since, c.origin)
		var got []string
		for _, e := range missed {
			if e.Kind == events.BreakerChanged {
				got = append(got, "breaker")
			} else {
				got = append(got, e.Key)
			}
		}
		if strings.Join(got, ",") != c.want {
			t.Errorf("%s: missed %q, want %q", c.name, strings.Join(got, ","), c.want)
		}
		s.Close()
	}

	// Only the latest RecentEvents of an account are kept.
	for i := range events.RecentEvents + 5 {
		h.Publish(ctx, events.Event{Kind: events.SettingChanged, AccountID: 3, Integration: "vapi", Key: fmt.Sprint(i)})
	}
	s, missed := h.SubscribeSince(3, served, "a")
	if n := len(missed); n != events.RecentEvents+1 || missed[n-1].Key != fmt.Sprint(events.RecentEvents+4) { // and the breaker's
		t.Errorf("kept %d events, want the latest %d (and the breaker's)", n, events.RecentEvents)
	}
	// The subscription carries what comes next.
	h.Publish(ctx, events.Event{Kind: events.IntegrationChanged, AccountID: 3, Integration: "vapi"})
	if e := next(t, s); e.AccountID != 3 || e.Kind != events.IntegrationChanged {
		t.Errorf("the subscription got %+v", e)
	}
}

func TestCloseEndsSubscriptions(t *testing.T) {
	h, _ := newHub(t, "a", nil)
	s := h.Subscribe(1)
	h.Close()
	if _, ok := <-s.Events(); ok || s.Lost() {
		t.Errorf("after Close: open %v, lost %v; want closed, not lost", ok, s.Lost())
	}
	late := h.Subscribe(1)
	if _, ok := <-late.Events(); ok {
		t.Error("a subscription after Close is open")
	}
	s.Close() // twice is harmless
}

// redisOptions are those of the machine's Redis (REDIS_TEST_URL, default
// redis://127.0.0.1:6379/0; it runs on every development and CI machine of
// this project).
func redisOptions(t *testing.T) *redis.Options {
	t.Helper()
	url := os.Getenv("REDIS_TEST_URL")
	if url == "" {
		url = "redis://127.0.0.1:6379/0"
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	return opts
}

// TestEventsCrossInstancesThroughRedis runs two hubs over the machine's Redis.
func TestEventsCrossInstancesThroughRedis(t *testing.T) {
	opts := redisOptions(t)
	client := redis.NewClient(opts)
	defer func() { _ = client.Close() }()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	channel := "ava-test-" + hex.EncodeToString(b) + ":events"
	log := slog.New(slog.DiscardHandler)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, _ := newHub(t, "a", events.NewRedis(client, channel, log))
	bh, _ := newHub(t, "b", events.NewRedis(client, channel, log))
	var invalidated []events.Event
	seen := make(chan struct{}, 10)
	bh.OnRemote(func(e events.Event) {
		invalidated = append(invalidated, e)
		seen <- struct{}{}
	})
	go a.Run(ctx)
	go bh.Run(ctx)
	onA, onB := a.Subscribe(7), bh.Subscribe(7)

	// Wait until both are subscribed: publish until B hears one.
	deadline := time.Now().Add(5 * time.Second)
	for {
		a.Publish(ctx, events.Event{Kind: events.IntegrationChanged, AccountID: 7, Integration: "vapi", State: "connected"})
		select {
		case e := <-onB.Events():
			if e.Origin != "a" || e.State != "connected" {
				t.Fatalf("B got %+v", e)
			}
		case <-time.After(100 * time.Millisecond):
			if time.Now().Before(deadline) {
				continue
			}
			t.Fatal("B never heard A's event through Redis")
		}
		break
	}
	<-seen
	if len(invalidated) == 0 || invalidated[0].Integration != "vapi" {
		t.Errorf("B's invalidators saw %+v", invalidated)
	}
	// A delivered its own events once each, locally (never again from Redis).
	for len(onA.Events()) > 0 {
		<-onA.Events()
	}
	a.Publish(ctx, events.Event{Kind: events.SettingChanged, AccountID: 7, Integration: "vapi", Key: "maxDurationSeconds"})
	if e := next(t, onA); e.Key != "maxDurationSeconds" {
		t.Errorf("A got %+v", e)
	}
	none(t, onA, 300*time.Millisecond)
	for {
		if e := next(t, onB); e.Kind == events.SettingChanged {
			break
		}
	}

	// A breaker is each instance's own: B never hears A's.
	a.Publish(ctx, events.Event{Kind: events.BreakerChanged, Upstream: "vapi", State: "open"})
	if e := next(t, onA); e.Kind != events.BreakerChanged {
		t.Errorf("A got %+v", e)
	}
	none(t, onB, 300*time.Millisecond)
}

// TestRedisReconnectResyncs: when the subscription's connection is lost,
// go-redis subscribes again and the hub closes its subscriptions as lost
// (events may have been missed), then delivers again.
func TestRedisReconnectResyncs(t *testing.T) {
	opts := redisOptions(t)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "ava-test-" + hex.EncodeToString(b)
	opts.ClientName = name
	client := redis.NewClient(opts)
	defer func() { _ = client.Close() }()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h, _ := newHub(t, "a", events.NewRedis(client, name+":events", slog.New(slog.DiscardHandler)))
	other, _ := newHub(t, "b", events.NewRedis(client, name+":events", slog.New(slog.DiscardHandler)))
	done := make(chan struct{})
	go func() { h.Run(ctx); close(done) }()
	go other.Run(ctx)
	s := h.Subscribe(3)
	waitHeard(t, other, s)

	// Drop a's subscriber connection (and b's: both are this client's).
	list, err := client.ClientList(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	killed := 0
	for line := range strings.SplitSeq(list, "\n") {
		if strings.Contains(line, "name="+name) && strings.Contains(line, "cmd=subscribe") {
			for field := range strings.FieldsSeq(line) {
				if id, ok := strings.CutPrefix(field, "id="); ok {
					if err := client.Do(ctx, "CLIENT", "KILL", "ID", id).Err(); err == nil {
						killed++
					}
				}
			}
		}
	}
	if killed == 0 {
		t.Fatalf("no subscriber connection of %s found in CLIENT LIST:\n%s", name, list)
	}
	select {
	case _, ok := <-drain(s):
		if ok || !s.Lost() {
			t.Fatalf("after the reconnect: open %v, lost %v; want closed as lost", ok, s.Lost())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the subscription was not resynced within 10 s of losing Redis")
	}
	again := h.Subscribe(3)
	waitHeard(t, other, again)
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

// waitHeard publishes on from until s hears one (both hubs subscribed).
func waitHeard(t *testing.T, from *events.Hub, s *events.Subscription) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		from.Publish(context.Background(), events.Event{Kind: events.IntegrationChanged, AccountID: 3, Integration: "vapi", State: "ok"})
		select {
		case e, ok := <-s.Events():
			if !ok {
				t.Fatal("subscription closed")
			}
			if e.Origin == "b" {
				return
			}
		case <-time.After(100 * time.Millisecond):
			if time.Now().After(deadline) {
				t.Fatal("no event through Redis within 5 s")
			}
		}
	}
}

// drain reads s until it ends and passes its end on.
func drain(s *events.Subscription) <-chan events.Event {
	out := make(chan events.Event)
	go func() {
		for range s.Events() {
		}
		close(out)
	}()
	return out
}

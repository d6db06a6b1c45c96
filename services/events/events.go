// Package events is the console's event hub: services publish what happened
// (a setting changed, an integration connected or started failing, a
// breaker opened, a session ended) and whoever shows it subscribes, by
// account. Nothing here knows HTTP or HTML: the handlers turn events into
// the fragments an open page swaps in.
//
// Events reach the subscribers of the instance that published them at
// once. With Redis (NewRedis), they also reach every other instance
// sharing it, through one pub/sub channel; there, before any subscriber
// sees one, the hub's invalidators run (OnRemote), so that what the
// subscriber reads next (credentials, sessions cached for a few seconds)
// is read again rather than served from this instance's cache.
//
// Delivery is at most once and may be lost (a subscriber that falls
// behind, Redis away for a moment): a subscription that misses events is
// closed (Subscription.Lost), so its reader starts again from what is
// stored, which is the truth; events only say when to look.
package events

import (
	"context"
	"encoding/json"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Kind is what happened.
type Kind string

// The kinds of events.
const (
	// SettingChanged: an integration's setting (Key) was changed through
	// the console and the change added to the account's audit trail.
	SettingChanged Kind = "setting_changed"
	// IntegrationChanged: an account's integration was connected (State
	// "connected"), disconnected ("disconnected"), marked for reconnecting
	// ("needs_reconnect"), or its calls' outcome changed: "failing" (the
	// last call failed) or "ok".
	IntegrationChanged Kind = "integration_changed"
	// BreakerChanged: the breaker of an outside service (Upstream) moved
	// to State ("open", "half-open", "closed"). Breakers are each
	// instance's own, so this event never leaves the instance; it concerns
	// every account whose integration calls that upstream (AccountID 0).
	BreakerChanged Kind = "breaker_changed"
	// SessionEnded: a browser session (Session, the SHA-256 of its cookie
	// value, hex) was signed out; its streams end.
	SessionEnded Kind = "session_ended"
)

// Kinds lists every kind (the metric's label values).
var Kinds = []Kind{SettingChanged, IntegrationChanged, BreakerChanged, SessionEnded}

// Event is one thing that happened, as it travels between instances.
type Event struct {
	Kind Kind `json:"kind"`
	// AccountID is the account it concerns; 0 for every account.
	AccountID   int64  `json:"account_id,omitempty"`
	Integration string `json:"integration,omitempty"`
	Key         string `json:"key,omitempty"`
	Upstream    string `json:"upstream,omitempty"`
	State       string `json:"state,omitempty"`
	Session     string `json:"session,omitempty"`
	// Data is what the publisher adds for those who show the event, in
	// its own JSON (SettingChanged: the setting as it is now).
	Data json.RawMessage `json:"data,omitempty"`
	// Origin is the instance that published it.
	Origin string `json:"origin"`
}

// Local reports whether the event concerns only the instance where it
// happened.
func (e Event) Local() bool { return e.Kind == BreakerChanged }

// Publisher is what services need of the hub. A nil Publisher publishes
// nothing (Publish).
type Publisher interface {
	Publish(ctx context.Context, e Event)
}

// Publish publishes e through p, if there is one.
func Publish(ctx context.Context, p Publisher, e Event) {
	if p != nil {
		p.Publish(ctx, e)
	}
}

// Transport carries events to the other instances (Redis pub/sub).
type Transport interface {
	// Send hands an event to the other instances; an error is logged by
	// the transport, never returned to the publisher.
	Send(ctx context.Context, e Event)
	// Run delivers what the other instances send to deliver, and calls
	// resync when events may have been missed (a reconnect), until ctx
	// ends.
	Run(ctx context.Context, deliver func(Event), resync func())
}

// SubscriptionBuffer is how many events a subscriber may fall behind by
// before its subscription is closed as lost.
const SubscriptionBuffer = 64

// Hub delivers events to this instance's subscribers and, through its
// transport, to the other instances'.
type Hub struct {
	origin    string
	transport Transport
	published *prometheus.CounterVec

	mu     sync.Mutex
	subs   map[int64]map[*Subscription]struct{}
	closed bool
	// recent are the events of each account (0: of every account)
	// delivered here within MissWindow, oldest first, at most RecentEvents
	// of each, for SubscribeSince.
	recent map[int64][]delivered
	swept  time.Time
	now    func() time.Time

	remoteMu sync.RWMutex
	remote   []func(Event)
}

// New returns a hub for this instance (origin names it among the others),
// counting what it publishes in reg (ava_events_published_total{kind}).
// transport is nil for one instance alone.
func New(origin string, transport Transport, reg prometheus.Registerer) (*Hub, error) {
	h := &Hub{
		origin: origin, transport: transport, subs: map[int64]map[*Subscription]struct{}{},
		recent: map[int64][]delivered{}, now: time.Now,
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ava_events_published_total", Help: "Events published by this instance, by kind.",
		}, []string{"kind"}),
	}
	for _, k := range Kinds {
		h.published.WithLabelValues(string(k))
	}
	if reg != nil {
		if err := reg.Register(h.published); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// Run carries the other instances' events to this one until ctx ends
// (nothing to do without a transport).
func (h *Hub) Run(ctx context.Context) {
	if h.transport == nil {
		return
	}
	h.transport.Run(ctx, func(e Event) {
		if e.Origin == h.origin {
			return // our own, delivered already
		}
		h.remoteMu.RLock()
		for _, fn := range h.remote {
			fn(e)
		}
		h.remoteMu.RUnlock()
		h.deliver(e)
	}, h.resync)
}

// OnRemote adds fn to what runs, before any subscriber sees it, for each
// event another instance published: caches drop what the event changed.
func (h *Hub) OnRemote(fn func(Event)) {
	h.remoteMu.Lock()
	defer h.remoteMu.Unlock()
	h.remote = append(h.remote, fn)
}

// Publish delivers e to this instance's subscribers of its account and,
// unless it is Local, to the other instances.
func (h *Hub) Publish(ctx context.Context, e Event) {
	e.Origin = h.origin
	h.published.WithLabelValues(string(e.Kind)).Inc()
	h.deliver(e)
	if h.transport != nil && !e.Local() {
		h.transport.Send(context.WithoutCancel(ctx), e)
	}
}

func (h *Hub) deliver(e Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.keep(e)
	if e.AccountID == 0 {
		for _, subs := range h.subs {
			h.send(subs, e)
		}
		return
	}
	h.send(h.subs[e.AccountID], e)
}

// send hands e to each subscription without waiting; one whose buffer is
// full is lost (closed). Under h.mu.
func (h *Hub) send(subs map[*Subscription]struct{}, e Event) {
	for s := range subs {
		select {
		case s.ch <- e:
		default:
			h.drop(s, true)
		}
	}
}

// resync closes every subscription as lost: events may have been missed.
func (h *Hub) resync() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, subs := range h.subs {
		for s := range subs {
			h.drop(s, true)
		}
	}
}

// MissWindow is how far back SubscribeSince looks: a page asks within a
// moment of being served.
const MissWindow = time.Minute

// SinceMargin is how much earlier than the given time SubscribeSince
// still looks when the page was served by another instance, whose clock
// may differ a little. An event sent again shows what the page shows
// already; one missed leaves it stale.
const SinceMargin = time.Second

// RecentEvents is how many of an account's latest events the hub keeps
// for SubscribeSince.
const RecentEvents = 16

// manyAccounts is when delivery starts forgetting the accounts whose
// latest event is older than MissWindow, at most every sweepEvery.
const (
	manyAccounts = 4096
	sweepEvery   = 5 * time.Second
)

// delivered is an event and when this hub delivered it.
type delivered struct {
	at time.Time
	e  Event
}

// keep remembers e among the recent events of its account. Under h.mu.
func (h *Hub) keep(e Event) {
	now := h.now()
	list := append(h.recent[e.AccountID], delivered{now, e})
	for len(list) > RecentEvents || now.Sub(list[0].at) > MissWindow {
		list = list[1:]
	}
	h.recent[e.AccountID] = list
	if len(h.recent) <= manyAccounts || now.Sub(h.swept) < sweepEvery {
		return
	}
	h.swept = now
	for a, l := range h.recent {
		if now.Sub(l[len(l)-1].at) > MissWindow {
			delete(h.recent, a)
		}
	}
}

// Subscribe returns a subscription to the account's events (and those for
// every account). It is closed at once when the hub is.
func (h *Hub) Subscribe(accountID int64) *Subscription {
	s, _ := h.SubscribeSince(accountID, time.Time{}, "")
	return s
}

// Origin names this instance among the others (what New was given).
func (h *Hub) Origin() string { return h.origin }

// SubscribeSince is Subscribe for a subscriber that shows the account's
// state as it was at since, on the instance named origin (a page served
// then, there): it also returns the events of the account, and of every
// account, that this instance delivered since then (SinceMargin earlier
// when origin is another instance), oldest first, which the subscriber did
// not see. Nothing slips between those and the subscription. Within
// MissWindow and the last RecentEvents of each account only: a zero since
// returns none.
func (h *Hub) SubscribeSince(accountID int64, since time.Time, origin string) (_ *Subscription, missed []Event) {
	s := &Subscription{hub: h, account: accountID, ch: make(chan Event, SubscriptionBuffer)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !since.IsZero() {
		if origin != h.origin {
			since = since.Add(-SinceMargin)
		}
		if oldest := h.now().Add(-MissWindow); since.Before(oldest) {
			since = oldest
		}
		missed = h.since(accountID, since)
	}
	if h.closed {
		close(s.ch)
		return s, missed
	}
	if h.subs[accountID] == nil {
		h.subs[accountID] = map[*Subscription]struct{}{}
	}
	h.subs[accountID][s] = struct{}{}
	return s, missed
}

// since are the recent events of the account and of every account
// delivered at from or later, in the order delivered. Under h.mu.
func (h *Hub) since(accountID int64, from time.Time) []Event {
	accounts := []int64{accountID}
	if accountID != 0 {
		accounts = append(accounts, 0)
	}
	var out []delivered
	for _, a := range accounts {
		for _, d := range h.recent[a] {
			if !d.at.Before(from) {
				out = append(out, d)
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].at.Before(out[j].at) })
	events := make([]Event, len(out))
	for i, d := range out {
		events[i] = d.e
	}
	return events
}

// Close closes every subscription and refuses new ones: the server is
// stopping, and whoever streams events ends its stream.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for _, subs := range h.subs {
		for s := range subs {
			h.drop(s, false)
		}
	}
}

// drop removes s and closes its channel. Under h.mu.
func (h *Hub) drop(s *Subscription, lost bool) {
	subs := h.subs[s.account]
	if _, ok := subs[s]; !ok {
		return
	}
	delete(subs, s)
	if len(subs) == 0 {
		delete(h.subs, s.account)
	}
	s.lost.Store(lost)
	close(s.ch)
}

// Subscription is one subscriber's events.
type Subscription struct {
	hub     *Hub
	account int64
	ch      chan Event
	lost    atomic.Bool
}

// Events is the channel of events, closed when the subscription ends.
func (s *Subscription) Events() <-chan Event { return s.ch }

// Lost reports, once Events is closed, whether the subscription ended
// because events were missed (rather than Close or the hub closing).
func (s *Subscription) Lost() bool { return s.lost.Load() }

// Close ends the subscription.
func (s *Subscription) Close() {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	s.hub.drop(s, false)
}

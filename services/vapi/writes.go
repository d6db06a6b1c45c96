package vapi

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/ava/console/services"
	"github.com/ava/console/services/integrations"
	"github.com/ava/console/services/upstream"
)

// writeLocks serialise the writes to one assistant (by base URL and
// assistant id), so that the order of PATCHes is the order of the audit
// trail and each change's "from" is read after the previous change landed.
// They hold within this instance only: several instances writing to one
// assistant would need the lock in the shared database or Redis.
type writeLocks struct {
	mu sync.Mutex
	m  map[string]*writeLock
}

type writeLock struct {
	token chan struct{} // holds one value while someone writes
	refs  int           // holders and waiters; the entry goes at zero
}

// lock waits until no one else writes to key, at most wait (and no longer
// than ctx lets it); it returns the function that lets the next one in.
func (l *writeLocks) lock(ctx context.Context, key string, wait time.Duration) (func(), error) {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[string]*writeLock{}
	}
	w := l.m[key]
	if w == nil {
		w = &writeLock{token: make(chan struct{}, 1)}
		l.m[key] = w
	}
	w.refs++
	l.mu.Unlock()
	leave := func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if w.refs--; w.refs == 0 {
			delete(l.m, key)
		}
	}
	var timeout <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case w.token <- struct{}{}:
		return func() { <-w.token; leave() }, nil
	case <-ctx.Done():
		leave()
		return nil, ctx.Err()
	case <-timeout:
		leave()
		return nil, integrations.NoCall(&services.Error{Code: services.ETIMEOUT,
			Message: "Another change to this Vapi assistant is still waiting for Vapi's answer. Try again in a moment."})
	}
}

// pendingKey names a change whose outcome is unknown: one setting of one
// assistant, for one account.
type pendingKey struct {
	accountID int64
	assistant string // writeLocks' key
	key       string
}

// unknownOutcome reports whether a failed PATCH may have been applied: it
// left (no open breaker refused it) and no answer says what Vapi did (a
// timeout, a dropped connection, an unreadable answer).
func unknownOutcome(err error) bool {
	var api *APIError
	var open *upstream.OpenError
	return err != nil && !errors.As(err, &api) && !errors.As(err, &open)
}

// readBackTimeout bounds the read that follows a PATCH of unknown outcome:
// short, so that a failed save stays well under twice UPSTREAM_TIMEOUT.
func (i *Integration) readBackTimeout() time.Duration {
	if i.timeout <= 0 {
		return 3 * time.Second
	}
	return min(i.timeout/2, 3*time.Second)
}

// readBack reads the assistant once after a PATCH of unknown outcome, even
// if the caller has gone (what Vapi did is worth recording), within
// readBackTimeout.
func (s *Service) readBack(ctx context.Context, c *Client, apiKey, assistantID string) (*Assistant, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.vapi.readBackTimeout())
	defer cancel()
	return c.GetAssistant(ctx, apiKey, assistantID)
}

// remember keeps the value a setting had before a change whose outcome is
// unknown, so that a retry finding the new value already at Vapi can
// record the change from it.
func (s *Service) remember(k pendingKey, before string) {
	s.pendingMu.Lock()
	defer s.pendingMu.Unlock()
	if s.pending == nil {
		s.pending = map[pendingKey]string{}
	}
	s.pending[k] = before
}

func (s *Service) forget(k pendingKey) (before string, ok bool) {
	s.pendingMu.Lock()
	defer s.pendingMu.Unlock()
	before, ok = s.pending[k]
	delete(s.pending, k)
	return before, ok
}

// unrecorded decides, when a setting already has the value asked for,
// whether the trail lacks the change that put it there (its answer was
// lost): the newest row for the setting does not end at this value. It
// returns the value the missing change started from: the newest row's
// "to" (the trail keeps chaining), or, for a setting the trail has never
// seen, the value remembered before the lost change. ok is false when
// there is nothing to record.
func (s *Service) unrecorded(ctx context.Context, k pendingKey, now string) (from string, ok bool, err error) {
	remembered, pending := s.forget(k)
	newest, found, err := s.audit.LatestSettingChange(ctx, k.accountID, Name, k.key)
	switch {
	case err != nil:
		if pending {
			s.remember(k, remembered)
		}
		return "", false, err
	case found && newest.NewValue == now:
		return "", false, nil // recorded already
	case found:
		return newest.NewValue, true, nil
	case pending && remembered != now:
		return remembered, true, nil
	}
	return "", false, nil
}

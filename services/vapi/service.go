package vapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/ava/console/services"
	"github.com/ava/console/services/cache"
	"github.com/ava/console/services/events"
	"github.com/ava/console/services/integrations"
)

// Connections runs calls with an account's credentials and records their
// outcome (the integration registry).
type Connections interface {
	// Resolve returns the account's credentials for the integration,
	// configured or not.
	Resolve(ctx context.Context, accountID int64, name string) (integrations.Resolved, error)
	// Use runs fn with them; ENOTFOUND (not connected) or EFORBIDDEN
	// (stub refused in production) without calling fn when there are none.
	Use(ctx context.Context, accountID int64, name string, fn func(ctx context.Context, conn integrations.Resolved) error) error
}

// AuditStore keeps the trail of setting changes.
type AuditStore interface {
	RecordSettingChange(ctx context.Context, c services.SettingChange) error
	SettingChanges(ctx context.Context, accountID int64, integration string, limit int) ([]services.SettingChange, error)
	// LatestSettingChange returns the newest change of one setting; found
	// is false when there is none.
	LatestSettingChange(ctx context.Context, accountID int64, integration, key string) (c services.SettingChange, found bool, err error)
	// LatestSettingChanges returns the newest change of each setting.
	LatestSettingChanges(ctx context.Context, accountID int64, integration string) ([]services.SettingChange, error)
}

// Service reads and changes an account's Vapi assistant settings.
type Service struct {
	vapi  *Integration
	creds Connections
	audit AuditStore
	reads singleflight.Group
	now   func() time.Time
	// writes serialise the changes to one assistant (this instance only).
	writes writeLocks
	// pending holds, for a change whose answer was lost, the value before it.
	pendingMu sync.Mutex
	pending   map[pendingKey]string
	// changed caches, by account, when each setting was last changed
	// through the console (the trail's newest change of each), for
	// cache.Staleness: a change recorded here drops it at once, one
	// recorded by another instance shows within cache.Staleness.
	changed *cache.Cache[int64, map[string]time.Time]
	// events is told of each change recorded (events.SettingChanged).
	events events.Publisher
}

// PublishTo makes the service tell p of each change it records; s is
// returned.
func (s *Service) PublishTo(p events.Publisher) *Service {
	s.events = p
	return s
}

// Invalidate drops what this instance caches of a change another instance
// recorded (an event it published).
func (s *Service) Invalidate(e events.Event) {
	if e.Kind == events.SettingChanged && e.Integration == Name {
		s.changed.Remove(e.AccountID)
	}
}

// changedCacheSize bounds the cache of the settings' change times.
const changedCacheSize = 10_000

// NewService returns the Vapi settings service.
func NewService(vapi *Integration, creds Connections, audit AuditStore) *Service {
	return &Service{vapi: vapi, creds: creds, audit: audit, now: time.Now,
		changed: cache.New[int64, map[string]time.Time](changedCacheSize, cache.Staleness)}
}

// Connection returns the account's resolved Vapi credentials (masked hints,
// source), whether configured or not.
func (s *Service) Connection(ctx context.Context, accountID int64) (integrations.Resolved, error) {
	return s.creds.Resolve(ctx, accountID, Name)
}

// fetch reads the assistant. No cache: every read reaches Vapi, but
// concurrent reads of the same assistant with the same key share one call.
func (s *Service) fetch(ctx context.Context, conn integrations.Resolved) (*Assistant, error) {
	client, apiKey, assistantID := s.vapi.clientFor(conn), conn.Values[FieldAPIKey], conn.Values[FieldAssistantID]
	sum := sha256.Sum256([]byte(apiKey))
	key := client.baseURL + "/" + assistantID + "/" + hex.EncodeToString(sum[:8])
	v, err, _ := s.reads.Do(key, func() (any, error) {
		// The call serves every caller waiting on it: one of them going
		// away must not cancel it for the others (UPSTREAM_TIMEOUT still
		// bounds it). The context keeps its values: the correlation id.
		return client.GetAssistant(context.WithoutCancel(ctx), apiKey, assistantID)
	})
	if err != nil {
		return nil, s.vapi.translate(err, assistantID)
	}
	a := *v.(*Assistant) // callers may not share one value
	a.Voice = deepCopy(a.Voice)
	return &a, nil
}

// List returns the assistant's settings as they are at Vapi now.
func (s *Service) List(ctx context.Context, accountID int64) ([]Setting, error) {
	var a *Assistant
	err := s.creds.Use(ctx, accountID, Name, func(ctx context.Context, conn integrations.Resolved) error {
		var err error
		a, err = s.fetch(ctx, conn)
		return err
	})
	if err != nil {
		return nil, err
	}
	settings := FromAssistant(a)
	// A setting changed through the console shows when it was changed.
	changed, err := s.changeTimes(ctx, accountID)
	if err != nil {
		return nil, services.Internal(err)
	}
	for i := range settings {
		if at, ok := changed[settings[i].Key]; ok {
			settings[i].UpdatedAt = at
		}
	}
	return settings, nil
}

// changeTimes returns when each setting was last changed through the
// console, by key (shared: read only).
func (s *Service) changeTimes(ctx context.Context, accountID int64) (map[string]time.Time, error) {
	now := s.now()
	if m, ok := s.changed.Get(accountID, now); ok {
		return m, nil
	}
	gen := s.changed.Generation()
	changes, err := s.audit.LatestSettingChanges(ctx, accountID, Name)
	if err != nil {
		return nil, err
	}
	m := make(map[string]time.Time, len(changes))
	for _, c := range changes {
		m[c.Key] = c.ChangedAt
	}
	s.changed.Add(accountID, m, gen, now)
	return m, nil
}

// Update sets one setting. The value is checked against the product's bounds
// before any call to Vapi, then against the assistant's voice provider; only
// the changed field is PATCHed, and the change goes to the audit trail. On
// any failure the assistant is left as it was, and the setting as it was
// before (when it was read) comes back with the error.
//
// Writes to one assistant are serialised: each reads the assistant afresh
// (not the shared read, which may predate the previous write), PATCHes and
// records in turn, so the trail's order is the order of the PATCHes and
// every change starts from the one before. A PATCH whose answer is lost (a
// timeout, a dropped connection) is followed by one short read: if Vapi has
// the new value, the change is recorded and the update succeeds. A retry
// that finds the value already there records the change if the trail lacks
// it, once.
func (s *Service) Update(ctx context.Context, accountID, userID int64, key string, raw json.RawMessage) (Setting, error) {
	value, err := ParseValue(key, raw)
	if err != nil {
		return Setting{}, err
	}
	var before, after Setting
	read, changed := false, false
	var from string // the change's "from", as the trail has it
	var auditErr error
	err = s.creds.Use(ctx, accountID, Name, func(ctx context.Context, conn integrations.Resolved) error {
		client, apiKey, assistantID := s.vapi.clientFor(conn), conn.Values[FieldAPIKey], conn.Values[FieldAssistantID]
		lockKey := client.baseURL + "/assistant/" + assistantID
		unlock, err := s.writes.lock(ctx, lockKey, s.vapi.timeout)
		if err != nil {
			return err
		}
		defer unlock()
		a, err := client.GetAssistant(ctx, apiKey, assistantID)
		if err != nil {
			return s.vapi.translate(err, assistantID)
		}
		before, read = Find(FromAssistant(a), key)
		pk := pendingKey{accountID: accountID, assistant: lockKey, key: key}
		patch, err := Patch(a, key, value)
		switch {
		case err != nil:
			return err // refused: nothing to send
		case patch == nil:
			// Already so. If a change whose answer was lost put it there,
			// the trail lacks it: record it now.
			after = before
			from, changed, auditErr = s.unrecorded(ctx, pk, auditJSON(before.Value))
			if changed {
				auditErr = s.record(ctx, accountID, userID, key, from, &after)
			}
			return nil
		}
		updated, err := client.UpdateAssistant(ctx, apiKey, assistantID, patch)
		if err != nil && unknownOutcome(err) {
			// Vapi may have applied it: ask once what it has now.
			if now, rerr := s.readBack(ctx, client, apiKey, assistantID); rerr == nil {
				if p, perr := Patch(now, key, value); perr == nil && p == nil {
					updated, err = now, nil
				}
			}
			if err != nil {
				s.remember(pk, auditJSON(before.Value))
			}
		}
		if err != nil {
			return s.vapi.translate(err, assistantID)
		}
		s.forget(pk)
		after, _ = Find(FromAssistant(updated), key)
		changed = true
		auditErr = s.record(ctx, accountID, userID, key, auditJSON(before.Value), &after)
		return nil
	})
	if err != nil {
		if !read {
			return Setting{}, err
		}
		return before, err
	}
	if auditErr != nil {
		// Vapi has the new value; failing to record it must not claim otherwise.
		return after, services.Internal(fmt.Errorf("setting saved at Vapi but not recorded: %w", auditErr))
	}
	if !changed {
		return before, nil // nothing to record
	}
	return after, nil
}

// record appends a change of key to after's value to the trail, stamping
// after with its time. It runs under the assistant's write lock.
func (s *Service) record(ctx context.Context, accountID, userID int64, key, from string, after *Setting) error {
	after.UpdatedAt = s.now().UTC()
	// The change happened at Vapi: it is recorded even if the caller left.
	err := s.audit.RecordSettingChange(context.WithoutCancel(ctx), services.SettingChange{
		AccountID: accountID, UserID: userID, Integration: Name, Key: key,
		OldValue: from, NewValue: auditJSON(after.Value), ChangedAt: after.UpdatedAt,
	})
	s.changed.Remove(accountID)
	if err == nil && s.events != nil {
		data, _ := json.Marshal(after)
		events.Publish(ctx, s.events, events.Event{Kind: events.SettingChanged, AccountID: accountID, Integration: Name, Key: key, Data: data})
	}
	return err
}

// Changes returns the latest setting changes, newest first.
func (s *Service) Changes(ctx context.Context, accountID int64, limit int) ([]services.SettingChange, error) {
	c, err := s.audit.SettingChanges(ctx, accountID, Name, limit)
	if err != nil {
		return nil, services.Internal(err)
	}
	return c, nil
}

// auditJSON encodes a value for the audit trail as written, without
// HTML-escaping (pages escape when they show it).
func auditJSON(v any) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return strings.TrimSuffix(b.String(), "\n")
}

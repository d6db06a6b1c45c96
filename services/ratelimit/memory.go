package ratelimit

import (
	"context"
	"sync"
	"time"
)

// sweepEvery is how often Memory forgets the keys whose budget is whole
// again (their TAT is past): what it holds is bounded by the keys seen in
// the last period or so, not by the requests.
const sweepEvery = time.Minute

// Memory keeps the budgets in this process: exact for one instance, per
// instance for several.
type Memory struct {
	mu        sync.Mutex
	tats      map[string]time.Time
	lastSweep time.Time
	now       func() time.Time
}

// NewMemory returns an empty in-memory limiter.
func NewMemory() *Memory {
	return &Memory{tats: map[string]time.Time{}, now: time.Now}
}

// Allow counts one request against key's budget.
func (m *Memory) Allow(_ context.Context, key string, limit Limit) Result {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if now.Sub(m.lastSweep) >= sweepEvery {
		for k, tat := range m.tats {
			if !tat.After(now) {
				delete(m.tats, k)
			}
		}
		m.lastSweep = now
	}
	res, tat := gcra(now, m.tats[key], limit)
	if res.Allowed {
		m.tats[key] = tat
	}
	return res
}

// Len returns how many keys the limiter holds.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.tats)
}

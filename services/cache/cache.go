// Package cache is the console's in-memory cache of what it reads from the
// database on every request (API tokens, sessions, integration
// credentials): bounded in size (least recently used entries go first) and
// in age (an entry older than its time to live is read again).
//
// With several instances sharing one database, an instance sees a change
// made by another (a revoked token, new credentials) at most Staleness
// later. The instance that makes a change drops the entry at once (Remove),
// and a read that began before the change cannot put the old value back:
// Add refuses a value read before any Remove that came after its
// Generation.
package cache

import (
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// Staleness is how long an instance uses what it read before reading it
// again: the bound on how late it sees a change another instance made.
const Staleness = 5 * time.Second

// Cache maps keys to values for at most ttl each, holding at most size of
// them. It is safe for concurrent use.
type Cache[K comparable, V any] struct {
	mu  sync.Mutex
	lru *simplelru.LRU[K, item[V]]
	ttl time.Duration
	// gen counts removals: a value read before one may be stale.
	gen uint64
}

type item[V any] struct {
	v       V
	expires time.Time
}

// New returns an empty cache of at most size entries, each kept ttl.
func New[K comparable, V any](size int, ttl time.Duration) *Cache[K, V] {
	l, err := simplelru.NewLRU[K, item[V]](size, nil)
	if err != nil {
		panic(err) // size <= 0: a programming error
	}
	return &Cache[K, V]{lru: l, ttl: ttl}
}

// Get returns the value of k unless it is missing or older than the ttl at now.
func (c *Cache[K, V]) Get(k K, now time.Time) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	it, ok := c.lru.Get(k)
	if !ok {
		var zero V
		return zero, false
	}
	if !now.Before(it.expires) {
		c.lru.Remove(k)
		var zero V
		return zero, false
	}
	return it.v, true
}

// Generation is the ticket to take before reading a value to cache, and to
// give to Add.
func (c *Cache[K, V]) Generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// Add caches v for k from now on, unless something was removed since gen
// was taken (v may then predate that change: it is not kept).
func (c *Cache[K, V]) Add(k K, v V, gen uint64, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	c.lru.Add(k, item[V]{v: v, expires: now.Add(c.ttl)})
}

// Remove drops k. Values being read meanwhile (of any key) are not cached.
func (c *Cache[K, V]) Remove(k K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.lru.Remove(k)
}

// Len is how many entries the cache holds, expired ones included.
func (c *Cache[K, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// Purge drops every entry.
func (c *Cache[K, V]) Purge() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.lru.Purge()
}

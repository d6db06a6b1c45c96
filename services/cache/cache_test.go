package cache_test

import (
	"testing"
	"time"

	"github.com/ava/console/services/cache"
)

func TestEntriesExpire(t *testing.T) {
	c := cache.New[string, int](10, time.Minute)
	now := time.Now()
	c.Add("a", 1, c.Generation(), now)
	if v, ok := c.Get("a", now.Add(time.Minute-time.Nanosecond)); !ok || v != 1 {
		t.Fatalf("just before its time to live: %v %v", v, ok)
	}
	if _, ok := c.Get("a", now.Add(time.Minute)); ok {
		t.Fatal("kept past its time to live")
	}
	if c.Len() != 0 {
		t.Fatalf("an expired entry read stays held: %d", c.Len())
	}
}

func TestSizeIsBounded(t *testing.T) {
	c := cache.New[int, int](3, time.Minute)
	now := time.Now()
	for i := range 10 {
		c.Add(i, i, c.Generation(), now)
		if i == 1 {
			c.Get(0, now) // 0 is used: 1 is older
		}
	}
	if c.Len() != 3 {
		t.Fatalf("holds %d entries, want at most 3", c.Len())
	}
	for i := range 7 {
		if _, ok := c.Get(i, now); ok {
			t.Errorf("%d kept: the least recently used go first", i)
		}
	}
}

// A value read before a Remove is not cached after it: the remover's
// change would be undone for a whole time to live.
func TestRemoveStopsEarlierReads(t *testing.T) {
	c := cache.New[string, string](10, time.Minute)
	now := time.Now()
	gen := c.Generation() // a reader starts reading "old"
	c.Remove("k")         // meanwhile the value changes and is dropped
	c.Add("k", "old", gen, now)
	if v, ok := c.Get("k", now); ok {
		t.Fatalf("a value read before the removal was cached: %q", v)
	}
	c.Add("k", "new", c.Generation(), now)
	if v, ok := c.Get("k", now); !ok || v != "new" {
		t.Fatalf("a value read after the removal: %q %v", v, ok)
	}
	c.Purge()
	if _, ok := c.Get("k", now); ok || c.Len() != 0 {
		t.Fatal("kept after Purge")
	}
}

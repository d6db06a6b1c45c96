package ratelimit

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/ava/console/services/logtest"
)

// clock is a settable time for the limiters under test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestMemoryBudget(t *testing.T) {
	clk := newClock()
	m := NewMemory()
	m.now = clk.now
	ctx := context.Background()
	limit := PerMinute(10)
	for i := 1; i <= 10; i++ {
		res := m.Allow(ctx, "k", limit)
		if !res.Allowed || res.Remaining != 10-i || res.RetryAfter != 0 || res.ResetAfter != time.Duration(i)*6*time.Second {
			t.Fatalf("request %d: %+v", i, res)
		}
	}
	res := m.Allow(ctx, "k", limit)
	if res.Allowed || res.Remaining != 0 || res.RetryAfter != 6*time.Second || res.ResetAfter != time.Minute {
		t.Fatalf("11th: %+v, want refused, retry in 6s, whole in 1m", res)
	}
	// A refusal costs nothing: still 6 s to wait.
	if res := m.Allow(ctx, "k", limit); res.Allowed || res.RetryAfter != 6*time.Second {
		t.Fatalf("12th: %+v", res)
	}
	// Another key has its own budget.
	if res := m.Allow(ctx, "other", limit); !res.Allowed || res.Remaining != 9 {
		t.Fatalf("other key: %+v", res)
	}
	// One request comes back every Period/Rate.
	clk.advance(6 * time.Second)
	if res := m.Allow(ctx, "k", limit); !res.Allowed || res.Remaining != 0 {
		t.Fatalf("after 6s: %+v", res)
	}
	if res := m.Allow(ctx, "k", limit); res.Allowed {
		t.Fatalf("a second one after 6s: %+v", res)
	}
	// After a whole period the whole budget is back.
	clk.advance(time.Minute)
	if res := m.Allow(ctx, "k", limit); !res.Allowed || res.Remaining != 9 {
		t.Fatalf("after a minute: %+v", res)
	}
}

// TestEmptyBudgetAllowsNothing: a budget of 0 refuses every request (and
// divides nothing by zero), in memory and in Redis alike.
func TestEmptyBudgetAllowsNothing(t *testing.T) {
	log := slog.New(slog.NewJSONHandler(&logtest.Buffer{}, nil))
	for _, l := range []Limiter{NewMemory(), NewRedis(redisClient(t), log)} {
		if res := l.Allow(context.Background(), testKey(), PerMinute(0)); res.Allowed || res.RetryAfter != time.Minute {
			t.Fatalf("%T: %+v, want refused for a minute", l, res)
		}
	}
}

// TestMemoryForgetsIdleKeys: memory holds the keys of the last period, not
// one entry per request or per key ever seen.
func TestMemoryForgetsIdleKeys(t *testing.T) {
	clk := newClock()
	m := NewMemory()
	m.now = clk.now
	ctx := context.Background()
	for i := range 1000 {
		m.Allow(ctx, fmt.Sprintf("ip:%d", i), PerMinute(60))
	}
	if n := m.Len(); n != 1000 {
		t.Fatalf("%d keys held, want 1000", n)
	}
	clk.advance(2 * time.Minute)
	m.Allow(ctx, "fresh", PerMinute(60))
	if n := m.Len(); n != 1 {
		t.Fatalf("%d keys held two minutes later, want 1", n)
	}
}

// redisClient connects to the machine's Redis (REDIS_TEST_URL, default
// redis://127.0.0.1:6379/0). Redis runs on every development and CI
// machine of this project: its absence is a failure.
func redisClient(t *testing.T) *redis.Client {
	t.Helper()
	url := os.Getenv("REDIS_TEST_URL")
	if url == "" {
		url = "redis://127.0.0.1:6379/0"
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	client := redis.NewClient(opts)
	t.Cleanup(func() { _ = client.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		t.Fatalf("Redis at %s does not answer: %v", opts.Addr, err)
	}
	return client
}

// testKey is a key of its own for one test in the shared Redis.
func testKey() string { return "ava-test:" + uuid.NewString() }

// TestRedisIsExactAcrossInstances: two instances (two clients, two
// limiters) counting 40 concurrent requests against one budget of 10 allow
// exactly 10.
func TestRedisIsExactAcrossInstances(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.NewJSONHandler(&logtest.Buffer{}, nil))
	instances := []*Redis{NewRedis(redisClient(t), log), NewRedis(redisClient(t), log)}
	key := testKey()
	var allowed, refused atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 40 {
		wg.Go(func() {
			<-start
			res := instances[i%2].Allow(context.Background(), key, PerMinute(10))
			if res.Allowed {
				allowed.Add(1)
				return
			}
			refused.Add(1)
			if res.RetryAfter <= 0 || res.RetryAfter > 6*time.Second || res.Remaining != 0 {
				t.Errorf("refusal: %+v, want a wait of at most 6s", res)
			}
		})
	}
	close(start)
	wg.Wait()
	if allowed.Load() != 10 || refused.Load() != 30 {
		t.Fatalf("%d allowed, %d refused; want exactly 10 and 30", allowed.Load(), refused.Load())
	}
}

// TestRedisAndMemoryAgree: both implementations give the same figures for
// the same requests (Redis with its own clock, so within a request's time).
func TestRedisAndMemoryAgree(t *testing.T) {
	t.Parallel()
	r := NewRedis(redisClient(t), slog.New(slog.NewJSONHandler(&logtest.Buffer{}, nil)))
	m := NewMemory()
	key := testKey()
	ctx := context.Background()
	for i := 1; i <= 4; i++ {
		got, want := r.Allow(ctx, key, PerMinute(3)), m.Allow(ctx, key, PerMinute(3))
		if got.Allowed != want.Allowed || got.Remaining != want.Remaining ||
			(got.RetryAfter-want.RetryAfter).Abs() > time.Second || (got.ResetAfter-want.ResetAfter).Abs() > time.Second {
			t.Fatalf("request %d: Redis %+v, memory %+v", i, got, want)
		}
	}
}

// switchableRedis is a client whose connections go to addr, which a test
// changes: a closed port (Redis away), then the real Redis.
func switchableRedis(t *testing.T) (*redis.Client, *atomic.Value, string) {
	t.Helper()
	real := redisClient(t).Options().Addr
	var addr atomic.Value
	addr.Store(closedPort(t))
	opts, err := RedisOptions("redis://" + real + "/0")
	if err != nil {
		t.Fatal(err)
	}
	opts.Dialer = func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr.Load().(string))
	}
	client := redis.NewClient(opts)
	t.Cleanup(func() { _ = client.Close() })
	return client, &addr, real
}

// closedPort is an address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// TestRedisAwayFallsBackPerInstance: with Redis unreachable every request
// is still decided (in this instance's memory, the budget per instance),
// the outage is logged once, not per request, and once Redis answers again
// the budgets are shared again, which is logged too.
func TestRedisAwayFallsBackPerInstance(t *testing.T) {
	t.Parallel()
	client, addr, real := switchableRedis(t)
	logs := &logtest.Buffer{}
	clk := newClock()
	r := NewRedis(client, slog.New(slog.NewJSONHandler(logs, nil)))
	r.now = clk.now
	r.local.now = clk.now
	key := testKey()
	ctx := context.Background()

	for i := 1; i <= 5; i++ {
		res := r.Allow(ctx, key, PerMinute(3))
		if want := i <= 3; res.Allowed != want {
			t.Fatalf("request %d with Redis away: %+v, want allowed=%v (the budget held in memory)", i, res, want)
		}
		if !res.Allowed && res.RetryAfter != 20*time.Second {
			t.Fatalf("request %d: retry after %s, want 20s", i, res.RetryAfter)
		}
	}
	// Past retryRedisAfter Redis is tried, and fails, again: no new warning.
	clk.advance(retryRedisAfter)
	if res := r.Allow(ctx, key, PerMinute(3)); res.Allowed {
		t.Fatalf("after %s: %+v, want still refused by the budget in memory", retryRedisAfter, res)
	}
	if n := strings.Count(logs.String(), "rate limits are per instance: Redis does not answer"); n != 1 {
		t.Fatalf("%d warnings for 6 requests within a minute, want 1:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), `"level":"WARN"`) || !strings.Contains(logs.String(), "connection refused") {
		t.Fatalf("the warning lacks its level or cause:\n%s", logs.String())
	}
	clk.advance(time.Minute)
	r.Allow(ctx, key, PerMinute(3))
	if n := strings.Count(logs.String(), "Redis does not answer"); n != 2 {
		t.Fatalf("%d warnings after a minute more of outage, want 2", n)
	}

	// Redis is back: the next request past the rest goes to Redis.
	addr.Store(real)
	clk.advance(retryRedisAfter)
	res := r.Allow(ctx, key, PerMinute(3))
	if !res.Allowed || res.Remaining != 2 {
		t.Fatalf("first request with Redis back: %+v, want a fresh budget in Redis (2 left)", res)
	}
	if !strings.Contains(logs.String(), "rate limits are shared again: Redis answers") {
		t.Fatalf("the end of the outage is not logged:\n%s", logs.String())
	}
	if ttl := client.TTL(ctx, "rate:"+key).Val(); ttl <= 0 {
		t.Fatalf("the budget is not in Redis: TTL %s", ttl)
	}
}

// TestRedisSlowFallsBackInTime: a Redis that accepts connections but never
// answers delays a request by redisTimeout at most.
func TestRedisSlowFallsBackInTime(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { _ = c.Close() }) // hold it open, say nothing
		}
	}()
	opts, err := RedisOptions("redis://" + l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	client := redis.NewClient(opts)
	t.Cleanup(func() { _ = client.Close() })
	r := NewRedis(client, slog.New(slog.NewJSONHandler(&logtest.Buffer{}, nil)))
	start := time.Now()
	res := r.Allow(context.Background(), testKey(), PerMinute(3))
	if took := time.Since(start); took > redisTimeout+2*time.Second {
		t.Fatalf("the request waited %s for a silent Redis", took)
	}
	if !res.Allowed {
		t.Fatalf("%+v, want allowed by the fallback", res)
	}
	// Meanwhile requests do not wait for Redis at all.
	start = time.Now()
	r.Allow(context.Background(), testKey(), PerMinute(3))
	if took := time.Since(start); took > 300*time.Millisecond { // far under redisTimeout: it did not wait
		t.Fatalf("a request during the rest waited %s", took)
	}
}

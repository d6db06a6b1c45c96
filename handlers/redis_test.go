package handlers_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/ava/console/handlers"
	"github.com/ava/console/services/logtest"
	"github.com/ava/console/services/ratelimit"
)

// redisLimiter is a rate limiter over the machine's Redis (REDIS_TEST_URL,
// default redis://127.0.0.1:6379/0), as REDIS_URL makes for the server.
// Redis runs on every development and CI machine of this project: its
// absence is a failure.
func redisLimiter(t *testing.T) *ratelimit.Redis {
	t.Helper()
	opts, err := ratelimit.RedisOptions(redisTestURL())
	if err != nil {
		t.Fatal(err)
	}
	client := redis.NewClient(opts)
	t.Cleanup(func() { _ = client.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		t.Fatalf("Redis at %s does not answer (start it: see README, Operating it): %v", opts.Addr, err)
	}
	return ratelimit.NewRedis(client, slog.New(slog.NewJSONHandler(&logtest.Buffer{}, nil)))
}

// uniquePrefix keeps each test's rate-limit keys apart in the shared Redis.
func uniquePrefix() string { return "ava-test:" + uuid.NewString() + ":" }

// TestRateLimitsSharedAcrossInstancesThroughRedis: two console instances
// with the same REDIS_URL count one budget per route and account.
func TestRateLimitsSharedAcrossInstancesThroughRedis(t *testing.T) {
	t.Parallel()
	prefix := uniquePrefix()
	shared := withConfig(func(c *handlers.Config) {
		c.Limiter, c.LimiterKeyPrefix, c.DefaultLimit = redisLimiter(t), prefix, 3
	})
	first, second := newTestApp(t, shared), newTestApp(t, shared)
	// The same owner on both instances (as with one shared database).
	tokens := make([]string, 2)
	for i, a := range []*testApp{first, second} {
		u, err := a.accounts.CreateOwner(context.Background(), ownerEmail, ownerPassword, true)
		if err != nil {
			t.Fatal(err)
		}
		tokens[i], _ = a.apiToken(u.ID, "instance")
	}
	calls := []struct {
		app   *testApp
		token string
		want  int
	}{
		{first, tokens[0], http.StatusOK},
		{second, tokens[1], http.StatusOK},
		{first, tokens[0], http.StatusOK},
		{second, tokens[1], http.StatusTooManyRequests}, // the fourth call across both
		{first, tokens[0], http.StatusTooManyRequests},
	}
	for i, c := range calls {
		resp, body := c.app.callAPI(apiRequest{path: "/api/v1/me", token: c.token})
		if resp.StatusCode != c.want {
			t.Fatalf("call %d: %d, want %d\n%s", i+1, resp.StatusCode, c.want, body)
		}
		if c.want == http.StatusOK && resp.Header.Get("X-RateLimit-Remaining") != fmt.Sprint(3-(i+1)) {
			t.Errorf("call %d: X-RateLimit-Remaining %q, want %d", i+1, resp.Header.Get("X-RateLimit-Remaining"), 3-(i+1))
		}
	}
}

// tcpProxy forwards connections to addr until Close, which also cuts the
// open ones: Redis going away, as the console sees it.
type tcpProxy struct {
	l     net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newTCPProxy(t *testing.T, addr string) *tcpProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{l: l}
	t.Cleanup(p.Close)
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", addr)
			if err != nil {
				_ = in.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, in, out)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(out, in); _ = out.Close() }()
			go func() { _, _ = io.Copy(in, out); _ = in.Close() }()
		}
	}()
	return p
}

func (p *tcpProxy) Addr() string { return p.l.Addr().String() }

func (p *tcpProxy) Close() {
	_ = p.l.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
}

// TestRedisGoingAwayFallsBackToPerInstanceLimits: the console started with
// REDIS_URL counts in Redis; when Redis goes away it keeps answering, with
// its budgets counted in its own memory (429 with Retry-After past them,
// never a 500), and says so once in its log.
func TestRedisGoingAwayFallsBackToPerInstanceLimits(t *testing.T) {
	t.Parallel()
	redisLimiter(t) // Redis answers
	opts, err := redis.ParseURL(redisTestURL())
	if err != nil {
		t.Fatal(err)
	}
	proxy := newTCPProxy(t, opts.Addr)
	prefix := "ava-test-" + uuid.NewString() + ":"
	a := newTestApp(t,
		withEnv("REDIS_URL", fmt.Sprintf("redis://%s/%d", proxy.Addr(), opts.DB)),
		withEnv("REDIS_KEY_PREFIX", prefix),
		withConfig(func(c *handlers.Config) { c.DefaultLimit = 3 }))
	u, err := a.accounts.CreateOwner(context.Background(), ownerEmail, ownerPassword, true)
	if err != nil {
		t.Fatal(err)
	}
	token, _ := a.apiToken(u.ID, "outage")
	me := func() *http.Response {
		resp, _ := a.callAPI(apiRequest{path: "/api/v1/me", token: token})
		return resp
	}

	// In Redis: its key holds the budget.
	if resp := me(); resp.StatusCode != http.StatusOK || resp.Header.Get("X-RateLimit-Remaining") != "2" {
		t.Fatalf("with Redis: %d %v", resp.StatusCode, resp.Header)
	}
	client := redis.NewClient(opts)
	t.Cleanup(func() { _ = client.Close() })
	key := "rate:" + prefix + "ratelimit:GET /api/v1/me:account:" + fmt.Sprint(u.AccountID)
	if n := client.Exists(context.Background(), key).Val(); n != 1 {
		t.Fatalf("the budget is not in Redis under %q", key)
	}

	proxy.Close()
	for i, want := range []int{http.StatusOK, http.StatusOK, http.StatusOK, http.StatusTooManyRequests} {
		resp := me()
		if resp.StatusCode != want {
			t.Fatalf("call %d with Redis away: %d, want %d", i+1, resp.StatusCode, want)
		}
		if resp.Header.Get("X-RateLimit-Limit") != "3" || resp.Header.Get("X-RateLimit-Remaining") != fmt.Sprint(max(2-i, 0)) {
			t.Errorf("call %d: headers %v", i+1, resp.Header)
		}
		if want == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
			t.Errorf("call %d: a refusal without Retry-After", i+1)
		}
	}
	var warnings int
	for _, rec := range a.logLines() {
		if rec["msg"] == "rate limits are per instance: Redis does not answer" {
			warnings++
			if rec["level"] != "WARN" || rec["error"] == nil {
				t.Errorf("warning: %v", rec)
			}
		}
		if rec["level"] == "ERROR" {
			t.Errorf("an error was logged: %v", rec)
		}
	}
	if warnings != 1 {
		t.Fatalf("%d warnings for the outage, want 1:\n%s", warnings, a.logs.String())
	}
}

// redisTestURL is the machine's Redis: REDIS_TEST_URL, by default
// redis://127.0.0.1:6379/0.
func redisTestURL() string {
	if url := os.Getenv("REDIS_TEST_URL"); url != "" {
		return url
	}
	return "redis://127.0.0.1:6379/0"
}

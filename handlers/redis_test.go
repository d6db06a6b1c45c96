package handlers_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	fiberredis "github.com/gofiber/storage/redis/v3"
	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/ava/console/handlers"
)

// redisStorage connects to the machine's Redis (REDIS_TEST_URL, default
// redis://127.0.0.1:6379/0), as REDIS_URL does for the server. Redis runs on
// every development and CI machine of this project: its absence is a failure.
func redisStorage(t *testing.T) *fiberredis.Storage {
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
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		t.Fatalf("Redis at %s does not answer (start it: see README, Operating it): %v", opts.Addr, err)
	}
	st := fiberredis.NewFromConnection(client)
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// uniquePrefix keeps each test's rate-limit keys apart in the shared Redis.
func uniquePrefix() string { return "ava-test:" + uuid.NewString() + ":" }

// TestRateLimitsSharedAcrossInstancesThroughRedis: two console instances
// with the same REDIS_URL count one budget per route and account.
func TestRateLimitsSharedAcrossInstancesThroughRedis(t *testing.T) {
	t.Parallel()
	storage, prefix := redisStorage(t), uniquePrefix()
	shared := withConfig(func(c *handlers.Config) {
		c.LimiterStorage, c.LimiterKeyPrefix, c.DefaultLimit = storage, prefix, 3
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

package ratelimit

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

// How the Redis limiter behaves when Redis does not answer.
const (
	// redisTimeout bounds each call: a request never waits longer than
	// this for its rate limit.
	redisTimeout = 500 * time.Millisecond
	// retryRedisAfter is how long requests are counted in memory after a
	// failure before Redis is tried again (so an outage does not cost
	// every request a timeout).
	retryRedisAfter = 2 * time.Second
	// warnEvery is the most often the outage is logged.
	warnEvery = time.Minute
)

// Redis keeps the budgets in Redis, shared by every instance using it:
// redis_rate's GCRA script reads and moves a key's TAT in one step on the
// Redis server, with the server's clock, so concurrent requests on any
// instances are counted exactly. Keys are named "rate:" + the key given.
//
// When Redis fails (down, unreachable, slower than redisTimeout), requests
// are counted in a Memory of this instance instead (the budgets hold per
// instance meanwhile), a warning is logged at most once a minute, and
// Redis is tried again after retryRedisAfter. A request is never refused
// or failed because Redis is away.
type Redis struct {
	limiter *redis_rate.Limiter
	local   *Memory
	log     *slog.Logger
	now     func() time.Time

	mu sync.Mutex
	// downUntil: until then requests go to local without trying Redis.
	downUntil time.Time
	// warned is whether the current outage was logged (its end is logged
	// too, then).
	warned   bool
	lastWarn time.Time
	// decidedLocally counts the requests counted in memory since the last
	// warning.
	decidedLocally int
}

// RedisOptions reads a redis:// or rediss:// URL (REDIS_URL) into the
// client options this limiter is meant for: calls end at their context's
// deadline (redisTimeout), and a refused connection fails at once instead
// of being dialled five times.
func RedisOptions(url string) (*redis.Options, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, err
	}
	opts.ContextTimeoutEnabled = true
	opts.DialerRetries = 1
	return opts, nil
}

// quietRedis silences go-redis's own logger, once for the process: it
// prints plain lines on stderr for every failed dial, where this limiter
// logs the outage itself, in the console's format and at most once a
// minute.
var quietRedis sync.Once

type discardRedisLogs struct{}

func (discardRedisLogs) Printf(context.Context, string, ...any) {}

// NewRedis returns a limiter over client that logs its fallbacks to log.
func NewRedis(client redis.UniversalClient, log *slog.Logger) *Redis {
	quietRedis.Do(func() { redis.SetLogger(discardRedisLogs{}) })
	return &Redis{limiter: redis_rate.NewLimiter(client), local: NewMemory(), log: log, now: time.Now}
}

// Allow counts one request against key's budget in Redis, or in memory
// while Redis fails.
func (r *Redis) Allow(ctx context.Context, key string, limit Limit) Result {
	if limit.Rate < 1 {
		return nothingAllowed(limit)
	}
	if r.skipRedis() {
		return r.allowLocally(ctx, key, limit)
	}
	// The caller leaving (a closed connection) is no Redis failure.
	callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), redisTimeout)
	defer cancel()
	res, err := r.limiter.Allow(callCtx, key, redis_rate.Limit{Rate: limit.Rate, Burst: limit.Rate, Period: limit.Period})
	if err != nil {
		r.failed(ctx, err)
		return r.allowLocally(ctx, key, limit)
	}
	r.answered(ctx)
	out := Result{Allowed: res.Allowed > 0, Remaining: res.Remaining, ResetAfter: res.ResetAfter}
	if !out.Allowed {
		out.RetryAfter = res.RetryAfter
	}
	return out
}

func (r *Redis) skipRedis() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.now().Before(r.downUntil)
}

func (r *Redis) allowLocally(ctx context.Context, key string, limit Limit) Result {
	r.mu.Lock()
	r.decidedLocally++
	r.mu.Unlock()
	return r.local.Allow(ctx, key, limit)
}

// failed notes a failed call: Redis rests for retryRedisAfter, and the
// outage is logged unless it was within the last warnEvery.
func (r *Redis) failed(ctx context.Context, err error) {
	r.mu.Lock()
	now := r.now()
	r.downUntil = now.Add(retryRedisAfter)
	// Every outage ends with "shared again", also one that began too soon
	// after the last warning to be warned of again.
	warn := r.lastWarn.IsZero() || now.Sub(r.lastWarn) >= warnEvery
	r.warned = true
	var local int
	if warn {
		r.lastWarn, local, r.decidedLocally = now, r.decidedLocally, 0
	}
	r.mu.Unlock()
	if warn {
		r.log.WarnContext(ctx, "rate limits are per instance: Redis does not answer",
			slog.Any("error", err), slog.Int("requests_counted_locally", local),
			slog.Duration("retry_every", retryRedisAfter))
	}
}

// answered notes a successful call, logging the end of an outage that was
// logged.
func (r *Redis) answered(ctx context.Context) {
	r.mu.Lock()
	was, local := r.warned, r.decidedLocally
	r.warned, r.decidedLocally = false, 0
	r.mu.Unlock()
	if was {
		r.log.InfoContext(ctx, "rate limits are shared again: Redis answers", slog.Int("requests_counted_locally", local))
	}
}

// Package ratelimit counts requests against budgets ("10 a minute") with
// GCRA, the generic cell rate algorithm: each key keeps one time, its
// theoretical arrival time (TAT), and a request is allowed when it does not
// move the TAT more than the budget's burst past now.
//
// Two implementations share the algorithm and its figures: Memory, for one
// instance, and Redis, for several (github.com/go-redis/redis_rate runs the
// same steps in one Lua script, atomic across every instance). Redis falls
// back to a Memory of its own while Redis does not answer.
package ratelimit

import (
	"context"
	"time"
)

// Limit is a budget: Rate requests every Period, all of which may come at
// once (the burst is the rate).
type Limit struct {
	Rate   int
	Period time.Duration
}

// PerMinute is a budget of n requests a minute.
func PerMinute(n int) Limit { return Limit{Rate: n, Period: time.Minute} }

// Result is a budget's standing once a request was counted (or refused).
type Result struct {
	Allowed bool
	// Remaining is how many more requests would be allowed right now.
	Remaining int
	// ResetAfter is how long until the whole budget is available again.
	ResetAfter time.Duration
	// RetryAfter is, for a refused request, how long until one would be
	// allowed; zero when allowed.
	RetryAfter time.Duration
}

// Limiter counts one request against key's budget. It always decides: an
// implementation whose storage fails decides without it (Redis: per
// instance) rather than fail the request.
type Limiter interface {
	Allow(ctx context.Context, key string, limit Limit) Result
}

// gcra decides one request at now for a key whose TAT is tat (zero when
// unknown) and returns the result and the new TAT (unchanged when
// refused). It is redis_rate's script, step for step, in integer
// nanoseconds.
func gcra(now, tat time.Time, limit Limit) (Result, time.Time) {
	if limit.Rate < 1 {
		return nothingAllowed(limit), tat
	}
	emission := limit.Period / time.Duration(limit.Rate)
	burst := emission * time.Duration(limit.Rate)
	if tat.Before(now) {
		tat = now
	}
	newTAT := tat.Add(emission)
	allowAt := newTAT.Add(-burst)
	diff := now.Sub(allowAt)
	if diff < 0 {
		return Result{ResetAfter: tat.Sub(now), RetryAfter: -diff}, tat
	}
	return Result{Allowed: true, Remaining: int(diff / emission), ResetAfter: newTAT.Sub(now)}, newTAT
}

// nothingAllowed is the answer of a budget of no requests at all.
func nothingAllowed(limit Limit) Result {
	return Result{ResetAfter: limit.Period, RetryAfter: limit.Period}
}

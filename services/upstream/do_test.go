package upstream_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ava/console/services/upstream"
	"github.com/ava/console/services/upstream/upstreamtest"
)

const doName = "smtp"

// doRig is a Guards for calls that are not HTTP, counting the calls of fn.
type doRig struct {
	guards *upstream.Guards
	reg    *prometheus.Registry
	calls  atomic.Int64
}

func newDoRig(t *testing.T, s upstream.Settings) *doRig {
	t.Helper()
	reg := prometheus.NewRegistry()
	g, err := upstream.NewGuards(s, slog.New(slog.DiscardHandler), reg)
	if err != nil {
		t.Fatal(err)
	}
	return &doRig{guards: g, reg: reg}
}

func doSettings() upstream.Settings {
	return upstream.Settings{Timeout: 5 * time.Second, FailureThreshold: 3, RecoveryTimeout: time.Minute, SuccessThreshold: 2}
}

func (r *doRig) do(ctx context.Context, fn func(ctx context.Context) error) error {
	return r.guards.Do(ctx, doName, func(ctx context.Context) error {
		r.calls.Add(1)
		return fn(ctx)
	})
}

func (r *doRig) state() string { return r.guards.Breaker(doName).State() }

func (r *doRig) outcomes(t *testing.T, outcome string) float64 {
	t.Helper()
	v, _, err := upstreamtest.Metric(r.reg, "ava_upstream_requests_total", map[string]string{"upstream": doName, "outcome": outcome})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestDoSuccess(t *testing.T) {
	t.Parallel()
	r := newDoRig(t, doSettings())
	var deadline time.Time
	err := r.do(context.Background(), func(ctx context.Context) error {
		deadline, _ = ctx.Deadline()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if left := time.Until(deadline); left <= 4*time.Second || left > 5*time.Second {
		t.Errorf("fn's context ends in %s, want the 5s timeout", left)
	}
	if got := r.outcomes(t, upstream.OutcomeSuccess); got != 1 {
		t.Errorf("success outcomes %v, want 1", got)
	}
	n, found, err := upstreamtest.Metric(r.reg, "ava_upstream_request_duration_seconds", map[string]string{"upstream": doName})
	if err != nil || !found || n != 1 {
		t.Errorf("duration samples %v (found %v, %v), want 1", n, found, err)
	}
	if r.state() != "closed" {
		t.Errorf("breaker %s", r.state())
	}
}

func TestDoNoTimeoutWhenZero(t *testing.T) {
	t.Parallel()
	s := doSettings()
	s.Timeout = 0
	r := newDoRig(t, s)
	err := r.do(context.Background(), func(ctx context.Context) error {
		if _, ok := ctx.Deadline(); ok || ctx.Err() != nil {
			t.Errorf("with no timeout fn's context has a deadline (err %v)", ctx.Err())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

type refusal struct{ code int }

func (e *refusal) Error() string { return "refused" }

func TestDoNeutralErrors(t *testing.T) {
	t.Parallel()
	r := newDoRig(t, doSettings())
	want := &refusal{code: 535}
	for i := range 5 {
		err := r.do(context.Background(), func(context.Context) error { return upstream.Neutral(want) })
		var got *refusal
		//nolint:errorlint // the very error, not one wrapping it
		if !errors.As(err, &got) || got != want || err != error(want) {
			t.Fatalf("call %d: %#v, want the neutral error back unwrapped", i, err)
		}
	}
	if r.state() != "closed" || r.calls.Load() != 5 {
		t.Errorf("after 5 neutral errors: breaker %s, %d calls; want closed, 5", r.state(), r.calls.Load())
	}
	if got := r.outcomes(t, upstream.OutcomeClientError); got != 5 {
		t.Errorf("client_error outcomes %v, want 5", got)
	}
	if upstream.Neutral(nil) != nil {
		t.Error("Neutral(nil) must be nil")
	}
}

func TestDoNeutralErrorsDoNotBreakTheFailureCount(t *testing.T) {
	t.Parallel()
	r := newDoRig(t, doSettings())
	boom := errors.New("connection reset")
	seq := []error{boom, boom, upstream.Neutral(errors.New("550")), boom}
	for _, e := range seq {
		_ = r.do(context.Background(), func(context.Context) error { return e })
	}
	// Neutral neither succeeds (resetting the count) nor fails.
	if r.state() != "open" {
		t.Errorf("breaker %s after fail, fail, neutral, fail; want open", r.state())
	}
}

func TestDoFailuresOpenTheBreaker(t *testing.T) {
	t.Parallel()
	r := newDoRig(t, doSettings())
	boom := errors.New("connection refused")
	for i := range 3 {
		if err := r.do(context.Background(), func(context.Context) error { return boom }); !errors.Is(err, boom) {
			t.Fatalf("call %d: %v, want the error as it is", i, err)
		}
	}
	if r.state() != "open" {
		t.Fatalf("breaker %s after 3 failures, want open", r.state())
	}
	err := r.do(context.Background(), func(context.Context) error {
		t.Error("fn called while the breaker is open")
		return nil
	})
	var open *upstream.OpenError
	if !errors.As(err, &open) || open.Upstream != doName || open.RetryAfter < time.Second {
		t.Fatalf("%v, want *OpenError for %s with a Retry-After", err, doName)
	}
	if r.calls.Load() != 3 {
		t.Errorf("%d calls, want 3", r.calls.Load())
	}
	if got := r.outcomes(t, upstream.OutcomeTransport); got != 3 {
		t.Errorf("network_error outcomes %v, want 3", got)
	}
	if got := r.outcomes(t, upstream.OutcomeRejected); got != 1 {
		t.Errorf("breaker_open outcomes %v, want 1", got)
	}
}

func TestDoTimeoutsCountAsFailures(t *testing.T) {
	t.Parallel()
	s := doSettings()
	s.Timeout = 30 * time.Millisecond
	r := newDoRig(t, s)
	calls := []func(ctx context.Context) error{
		// Waits for the deadline and reports it.
		func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() },
		// A library that only knows its connection's deadline.
		func(ctx context.Context) error { <-ctx.Done(); return os.ErrDeadlineExceeded },
		// Reports something else once the time is up.
		func(ctx context.Context) error { <-ctx.Done(); return errors.New("use of closed network connection") },
	}
	for i, fn := range calls {
		start := time.Now()
		err := r.do(context.Background(), fn)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("call %d: %v, want it to match context.DeadlineExceeded", i, err)
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("call %d took %s", i, took)
		}
	}
	if got := r.outcomes(t, upstream.OutcomeTimeout); got != 3 {
		t.Errorf("timeout outcomes %v, want 3", got)
	}
	if r.state() != "open" {
		t.Errorf("breaker %s after 3 timeouts, want open", r.state())
	}
}

func TestDoCancellationIsNeutral(t *testing.T) {
	t.Parallel()
	r := newDoRig(t, doSettings())
	for i := range 5 {
		ctx, cancel := context.WithCancel(context.Background())
		err := r.do(ctx, func(ctx context.Context) error {
			cancel()
			<-ctx.Done()
			return ctx.Err()
		})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("call %d: %v, want context.Canceled", i, err)
		}
	}
	if r.state() != "closed" {
		t.Errorf("breaker %s after 5 cancellations, want closed", r.state())
	}
	if got := r.outcomes(t, upstream.OutcomeCanceled); got != 5 {
		t.Errorf("canceled outcomes %v, want 5", got)
	}
}

// A call the caller gave up on while fn refused neutrally still hands back
// fn's own error, not an internal wrapper.
func TestDoCanceledNeutralComesBackUnwrapped(t *testing.T) {
	t.Parallel()
	r := newDoRig(t, doSettings())
	want := &refusal{code: 550}
	ctx, cancel := context.WithCancel(context.Background())
	err := r.do(ctx, func(context.Context) error {
		cancel()
		return upstream.Neutral(want)
	})
	if err != error(want) { //nolint:errorlint // the very error, not one wrapping it
		t.Fatalf("%#v, want the refusal itself", err)
	}
	if got := r.outcomes(t, upstream.OutcomeCanceled); got != 1 {
		t.Errorf("canceled outcomes %v, want 1", got)
	}
}

func TestDoRecovers(t *testing.T) {
	t.Parallel()
	s := doSettings()
	s.RecoveryTimeout = 50 * time.Millisecond
	r := newDoRig(t, s)
	for range 3 {
		_ = r.do(context.Background(), func(context.Context) error { return errors.New("down") })
	}
	deadline := time.Now().Add(2 * time.Second)
	for r.state() != "half-open" {
		if time.Now().After(deadline) {
			t.Fatalf("breaker still %s", r.state())
		}
		time.Sleep(5 * time.Millisecond)
	}
	// A neutral probe does not use up the half-open breaker's probes.
	for range 3 {
		_ = r.do(context.Background(), func(context.Context) error { return upstream.Neutral(errors.New("535")) })
	}
	for i := range 2 {
		if err := r.do(context.Background(), func(context.Context) error { return nil }); err != nil {
			t.Fatalf("probe %d: %v", i, err)
		}
	}
	if r.state() != "closed" {
		t.Errorf("breaker %s after 2 successful probes, want closed", r.state())
	}
}

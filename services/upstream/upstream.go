// Package upstream guards every call the console makes to an outside
// service: one circuit breaker per upstream (sony/gobreaker), a timeout, the
// request's correlation id, metrics, and the translation of what went wrong
// into the console's error codes. Every upstream client (Vapi, Twilio,
// Resend, Google) gets its *http.Client from here.
package upstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"

	"github.com/ava/console/services"
)

// Settings configure every breaker and client.
type Settings struct {
	// Timeout bounds each call (UPSTREAM_TIMEOUT).
	Timeout time.Duration
	// FailureThreshold consecutive failures open a breaker.
	FailureThreshold uint32
	// RecoveryTimeout is how long a breaker stays open before it lets probes through.
	RecoveryTimeout time.Duration
	// SuccessThreshold consecutive successful probes close it again.
	SuccessThreshold uint32
}

// Outcomes of an upstream call, as ava_upstream_requests_total labels them.
const (
	OutcomeSuccess     = "success"
	OutcomeClientError = "client_error"  // 4xx about our request: neither success nor failure
	OutcomeRateLimited = "rate_limited"  // 429: neither (one account's key is over its limit)
	OutcomeServerError = "server_error"  // 5xx: failure
	OutcomeTimeout     = "timeout"       // no answer in time: failure
	OutcomeTransport   = "network_error" // connection refused, reset, dropped: failure
	OutcomeCanceled    = "canceled"      // the caller went away: neither
	OutcomeRejected    = "breaker_open"  // not sent: the breaker is open
)

// Guards holds the breakers of all upstreams and the transport they share.
type Guards struct {
	settings Settings
	log      *slog.Logger
	base     *http.Transport

	mu       sync.Mutex
	breakers map[string]*Breaker
	// transitions are told of every breaker's state changes (OnTransition).
	transitions []func(upstream, from, to string)

	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	state    *prometheus.GaugeVec
}

// NewGuards registers the upstream metrics and returns an empty set of breakers.
func NewGuards(s Settings, log *slog.Logger, reg prometheus.Registerer) (*Guards, error) {
	base, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		return nil, errors.New("http.DefaultTransport is not an *http.Transport")
	}
	t := base.Clone()
	t.MaxIdleConnsPerHost = 32
	g := &Guards{
		settings: s, log: log, base: t, breakers: map[string]*Breaker{},
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ava_upstream_requests_total", Help: "Calls to outside services, by upstream and outcome.",
		}, []string{"upstream", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ava_upstream_request_duration_seconds", Help: "Time outside services took to answer, by upstream.",
			Buckets: []float64{.025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"upstream"}),
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ava_circuit_breaker_state", Help: "Circuit breaker state by upstream: 0 closed, 1 half-open, 2 open.",
		}, []string{"upstream"}),
	}
	for _, c := range []prometheus.Collector{g.requests, g.duration, g.state} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// Settings returns the settings the guards were built with.
func (g *Guards) Settings() Settings { return g.settings }

// OnTransition adds fn to what is told of each breaker's state changes
// (upstream as Breaker names it, states as State spells them). fn runs
// while the breaker decides: it must not call the breaker.
func (g *Guards) OnTransition(fn func(upstream, from, to string)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.transitions = append(g.transitions, fn)
}

// Breaker returns the breaker of an upstream ("vapi", "twilio"...), creating it on first use.
func (g *Guards) Breaker(upstream string) *Breaker {
	g.mu.Lock()
	defer g.mu.Unlock()
	if b, ok := g.breakers[upstream]; ok {
		return b
	}
	// "smtp:mail.example.com:587" is one breaker of upstream smtp: one per
	// destination where each account has its own (SMTP servers), counted
	// in the metrics under the upstream. The state gauge is the unkeyed
	// breaker's only: a gauge per destination would grow without bound.
	label, _, keyed := strings.Cut(upstream, ":")
	b := &Breaker{name: upstream, label: label, keyed: keyed, guards: g, timeout: g.settings.RecoveryTimeout}
	//nolint:bodyclose // the breaker passes responses through; the client closes them
	b.cb = gobreaker.NewCircuitBreaker[*http.Response](gobreaker.Settings{
		Name:        upstream,
		MaxRequests: g.settings.SuccessThreshold,
		Interval:    0, // closed: count consecutive failures, never reset on a clock
		Timeout:     g.settings.RecoveryTimeout,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			return c.ConsecutiveFailures >= g.settings.FailureThreshold
		},
		IsExcluded: func(err error) bool {
			var neutral neutralError
			return errors.As(err, &neutral)
		},
		OnStateChange: func(name string, from, to gobreaker.State) {
			if to == gobreaker.StateOpen {
				b.openedAt.Store(time.Now().UnixNano())
				// gobreaker moves to half-open only when asked after the
				// timeout: ask then, so that the move is seen when it
				// happens, not at the next call.
				time.AfterFunc(g.settings.RecoveryTimeout, func() { b.cb.State() })
			}
			if !b.keyed {
				g.state.WithLabelValues(name).Set(stateValue(to))
			}
			g.log.Warn("circuit breaker state changed",
				slog.String("upstream", name), slog.String("from", from.String()), slog.String("to", to.String()))
			g.mu.Lock()
			notify := g.transitions
			g.mu.Unlock()
			for _, fn := range notify {
				fn(name, from.String(), to.String())
			}
		},
	})
	if !keyed {
		g.state.WithLabelValues(upstream).Set(0)
	}
	g.breakers[upstream] = b
	return b
}

// Client returns an HTTP client for an upstream: bounded by the timeout,
// sending the correlation id, guarded by the upstream's breaker, over the
// shared connection pool.
func (g *Guards) Client(upstream string) *http.Client {
	return &http.Client{
		Timeout: g.settings.Timeout,
		Transport: services.CorrelationTransport{
			Base: &guardedTransport{breaker: g.Breaker(upstream), base: g.base},
		},
	}
}

func stateValue(s gobreaker.State) float64 {
	switch s {
	case gobreaker.StateHalfOpen:
		return 1
	case gobreaker.StateOpen:
		return 2
	default:
		return 0
	}
}

// Breaker is one upstream's circuit breaker.
type Breaker struct {
	name string
	// label is the upstream the metrics count it under; keyed breakers
	// (one per destination) have no state gauge of their own.
	label    string
	keyed    bool
	guards   *Guards
	cb       *gobreaker.CircuitBreaker[*http.Response]
	timeout  time.Duration
	openedAt atomic.Int64
	// outcomes (outcome -> prometheus.Counter) and duration are its
	// series of the upstream metrics, each looked up on first use only.
	outcomes     sync.Map
	durationOnce sync.Once
	duration     prometheus.Observer
}

// count records one call's outcome, and how long it took unless it was
// not sent.
func (b *Breaker) count(outcome string, start time.Time) {
	c, ok := b.outcomes.Load(outcome)
	if !ok {
		c, _ = b.outcomes.LoadOrStore(outcome, b.guards.requests.WithLabelValues(b.label, outcome))
	}
	c.(prometheus.Counter).Inc()
	if outcome != OutcomeRejected {
		b.durationOnce.Do(func() { b.duration = b.guards.duration.WithLabelValues(b.label) })
		b.duration.Observe(time.Since(start).Seconds())
	}
}

// State is "closed", "half-open" or "open".
func (b *Breaker) State() string {
	s := b.cb.State() // also moves open to half-open once the timeout passed
	if !b.keyed {
		b.guards.state.WithLabelValues(b.name).Set(stateValue(s))
	}
	return s.String()
}

// RetryAfter is how long until the open breaker lets a probe through (at
// least a second); zero when it is not open.
func (b *Breaker) RetryAfter() time.Duration {
	if b.cb.State() != gobreaker.StateOpen {
		return 0
	}
	left := time.Until(time.Unix(0, b.openedAt.Load()).Add(b.timeout))
	return max(left, time.Second)
}

// neutralError marks answers that count neither as success nor as failure:
// the upstream's 4xx about our request (429 included: a rate limit is on
// one account's key, and must not pause the provider for every other
// account), and the caller's cancellation.
type neutralError struct{ error }

// Unwrap lets errors.Is and errors.As see through the mark.
func (e neutralError) Unwrap() error { return e.error }

// failureError marks an answer that counts as a failure (5xx).
type failureError struct{ status int }

func (e failureError) Error() string { return fmt.Sprintf("upstream answered %d", e.status) }

// guardedTransport runs each round trip through the breaker and records it.
type guardedTransport struct {
	breaker *Breaker
	base    http.RoundTripper
}

func (t *guardedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	b := t.breaker
	start := time.Now()
	outcome := ""
	resp, err := b.cb.Execute(func() (*http.Response, error) {
		resp, err := t.base.RoundTrip(req)
		switch {
		case err != nil && errors.Is(req.Context().Err(), context.Canceled):
			outcome = OutcomeCanceled
			return nil, neutralError{err}
		case err != nil && isTimeout(err, req):
			outcome = OutcomeTimeout
			return nil, err
		case err != nil:
			outcome = OutcomeTransport
			return nil, err
		case resp.StatusCode == http.StatusTooManyRequests:
			// The provider limits one account's key (its 401/403 are one
			// account's too): neutral, so one tenant over its limit never
			// opens the breaker for the others.
			outcome = OutcomeRateLimited
			return resp, neutralError{failureError{resp.StatusCode}}
		case resp.StatusCode >= 500:
			outcome = OutcomeServerError
			return resp, failureError{resp.StatusCode}
		case resp.StatusCode >= 400:
			outcome = OutcomeClientError
			return resp, neutralError{failureError{resp.StatusCode}}
		default:
			outcome = OutcomeSuccess
			return resp, nil
		}
	})
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		b.count(OutcomeRejected, start)
		// Half-open with its probes in flight (ErrTooManyRequests) has no
		// time left on the clock: still tell the caller to wait a second.
		return nil, &OpenError{Upstream: b.label, RetryAfter: max(b.RetryAfter(), time.Second)}
	}
	b.count(outcome, start)
	if resp != nil {
		// An HTTP answer, whatever its status, goes back to the client,
		// which reads the upstream's own error message from it.
		if resp.StatusCode == http.StatusTooManyRequests {
			longerRetryAfter(resp, b.RetryAfter())
		}
		return resp, nil
	}
	var neutral neutralError
	if errors.As(err, &neutral) {
		return nil, neutral.error
	}
	return nil, err
}

// longerRetryAfter makes a 429's Retry-After the longer of the provider's
// own and the time the upstream's breaker stays open (opened meanwhile by
// an outage): a caller told to come back sooner would only meet the open
// breaker. Every client reads Retry-After from the answer, so all follow.
func longerRetryAfter(resp *http.Response, breaker time.Duration) {
	if breaker <= 0 {
		return
	}
	own := time.Duration(0)
	if v := strings.TrimSpace(resp.Header.Get("Retry-After")); v != "" {
		if secs, err := strconv.Atoi(v); err == nil && secs >= 0 {
			own = time.Duration(secs) * time.Second
		} else if t, err := http.ParseTime(v); err == nil {
			own = time.Until(t)
		}
	}
	if breaker > own {
		resp.Header.Set("Retry-After", strconv.Itoa(int(math.Ceil(breaker.Seconds()))))
	}
}

func isTimeout(err error, req *http.Request) bool {
	if errors.Is(req.Context().Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	// http.Client's Timeout stops a RoundTripper it does not know (this
	// one) by closing req.Cancel, which may come before the context's
	// deadline fires: the call then fails with "request canceled".
	//nolint:staticcheck // SA1019: Request.Cancel is deprecated, but http.Client still uses it for timeouts.
	if req.Cancel != nil {
		select {
		case <-req.Cancel:
			return true
		default:
		}
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// OpenError is returned, without calling the upstream, while its breaker is open.
type OpenError struct {
	Upstream   string
	RetryAfter time.Duration
}

func (e *OpenError) Error() string {
	return fmt.Sprintf("%s circuit breaker is open; retry in %s", e.Upstream, e.RetryAfter.Round(time.Second))
}

// Neutral marks the error of a call that is not an HTTP exchange (SMTP) as
// counting neither as a success nor as a failure of the upstream: the
// provider refused what one account sent (its credentials, its recipient),
// which says nothing about whether the provider is up.
func Neutral(err error) error {
	if err == nil {
		return nil
	}
	return neutralError{err}
}

// Do runs a call that is not an HTTP exchange (an SMTP session) through the
// upstream's breaker, bounded by the timeout, with the same metrics as HTTP
// calls. fn gets a context that ends at the timeout. An error returned
// through Neutral counts as neither success nor failure (and comes back
// unwrapped); any other error, timeouts included, is a failure. An open
// breaker returns *OpenError without calling fn.
func (g *Guards) Do(ctx context.Context, upstream string, fn func(ctx context.Context) error) error {
	b := g.Breaker(upstream)
	start := time.Now()
	outcome := ""
	//nolint:bodyclose // no response: the call is not HTTP
	_, err := b.cb.Execute(func() (*http.Response, error) {
		callCtx, cancel := ctx, context.CancelFunc(func() {})
		if g.settings.Timeout > 0 { // as http.Client: zero means no timeout
			callCtx, cancel = context.WithTimeout(ctx, g.settings.Timeout)
		}
		defer cancel()
		err := fn(callCtx)
		var neutral neutralError
		switch {
		case err == nil:
			outcome = OutcomeSuccess
			return nil, nil
		case errors.Is(ctx.Err(), context.Canceled):
			outcome = OutcomeCanceled
			if errors.As(err, &neutral) {
				return nil, err // marked once: unwrapped once below
			}
			return nil, neutralError{err}
		case errors.As(err, &neutral):
			outcome = OutcomeClientError
			return nil, err
		case errors.Is(callCtx.Err(), context.DeadlineExceeded) || isTimeoutErr(err):
			outcome = OutcomeTimeout
			return nil, timeoutError{err}
		default:
			outcome = OutcomeTransport
			return nil, err
		}
	})
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		b.count(OutcomeRejected, start)
		return &OpenError{Upstream: b.label, RetryAfter: max(b.RetryAfter(), time.Second)}
	}
	b.count(outcome, start)
	var neutral neutralError
	if errors.As(err, &neutral) {
		return neutral.error
	}
	return err
}

// timeoutError makes a call that ran out of time read as a timeout
// (context.DeadlineExceeded) whatever the library reported.
type timeoutError struct{ error }

func (e timeoutError) Is(target error) bool { return target == context.DeadlineExceeded }

func (e timeoutError) Unwrap() error { return e.error }

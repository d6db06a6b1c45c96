package upstream_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ava/console/services/upstream/upstreamtest"

	"github.com/ava/console/services/logtest"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ava/console/services"
	"github.com/ava/console/services/upstream"
)

// Short timings keep the state machine fast to walk through.
const (
	recovery    = 80 * time.Millisecond
	callTimeout = 150 * time.Millisecond
	name        = "vapi"
)

// failure is how the test server answers one request.
type failure int

const (
	answerOK failure = iota
	answer500
	answer503
	answer429
	answer400
	answer401
	answer404
	answerDrop
	answerHang // until the client gives up
)

// server is an upstream whose next answers the test chooses; it counts the
// requests that reached it.
type server struct {
	*httptest.Server
	mu      sync.Mutex
	mode    failure
	hits    atomic.Int64
	headers chan http.Header
	release chan struct{}
}

func newServer(t *testing.T) *server {
	t.Helper()
	s := &server{release: make(chan struct{}), headers: make(chan http.Header, 100)}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	// Runs before s.Close (cleanups run last-in first-out): hanging
	// handlers return so that Close does not wait for them.
	t.Cleanup(func() { close(s.release) })
	return s
}

func (s *server) set(m failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mode = m
}

func (s *server) serve(w http.ResponseWriter, r *http.Request) {
	s.hits.Add(1)
	select {
	case s.headers <- r.Header.Clone():
	default:
	}
	s.mu.Lock()
	m := s.mode
	s.mu.Unlock()
	status := map[failure]int{
		answerOK: 200, answer500: 500, answer503: 503, answer429: 429, answer400: 400, answer401: 401, answer404: 404,
	}
	switch m {
	case answerDrop:
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			_ = conn.Close()
		}
		return
	case answerHang:
		select {
		case <-r.Context().Done():
		case <-s.release:
		}
		return
	}
	if m == answer429 {
		w.Header().Set("Retry-After", "7")
	}
	w.WriteHeader(status[m])
	_, _ = io.WriteString(w, `{"ok":true}`)
}

// rig is a Guards over a fresh registry, with its logs.
type rig struct {
	guards *upstream.Guards
	reg    *prometheus.Registry
	logs   *logtest.Buffer
	client *http.Client
	srv    *server
}

func newRig(t *testing.T, mod ...func(*upstream.Settings)) *rig {
	t.Helper()
	// Generous defaults: a loaded machine must not turn failures into
	// timeouts, nor let an open breaker half-open between two checks.
	// Tests of timeouts and recovery set short ones.
	s := upstream.Settings{Timeout: 5 * time.Second, FailureThreshold: 3, RecoveryTimeout: time.Minute, SuccessThreshold: 2}
	for _, m := range mod {
		m(&s)
	}
	logs := &logtest.Buffer{}
	reg := prometheus.NewRegistry()
	g, err := upstream.NewGuards(s, services.NewLogger(logs, slog.LevelDebug, "json"), reg)
	if err != nil {
		t.Fatal(err)
	}
	return &rig{guards: g, reg: reg, logs: logs, client: g.Client(name), srv: newServer(t)}
}

// call makes one GET through the guarded client; the body is read and closed.
func (r *rig) call(ctx context.Context) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.srv.URL+"/assistant/a", nil)
	if err != nil {
		return 0, err
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

func (r *rig) state() string { return r.guards.Breaker(name).State() }

// metric returns the value of a counter or gauge with the given labels, and
// for histograms their sample count; -1 when there is no such series.
func metric(t *testing.T, reg *prometheus.Registry, family string, labels map[string]string) float64 {
	t.Helper()
	v, found, err := upstreamtest.Metric(reg, family, labels)
	if err != nil {
		t.Fatal(err)
	}
	if !found {
		return -1
	}
	return v
}

func (r *rig) gauge(t *testing.T) float64 {
	t.Helper()
	return metric(t, r.reg, "ava_circuit_breaker_state", map[string]string{"upstream": name})
}

func (r *rig) outcomes(t *testing.T, outcome string) float64 {
	t.Helper()
	return max(0, metric(t, r.reg, "ava_upstream_requests_total", map[string]string{"upstream": name, "outcome": outcome}))
}

// transitions returns the breaker's logged state changes as "from->to".
func (r *rig) transitions(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(r.logs.String()), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if rec["msg"] != "circuit breaker state changed" {
			continue
		}
		if rec["upstream"] != name || rec["level"] != "WARN" {
			t.Errorf("state change record: %v", rec)
		}
		out = append(out, rec["from"].(string)+"->"+rec["to"].(string))
	}
	return out
}

// waitHalfOpen polls the breaker (State moves an open breaker on once its
// recovery timeout passed) instead of sleeping a guessed time.
func (r *rig) waitHalfOpen(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for r.state() != "half-open" {
		if time.Now().After(deadline) {
			t.Fatalf("breaker still %s long after the recovery timeout", r.state())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// trip opens the breaker with FailureThreshold 500s. With a short recovery
// timeout the breaker may be half-open again by the time anyone looks, so
// the log tells whether it opened.
func (r *rig) trip(t *testing.T) {
	t.Helper()
	r.srv.set(answer500)
	for range 3 {
		if _, err := r.call(context.Background()); err != nil {
			t.Fatalf("a 500 must come back as an answer, got %v", err)
		}
	}
	if got := r.transitions(t); len(got) == 0 || got[len(got)-1] != "closed->open" {
		t.Fatalf("after 3 failures the breaker's transitions are %v, want closed->open", got)
	}
}

func TestBreakerOpensAfterConsecutiveFailures(t *testing.T) {
	tests := []struct {
		name    string
		mode    failure
		status  int    // the answer the caller gets (0: an error)
		outcome string // the metric label
	}{
		{"500", answer500, 500, upstream.OutcomeServerError},
		{"503", answer503, 503, upstream.OutcomeServerError},
		{"dropped connection", answerDrop, 0, upstream.OutcomeTransport},
		{"timeout", answerHang, 0, upstream.OutcomeTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, func(s *upstream.Settings) {
				if tt.mode == answerHang {
					s.Timeout = callTimeout
				}
			})
			if g := r.gauge(t); g != 0 {
				t.Fatalf("a new breaker's gauge is %v, want 0 (closed)", g)
			}
			r.srv.set(tt.mode)
			for i := 1; i <= 3; i++ {
				status, err := r.call(context.Background())
				if status != tt.status || (tt.status == 0) != (err != nil) {
					t.Fatalf("call %d: status %d, error %v; want status %d", i, status, err, tt.status)
				}
				want := "closed"
				if i == 3 {
					want = "open"
				}
				if s := r.state(); s != want {
					t.Fatalf("after %d failures the breaker is %s, want %s", i, s, want)
				}
			}
			if got := r.outcomes(t, tt.outcome); got != 3 {
				t.Errorf("ava_upstream_requests_total{outcome=%q} = %v, want 3 (transport %v, canceled %v, timeout %v)", tt.outcome, got, r.outcomes(t, upstream.OutcomeTransport), r.outcomes(t, upstream.OutcomeCanceled), r.outcomes(t, upstream.OutcomeTimeout))
			}
			if got := metric(t, r.reg, "ava_upstream_request_duration_seconds", map[string]string{"upstream": name}); got != 3 {
				t.Errorf("duration samples = %v, want 3", got)
			}
			if g := r.gauge(t); g != 2 {
				t.Errorf("gauge %v, want 2 (open)", g)
			}

			// Open: refused here, the upstream never hears of it.
			hits := r.srv.hits.Load()
			r.srv.set(answerOK)
			start := time.Now()
			_, err := r.call(context.Background())
			var open *upstream.OpenError
			if !errors.As(err, &open) {
				t.Fatalf("open breaker: got %v, want *OpenError", err)
			}
			if time.Since(start) > 50*time.Millisecond {
				t.Errorf("an open breaker took %s to refuse", time.Since(start))
			}
			if got := r.srv.hits.Load(); got != hits {
				t.Errorf("the open breaker let %d requests through", got-hits)
			}
			if open.Upstream != name || open.RetryAfter < 50*time.Second || open.RetryAfter > time.Minute {
				t.Errorf("OpenError %+v: want upstream %q and RetryAfter about the 1m recovery timeout", open, name)
			}
			if got := r.outcomes(t, upstream.OutcomeRejected); got != 1 {
				t.Errorf("breaker_open outcomes = %v, want 1", got)
			}
			if got := r.transitions(t); len(got) != 1 || got[0] != "closed->open" {
				t.Errorf("logged transitions %v, want [closed->open]", got)
			}
		})
	}
}

// An open breaker whose recovery is less than a second away still asks
// callers to wait a whole second (Retry-After is in seconds).
func TestBreakerRetryAfterIsAtLeastASecond(t *testing.T) {
	r := newRig(t, func(s *upstream.Settings) { s.RecoveryTimeout = 500 * time.Millisecond })
	r.trip(t)
	_, err := r.call(context.Background())
	var open *upstream.OpenError
	if !errors.As(err, &open) || open.RetryAfter < time.Second {
		t.Fatalf("got %v, want *OpenError with RetryAfter >= 1s", err)
	}
	if d := r.guards.Breaker(name).RetryAfter(); d < time.Second {
		t.Errorf("Breaker.RetryAfter %s, want at least 1s", d)
	}
	if e := upstream.Error("Vapi", time.Second, err); !strings.Contains(services.ErrorMessage(e), "Try again in 1 second") {
		t.Errorf("message %q", services.ErrorMessage(e))
	}
}

func TestBreakerFullCycle(t *testing.T) {
	r := newRig(t, func(s *upstream.Settings) { s.RecoveryTimeout = recovery })
	r.trip(t)

	r.waitHalfOpen(t)
	if g := r.gauge(t); g != 1 {
		t.Errorf("half-open gauge %v, want 1", g)
	}
	if d := r.guards.Breaker(name).RetryAfter(); d != 0 {
		t.Errorf("RetryAfter %s while half-open, want 0", d)
	}

	// Half-open -> open on one failure.
	hits := r.srv.hits.Load()
	if status, err := r.call(context.Background()); status != 500 || err != nil {
		t.Fatalf("probe: %d %v", status, err)
	}
	if got := r.srv.hits.Load() - hits; got != 1 {
		t.Errorf("the probe reached the upstream %d times", got)
	}
	if got := r.transitions(t); got[len(got)-1] != "half-open->open" {
		t.Fatalf("a failed probe: transitions %v, want half-open->open last", got)
	}

	// Half-open -> closed after SuccessThreshold (2) successes.
	r.waitHalfOpen(t)
	r.srv.set(answerOK)
	if status, err := r.call(context.Background()); status != 200 || err != nil {
		t.Fatalf("probe 1: %d %v", status, err)
	}
	if s := r.state(); s != "half-open" {
		t.Fatalf("after 1 of 2 successful probes the breaker is %s", s)
	}
	if status, err := r.call(context.Background()); status != 200 || err != nil {
		t.Fatalf("probe 2: %d %v", status, err)
	}
	if s := r.state(); s != "closed" {
		t.Fatalf("after 2 successful probes the breaker is %s, want closed", s)
	}
	if g := r.gauge(t); g != 0 {
		t.Errorf("closed gauge %v, want 0", g)
	}
	want := []string{"closed->open", "open->half-open", "half-open->open", "open->half-open", "half-open->closed"}
	if got := r.transitions(t); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("logged transitions\n got %v\nwant %v", got, want)
	}
}

// While half-open, calls beyond the probes in flight are refused without
// reaching the upstream, with a Retry-After a client can use.
func TestBreakerHalfOpenRefusesExtraCalls(t *testing.T) {
	r := newRig(t, func(s *upstream.Settings) { s.SuccessThreshold = 1; s.RecoveryTimeout = recovery })
	r.trip(t)
	r.waitHalfOpen(t)

	r.srv.set(answerHang)
	probe := make(chan error, 1)
	go func() {
		_, err := r.call(context.Background())
		probe <- err
	}()
	// Wait until the probe is at the upstream.
	deadline := time.Now().Add(2 * time.Second)
	for r.srv.hits.Load() < 4 {
		if time.Now().After(deadline) {
			t.Fatal("the probe never reached the upstream")
		}
		time.Sleep(2 * time.Millisecond)
	}
	_, err := r.call(context.Background())
	var open *upstream.OpenError
	if !errors.As(err, &open) {
		t.Fatalf("second call while a probe is in flight: %v, want *OpenError", err)
	}
	if open.RetryAfter < time.Second {
		t.Errorf("RetryAfter %s, want at least 1s", open.RetryAfter)
	}
	if got := r.srv.hits.Load(); got != 4 {
		t.Errorf("the upstream got %d requests, want 4 (3 failures + 1 probe)", got)
	}
	// Let the hanging probe go: an empty answer or a reset, either way it is over.
	r.srv.release <- struct{}{}
	if err := <-probe; err != nil {
		t.Logf("probe: %v", err)
	}
}

// 4xx answers are about our request: they neither open the breaker nor
// reset its count of consecutive failures. Neither does a caller giving up.
// A 429 is one account's key over its limit: it must not pause the provider
// for every other account.
func TestBreakerNeutralOutcomes(t *testing.T) {
	tests := []struct {
		name    string
		neutral func(t *testing.T, r *rig)
		outcome string
	}{
		{"429", answerStatus(answer429, 429), upstream.OutcomeRateLimited},
		{"400", answerStatus(answer400, 400), upstream.OutcomeClientError},
		{"401", answerStatus(answer401, 401), upstream.OutcomeClientError},
		{"404", answerStatus(answer404, 404), upstream.OutcomeClientError},
		{"caller cancels", func(t *testing.T, r *rig) {
			t.Helper()
			r.srv.set(answerHang)
			ctx, cancel := context.WithCancel(context.Background())
			hits := r.srv.hits.Load()
			done := make(chan error, 1)
			go func() {
				_, err := r.call(ctx)
				done <- err
			}()
			for r.srv.hits.Load() == hits {
				time.Sleep(2 * time.Millisecond)
			}
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Fatalf("canceled call: %v", err)
			}
		}, upstream.OutcomeCanceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t)
			r.srv.set(answer500)
			for range 2 {
				_, _ = r.call(context.Background())
			}
			for range 10 {
				tt.neutral(t, r)
			}
			if s := r.state(); s != "closed" {
				t.Fatalf("after 2 failures and 10 %s the breaker is %s, want closed", tt.name, s)
			}
			if got := r.outcomes(t, tt.outcome); got != 10 {
				t.Errorf("outcome %q counted %v times, want 10", tt.outcome, got)
			}
			// The two failures before still count: one more opens it.
			r.srv.set(answer500)
			_, _ = r.call(context.Background())
			if s := r.state(); s != "open" {
				t.Fatalf("the third consecutive failure left the breaker %s: the %s reset the count", s, tt.name)
			}
		})
	}
}

func answerStatus(m failure, want int) func(t *testing.T, r *rig) {
	return func(t *testing.T, r *rig) {
		t.Helper()
		r.srv.set(m)
		status, err := r.call(context.Background())
		if status != want || err != nil {
			t.Fatalf("got %d %v, want %d: a 4xx goes back to the caller as an answer", status, err, want)
		}
	}
}

// A 429 that comes back while the breaker is open (an outage opened it
// during the call) says to come back when the breaker lets calls through,
// if that is later than the provider's own Retry-After; otherwise the
// provider's stands.
func TestRateLimitedRetryAfterIsTheLongerOfProviderAndBreaker(t *testing.T) {
	r := newRig(t)
	arrived, release := make(chan struct{}, 1), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		switch req.URL.Path {
		case "/slow-429":
			arrived <- struct{}{}
			<-release
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusTooManyRequests)
		case "/429":
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusTooManyRequests)
		default:
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	t.Cleanup(srv.Close)
	released := false
	t.Cleanup(func() {
		if !released {
			close(release)
		}
	})
	get := func(path string) *http.Response {
		t.Helper()
		resp, err := r.client.Get(srv.URL + path)
		if err != nil {
			t.Errorf("GET %s: %v", path, err)
			return nil
		}
		_ = resp.Body.Close()
		return resp
	}

	if resp := get("/429"); resp == nil || resp.Header.Get("Retry-After") != "7" {
		t.Fatalf("a 429 with the breaker closed: %v, want the provider's Retry-After 7", resp)
	}
	slow := make(chan *http.Response, 1)
	go func() { slow <- get("/slow-429") }()
	<-arrived
	for range 3 {
		get("/500")
	}
	if s := r.state(); s != "open" {
		t.Fatalf("breaker %s after 3 failures", s)
	}
	close(release)
	released = true
	resp := <-slow
	if resp == nil {
		t.FailNow()
	}
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("status %d", resp.StatusCode)
	}
	secs, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || secs < 50 || secs > 60 {
		t.Errorf("Retry-After %q, want the breaker's remaining ~60 seconds (longer than the provider's 7)", resp.Header.Get("Retry-After"))
	}
}

// A success in between resets the count (consecutive failures only).
func TestBreakerSuccessResetsTheCount(t *testing.T) {
	r := newRig(t)
	for _, m := range []failure{answer500, answer500, answerOK, answer500, answer500} {
		r.srv.set(m)
		_, _ = r.call(context.Background())
	}
	if s := r.state(); s != "closed" {
		t.Fatalf("4 failures split by a success opened the breaker (%s)", s)
	}
}

func TestTimeoutBoundsASlowUpstream(t *testing.T) {
	r := newRig(t, func(s *upstream.Settings) { s.Timeout = 100 * time.Millisecond })
	r.srv.set(answerHang)
	start := time.Now()
	_, err := r.call(context.Background())
	took := time.Since(start)
	if err == nil {
		t.Fatal("a hanging upstream answered")
	}
	if took < 100*time.Millisecond || took > time.Second {
		t.Errorf("the call took %s, want about the 100ms timeout", took)
	}
	got := upstream.Error("Vapi", 100*time.Millisecond, err)
	var e *services.Error
	if !errors.As(got, &e) || e.Code != services.ETIMEOUT {
		t.Fatalf("upstream.Error(timeout) = %v, want ETIMEOUT", got)
	}
	if !strings.Contains(e.Message, "Vapi did not answer within 100ms") {
		t.Errorf("message %q", e.Message)
	}
	if r.outcomes(t, upstream.OutcomeTimeout) != 1 {
		t.Errorf("timeout outcome not counted")
	}
}

func TestClientSendsCorrelationID(t *testing.T) {
	r := newRig(t)
	ctx := services.WithCorrelationID(context.Background(), "req-42")
	if _, err := r.call(ctx); err != nil {
		t.Fatal(err)
	}
	if got := (<-r.srv.headers).Get("X-Correlation-ID"); got != "req-42" {
		t.Errorf("X-Correlation-ID %q, want req-42", got)
	}
	if _, err := r.call(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := (<-r.srv.headers).Get("X-Correlation-ID"); got != "" {
		t.Errorf("X-Correlation-ID %q without a correlation id in the context", got)
	}
}

// Each upstream has its own breaker: Vapi failing does not stop Twilio.
func TestBreakersAreIndependent(t *testing.T) {
	r := newRig(t)
	r.trip(t)
	other := r.guards.Client("twilio")
	r.srv.set(answerOK)
	resp, err := other.Get(r.srv.URL)
	if err != nil {
		t.Fatalf("twilio refused while vapi's breaker is open: %v", err)
	}
	_ = resp.Body.Close()
	if s := r.guards.Breaker("twilio").State(); s != "closed" {
		t.Errorf("twilio breaker %s", s)
	}
	if g := metric(t, r.reg, "ava_circuit_breaker_state", map[string]string{"upstream": "twilio"}); g != 0 {
		t.Errorf("twilio gauge %v", g)
	}
}

func TestErrorTranslation(t *testing.T) {
	slow := newRig(t, func(s *upstream.Settings) { s.Timeout = callTimeout })
	slow.srv.set(answerHang)
	_, timeoutErr := slow.call(context.Background())
	if timeoutErr == nil {
		t.Fatal("hanging upstream: no error")
	}

	r := newRig(t)
	r.srv.set(answerDrop)
	_, dropErr := r.call(context.Background())
	if dropErr == nil {
		t.Fatal("dropped connection: no error")
	}
	r.srv.set(answer500)
	_, _ = r.call(context.Background())
	_, _ = r.call(context.Background())
	_, openErr := r.call(context.Background())
	var open *upstream.OpenError
	if !errors.As(openErr, &open) {
		t.Fatalf("third call: %v, want an open breaker", openErr)
	}

	tests := []struct {
		name       string
		err        error
		code       services.Code
		says       string
		retryAfter bool
	}{
		{"open breaker", openErr, services.EUNAVAILABLE, "Vapi has been failing", true},
		{"bare OpenError", &upstream.OpenError{Upstream: "vapi", RetryAfter: 1500 * time.Millisecond}, services.EUNAVAILABLE, "Try again in 2 seconds", true},
		{"timeout", timeoutErr, services.ETIMEOUT, "did not answer within", false},
		{"deadline", context.DeadlineExceeded, services.ETIMEOUT, "did not answer within", false},
		{"dropped connection", dropErr, services.EUPSTREAM, "Could not reach Vapi", false},
		{"canceled", context.Canceled, services.EUPSTREAM, "canceled", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := upstream.Error("Vapi", callTimeout, tt.err)
			var e *services.Error
			if !errors.As(got, &e) {
				t.Fatalf("got %T %v", got, got)
			}
			if e.Code != tt.code || !strings.Contains(e.Message, tt.says) {
				t.Errorf("code %s message %q, want %s saying %q", e.Code, e.Message, tt.code, tt.says)
			}
			if tt.retryAfter && e.RetryAfter < time.Second {
				t.Errorf("RetryAfter %s, want at least 1s", e.RetryAfter)
			}
			if !tt.retryAfter && e.RetryAfter != 0 {
				t.Errorf("RetryAfter %s, want none", e.RetryAfter)
			}
			if !errors.Is(got, tt.err) {
				t.Errorf("the cause is not kept for the logs")
			}
			if strings.Contains(e.Message, "127.0.0.1") || strings.Contains(e.Message, "dial") {
				t.Errorf("message leaks a Go error: %q", e.Message)
			}
		})
	}
	if upstream.Error("Vapi", time.Second, nil) != nil {
		t.Error("Error(nil) != nil")
	}
}

func TestStatusError(t *testing.T) {
	tests := []struct {
		status     int
		msg        string
		retryAfter time.Duration
		says       []string
		code       services.Code
	}{
		{429, "Too Many Requests", 7 * time.Second, []string{"Vapi is rate limiting us (Too Many Requests)", "in 7 seconds"}, services.ERATELIMIT},
		{429, "", 0, []string{"rate limiting us (HTTP 429)", "in a moment"}, services.ERATELIMIT},
		{500, "Internal Server Error", 0, []string{"Vapi is having trouble (Internal Server Error)"}, services.EUPSTREAM},
		{503, "", 0, []string{"having trouble (HTTP 503)"}, services.EUPSTREAM},
		{400, "maxDurationSeconds must not be less than 10", 0, []string{"Vapi refused the request: maxDurationSeconds must not be less than 10"}, services.EUPSTREAM},
	}
	for _, tt := range tests {
		err := upstream.StatusError("Vapi", tt.status, tt.msg, tt.retryAfter, nil)
		var e *services.Error
		if !errors.As(err, &e) || e.Code != tt.code {
			t.Errorf("%d: %v, want %s", tt.status, err, tt.code)
			continue
		}
		for _, s := range tt.says {
			if !strings.Contains(e.Message, s) {
				t.Errorf("%d: message %q does not say %q", tt.status, e.Message, s)
			}
		}
		if e.RetryAfter != tt.retryAfter {
			t.Errorf("%d: RetryAfter %s, want %s", tt.status, e.RetryAfter, tt.retryAfter)
		}
	}
}

func TestMetricsRegisterOnce(t *testing.T) {
	reg := prometheus.NewRegistry()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if _, err := upstream.NewGuards(upstream.Settings{}, log, reg); err != nil {
		t.Fatal(err)
	}
	if _, err := upstream.NewGuards(upstream.Settings{}, log, reg); err == nil {
		t.Error("registering the upstream metrics twice on one registry succeeded")
	}
}

// Package upstreamtest holds what every wire-level fake of an upstream
// (vapitest, twiliotest...) shares: failures on demand, slow answers,
// dropped connections, and a record of the requests received. Each fake
// keeps its provider's own wire format and failure type.
package upstreamtest

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"time"
)

// Faults queues the failures a fake answers with instead of doing its job.
// F is the fake's own failure type (its provider's error format).
type Faults[F any] struct {
	mu     sync.Mutex
	queue  []F
	always *F
	delay  time.Duration
}

// FailNext makes the next n requests fail with f.
func (q *Faults[F]) FailNext(n int, f F) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i := 0; i < n; i++ {
		q.queue = append(q.queue, f)
	}
}

// FailAlways makes every request fail with f until Recover.
func (q *Faults[F]) FailAlways(f F) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.always = &f
}

// Recover ends FailAlways and drops queued failures.
func (q *Faults[F]) Recover() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.always, q.queue = nil, nil
}

// SetDelay makes every answer wait d.
func (q *Faults[F]) SetDelay(d time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.delay = d
}

// Take returns the failure for the request being served, if any, and the
// delay every answer waits.
func (q *Faults[F]) Take() (f F, ok bool, delay time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	switch {
	case q.always != nil:
		return *q.always, true, q.delay
	case len(q.queue) > 0:
		f = q.queue[0]
		q.queue = q.queue[1:]
		return f, true, q.delay
	}
	return f, false, q.delay
}

// Wait waits d, unless the client gives up first; it reports whether the
// request is still there to be answered.
func Wait(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	select {
	case <-time.After(d):
		return true
	case <-r.Context().Done():
		return false
	}
}

// Drop closes the connection without an answer.
func Drop(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

// Recorder keeps the requests a fake received, in the fake's own terms.
type Recorder[R any] struct {
	mu       sync.Mutex
	requests []R
}

// Record adds a request.
func (rec *Recorder[R]) Record(r R) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.requests = append(rec.requests, r)
}

// Requests returns what the fake received so far.
func (rec *Recorder[R]) Requests() []R {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]R(nil), rec.requests...)
}

// ResetRequests forgets the requests received so far.
func (rec *Recorder[R]) ResetRequests() {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.requests = nil
}

// Fault is what every fake's failure type says about itself: whether to
// drop the connection, and how long to wait first.
type Fault interface {
	Dropped() bool
	Delayed() time.Duration
}

// Begin starts serving a request the fake has recorded: it takes the
// failure queued for it, waits (the failure's delay, else the fake's), and
// drops the connection when the failure says so. proceed is false when the
// request is over (dropped, or the client gave up waiting); otherwise the
// fake answers failure when failing, else does its job.
func Begin[F Fault](q *Faults[F], w http.ResponseWriter, r *http.Request) (failure F, failing, proceed bool) {
	failure, failing, delay := q.Take()
	if failing && failure.Delayed() > 0 {
		delay = failure.Delayed()
	}
	if !Wait(r, delay) {
		return failure, failing, false
	}
	if failing && failure.Dropped() {
		Drop(w)
		return failure, failing, false
	}
	return failure, failing, true
}

// InProcess serves requests with h in process, without a listener: the
// development stubs are fakes reached this way.
func InProcess(h http.Handler) http.RoundTripper { return inProcess{h} }

type inProcess struct{ h http.Handler }

func (p inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	if req.Body == nil { // client requests may have none; handlers expect one
		req = req.Clone(req.Context())
		req.Body = http.NoBody
	}
	p.h.ServeHTTP(rec, req)
	return rec.Result(), nil
}

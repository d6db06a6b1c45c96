package handlers_test

import (
	"bufio"
	"context"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ava/console/handlers"
	"github.com/ava/console/services/upstream"
	"github.com/ava/console/services/vapi/vapitest"
)

// sseEvent is one event read from a stream.
type sseEvent struct {
	name, data string
}

// stream is an open GET /events, read in the background.
type stream struct {
	t      *testing.T
	resp   *http.Response
	events chan sseEvent
	// first is what the stream sent before its first event (retry, comments).
	mu       sync.Mutex
	comments []string
	ended    chan struct{}
}

// openStream opens GET /events with the session cookie.
func openStream(t *testing.T, base, session string) *stream {
	t.Helper()
	return openStreamAt(t, base, "/events", session)
}

// openStreamAt opens the stream at path (GET /events?since=...), with the
// headers given as name, value pairs.
func openStreamAt(t *testing.T, base, path, session string, header ...string) *stream {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	req.Header.Set("Accept", "text/event-stream")
	// Asked for explicitly, net/http would not undo a compression silently.
	req.Header.Set("Accept-Encoding", "gzip, deflate, br")
	if session != "" {
		req.AddCookie(&http.Cookie{Name: "ava_session", Value: session})
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	s := &stream{t: t, resp: resp, events: make(chan sseEvent, 100), ended: make(chan struct{})}
	t.Cleanup(func() { _ = resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		return s
	}
	go func() {
		defer close(s.ended)
		r := bufio.NewReader(resp.Body)
		var ev sseEvent
		var data []string
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimRight(line, "\r\n")
			switch {
			case line == "":
				if ev.name != "" {
					ev.data = strings.Join(data, "\n")
					s.events <- ev
				}
				ev, data = sseEvent{}, nil
			case strings.HasPrefix(line, ":") || strings.HasPrefix(line, "retry:") || strings.HasPrefix(line, "id:"):
				s.mu.Lock()
				s.comments = append(s.comments, line)
				s.mu.Unlock()
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				data = append(data, strings.TrimPrefix(line, "data: "))
			}
		}
	}()
	return s
}

// preamble is what the stream sent so far that is no event (retry, id,
// comments).
func (s *stream) preamble() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.comments)
}

// next waits for the event of that name (others are skipped) and returns
// its data.
func (s *stream) next(name string) string {
	s.t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case e := <-s.events:
			if e.name == name {
				return e.data
			}
		case <-deadline:
			s.t.Fatalf("no %q event within 5 s", name)
			return ""
		}
	}
}

// quiet checks that no event of that name comes within d.
func (s *stream) quiet(name string, d time.Duration) {
	s.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case e := <-s.events:
			if e.name == name {
				s.t.Fatalf("got %q event %q, want none", name, e.data)
			}
		case <-deadline:
			return
		}
	}
}

func (s *stream) waitEnded(within time.Duration) {
	s.t.Helper()
	select {
	case <-s.ended:
	case <-time.After(within):
		s.t.Fatalf("the stream did not end within %s", within)
	}
}

// TestLiveUpdatesStream: a signed-in browser's stream carries its
// account's changes as the regions' HTML, and nothing of another account.
func TestLiveUpdatesStream(t *testing.T) {
	a := newTestApp(t, withConfig(noLimitOnLists))
	token := a.apiOwner(true)
	a.connectAPI(token)
	base := "http://" + a.serve()

	s := openStream(t, base, a.cookies["ava_session"])
	if s.resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /events: %d", s.resp.StatusCode)
	}
	for header, want := range map[string]string{
		"Content-Type":      "text/event-stream; charset=utf-8",
		"X-Accel-Buffering": "no",
		"Cache-Control":     "no-store",
		"Content-Encoding":  "",
		"ETag":              "",
	} {
		if got := s.resp.Header.Get(header); got != want {
			t.Errorf("%s: %q, want %q", header, got, want)
		}
	}

	// Another account, signed in its own browser, opens its own stream.
	ctx := context.Background()
	other, err := a.db.CreateUser(ctx, "other@example.com", "not-a-hash", false)
	if err != nil {
		t.Fatal(err)
	}
	otherSession, _, err := a.accounts.StartSession(ctx, other.ID)
	if err != nil {
		t.Fatal(err)
	}
	o := openStream(t, base, otherSession)
	if o.resp.StatusCode != http.StatusOK {
		t.Fatalf("the other account's stream: %d", o.resp.StatusCode)
	}

	resp, body := a.vapiCall(token, http.MethodPut, "/api/v1/vapi/settings/max_call_duration", `{"value": 840}`)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT: %d %s", resp.StatusCode, body)
	}
	row := s.next("vapi-setting-max_call_duration")
	for _, want := range []string{`id="setting-max_call_duration"`, "840 seconds", `sse-swap="vapi-setting-max_call_duration"`, `name="_csrf" value="` + a.csrf() + `"`} {
		if !strings.Contains(row, want) {
			t.Errorf("the row's event lacks %q:\n%s", want, row)
		}
	}
	changes := s.next("vapi-changes")
	if !strings.Contains(changes, "840") {
		t.Errorf("Recent changes lack the new value:\n%s", changes)
	}
	sections := s.next("home-sections")
	if !strings.Contains(sections, "Vapi settings") {
		t.Errorf("home sections:\n%s", sections)
	}
	// A bare CR in a value (a line end to a browser's SSE parser) cannot cut the
	// HTML or start a field of its own.
	resp, body = a.vapiCall(token, http.MethodPut, "/api/v1/vapi/settings/greeting_message", `{"value": "Hello\revent: evil\rthere"}`)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT greeting: %d %s", resp.StatusCode, body)
	}
	greeting := s.next("vapi-setting-greeting_message")
	if strings.Contains(greeting, "\r") || !strings.Contains(greeting, "there") {
		t.Errorf("the greeting's row: %q", greeting)
	}
	o.quiet("vapi-setting-max_call_duration", 500*time.Millisecond)
	o.quiet("vapi-changes", 10*time.Millisecond)

	// An API token opens no stream: live updates are for browsers.
	req, _ := http.NewRequest(http.MethodGet, base+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if r, err := http.DefaultClient.Do(req); err != nil || r.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /events with an API token: %v %v, want 401", r.StatusCode, err)
	}

	// Signing out ends the stream, with the notice.
	session := a.cookies["ava_session"]
	s2 := openStream(t, base, session)
	a.postForm("/logout", nil)
	if notice := s.next("signed-out"); !strings.Contains(notice, "signed out") {
		t.Errorf("signed-out notice: %q", notice)
	}
	s.waitEnded(2 * time.Second)
	s2.next("signed-out")
	s2.waitEnded(2 * time.Second)

	// A page reconnecting with the ended session's cookie is told, in a stream (an
	// EventSource reads nothing of a refusal), and not kept.
	stale := openStream(t, base, session)
	if stale.resp.StatusCode != http.StatusOK {
		t.Fatalf("reconnect with an ended session: %d, want 200 with the notice", stale.resp.StatusCode)
	}
	stale.next("signed-out")
	stale.waitEnded(time.Second)
	if !strings.Contains(a.logs.String(), `"reason":"signed out"`) {
		t.Error("no log line says the stream ended because the session was signed out")
	}
}

// TestLiveStreamSendsWhatCameBeforeIt: a page's stream opens a moment after
// the page was served; what changed in between (which the page did not show
// and no stream carried) is the first thing the stream sends. A stream of a
// page served after the change, or without the page's time, does not send it.
func TestLiveStreamSendsWhatCameBeforeIt(t *testing.T) {
	a := newTestApp(t, withConfig(noLimitOnLists))
	token := a.apiOwner(true)
	a.connectAPI(token)
	base := "http://" + a.serve()

	resp, body := a.get("/vapi")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /vapi: %d", resp.StatusCode)
	}
	m := regexp.MustCompile(`sse-connect="(/events\?since=(\d+)&amp;from=([0-9a-z]+))"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("the page's sse-connect does not say when and where it was served:\n%s", body)
	}
	if ms, _ := strconv.ParseInt(m[2], 10, 64); time.Since(time.UnixMilli(ms)).Abs() > time.Minute {
		t.Fatalf("the page says it was served at %s", time.UnixMilli(ms))
	}
	path := strings.ReplaceAll(m[1], "&amp;", "&")
	session := a.cookies["ava_session"]
	early := openStreamAt(t, base, path, session)
	early.quiet("vapi-setting-max_call_duration", 200*time.Millisecond)

	if resp, body := a.vapiCall(token, http.MethodPut, "/api/v1/vapi/settings/max_call_duration", `{"value": 840}`); resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT: %d %s", resp.StatusCode, body)
	}
	if row := early.next("vapi-setting-max_call_duration"); !strings.Contains(row, "840 seconds") {
		t.Errorf("the open stream's row:\n%s", row)
	}
	late := openStreamAt(t, base, path, session)
	if row := late.next("vapi-setting-max_call_duration"); !strings.Contains(row, "840 seconds") {
		t.Errorf("the late stream's first row:\n%s", row)
	}
	if changes := late.next("vapi-changes"); !strings.Contains(changes, "840") {
		t.Errorf("the late stream's Recent changes:\n%s", changes)
	}
	// A browser reconnecting sends back the stream's id; its page fetches its
	// regions again itself, so nothing is replayed.
	if !slices.Contains(late.preamble(), "id: live") {
		t.Errorf("the stream gives itself no id: %q", late.preamble())
	}
	openStreamAt(t, base, path, session, "Last-Event-ID", "live").quiet("vapi-setting-max_call_duration", 300*time.Millisecond)

	served := time.Now().Add(10 * time.Millisecond)
	time.Sleep(20 * time.Millisecond)
	later := "/events?since=" + strconv.FormatInt(served.UnixMilli(), 10) + "&from=" + m[3]
	openStreamAt(t, base, later, session).quiet("vapi-setting-max_call_duration", 300*time.Millisecond)
	openStream(t, base, session).quiet("vapi-setting-max_call_duration", 100*time.Millisecond)
	openStreamAt(t, base, "/events?since=yesterday", session).quiet("vapi-setting-max_call_duration", 100*time.Millisecond)
}

// TestLiveUpdatesBreaker: the breaker opening and closing reaches the open
// page as the Vapi card's status, the home sections and toasts.
func TestLiveUpdatesBreaker(t *testing.T) {
	a := newTestApp(t, withConfig(noLimitOnLists), withUpstream(func(s *upstream.Settings) {
		s.FailureThreshold, s.RecoveryTimeout, s.SuccessThreshold = 2, 500*time.Millisecond, 1
	}))
	token := a.apiOwner(true)
	a.connectAPI(token)
	base := "http://" + a.serve()
	s := openStream(t, base, a.cookies["ava_session"])

	a.vapi.FailMethod(http.MethodGet, 2, vapitest.Failure{Status: http.StatusInternalServerError, Message: "boom"})
	for range 2 {
		a.vapiCall(token, http.MethodGet, "/api/v1/vapi/settings", "")
	}
	if toast := s.next("toast"); !strings.Contains(toast, "Vapi is failing") {
		t.Errorf("first toast: %s", toast)
	}
	var status string
	for !strings.Contains(status, "Open: calls are paused") {
		status = s.next("integration-vapi")
	}
	if toast := s.next("toast"); !strings.Contains(toast, "calls are paused") {
		t.Errorf("toast on open: %s", toast)
	}
	if sections := s.next("home-sections"); !strings.Contains(sections, "Failing") {
		t.Errorf("home sections while open:\n%s", sections)
	}
	// The breaker half-opens by itself after its recovery timeout: the page
	// hears it without any call.
	for !strings.Contains(status, "Half-open") {
		status = s.next("integration-vapi")
	}
	// A successful probe closes it.
	if resp, body := a.vapiCall(token, http.MethodGet, "/api/v1/vapi/settings", ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("probe: %d %s", resp.StatusCode, body)
	}
	for !strings.Contains(status, "Closed: calls go through") {
		status = s.next("integration-vapi")
	}
	if toast := s.next("toast"); !strings.Contains(toast, "Vapi has recovered") {
		t.Errorf("toast on recovery: %s", toast)
	}
}

// TestLiveUpdatesSessionEndsElsewhere: a session that ends without this
// instance hearing of it (expired, or signed out on an instance with no
// events between them) ends the stream at a heartbeat, with the notice.
func TestLiveUpdatesSessionEndsElsewhere(t *testing.T) {
	a := newTestApp(t, withConfig(func(c *handlers.Config) { c.Heartbeat = 200 * time.Millisecond }))
	a.apiOwner(true)
	base := "http://" + a.serve()
	session := a.cookies["ava_session"]
	s := openStream(t, base, session)
	if s.resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /events: %d", s.resp.StatusCode)
	}
	other, err := a.restart() // the same database, another hub: no event reaches a
	if err != nil {
		t.Fatal(err)
	}
	if err := other.accounts.EndSession(context.Background(), session); err != nil {
		t.Fatal(err)
	}
	s.next("signed-out")
	s.waitEnded(time.Second)
	s.mu.Lock()
	heartbeats := len(s.comments)
	s.mu.Unlock()
	if heartbeats < 3 {
		t.Errorf("%d comments before the end, want the retry line and heartbeats", heartbeats)
	}
	if !strings.Contains(a.logs.String(), `"reason":"session ended"`) {
		t.Error("no log line says the stream ended with its session")
	}
}

// TestLiveUpdatesLimits: an account's open streams are capped with a clear
// refusal, and stopping the server ends the streams at once rather than
// holding the graceful stop.
func TestLiveUpdatesLimits(t *testing.T) {
	a := newTestApp(t, withConfig(func(c *handlers.Config) { c.MaxStreams = 2 }))
	a.apiOwner(true)
	base := "http://" + a.serve()
	session := a.cookies["ava_session"]
	s1, s2 := openStream(t, base, session), openStream(t, base, session)
	third := openStream(t, base, session)
	if third.resp.StatusCode != http.StatusTooManyRequests || third.resp.Header.Get("Retry-After") == "" {
		t.Fatalf("third stream: %d (Retry-After %q), want 429 with Retry-After", third.resp.StatusCode, third.resp.Header.Get("Retry-After"))
	}
	if got := metricValue(t, a.registry, "ava_sse_connections"); got != 2 {
		t.Errorf("ava_sse_connections = %v, want 2", got)
	}

	start := time.Now()
	if err := a.console.Shutdown(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("shutdown took %s with two streams open", took)
	}
	s1.waitEnded(time.Second)
	s2.waitEnded(time.Second)
}

// metricValue reads a gauge or counter without labels from reg.
func metricValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			m := mf.GetMetric()[0]
			if g := m.GetGauge(); g != nil {
				return g.GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestLiveRegionsFetchAgain: the fragments a reconnecting page fetches are the same
// regions the stream sends: the whole card, its status part, the home sections.
func TestLiveRegionsFetchAgain(t *testing.T) {
	a := newTestApp(t)
	token := a.apiOwner(true)
	a.connectAPI(token)
	for path, want := range map[string][]string{
		"/fragments/integrations/vapi":        {`id="integration-vapi"`, `sse-swap="integration-vapi-card"`, "Disconnect Vapi", `id="integration-vapi-status"`},
		"/fragments/integrations/vapi/status": {`data-testid="breaker-state"`, "This account&#39;s own"},
		"/fragments/home/sections":            {`class="section-card"`, "Vapi settings", "Connected"},
	} {
		resp, body := a.get(path, "HX-Request", "true")
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d", path, resp.StatusCode)
			continue
		}
		for _, w := range want {
			if !strings.Contains(body, w) {
				t.Errorf("GET %s lacks %q:\n%s", path, w, body)
			}
		}
	}
	if _, body := a.get("/fragments/integrations/vapi/status", "HX-Request", "true"); strings.Contains(body, "<form") {
		t.Errorf("the status part holds a form:\n%s", body)
	}
}

package handlers

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/a-h/templ"
	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ava/console/components"
	"github.com/ava/console/services"
	"github.com/ava/console/services/account"
	"github.com/ava/console/services/events"
	"github.com/ava/console/services/integrations"
	"github.com/ava/console/services/vapi"
)

// EventSource is what the live updates need of the events hub.
type EventSource interface {
	SubscribeSince(accountID int64, since time.Time, origin string) (*events.Subscription, []events.Event)
	Origin() string
}

// Live updates (GET /events): how the stream behaves.
const (
	// defaultHeartbeat is how often a quiet stream sends a comment, which
	// also finds a browser gone and a session ended.
	defaultHeartbeat = 15 * time.Second
	// reconnectMillis is how soon a browser reconnects a stream that
	// ended (the SSE retry field).
	reconnectMillis = 1000
	// streamsBudget is the budget a minute of stream openings, its own:
	// a stream is one request however long it lasts, and every page opens
	// one.
	streamsBudget = 120
	// defaultMaxStreams is the most streams one account may hold open on
	// one instance (a browser holds at most 6 connections to a host over
	// HTTP/1.1: a few tabs).
	defaultMaxStreams = 20
	// streamID is the id a stream gives itself: a browser reconnecting
	// sends it back (Last-Event-ID), which tells a reconnect from a page's
	// first stream.
	streamID = "live"
)

// The names of the events a stream sends. Each one's data is the HTML of
// the region of that name, as its fragment route renders it.
const (
	eventToast        = "toast"         // a toast: appended to #toasts
	eventSignedOut    = "signed-out"    // the session ended: the page says so, the stream closes
	eventHomeSections = "home-sections" // the home page's sections (GET /fragments/home/sections)
	eventVapiChanges  = "vapi-changes"  // the Vapi settings' Recent changes (GET /fragments/vapi/changes)
)

// eventSetting is the event of one setting's row ("vapi-setting-firstMessage").
func eventSetting(integration, key string) string { return integration + "-setting-" + key }

// eventIntegration is the event of an integration's status on its card
// (GET /fragments/integrations/{name}/status).
func eventIntegration(name string) string { return "integration-" + name }

// eventCard is the event of an integration's whole card, sent when it is
// connected or disconnected (its buttons and form change too).
func eventCard(name string) string { return "integration-" + name + "-card" }

// eventConnection tells an integration's page that the connection changed:
// its regions fetch themselves again ("vapi-connection").
func eventConnection(name string) string { return name + "-connection" }

// streams counts the open streams, by account (this instance).
type streams struct {
	max   int
	gauge prometheus.Gauge

	mu    sync.Mutex
	count map[int64]int
}

func newStreams(max int, reg prometheus.Registerer) (*streams, error) {
	if max <= 0 {
		max = defaultMaxStreams
	}
	s := &streams{max: max, count: map[int64]int{}, gauge: prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "ava_sse_connections", Help: "Live-update streams (GET /events) open on this instance.",
	})}
	if reg != nil {
		if err := reg.Register(s.gauge); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *streams) acquire(account int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.count[account] >= s.max {
		return false
	}
	s.count[account]++
	s.gauge.Inc()
	return true
}

func (s *streams) release(account int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.count[account]--; s.count[account] <= 0 {
		delete(s.count, account)
	}
	s.gauge.Dec()
}

// eventRoutes registers the stream and the fragments only it and a
// reconnecting page need.
func (h *Handlers) eventRoutes(r router, d policy) {
	r.get(eventsPath, policy{name: "events", max: streamsBudget}, h.eventStream)
	r.get("/fragments/home/sections", d, h.requirePage, h.homeSectionsFragment)
}

// pageServed is when the page that opens a stream was served, from the
// stream's query (since, Unix milliseconds, and from, the instance that
// served it, written into the page's sse-connect); zero when absent or
// not a number.
func pageServed(c *fiber.Ctx) time.Time {
	ms, err := strconv.ParseInt(c.Query("since"), 10, 64)
	if err != nil || ms <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// eventsPath is the live updates' stream. Its refusals are problem+json
// (isAPI): an EventSource cannot follow a redirect to a sign-in page.
const eventsPath = "/events"

// eventStream is GET /events: the signed-in browser's live updates, as
// Server-Sent Events, until the session ends, the browser goes or the
// server stops.
func (h *Handlers) eventStream(c *fiber.Ctx) error {
	u, _ := currentUser(c)
	session, _ := c.Locals(localSession).(string)
	if session == "" {
		if c.Cookies(h.sessionCookieName()) != "" {
			// A page whose session ended while its stream was down (the
			// browser reconnects with the old cookie): a refusal would only
			// be retried, unread; the page is told, and stops.
			return h.signedOutStream(c)
		}
		return services.Errorf(services.EUNAUTHORIZED, "Sign in to receive live updates: they are for signed-in browsers.")
	}
	if !h.streams.acquire(u.AccountID) {
		return &services.Error{Code: services.ERATELIMIT, RetryAfter: 30 * time.Second, Message: "This account has " +
			strconv.Itoa(h.streams.max) + " live-update streams open already, the most it may: close some console tabs, then reload."}
	}
	// Fiber's strings alias the request's buffers, which fasthttp reuses
	// once the handler returns; the stream lives on.
	session = strings.Clone(session)
	served := pageServed(c)
	if c.Get("Last-Event-ID") != "" {
		// A reconnect (the stream's id came back): the page fetches its
		// regions again itself, fresher than any replay.
		served = time.Time{}
	}
	sub, missed := h.events.SubscribeSince(u.AccountID, served, c.Query("from"))
	s := &liveStream{
		h: h, user: u, session: session, sessionID: account.SessionID(session), csrf: csrfToken(c),
		// The stream outlives the request: a context of its own, with
		// copies of the request's values for the logs.
		ctx: services.WithAccountID(services.WithCorrelationID(context.Background(),
			strings.Clone(services.CorrelationID(c.UserContext()))), u.AccountID),
		conn:   c.Context().Conn(),
		sub:    sub,
		missed: missed,
		start:  time.Now(),
		sent:   map[string]string{},
	}
	c.Set(fiber.HeaderContentType, "text/event-stream; charset=utf-8")
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set("X-Accel-Buffering", "no") // nginx: pass each event on at once
	c.Context().SetBodyStreamWriter(s.run)
	return nil
}

// signedOutStream answers a stream that is over before it starts: the
// signed-out notice, then the end.
func (h *Handlers) signedOutStream(c *fiber.Ctx) error {
	m, err := signedOutMessage(c.UserContext())
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, "text/event-stream; charset=utf-8")
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.SendString(sseMessages([]message{m}))
}

// signedOutMessage is the event that tells a page its session ended.
func signedOutMessage(ctx context.Context) (message, error) {
	var b strings.Builder
	err := components.SignedOutNotice().Render(ctx, &b)
	return message{eventSignedOut, b.String()}, err
}

// liveStream is one open stream.
type liveStream struct {
	h         *Handlers
	user      services.User
	session   string
	sessionID string
	csrf      string
	ctx       context.Context
	conn      net.Conn
	sub       *events.Subscription
	// missed are the events of the account that came after the page was
	// served and before this stream began: the stream starts with them.
	missed []events.Event
	start  time.Time
	// sent is the last HTML sent of each region, so that an event that
	// changes nothing a region shows sends nothing.
	sent map[string]string
	// was is what the integrations' statuses were at the last look, by
	// name: their changes become toasts.
	was map[string]integrations.Status
}

// run writes the stream, in a goroutine of its own that fasthttp starts at
// SetBodyStreamWriter and that outlives the request: it touches nothing of
// the fiber.Ctx. Its writes wait until the server sends the response.
func (s *liveStream) run(w *bufio.Writer) {
	defer s.h.streams.release(s.user.AccountID)
	defer s.sub.Close()
	reason := "browser gone"
	defer func() {
		s.h.log.InfoContext(s.ctx, "live updates stream ended", slog.String("reason", reason),
			slog.Float64("duration_s", time.Since(s.start).Seconds()))
	}()
	if statuses, err := s.h.integrations.Statuses(s.ctx, s.user.AccountID); err == nil {
		s.remember(statuses)
	}
	// The id comes back as Last-Event-ID when the browser reconnects.
	if s.write(w, "retry: "+strconv.Itoa(reconnectMillis)+"\nid: "+streamID+"\n: live updates for this page\n\n") != nil {
		return
	}
	for _, e := range s.missed {
		if r, end := s.handle(w, e); end {
			reason = r
			return
		}
	}
	s.missed = nil
	tick := time.NewTicker(s.h.heartbeat)
	defer tick.Stop()
	for {
		select {
		case e, ok := <-s.sub.Events():
			switch {
			case !ok && s.sub.Lost():
				reason = "events missed: the page reconnects and fetches its regions again"
				return
			case !ok:
				reason = "server stopping"
				return
			}
			if r, end := s.handle(w, e); end {
				reason = r
				return
			}
		case <-tick.C:
			if _, err := s.h.accounts.SessionUser(s.ctx, s.session); services.ErrorCode(err) == services.EUNAUTHORIZED {
				reason = "session ended"
				_ = s.signedOut(w)
				return
			}
			if s.write(w, ": still here\n\n") != nil {
				return
			}
		}
	}
}

// handle sends what e changes on the page; end says the stream is over
// (the session was signed out, the browser is gone), and why.
func (s *liveStream) handle(w *bufio.Writer, e events.Event) (reason string, end bool) {
	if e.Kind == events.SessionEnded && e.Session == s.sessionID {
		_ = s.signedOut(w)
		return "signed out", true
	}
	if s.send(w, s.messages(e)) != nil {
		return "browser gone", true
	}
	return "", false
}

// message is one event to send: its name and its data (HTML).
type message struct {
	name, data string
}

// messages are what an event changes on this account's pages: the regions
// whose HTML differs from what was sent last, and the toasts it deserves.
func (s *liveStream) messages(e events.Event) []message {
	var out []message
	region := func(name string, comp templ.Component) {
		var b strings.Builder
		if err := comp.Render(s.ctx, &b); err != nil {
			s.h.log.ErrorContext(s.ctx, "rendering a live update failed", slog.String("event", name), slog.Any("error", err))
			return
		}
		if html := b.String(); s.sent[name] != html {
			s.sent[name] = html
			out = append(out, message{name, html})
		}
	}
	switch e.Kind {
	case events.SettingChanged:
		var setting vapi.Setting
		if e.AccountID == s.user.AccountID && e.Integration == vapi.Name && json.Unmarshal(e.Data, &setting) == nil && setting.Key == e.Key {
			region(eventSetting(e.Integration, e.Key), components.SettingRowView(components.SettingRow{Setting: setting, CSRF: s.csrf}))
		}
		if s.h.vapi != nil {
			if changes, err := s.h.vapi.Changes(s.ctx, s.user.AccountID, recentChanges); err == nil {
				region(eventVapiChanges, templ.ComponentFunc(func(_ context.Context, w io.Writer) error {
					return s.h.engine.Render(w, "fragments/vapi_changes", changesList{Changes: changes})
				}))
			}
		}
	case events.IntegrationChanged, events.BreakerChanged:
		statuses, err := s.h.integrations.Statuses(s.ctx, s.user.AccountID)
		if err != nil {
			s.h.log.WarnContext(s.ctx, "live update: integration statuses unreadable", slog.Any("error", err))
			return nil
		}
		for _, st := range statuses {
			card := components.IntegrationCard{Status: st, CSRF: s.csrf}
			region(eventIntegration(st.Name()), components.IntegrationStatusView(card))
			if e.Kind == events.IntegrationChanged && e.Integration == st.Name() && connectionChange(e.State) {
				region(eventCard(st.Name()), components.IntegrationCardView(card))
				out = append(out, message{eventConnection(st.Name()), st.Name()})
			}
		}
		out = append(out, s.toasts(statuses)...)
		s.remember(statuses)
	default:
		return nil
	}
	if sections, err := s.h.sections(s.ctx, s.user); err == nil {
		region(eventHomeSections, components.HomeSections(sections))
	}
	return out
}

// connectionChange reports whether an integration event changes the
// connection itself (not only how its calls fare).
func connectionChange(state string) bool {
	return state == integrations.StateConnected || state == integrations.StateDisconnected || state == integrations.StateNeedsReconnect
}

// toasts say which integrations started failing or recovered since the
// last look.
func (s *liveStream) toasts(statuses []integrations.Status) []message {
	var out []message
	toast := func(kind, text string) {
		var b strings.Builder
		if components.Toast(kind, text).Render(s.ctx, &b) == nil {
			out = append(out, message{eventToast, b.String()})
		}
	}
	for _, st := range statuses {
		was, ok := s.was[st.Name()]
		if !ok || !st.Configured {
			continue
		}
		label := st.Spec.Label
		opened := st.BreakerState == "open" && was.BreakerState != "open"
		closed := st.BreakerState == "closed" && was.BreakerState != "closed"
		switch {
		case opened:
			toast(components.ToastError, label+" is failing: calls are paused after repeated failures.")
		case st.Failing() && !was.Failing():
			toast(components.ToastError, label+" is failing: "+st.LastError)
		case (closed || was.Failing()) && !st.Failing() && st.BreakerState == "closed":
			toast(components.ToastSuccess, label+" has recovered: calls go through again.")
		}
	}
	return out
}

func (s *liveStream) remember(statuses []integrations.Status) {
	s.was = make(map[string]integrations.Status, len(statuses))
	for _, st := range statuses {
		s.was[st.Name()] = st
	}
}

// signedOut tells the page its session ended; the browser closes the
// stream on this event rather than reconnect.
func (s *liveStream) signedOut(w *bufio.Writer) error {
	m, err := signedOutMessage(s.ctx)
	if err != nil {
		return err
	}
	return s.send(w, []message{m})
}

func (s *liveStream) send(w *bufio.Writer, msgs []message) error {
	if len(msgs) == 0 {
		return nil
	}
	return s.write(w, sseMessages(msgs))
}

// sseMessages frames messages as Server-Sent Events.
func sseMessages(msgs []message) string {
	var b strings.Builder
	for _, m := range msgs {
		b.WriteString("event: ")
		b.WriteString(m.name)
		b.WriteByte('\n')
		// A browser ends an SSE line at CR, LF or CRLF: any of them in
		// the HTML (a value typed with a bare CR) starts a new data line.
		data := strings.ReplaceAll(strings.ReplaceAll(m.data, "\r\n", "\n"), "\r", "\n")
		for line := range strings.SplitSeq(data, "\n") {
			b.WriteString("data: ")
			b.WriteString(line)
			b.WriteByte('\n')
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// write sends text at once. The connection's write deadline moves with
// each write: the server's WriteTimeout would end the stream otherwise.
// An error means the browser has gone.
func (s *liveStream) write(w *bufio.Writer, text string) error {
	if s.conn != nil {
		_ = s.conn.SetWriteDeadline(time.Now().Add(2 * s.h.heartbeat))
	}
	if _, err := w.WriteString(text); err != nil {
		return err
	}
	return w.Flush()
}

// homeSectionsFragment is the home page's sections: what a reconnecting
// home page fetches again.
func (h *Handlers) homeSectionsFragment(c *fiber.Ctx) error {
	u, _ := currentUser(c)
	sections, err := h.sections(c.UserContext(), u)
	if err != nil {
		return err
	}
	return renderComponent(c, components.HomeSections(sections))
}

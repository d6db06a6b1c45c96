// Package googletest is a wire-level fake of Google's OAuth 2.0 endpoints
// (authorization, token, revoke) and of Google Calendar v3's events.list,
// for tests. It speaks Google's JSON and checks what Google checks: the
// client's id and secret, the registered redirect URI, PKCE (S256 only),
// single-use authorization codes that expire after ten minutes (a code
// used twice also revokes what it issued), refresh tokens that only come
// with access_type=offline and, once the owner has a live grant, only with
// prompt=consent again (oauth2.ApprovalForce), revoked grants, expired
// access tokens, the scopes a token carries and events.list's query
// parameters. It fails on demand (5xx, 429, rate limits, slow answers,
// dropped connections) through CalendarFaults and TokenFaults.
//
// In Go tests, start a real server and point golang.org/x/oauth2 at it:
//
//	f := googletest.Start(t, googletest.Options{Consent: googletest.AutoAllow})
//	cfg := f.Config(callbackURL, googletest.ScopeCalendarEventsReadOnly)
//	verifier := oauth2.GenerateVerifier()
//	authURL := cfg.AuthCodeURL(state, oauth2.AccessTypeOffline, oauth2.ApprovalForce,
//		oauth2.S256ChallengeOption(verifier))
//	// GET authURL: 302 to callbackURL?code=...&state=...&scope=...
//	tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
//	// cfg.Client(ctx, tok) lists events at
//	// f.URL + "/calendar/v3/calendars/primary/events" and refreshes by itself.
//
// Tests that do not need the authorization step take tokens from
// IssueToken. Failures are queued per side:
//
//	f.CalendarFaults.FailNext(1, googletest.Failure{Status: 403, Reason: "rateLimitExceeded", RetryAfter: "30"})
//	f.TokenFaults.FailAlways(googletest.Failure{Status: 503})
//
// A Fake is also an http.Handler: New returns one without a listener, to
// be served in process (upstreamtest.InProcess) or on any listener. Set
// URL to the base URL it is reached at so that AuthURL, TokenURL,
// RevokeURL and Config give absolute URLs.
//
// Browser tests serve the fake with Start too (Chromium reaches f.URL),
// configure the console with AuthURL, TokenURL, RevokeURL and URL (the
// Calendar base), and use Interactive consent: the authorization URL shows a
// plain HTML page ("Sign in - Google Accounts") with "Allow" and "Cancel"
// buttons, each a form without any script, and the browser is redirected
// to the redirect URI with a code (Allow) or error=access_denied (Cancel).
// The page is shown on every authorization, even when the owner already
// consented (Google skips it then unless prompt=consent).
//
// Simplifications: there is one Google account (the primary calendar's
// owner) and one OAuth client; no id_token is issued for the openid scope;
// recurring events are not expanded (store their instances); events.list
// ignores syncToken, updatedMin and extended properties, orders by start
// whatever orderBy says, and returns cancelled events exactly as stored
// (the client under test must leave them out).
package googletest

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/ava/console/services/upstream/upstreamtest"
)

// The OAuth client the fake knows unless Options say otherwise. The secret
// has the shape of a real one (GOCSPX-...).
//
//nolint:gosec // G101: the fake's made-up credentials, not secrets
const (
	DefaultClientID     = "ava-test.apps.googleusercontent.com"
	DefaultClientSecret = "GOCSPX-fake-client-secret"
)

// DefaultCalendarSummary is the primary calendar's summary (its owner's
// address) unless SetCalendarSummary changes it.
const DefaultCalendarSummary = "owner@example.com"

// Scopes a Calendar client asks for. Any of them lets a token list events.
const (
	ScopeCalendar               = "https://www.googleapis.com/auth/calendar"
	ScopeCalendarReadOnly       = "https://www.googleapis.com/auth/calendar.readonly"
	ScopeCalendarEvents         = "https://www.googleapis.com/auth/calendar.events"
	ScopeCalendarEventsReadOnly = "https://www.googleapis.com/auth/calendar.events.readonly"
)

// Paths the fake serves, as Google does (accounts.google.com for the
// authorization page, oauth2.googleapis.com for the token and revoke
// endpoints, www.googleapis.com for Calendar), all under one URL.
const (
	AuthPath     = "/o/oauth2/v2/auth"
	DecidePath   = "/o/oauth2/v2/auth/decide" // where the consent page's buttons post
	TokenPath    = "/token"
	RevokePath   = "/revoke"
	CalendarPath = "/calendar/v3/" // events at /calendar/v3/calendars/primary/events
)

// How long authorization codes live, as at Google.
const codeTTL = 10 * time.Minute

// ConsentMode is what the owner does when the authorization URL is opened.
type ConsentMode int

const (
	// Interactive shows an HTML consent page with "Allow" and "Cancel"
	// buttons (browser tests).
	Interactive ConsentMode = iota
	// AutoAllow redirects at once to redirect_uri with code and state.
	AutoAllow
	// AutoDeny redirects at once with error=access_denied and state.
	AutoDeny
)

// Options configure a Fake. The zero value is usable.
type Options struct {
	// ClientID and ClientSecret are the one OAuth client the fake knows;
	// empty ones default to DefaultClientID and DefaultClientSecret.
	ClientID, ClientSecret string
	// RedirectURI is the client's registered redirect URI, which must be
	// used exactly; empty accepts any absolute http(s) URI.
	RedirectURI string
	// AccessTokenTTL is the lifetime (expires_in) of issued access tokens;
	// default one hour. golang.org/x/oauth2 refreshes tokens that expire
	// within 10 seconds, so a TTL of a few seconds makes every use refresh.
	AccessTokenTTL time.Duration
	// Consent is what the owner does on the consent page; SetConsent changes it.
	Consent ConsentMode
	// AppName is the client's name on the consent page; default "Ava console".
	AppName string
	// Now is the fake's clock (code and token expiry); default time.Now.
	Now func() time.Time
}

// Failure is how the fake answers the next requests of one side
// (CalendarFaults or TokenFaults) instead of doing its job.
type Failure struct {
	// Status, Reason and Message make an error answer: Google's error JSON
	// on Calendar ({"error":{"code","message","errors":[{"reason"...}]}}),
	// {"error": Reason, "error_description": Message} on the token and
	// revoke endpoints. Empty ones get defaults for the status (Calendar:
	// 403 and 429 rateLimitExceeded, 500 and 503 backendError...).
	// A zero Status (with no Drop) only delays the answer.
	Status          int
	Reason, Message string
	// RetryAfter, when set, is sent as the Retry-After header (seconds).
	RetryAfter string
	// Drop closes the connection without an answer.
	Drop bool
	// Delay waits before answering (or failing), unless the client gives up first.
	Delay time.Duration
}

// Dropped reports whether the failure drops the connection.
func (f Failure) Dropped() bool { return f.Drop }

// Delayed is how long the failure waits before answering.
func (f Failure) Delayed() time.Duration { return f.Delay }

// Request is what the fake received.
type Request struct {
	Method, Path string
	// Query is the URL's query (the authorization request's parameters,
	// access_type and prompt included; events.list's).
	Query url.Values
	// Form is the urlencoded body of a POST (token, revoke, consent).
	Form          url.Values
	Authorization string
	// CorrelationID is the X-Correlation-ID header.
	CorrelationID string
}

// Event is an event of the primary calendar.
type Event struct {
	// ID defaults to a generated one; Status to "confirmed" ("cancelled"
	// is the other value the fake expects); HTMLLink to Google's link.
	ID, Status, Summary, Location, HTMLLink string
	// Start and End give a Date (all-day) or a DateTime. An empty End is
	// the Start (a DateTime) or the next day (a Date).
	Start, End EventTime
}

// EventTime is an event's start or end, as Google writes it.
type EventTime struct {
	// Date is YYYY-MM-DD, for all-day events.
	Date string `json:"date,omitempty"`
	// DateTime is RFC 3339 with an offset, for timed events.
	DateTime string `json:"dateTime,omitempty"`
	// TimeZone is an IANA time zone name, optional.
	TimeZone string `json:"timeZone,omitempty"`
}

// Fake is the fake Google. Create it with New or Start.
type Fake struct {
	// URL is the base URL the fake is reached at: set by Start, by the
	// caller otherwise.
	URL string
	// CalendarFaults fail Calendar requests; TokenFaults fail the token
	// and revoke endpoints. The authorization page never fails.
	CalendarFaults, TokenFaults upstreamtest.Faults[Failure]
	upstreamtest.Recorder[Request]

	opts Options // fixed after New

	mu        sync.Mutex
	consent   ConsentMode
	pending   map[string]*authRequest // consent id -> authorization awaiting the owner's decision
	codes     map[string]*authCode
	grants    []*grant
	refresh   map[string]*grant
	access    map[string]*accessToken
	pages     map[string]page // page token -> where the listing goes on
	events    []storedEvent
	summary   string
	updated   time.Time // when the events last changed
	revoked   []string
	exchanges int
	refreshes int
}

// authRequest is a valid authorization request.
type authRequest struct {
	redirectURI string
	scope       string // space separated, as requested
	state       string
	hasState    bool
	challenge   string
	offline     bool // access_type=offline
	forceAsk    bool // prompt includes consent
}

// authCode is an authorization code and what became of it.
type authCode struct {
	req     *authRequest
	expires time.Time
	used    bool
	grant   *grant // what the code's exchange issued
}

// grant is the owner's consent as tokens carry it: a refresh token (when
// offline access was asked for) and the access tokens issued under it.
type grant struct {
	scope        string
	refreshToken string
	revoked      bool
}

type accessToken struct {
	grant   *grant
	expires time.Time
	expired bool // ExpireAccessTokens
}

// storedEvent is an Event with its defaults filled in and its times parsed.
type storedEvent struct {
	Event
	start, end time.Time
}

// New returns a fake that is only a handler: URL is empty until set.
func New(opts Options) *Fake {
	if opts.ClientID == "" {
		opts.ClientID = DefaultClientID
	}
	if opts.ClientSecret == "" {
		opts.ClientSecret = DefaultClientSecret
	}
	if opts.AccessTokenTTL <= 0 {
		opts.AccessTokenTTL = time.Hour
	}
	if opts.AppName == "" {
		opts.AppName = "Ava console"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Fake{
		opts:    opts,
		consent: opts.Consent,
		pending: map[string]*authRequest{},
		codes:   map[string]*authCode{},
		refresh: map[string]*grant{},
		access:  map[string]*accessToken{},
		pages:   map[string]page{},
		summary: DefaultCalendarSummary,
		updated: opts.Now().UTC(),
	}
}

// Start serves a new fake on a local port (httptest.NewServer) until the
// test ends; URL is set.
func Start(t testing.TB, opts Options) *Fake {
	t.Helper()
	f := New(opts)
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

// AuthURL is the authorization endpoint (accounts.google.com/o/oauth2/v2/auth).
func (f *Fake) AuthURL() string { return f.URL + AuthPath }

// TokenURL is the token endpoint (oauth2.googleapis.com/token).
func (f *Fake) TokenURL() string { return f.URL + TokenPath }

// RevokeURL is the revocation endpoint (oauth2.googleapis.com/revoke).
func (f *Fake) RevokeURL() string { return f.URL + RevokePath }

// ClientID is the OAuth client id the fake knows.
func (f *Fake) ClientID() string { return f.opts.ClientID }

// ClientSecret is the OAuth client secret the fake knows.
func (f *Fake) ClientSecret() string { return f.opts.ClientSecret }

// Endpoint is the fake's oauth2.Endpoint, with credentials sent in the
// form as golang.org/x/oauth2/google's Endpoint does.
func (f *Fake) Endpoint() oauth2.Endpoint {
	return oauth2.Endpoint{AuthURL: f.AuthURL(), TokenURL: f.TokenURL(), AuthStyle: oauth2.AuthStyleInParams}
}

// Config is an oauth2.Config for the fake's client.
func (f *Fake) Config(redirectURL string, scopes ...string) *oauth2.Config {
	return &oauth2.Config{
		ClientID: f.opts.ClientID, ClientSecret: f.opts.ClientSecret,
		Endpoint: f.Endpoint(), RedirectURL: redirectURL, Scopes: scopes,
	}
}

// SetConsent changes what the owner does on the next authorizations.
func (f *Fake) SetConsent(m ConsentMode) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.consent = m
}

// SetEvents replaces the primary calendar's events. It panics on an event
// whose times do not parse: that is a mistake in the test.
func (f *Fake) SetEvents(events ...Event) {
	stored := make([]storedEvent, len(events))
	for i, e := range events {
		s, err := newStoredEvent(e, i)
		if err != nil {
			panic("googletest: SetEvents: " + err.Error())
		}
		stored[i] = s
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = stored
	f.updated = f.opts.Now().UTC()
}

// SetCalendarSummary changes the primary calendar's summary (its owner's
// address, also shown on the consent page).
func (f *Fake) SetCalendarSummary(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.summary = s
}

// RevokeGrants revokes every refresh and access token issued so far, as
// when the owner removes the app's access in their Google Account.
func (f *Fake) RevokeGrants() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, g := range f.grants {
		g.revoked = true
	}
}

// ExpireAccessTokens makes every access token issued so far refused (401
// authError) from now on; refresh tokens still work.
func (f *Fake) ExpireAccessTokens() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, a := range f.access {
		a.expired = true
	}
}

// IssueToken makes a grant as if the owner had consented to scopes (with
// offline access) and the code had been exchanged, for tests that do not
// go through the authorization page. It does not count as an exchange.
func (f *Fake) IssueToken(scopes ...string) *oauth2.Token {
	f.mu.Lock()
	defer f.mu.Unlock()
	g := f.newGrant(strings.Join(scopes, " "), true)
	access, expires := f.newAccessToken(g)
	return &oauth2.Token{
		AccessToken: access, TokenType: "Bearer", RefreshToken: g.refreshToken,
		Expiry: expires, ExpiresIn: int64(f.opts.AccessTokenTTL / time.Second),
	}
}

// Revoked returns the tokens posted to /revoke so far, known or not, in order.
func (f *Fake) Revoked() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.revoked...)
}

// Exchanges is how many authorization codes were exchanged successfully.
func (f *Fake) Exchanges() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.exchanges
}

// Refreshes is how many refresh token grants succeeded.
func (f *Fake) Refreshes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.refreshes
}

// ServeHTTP serves Google's OAuth endpoints and Calendar API.
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req := Request{
		Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(),
		Authorization: r.Header.Get("Authorization"), CorrelationID: r.Header.Get("X-Correlation-ID"),
	}
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		if err := r.ParseForm(); err == nil {
			req.Form = r.PostForm
		}
	}
	f.Record(req)
	switch p := r.URL.Path; {
	case p == AuthPath:
		f.authorize(w, r)
	case p == DecidePath:
		f.decide(w, r)
	case p == TokenPath:
		if f.begin(&f.TokenFaults, w, r, writeTokenFailure) {
			f.token(w, r)
		}
	case p == RevokePath:
		if f.begin(&f.TokenFaults, w, r, writeTokenFailure) {
			f.revoke(w, r)
		}
	case strings.HasPrefix(p, CalendarPath):
		if f.begin(&f.CalendarFaults, w, r, writeCalendarFailure) {
			f.calendar(w, r)
		}
	default:
		http.NotFound(w, r)
	}
}

// begin applies the faults of one side; it reports whether the request is
// still to be served.
func (f *Fake) begin(q *upstreamtest.Faults[Failure], w http.ResponseWriter, r *http.Request,
	fail func(http.ResponseWriter, Failure)) bool {
	failure, failing, proceed := upstreamtest.Begin(q, w, r)
	if !proceed {
		return false
	}
	if failing && failure.Status != 0 {
		fail(w, failure)
		return false
	}
	return true
}

// now is the fake's clock; callers may hold f.mu.
func (f *Fake) now() time.Time { return f.opts.Now() }

// newGrant records a grant; f.mu is held.
func (f *Fake) newGrant(scope string, offline bool) *grant {
	g := &grant{scope: scope}
	if offline {
		g.refreshToken = "1//" + randomToken()
		f.refresh[g.refreshToken] = g
	}
	f.grants = append(f.grants, g)
	return g
}

// newAccessToken issues an access token under g; f.mu is held.
func (f *Fake) newAccessToken(g *grant) (token string, expires time.Time) {
	token = "ya29." + randomToken()
	expires = f.now().Add(f.opts.AccessTokenTTL)
	f.access[token] = &accessToken{grant: g, expires: expires}
	return token, expires
}

// liveOfflineGrant reports whether the owner has a grant with a refresh
// token not revoked; f.mu is held.
func (f *Fake) liveOfflineGrant() bool {
	for _, g := range f.grants {
		if g.refreshToken != "" && !g.revoked {
			return true
		}
	}
	return false
}

// randomToken is an unguessable token body.
func randomToken() string { return rand.Text() + rand.Text() }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache, no-store, max-age=0, must-revalidate")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// newStoredEvent fills in an event's defaults and parses its times.
func newStoredEvent(e Event, i int) (storedEvent, error) {
	if e.ID == "" {
		e.ID = fmt.Sprintf("fakeevent%04d", i+1)
	}
	if e.Status == "" {
		e.Status = "confirmed"
	}
	start, err := e.Start.instant()
	if err != nil {
		return storedEvent{}, fmt.Errorf("event %q start: %w", e.ID, err)
	}
	var end time.Time
	switch {
	case e.End != EventTime{}:
		if end, err = e.End.instant(); err != nil {
			return storedEvent{}, fmt.Errorf("event %q end: %w", e.ID, err)
		}
	case e.Start.Date != "":
		end = start.AddDate(0, 0, 1)
		e.End = EventTime{Date: end.Format(time.DateOnly), TimeZone: e.Start.TimeZone}
	default:
		end = start
		e.End = e.Start
	}
	return storedEvent{Event: e, start: start, end: end}, nil
}

// instant is when t is, all-day dates counting as midnight UTC.
func (t EventTime) instant() (time.Time, error) {
	switch {
	case t.DateTime != "":
		return time.Parse(time.RFC3339, t.DateTime)
	case t.Date != "":
		return time.Parse(time.DateOnly, t.Date)
	}
	return time.Time{}, errors.New("neither date nor dateTime")
}

// Tokens returns every token issued so far: refresh tokens and access
// tokens (tests look for them where they must never appear).
func (f *Fake) Tokens() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for t := range f.refresh {
		out = append(out, t)
	}
	for t := range f.access {
		out = append(out, t)
	}
	return out
}

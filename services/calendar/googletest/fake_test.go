package googletest_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/ava/console/services/calendar/googletest"
	"github.com/ava/console/services/upstream/upstreamtest"
)

const callback = "http://127.0.0.1:8080/oauth/google/callback"

// noRedirect is a client that stops at redirects, as the browser's last
// hop to the callback is what the tests look at.
func noRedirect(rt http.RoundTripper) *http.Client {
	return &http.Client{
		Transport:     rt,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// openAuthURL opens an authorization URL that redirects at once and
// returns the callback's query.
func openAuthURL(t *testing.T, client *http.Client, authURL string) url.Values {
	t.Helper()
	resp, err := client.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("authorization: status %d, want 302: %s", resp.StatusCode, body)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != callback {
		t.Fatalf("redirected to %s, want %s", got, callback)
	}
	return loc.Query()
}

// authorize runs the authorization step with PKCE and returns the code and
// its verifier.
func authorize(t *testing.T, cfg *oauth2.Config, opts ...oauth2.AuthCodeOption) (code, verifier string) {
	t.Helper()
	verifier = oauth2.GenerateVerifier()
	opts = append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}, opts...)
	q := openAuthURL(t, noRedirect(nil), cfg.AuthCodeURL("state-123", opts...))
	if q.Get("state") != "state-123" {
		t.Fatalf("state = %q, want state-123", q.Get("state"))
	}
	if q.Get("code") == "" {
		t.Fatalf("no code in the callback: %v", q)
	}
	return q.Get("code"), verifier
}

// connect is the whole flow as the console runs it: offline access,
// consent forced, PKCE.
func connect(t *testing.T, cfg *oauth2.Config) *oauth2.Token {
	t.Helper()
	code, verifier := authorize(t, cfg, oauth2.AccessTypeOffline, oauth2.ApprovalForce)
	tok, err := cfg.Exchange(t.Context(), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// retrieveError asserts that err is a token endpoint error with that code
// and description.
func retrieveError(t *testing.T, err error, status int, code, description string) {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("err = %v, want a *oauth2.RetrieveError", err)
	}
	if re.Response.StatusCode != status || re.ErrorCode != code || re.ErrorDescription != description {
		t.Fatalf("token error = %d %q %q, want %d %q %q",
			re.Response.StatusCode, re.ErrorCode, re.ErrorDescription, status, code, description)
	}
}

type eventsPage struct {
	Kind, Summary, TimeZone, NextPageToken string
	Items                                  []struct {
		Kind, ID, Status, Summary, Location, HTMLLink string
		Start, End                                    googletest.EventTime
	}
	raw map[string]any
}

// get lists events of a calendar with client; it returns the status and
// the decoded body (a page, or Google's error in raw).
func get(t *testing.T, client *http.Client, f *googletest.Fake, calendarID string, query url.Values) (int, http.Header, eventsPage) {
	t.Helper()
	u := f.URL + "/calendar/v3/calendars/" + url.PathEscape(calendarID) + "/events?" + query.Encode()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Correlation-ID", "corr-1")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var page eventsPage
	if err := json.Unmarshal(body, &page); err != nil {
		t.Fatalf("body %s: %v", body, err)
	}
	_ = json.Unmarshal(body, &page.raw)
	return resp.StatusCode, resp.Header, page
}

// bearer is a client that sends a fixed access token.
func bearer(token string) *http.Client {
	return oauth2.NewClient(context.Background(), oauth2.StaticTokenSource(&oauth2.Token{AccessToken: token}))
}

// apiError returns the first error item of Google's error JSON.
func apiError(t *testing.T, p eventsPage) (code float64, message string, item map[string]any) {
	t.Helper()
	e, ok := p.raw["error"].(map[string]any)
	if !ok {
		t.Fatalf("not an error: %v", p.raw)
	}
	items, _ := e["errors"].([]any)
	if len(items) != 1 {
		t.Fatalf("errors = %v, want one", e["errors"])
	}
	code, _ = e["code"].(float64)
	message, _ = e["message"].(string)
	item, _ = items[0].(map[string]any)
	return code, message, item
}

func TestExchangeWithPKCE(t *testing.T) {
	f := googletest.Start(t, googletest.Options{Consent: googletest.AutoAllow, RedirectURI: callback})
	f.SetEvents(googletest.Event{Summary: "Standup", Start: googletest.EventTime{DateTime: "2026-06-01T09:00:00Z"}})
	cfg := f.Config(callback, googletest.ScopeCalendarEventsReadOnly)

	tok := connect(t, cfg)
	if !strings.HasPrefix(tok.AccessToken, "ya29.") || !strings.HasPrefix(tok.RefreshToken, "1//") || tok.Type() != "Bearer" {
		t.Fatalf("token = %+v", tok)
	}
	if tok.ExpiresIn != 3600 || time.Until(tok.Expiry) < 59*time.Minute {
		t.Fatalf("expires_in = %d, expiry %v", tok.ExpiresIn, tok.Expiry)
	}
	if got := tok.Extra("scope"); got != googletest.ScopeCalendarEventsReadOnly {
		t.Fatalf("scope = %v", got)
	}
	if f.Exchanges() != 1 || f.Refreshes() != 0 {
		t.Fatalf("exchanges %d refreshes %d", f.Exchanges(), f.Refreshes())
	}

	status, _, page := get(t, cfg.Client(t.Context(), tok), f, "primary", url.Values{})
	if status != http.StatusOK || len(page.Items) != 1 || page.Items[0].Summary != "Standup" {
		t.Fatalf("events: %d %+v", status, page)
	}

	reqs := f.Requests()
	auth := reqs[0]
	if auth.Path != "/o/oauth2/v2/auth" || auth.Query.Get("access_type") != "offline" ||
		auth.Query.Get("prompt") != "consent" || auth.Query.Get("code_challenge_method") != "S256" {
		t.Fatalf("authorization request = %+v", auth)
	}
	exchange := reqs[1]
	if exchange.Path != "/token" || exchange.Form.Get("grant_type") != "authorization_code" ||
		exchange.Form.Get("client_id") != googletest.DefaultClientID || exchange.Form.Get("code_verifier") == "" {
		t.Fatalf("exchange request = %+v", exchange)
	}
	last := reqs[len(reqs)-1]
	if last.CorrelationID != "corr-1" || last.Authorization != "Bearer "+tok.AccessToken {
		t.Fatalf("events request = %+v", last)
	}
}

func TestInteractiveConsent(t *testing.T) {
	f := googletest.Start(t, googletest.Options{RedirectURI: callback})
	cfg := f.Config(callback, googletest.ScopeCalendarEventsReadOnly)
	client := noRedirect(nil)
	consentRe := regexp.MustCompile(`name="consent" value="([^"]+)"`)

	openPage := func() string {
		t.Helper()
		resp, err := client.Get(cfg.AuthCodeURL("s t&ate", oauth2.AccessTypeOffline,
			oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		page := string(body)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("consent page: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		for _, want := range []string{
			"<title>Sign in - Google Accounts</title>", "Ava console wants to access your Google Account",
			googletest.ScopeCalendarEventsReadOnly, googletest.DefaultCalendarSummary, ">Allow</button>", ">Cancel</button>",
			`action="/o/oauth2/v2/auth/decide"`,
		} {
			if !strings.Contains(page, want) {
				t.Fatalf("consent page lacks %q:\n%s", want, page)
			}
		}
		if strings.Contains(page, "<script") || strings.Contains(page, "http://") || strings.Contains(page, "https://fonts") {
			t.Fatalf("consent page loads something:\n%s", page)
		}
		m := consentRe.FindAllStringSubmatch(page, -1)
		if len(m) != 2 || m[0][1] != m[1][1] {
			t.Fatalf("consent ids: %v", m)
		}
		return m[0][1]
	}
	decide := func(id, action string) *http.Response {
		t.Helper()
		resp, err := client.PostForm(f.URL+googletest.DecidePath, url.Values{"consent": {id}, "action": {action}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}

	id := openPage()
	resp := decide(id, "allow")
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("allow: status %d", resp.StatusCode)
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if q := loc.Query(); q.Get("code") == "" || q.Get("state") != "s t&ate" || q.Get("scope") != googletest.ScopeCalendarEventsReadOnly {
		t.Fatalf("allow redirect: %s", loc)
	}
	resp = decide(id, "allow") // a consent page answers once
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "Error 400: invalid_request") {
		t.Fatalf("second decision: %d %s", resp.StatusCode, body)
	}

	resp = decide(openPage(), "cancel")
	loc, _ = url.Parse(resp.Header.Get("Location"))
	if q := loc.Query(); resp.StatusCode != http.StatusFound || q.Get("error") != "access_denied" ||
		q.Get("state") != "s t&ate" || q.Has("code") {
		t.Fatalf("cancel redirect: %d %s", resp.StatusCode, loc)
	}
}

func TestAutoDeny(t *testing.T) {
	f := googletest.Start(t, googletest.Options{Consent: googletest.AutoAllow})
	f.SetConsent(googletest.AutoDeny)
	cfg := f.Config(callback, googletest.ScopeCalendarEventsReadOnly)
	q := openAuthURL(t, noRedirect(nil), cfg.AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	if q.Get("error") != "access_denied" || q.Get("state") != "st" || q.Has("code") {
		t.Fatalf("callback query = %v", q)
	}
}

func TestAuthorizationRequestChecks(t *testing.T) {
	f := googletest.Start(t, googletest.Options{Consent: googletest.AutoAllow, RedirectURI: callback})
	valid := func() url.Values {
		return url.Values{
			"response_type": {"code"}, "client_id": {googletest.DefaultClientID}, "redirect_uri": {callback},
			"scope": {googletest.ScopeCalendarEventsReadOnly}, "state": {"x"},
			"code_challenge":        {oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())},
			"code_challenge_method": {"S256"},
		}
	}
	for _, tc := range []struct {
		name   string
		change func(url.Values)
		status int
		text   string
	}{
		{"unknown client", func(v url.Values) { v.Set("client_id", "other.apps.googleusercontent.com") }, 401, "Error 401: invalid_client"},
		{"redirect mismatch", func(v url.Values) { v.Set("redirect_uri", "http://127.0.0.1:8080/other") }, 400, "Error 400: redirect_uri_mismatch"},
		{"no response_type", func(v url.Values) { v.Del("response_type") }, 400, "response_type"},
		{"implicit flow", func(v url.Values) { v.Set("response_type", "token") }, 400, "Error 400: unsupported_response_type"},
		{"no scope", func(v url.Values) { v.Del("scope") }, 400, "Error 400: invalid_request"},
		{"unknown scope", func(v url.Values) { v.Set("scope", "calendar") }, 400, "Error 400: invalid_scope"},
		{"no PKCE", func(v url.Values) { v.Del("code_challenge"); v.Del("code_challenge_method") }, 400, "code_challenge"},
		{"plain PKCE", func(v url.Values) { v.Set("code_challenge_method", "plain") }, 400, "code_challenge_method"},
		{"short challenge", func(v url.Values) { v.Set("code_challenge", "abc") }, 400, "Error 400: invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := valid()
			tc.change(v)
			resp, err := noRedirect(nil).Get(f.AuthURL() + "?" + v.Encode())
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status || !strings.Contains(string(body), tc.text) ||
				!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
				t.Fatalf("%d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
		})
	}
	// Without a registered URI, any absolute http(s) URI will do.
	open := googletest.Start(t, googletest.Options{Consent: googletest.AutoAllow})
	q := openAuthURL(t, noRedirect(nil), open.Config(callback, googletest.ScopeCalendarReadOnly).
		AuthCodeURL("x", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	if q.Get("code") == "" {
		t.Fatalf("callback query = %v", q)
	}
}

func TestRefreshThroughTokenSource(t *testing.T) {
	// x/oauth2 refreshes tokens that expire within 10 seconds: with a
	// 2-second TTL every use refreshes.
	f := googletest.Start(t, googletest.Options{Consent: googletest.AutoAllow, AccessTokenTTL: 2 * time.Second})
	cfg := f.Config(callback, googletest.ScopeCalendarEventsReadOnly)
	tok := connect(t, cfg)
	if tok.ExpiresIn != 2 {
		t.Fatalf("expires_in = %d", tok.ExpiresIn)
	}
	ts := cfg.TokenSource(t.Context(), tok)
	fresh, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	if fresh.AccessToken == tok.AccessToken || fresh.RefreshToken != tok.RefreshToken || f.Refreshes() != 1 {
		t.Fatalf("refreshed %+v from %+v (%d refreshes)", fresh, tok, f.Refreshes())
	}
	reqs := f.Requests()
	if r := reqs[len(reqs)-1]; r.Form.Get("grant_type") != "refresh_token" || r.Form.Get("refresh_token") != tok.RefreshToken {
		t.Fatalf("refresh request = %+v", r)
	}
	if raw, ok := fresh.Extra("refresh_token").(string); ok && raw != "" {
		t.Fatal("a refresh answer carries a refresh_token")
	}
	status, _, _ := get(t, oauth2.NewClient(t.Context(), ts), f, "primary", url.Values{})
	if status != http.StatusOK || f.Refreshes() != 2 {
		t.Fatalf("events %d, refreshes %d", status, f.Refreshes())
	}
	// Both access tokens are still valid: refreshing does not revoke.
	if status, _, _ := get(t, bearer(tok.AccessToken), f, "primary", url.Values{}); status != http.StatusOK {
		t.Fatalf("first access token: %d", status)
	}
}

func TestRevokeGrants(t *testing.T) {
	f := googletest.Start(t, googletest.Options{Consent: googletest.AutoAllow})
	cfg := f.Config(callback, googletest.ScopeCalendarEventsReadOnly)
	tok := connect(t, cfg)
	f.RevokeGrants()

	expired := *tok
	expired.Expiry = time.Now().Add(-time.Minute)
	_, err := cfg.TokenSource(t.Context(), &expired).Token()
	retrieveError(t, err, 400, "invalid_grant", "Token has been expired or revoked.")
	status, _, page := get(t, bearer(tok.AccessToken), f, "primary", url.Values{})
	if _, _, item := apiError(t, page); status != http.StatusUnauthorized || item["reason"] != "authError" {
		t.Fatalf("events after revocation: %d %v", status, page.raw)
	}
	// A new consent works again.
	if tok2 := connect(t, cfg); tok2.RefreshToken == "" || tok2.RefreshToken == tok.RefreshToken {
		t.Fatalf("new grant: %+v", tok2)
	}
}

func TestUsedCodeRefused(t *testing.T) {
	f := googletest.Start(t, googletest.Options{Consent: googletest.AutoAllow})
	cfg := f.Config(callback, googletest.ScopeCalendarEventsReadOnly)
	code, verifier := authorize(t, cfg, oauth2.AccessTypeOffline)
	tok, err := cfg.Exchange(t.Context(), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	_, err = cfg.Exchange(t.Context(), code, oauth2.VerifierOption(verifier))
	retrieveError(t, err, 400, "invalid_grant", "Bad Request")
	if f.Exchanges() != 1 {
		t.Fatalf("exchanges = %d", f.Exchanges())
	}
	// The replay revoked what the code issued.
	expired := *tok
	expired.Expiry = time.Now().Add(-time.Minute)
	_, err = cfg.TokenSource(t.Context(), &expired).Token()
	retrieveError(t, err, 400, "invalid_grant", "Token has been expired or revoked.")
	if status, _, _ := get(t, bearer(tok.AccessToken), f, "primary", url.Values{}); status != http.StatusUnauthorized {
		t.Fatalf("access token after replay: %d", status)
	}
	_, err = cfg.Exchange(t.Context(), "4/0Aunknown", oauth2.VerifierOption(verifier))
	retrieveError(t, err, 400, "invalid_grant", "Bad Request")
}

func TestVerifierChecked(t *testing.T) {
	f := googletest.Start(t, googletest.Options{Consent: googletest.AutoAllow})
	cfg := f.Config(callback, googletest.ScopeCalendarEventsReadOnly)
	code, verifier := authorize(t, cfg, oauth2.AccessTypeOffline)

	_, err := cfg.Exchange(t.Context(), code, oauth2.VerifierOption(oauth2.GenerateVerifier()))
	retrieveError(t, err, 400, "invalid_grant", "Invalid code verifier.")
	_, err = cfg.Exchange(t.Context(), code)
	retrieveError(t, err, 400, "invalid_request", "Missing code verifier.")
	// Failed attempts do not use the code up.
	if _, err := cfg.Exchange(t.Context(), code, oauth2.VerifierOption(verifier)); err != nil {
		t.Fatal(err)
	}
}

func TestClientChecked(t *testing.T) {
	f := googletest.Start(t, googletest.Options{Consent: googletest.AutoAllow})
	for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleInParams, oauth2.AuthStyleInHeader} {
		cfg := f.Config(callback, googletest.ScopeCalendarEventsReadOnly)
		cfg.Endpoint.AuthStyle = style
		code, verifier := authorize(t, cfg)

		wrong := *cfg
		wrong.ClientSecret = "GOCSPX-wrong"
		_, err := wrong.Exchange(t.Context(), code, oauth2.VerifierOption(verifier))
		retrieveError(t, err, 401, "invalid_client", "Unauthorized")

		wrong = *cfg
		wrong.ClientID = "other.apps.googleusercontent.com"
		_, err = wrong.Exchange(t.Context(), code, oauth2.VerifierOption(verifier))
		retrieveError(t, err, 401, "invalid_client", "The OAuth client was not found.")

		if _, err := cfg.Exchange(t.Context(), code, oauth2.VerifierOption(verifier)); err != nil {
			t.Fatalf("auth style %d: %v", style, err)
		}
	}
	// x/oauth2's default probes Basic first; the fake accepts it.
	cfg := f.Config(callback, googletest.ScopeCalendarEventsReadOnly)
	cfg.Endpoint.AuthStyle = oauth2.AuthStyleAutoDetect
	code, verifier := authorize(t, cfg)
	if _, err := cfg.Exchange(t.Context(), code, oauth2.VerifierOption(verifier)); err != nil {
		t.Fatal(err)
	}
}

func TestRedirectURIMismatchAtToken(t *testing.T) {
	f := googletest.Start(t, googletest.Options{Consent: googletest.AutoAllow})
	cfg := f.Config(callback, googletest.ScopeCalendarEventsReadOnly)
	code, verifier := authorize(t, cfg)
	other := *cfg
	other.RedirectURL = "http://127.0.0.1:8080/other"
	_, err := other.Exchange(t.Context(), code, oauth2.VerifierOption(verifier))
	retrieveError(t, err, 400, "redirect_uri_mismatch", "Bad Request")
}

// clock is a settable Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestExpiry(t *testing.T) {
	c := &clock{t: time.Now()}
	f := googletest.Start(t, googletest.Options{Consent: googletest.AutoAllow, Now: c.Now})
	cfg := f.Config(callback, googletest.ScopeCalendarEventsReadOnly)

	code, verifier := authorize(t, cfg)
	c.Advance(10*time.Minute + time.Second)
	_, err := cfg.Exchange(t.Context(), code, oauth2.VerifierOption(verifier))
	retrieveError(t, err, 400, "invalid_grant", "Bad Request")

	tok := connect(t, cfg)
	c.Advance(time.Hour)
	if status, _, _ := get(t, bearer(tok.AccessToken), f, "primary", url.Values{}); status != http.StatusUnauthorized {
		t.Fatalf("access token past its TTL: %d", status)
	}
}

func TestRefreshTokenOnlyForOfflineAccess(t *testing.T) {
	f := googletest.Start(t, googletest.Options{Consent: googletest.AutoAllow})
	cfg := f.Config(callback, googletest.ScopeCalendarEventsReadOnly)
	exchange := func(opts ...oauth2.AuthCodeOption) *oauth2.Token {
		t.Helper()
		code, verifier := authorize(t, cfg, opts...)
		tok, err := cfg.Exchange(t.Context(), code, oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	if tok := exchange(); tok.RefreshToken != "" {
		t.Fatal("online access got a refresh token")
	}
	if tok := exchange(oauth2.AccessTypeOffline); tok.RefreshToken == "" {
		t.Fatal("first offline consent got no refresh token")
	}
	if tok := exchange(oauth2.AccessTypeOffline); tok.RefreshToken != "" {
		t.Fatal("second offline consent without prompt=consent got a refresh token")
	}
	if tok := exchange(oauth2.AccessTypeOffline, oauth2.ApprovalForce); tok.RefreshToken == "" {
		t.Fatal("prompt=consent got no refresh token")
	}
}

func TestEventsPagingAndFiltering(t *testing.T) {
	f := googletest.Start(t, googletest.Options{})
	f.SetCalendarSummary("dana@example.com")
	dt := func(s string) googletest.EventTime { return googletest.EventTime{DateTime: s} }
	f.SetEvents(
		googletest.Event{ID: "after", Summary: "Later", Start: dt("2026-06-10T08:00:00Z"), End: dt("2026-06-10T09:00:00Z")},
		googletest.Event{ID: "allday", Summary: "Offsite", Start: googletest.EventTime{Date: "2026-06-02"}},
		googletest.Event{ID: "cancelled", Status: "cancelled", Summary: "Dropped",
			Start: dt("2026-06-01T12:00:00+02:00"), End: dt("2026-06-01T13:00:00+02:00")},
		googletest.Event{ID: "standup", Summary: "Standup", Location: "Room 1",
			Start: dt("2026-06-01T09:00:00Z"), End: dt("2026-06-01T09:15:00Z")},
		googletest.Event{ID: "before", Summary: "Earlier", Start: dt("2026-05-31T08:00:00Z"), End: dt("2026-05-31T09:00:00Z")},
		googletest.Event{ID: "overnight", Summary: "Night shift", Start: dt("2026-05-31T23:00:00Z"), End: dt("2026-06-01T01:00:00Z")},
	)
	client := bearer(f.IssueToken(googletest.ScopeCalendarEventsReadOnly).AccessToken)
	query := url.Values{
		"timeMin": {"2026-06-01T00:00:00Z"}, "timeMax": {"2026-06-03T00:00:00+00:00"},
		"singleEvents": {"true"}, "orderBy": {"startTime"}, "maxResults": {"2"},
	}

	var ids []string
	var pages int
	for {
		status, _, page := get(t, client, f, "primary", query)
		if status != http.StatusOK {
			t.Fatalf("page %d: %d %v", pages, status, page.raw)
		}
		if page.Kind != "calendar#events" || page.Summary != "dana@example.com" || page.TimeZone != "UTC" {
			t.Fatalf("page = %+v", page)
		}
		pages++
		for i, it := range page.Items {
			ids = append(ids, it.ID)
			raw := page.raw["items"].([]any)[i].(map[string]any)
			switch it.ID {
			case "allday":
				if _, has := raw["location"]; has || it.Start.Date != "2026-06-02" || it.End.Date != "2026-06-03" || it.Start.DateTime != "" {
					t.Fatalf("all-day event = %v", raw)
				}
			case "standup":
				if it.Location != "Room 1" || it.Status != "confirmed" || it.Kind != "calendar#event" ||
					!strings.HasPrefix(it.HTMLLink, "https://www.google.com/calendar/event?eid=") {
					t.Fatalf("standup = %v", raw)
				}
			case "cancelled":
				if it.Status != "cancelled" {
					t.Fatalf("cancelled = %v", raw)
				}
			}
		}
		if page.NextPageToken == "" {
			break
		}
		query.Set("pageToken", page.NextPageToken)
	}
	if want := []string{"overnight", "standup", "cancelled", "allday"}; !reflect.DeepEqual(ids, want) || pages != 2 {
		t.Fatalf("ids = %v in %d pages, want %v in 2", ids, pages, want)
	}

	_, _, page := get(t, client, f, "dana@example.com", url.Values{"q": {"room"}})
	if len(page.Items) != 1 || page.Items[0].ID != "standup" {
		t.Fatalf("q=room: %+v", page.Items)
	}
	_, _, page = get(t, client, f, "primary", url.Values{})
	if len(page.Items) != 6 || page.Items[0].ID != "before" || page.NextPageToken != "" {
		t.Fatalf("unfiltered: %+v", page.Items)
	}
}

func TestEventsQueryChecks(t *testing.T) {
	f := googletest.Start(t, googletest.Options{})
	client := bearer(f.IssueToken(googletest.ScopeCalendarReadOnly).AccessToken)
	for _, tc := range []struct {
		name       string
		calendar   string
		query      url.Values
		status     int
		reason     string
		message    string
		location   string
		noLocation bool
	}{
		{"ordering needs single events", "primary", url.Values{"orderBy": {"startTime"}}, 400, "badRequest",
			"The requested ordering is not available for the particular query.", "", true},
		{"timeMin without offset", "primary", url.Values{"timeMin": {"2026-06-01T00:00:00"}}, 400, "badRequest", "", "timeMin", false},
		{"timeMax not a time", "primary", url.Values{"timeMax": {"tomorrow"}}, 400, "badRequest", "", "timeMax", false},
		{"empty range", "primary", url.Values{"timeMin": {"2026-06-02T00:00:00Z"}, "timeMax": {"2026-06-01T00:00:00Z"}},
			400, "timeRangeEmpty", "The specified time range is empty.", "timeMax", false},
		{"unknown page token", "primary", url.Values{"pageToken": {"nope"}}, 400, "badRequest", "Invalid page token", "pageToken", false},
		{"maxResults zero", "primary", url.Values{"maxResults": {"0"}}, 400, "invalid", "", "maxResults", false},
		{"maxResults too big", "primary", url.Values{"maxResults": {"2501"}}, 400, "invalid", "", "maxResults", false},
		{"other calendar", "someone@example.org", url.Values{}, 404, "notFound", "Not Found", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, _, page := get(t, client, f, tc.calendar, tc.query)
			code, message, item := apiError(t, page)
			if status != tc.status || int(code) != tc.status || item["reason"] != tc.reason || item["domain"] != "global" {
				t.Fatalf("%d %v", status, page.raw)
			}
			if tc.message != "" && (message != tc.message || item["message"] != tc.message) {
				t.Fatalf("message %q, want %q", message, tc.message)
			}
			if tc.location != "" && (item["location"] != tc.location || item["locationType"] != "parameter") {
				t.Fatalf("item %v, want location %s", item, tc.location)
			}
			if tc.noLocation && item["location"] != nil {
				t.Fatalf("item %v has a location", item)
			}
		})
	}

	status, _, page := get(t, bearer(f.IssueToken("openid", "email").AccessToken), f, "primary", url.Values{})
	if _, _, item := apiError(t, page); status != http.StatusForbidden || item["reason"] != "insufficientPermissions" {
		t.Fatalf("token without a calendar scope: %d %v", status, page.raw)
	}
}

func TestExpiredAccessToken(t *testing.T) {
	f := googletest.Start(t, googletest.Options{Consent: googletest.AutoAllow})
	cfg := f.Config(callback, googletest.ScopeCalendarEventsReadOnly)
	tok := connect(t, cfg)
	f.ExpireAccessTokens()

	status, header, page := get(t, bearer(tok.AccessToken), f, "primary", url.Values{})
	var want map[string]any
	_ = json.Unmarshal([]byte(`{"error":{"code":401,"message":"Request had invalid authentication credentials. `+
		`Expected OAuth 2 access token, login cookie or other valid authentication credential. `+
		`See https://developers.google.com/identity/sign-in/web/devconsole-project.","errors":[{"message":"Invalid Credentials",`+
		`"domain":"global","reason":"authError","location":"Authorization","locationType":"header"}],"status":"UNAUTHENTICATED"}}`), &want)
	if status != http.StatusUnauthorized || !reflect.DeepEqual(page.raw, want) || header.Get("WWW-Authenticate") == "" {
		t.Fatalf("%d %v", status, page.raw)
	}
	if status, _, _ := get(t, http.DefaultClient, f, "primary", url.Values{}); status != http.StatusUnauthorized {
		t.Fatalf("no token: %d", status)
	}

	// The refresh token still works: the client refreshes and goes on.
	stale := *tok
	stale.Expiry = time.Now().Add(-time.Second)
	if status, _, _ := get(t, cfg.Client(t.Context(), &stale), f, "primary", url.Values{}); status != http.StatusOK || f.Refreshes() != 1 {
		t.Fatalf("after refresh: %d, %d refreshes", status, f.Refreshes())
	}
}

func TestRevokeEndpoint(t *testing.T) {
	f := googletest.Start(t, googletest.Options{Consent: googletest.AutoAllow})
	cfg := f.Config(callback, googletest.ScopeCalendarEventsReadOnly)
	revoke := func(token string) (int, string) {
		t.Helper()
		resp, err := http.PostForm(f.RevokeURL(), url.Values{"token": {token}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}

	tok := connect(t, cfg)
	if status, body := revoke(tok.RefreshToken); status != http.StatusOK || body != "" {
		t.Fatalf("revoke: %d %q", status, body)
	}
	if status, _, _ := get(t, bearer(tok.AccessToken), f, "primary", url.Values{}); status != http.StatusUnauthorized {
		t.Fatalf("access token of a revoked grant: %d", status)
	}
	status, body := revoke(tok.RefreshToken)
	if status != http.StatusBadRequest || !strings.Contains(body, `"error": "invalid_token"`) && !strings.Contains(body, `"error":"invalid_token"`) ||
		!strings.Contains(body, "Token expired or revoked") {
		t.Fatalf("second revoke: %d %s", status, body)
	}

	// Revoking an access token revokes its grant, refresh token included.
	tok2 := connect(t, cfg)
	if status, _ := revoke(tok2.AccessToken); status != http.StatusOK {
		t.Fatalf("revoke access token: %d", status)
	}
	stale := *tok2
	stale.Expiry = time.Now().Add(-time.Second)
	_, err := cfg.TokenSource(t.Context(), &stale).Token()
	retrieveError(t, err, 400, "invalid_grant", "Token has been expired or revoked.")

	if got, want := f.Revoked(), []string{tok.RefreshToken, tok.RefreshToken, tok2.AccessToken}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Revoked() = %v, want %v", got, want)
	}
}

func TestTokenFaults(t *testing.T) {
	f := googletest.Start(t, googletest.Options{Consent: googletest.AutoAllow})
	cfg := f.Config(callback, googletest.ScopeCalendarEventsReadOnly)
	code, verifier := authorize(t, cfg, oauth2.AccessTypeOffline)

	f.TokenFaults.FailNext(1, googletest.Failure{Status: 503, RetryAfter: "7"})
	_, err := cfg.Exchange(t.Context(), code, oauth2.VerifierOption(verifier))
	retrieveError(t, err, 503, "temporarily_unavailable", "Service Unavailable")
	var re *oauth2.RetrieveError
	if errors.As(err, &re); re.Response.Header.Get("Retry-After") != "7" {
		t.Fatalf("Retry-After = %q", re.Response.Header.Get("Retry-After"))
	}

	f.TokenFaults.FailNext(1, googletest.Failure{Drop: true})
	if _, err := cfg.Exchange(t.Context(), code, oauth2.VerifierOption(verifier)); err == nil {
		t.Fatal("dropped exchange succeeded")
	}

	f.TokenFaults.FailNext(1, googletest.Failure{Delay: time.Minute})
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("slow exchange: %v", err)
	}

	// The failed attempts did not reach the code.
	tok, err := cfg.Exchange(t.Context(), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}

	f.TokenFaults.FailAlways(googletest.Failure{Status: 500, Reason: "internal_failure", Message: "Backend Error"})
	stale := *tok
	stale.Expiry = time.Now().Add(-time.Second)
	_, err = cfg.TokenSource(t.Context(), &stale).Token()
	retrieveError(t, err, 500, "internal_failure", "Backend Error")
	resp, err := http.PostForm(f.RevokeURL(), url.Values{"token": {tok.RefreshToken}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 500 {
		t.Fatalf("revoke while failing: %d", resp.StatusCode)
	}
	f.TokenFaults.Recover()
	if _, err := cfg.TokenSource(t.Context(), &stale).Token(); err != nil {
		t.Fatal(err)
	}
}

func TestCalendarFaults(t *testing.T) {
	f := googletest.Start(t, googletest.Options{})
	client := bearer(f.IssueToken(googletest.ScopeCalendarEventsReadOnly).AccessToken)
	for _, tc := range []struct {
		failure          googletest.Failure
		reason, domain   string
		message, gStatus string
	}{
		{googletest.Failure{Status: 403, Reason: "rateLimitExceeded", RetryAfter: "30"}, "rateLimitExceeded", "usageLimits", "Rate Limit Exceeded", "PERMISSION_DENIED"},
		{googletest.Failure{Status: 403, Reason: "userRateLimitExceeded"}, "userRateLimitExceeded", "usageLimits", "User Rate Limit Exceeded", "PERMISSION_DENIED"},
		{googletest.Failure{Status: 429}, "rateLimitExceeded", "usageLimits", "Rate Limit Exceeded", "RESOURCE_EXHAUSTED"},
		{googletest.Failure{Status: 500}, "backendError", "global", "Backend Error", "INTERNAL"},
		{googletest.Failure{Status: 503, Message: "Try later"}, "backendError", "global", "Try later", "UNAVAILABLE"},
	} {
		f.CalendarFaults.FailNext(1, tc.failure)
		status, header, page := get(t, client, f, "primary", url.Values{})
		code, message, item := apiError(t, page)
		if status != tc.failure.Status || int(code) != status || message != tc.message || item["message"] != tc.message ||
			item["reason"] != tc.reason || item["domain"] != tc.domain || page.raw["error"].(map[string]any)["status"] != tc.gStatus {
			t.Fatalf("%+v: %d %v", tc.failure, status, page.raw)
		}
		if header.Get("Retry-After") != tc.failure.RetryAfter {
			t.Fatalf("Retry-After = %q", header.Get("Retry-After"))
		}
	}
	// A fresh connection: net/http retries a GET dropped on a reused one.
	f.CalendarFaults.FailNext(1, googletest.Failure{Drop: true})
	fresh := &http.Client{Transport: &http.Transport{}}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, f.URL+"/calendar/v3/calendars/primary/events", nil)
	if resp, err := fresh.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("dropped request got an answer")
	}
	if status, _, _ := get(t, client, f, "primary", url.Values{}); status != http.StatusOK {
		t.Fatalf("after the faults: %d", status)
	}
}

func TestInProcess(t *testing.T) {
	f := googletest.New(googletest.Options{Consent: googletest.AutoAllow})
	f.URL = "http://google.test"
	rt := upstreamtest.InProcess(f)
	ctx := context.WithValue(t.Context(), oauth2.HTTPClient, &http.Client{Transport: rt})
	f.SetEvents(googletest.Event{Summary: "Lunch", Start: googletest.EventTime{DateTime: "2026-06-01T12:00:00+02:00"}})
	cfg := f.Config(callback, googletest.ScopeCalendarEventsReadOnly)

	verifier := oauth2.GenerateVerifier()
	q := openAuthURL(t, noRedirect(rt), cfg.AuthCodeURL("st", oauth2.AccessTypeOffline, oauth2.S256ChallengeOption(verifier)))
	tok, err := cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	status, _, page := get(t, cfg.Client(ctx, tok), f, "primary", url.Values{})
	if status != http.StatusOK || len(page.Items) != 1 || page.Items[0].Start.DateTime != "2026-06-01T12:00:00+02:00" {
		t.Fatalf("%d %+v", status, page)
	}
}

func TestConcurrentUse(t *testing.T) {
	f := googletest.Start(t, googletest.Options{Consent: googletest.AutoAllow, AccessTokenTTL: time.Second})
	cfg := f.Config(callback, googletest.ScopeCalendarEventsReadOnly)
	tok := connect(t, cfg)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			ts := cfg.TokenSource(context.Background(), tok)
			for range 5 {
				f.SetEvents(googletest.Event{Start: googletest.EventTime{Date: "2026-06-01"}})
				if _, err := ts.Token(); err != nil {
					t.Error(err)
					return
				}
				_ = f.Requests()
			}
		})
	}
	wg.Wait()
	if f.Refreshes() != 40 {
		t.Fatalf("refreshes = %d, want 40", f.Refreshes())
	}
}

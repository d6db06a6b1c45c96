package handlers_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ava/console/services/calendar"
	"github.com/ava/console/services/calendar/googletest"
)

// calendarOwner is a signed-in owner (setup page) with an API token.
func calendarOwner(a *testApp) string {
	a.t.Helper()
	u := a.signedIn()
	tok, _ := a.apiToken(u.ID, "calendar")
	return tok
}

func (a *testApp) calendarStatus(token string) integrationBody {
	a.t.Helper()
	return conformanceCase{name: "calendar"}.status(a, token)
}

func (a *testApp) calendarEvents(token, query string) (*http.Response, string) {
	a.t.Helper()
	return a.callAPI(apiRequest{path: "/api/v1/integrations/calendar/google/events" + query, token: token})
}

func TestCalendarConnectSendsTheOwnerToGoogleWithPKCE(t *testing.T) {
	a := newTestApp(t)
	calendarOwner(a)
	first, err := url.Parse(a.startCalendarConnect())
	if err != nil {
		t.Fatal(err)
	}
	if got := first.Scheme + "://" + first.Host + first.Path; got != a.google.AuthURL() {
		t.Fatalf("sent to %s, want Google's authorization endpoint %s", got, a.google.AuthURL())
	}
	q := first.Query()
	for k, want := range map[string]string{
		"response_type": "code", "client_id": a.google.ClientID(), "redirect_uri": testBaseURL + calendar.CallbackPath,
		"scope": calendar.Scope, "access_type": "offline", "prompt": "consent", "code_challenge_method": "S256",
	} {
		if q.Get(k) != want {
			t.Errorf("%s = %q, want %q", k, q.Get(k), want)
		}
	}
	// 256 bits, base64url: a state of at least 128 random bits; the
	// challenge is base64url(SHA-256(verifier)): 43 characters.
	if len(q.Get("state")) < 22 || len(q.Get("code_challenge")) != 43 {
		t.Errorf("state %q, code_challenge %q", q.Get("state"), q.Get("code_challenge"))
	}
	second, _ := url.Parse(a.startCalendarConnect())
	if second.Query().Get("state") == q.Get("state") || second.Query().Get("code_challenge") == q.Get("code_challenge") {
		t.Error("two connects share a state or a verifier")
	}

	// The button is a form: without the session's CSRF token, refused.
	resp, _ := a.postForm(calendar.ConnectPath, url.Values{"_csrf": {"forged"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("connect without the CSRF token: %d, want 403", resp.StatusCode)
	}
}

func TestCalendarConsentConnectsAndLandsOnTheCalendarPage(t *testing.T) {
	a := newTestApp(t)
	token := calendarOwner(a)
	a.google.SetCalendarSummary("front-desk@example.com")
	resp, body := a.connectCalendar()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/calendar" {
		t.Fatalf("callback: %d %q %s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	if a.google.Exchanges() != 1 {
		t.Errorf("%d code exchanges, want 1", a.google.Exchanges())
	}
	_, page := a.get("/calendar")
	if !strings.Contains(page, "Google Calendar connected") || !strings.Contains(page, "front-desk@example.com") {
		t.Errorf("the calendar page has no toast or no calendar name:\n%s", page)
	}
	if _, again := a.get("/calendar"); strings.Contains(again, "Google Calendar connected") {
		t.Error("the toast shows again on the next page")
	}
	st := a.calendarStatus(token)
	if !st.Configured || st.CredentialSource == nil || *st.CredentialSource != "account" ||
		st.Credentials["account"] != "front-desk@example.com" || st.NeedsReconnect != nil || st.LastSuccessAt == nil {
		t.Errorf("status after connecting: %+v", st)
	}
	_, integrationsPage := a.get("/integrations")
	if !strings.Contains(integrationsPage, "Reconnect Google Calendar") || !strings.Contains(integrationsPage, "Disconnect Google Calendar") {
		t.Error("the card of a connected calendar has no Reconnect or Disconnect")
	}
}

func TestCalendarCallbackRefusesAStateItDidNotIssue(t *testing.T) {
	a := newTestApp(t)
	calendarOwner(a)

	// Forged: never issued. Refused before any call to Google.
	resp, body := a.get(calendar.CallbackPath + "?state=forged-state-forged-state&code=4/stolen")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "cannot be finished") {
		t.Errorf("forged state: %d\n%s", resp.StatusCode, body)
	}
	resp, _ = a.get(calendar.CallbackPath + "?code=4/stolen")
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("no state: %d, want 403", resp.StatusCode)
	}
	if a.google.Exchanges() != 0 {
		t.Fatalf("Google was asked to exchange %d codes for forged states", a.google.Exchanges())
	}

	// Replayed: the second use of a state is refused, without a second exchange.
	back := a.consent(a.startCalendarConnect())
	if resp, _ := a.get(back); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("first callback: %d", resp.StatusCode)
	}
	if resp, _ := a.get(back); resp.StatusCode != http.StatusForbidden {
		t.Errorf("replayed callback: %d, want 403", resp.StatusCode)
	}
	if a.google.Exchanges() != 1 {
		t.Errorf("%d exchanges, want 1", a.google.Exchanges())
	}

	// Another session (here: signed in again) cannot finish this one's connect.
	back = a.consent(a.startCalendarConnect())
	resp, _ = a.postForm("/logout", nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	if resp, body := a.postForm("/login", url.Values{"email": {ownerEmail}, "password": {ownerPassword}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	if resp, _ := a.get(back); resp.StatusCode != http.StatusForbidden {
		t.Errorf("callback in another session: %d, want 403", resp.StatusCode)
	}
	if a.google.Exchanges() != 1 {
		t.Errorf("%d exchanges, want 1", a.google.Exchanges())
	}
}

func TestCalendarConsentCancelledAtGoogleStoresNothing(t *testing.T) {
	a := newTestApp(t)
	token := calendarOwner(a)
	a.google.SetConsent(googletest.AutoDeny)
	back := a.consent(a.startCalendarConnect())
	if !strings.Contains(back, "error=access_denied") {
		t.Fatalf("the fake did not deny: %s", back)
	}
	resp, _ := a.get(back)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/integrations" {
		t.Fatalf("cancelled: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	_, page := a.get("/integrations")
	if !strings.Contains(page, "Google Calendar was not connected: access was not allowed") {
		t.Errorf("the Integrations page does not say the consent was cancelled:\n%s", page)
	}
	if st := a.calendarStatus(token); st.Configured {
		t.Errorf("a cancelled consent stored something: %+v", st)
	}
	if a.google.Exchanges() != 0 {
		t.Errorf("%d exchanges after a cancelled consent", a.google.Exchanges())
	}
}

func TestCalendarEventsFromGoogle(t *testing.T) {
	a := newTestApp(t)
	token := calendarOwner(a)
	now := time.Now()
	berlin := time.FixedZone("CET", 3600)
	tomorrow := now.Add(24 * time.Hour).In(berlin)
	events := []googletest.Event{
		{ID: "standup", Summary: "Stand-up", Location: "Front office",
			Start: googletest.EventTime{DateTime: tomorrow.Format(time.RFC3339)}, End: googletest.EventTime{DateTime: tomorrow.Add(15 * time.Minute).Format(time.RFC3339)}},
		{ID: "holiday", Summary: "Closed", Start: googletest.EventTime{Date: now.AddDate(0, 0, 2).Format(time.DateOnly)}, End: googletest.EventTime{Date: now.AddDate(0, 0, 3).Format(time.DateOnly)}},
		{ID: "gone", Status: "cancelled", Summary: "Cancelled call", Start: googletest.EventTime{DateTime: tomorrow.Add(time.Hour).Format(time.RFC3339)}},
		{ID: "far", Summary: "Next month", Start: googletest.EventTime{DateTime: now.AddDate(0, 0, 20).Format(time.RFC3339)}},
	}
	// More than one page (250 a page): every page is followed.
	for i := range 300 {
		at := now.Add(time.Duration(3*24*60+i) * time.Minute)
		events = append(events, googletest.Event{ID: fmt.Sprintf("bulk%03d", i), Summary: "Bulk",
			Start: googletest.EventTime{DateTime: at.Format(time.RFC3339)}})
	}
	a.google.SetEvents(events...)
	a.connectCalendar()

	resp, body := a.calendarEvents(token, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("events: %d %s", resp.StatusCode, body)
	}
	var got struct {
		Events []struct {
			ID, Summary, Start, End, Location string
			AllDay                            bool   `json:"all_day"`
			HTMLLink                          string `json:"html_link"`
		} `json:"events"`
	}
	decodeJSON(t, body, &got)
	if len(got.Events) != 302 {
		t.Fatalf("%d events in the next 7 days, want 302 (two, then 300 over two pages; not the cancelled one, not next month's)", len(got.Events))
	}
	first, second := got.Events[0], got.Events[1]
	if first.ID != "standup" || first.Start != tomorrow.Format(time.RFC3339) || first.AllDay || first.Location != "Front office" ||
		!strings.HasSuffix(first.Start, "+01:00") || !strings.HasPrefix(first.HTMLLink, "https://") {
		t.Errorf("timed event: %+v", first)
	}
	if second.ID != "holiday" || !second.AllDay || second.Start != now.AddDate(0, 0, 2).Format(time.DateOnly) ||
		second.End != now.AddDate(0, 0, 3).Format(time.DateOnly) {
		t.Errorf("all-day event: %+v", second)
	}
	for _, e := range got.Events {
		if e.ID == "gone" || e.ID == "far" {
			t.Errorf("%s listed", e.ID)
		}
	}
	var list []googletest.Request
	for _, r := range a.google.Requests() {
		if strings.HasSuffix(r.Path, "/events") && r.Query.Get("maxResults") == "250" {
			list = append(list, r)
		}
	}
	if len(list) != 2 || list[0].Query.Get("singleEvents") != "true" || list[0].Query.Get("orderBy") != "startTime" || list[1].Query.Get("pageToken") == "" {
		t.Errorf("listing requests: %+v", list)
	}
	if resp, body := a.calendarEvents(token, "?days=30"); resp.StatusCode != http.StatusOK || !strings.Contains(body, `"far"`) {
		t.Errorf("30 days: %d, want next month's event", resp.StatusCode)
	}
	for _, bad := range []string{"0", "32", "seven", "-1"} {
		resp, body := a.calendarEvents(token, "?days="+bad)
		if p := assertProblem(t, resp, body, http.StatusUnprocessableEntity); p.Field != "days" || !strings.Contains(p.Detail, "1 to 31") {
			t.Errorf("days=%s: %+v", bad, p)
		}
	}

	// The page's fragment: by day, with the read time.
	_, frag := a.get("/fragments/calendar/events", "HX-Request", "true")
	if !strings.Contains(frag, "Stand-up") || !strings.Contains(frag, "All day") || !strings.Contains(frag, "Read at") ||
		strings.Contains(frag, "Cancelled call") {
		t.Errorf("fragment:\n%s", frag)
	}
}

func TestCalendarEmptyWeek(t *testing.T) {
	a := newTestApp(t)
	calendarOwner(a)
	a.connectCalendar()
	_, frag := a.get("/fragments/calendar/events", "HX-Request", "true")
	if !strings.Contains(frag, "No events in the next 7 days") || !strings.Contains(frag, `data-state="empty"`) {
		t.Errorf("empty week:\n%s", frag)
	}
}

func TestCalendarTokensAreRefreshedAndKept(t *testing.T) {
	// A token expiring within seconds is refreshed before use.
	a := newTestApp(t, withGoogle(func(o *googletest.Options) { o.AccessTokenTTL = 5 * time.Second }))
	token := calendarOwner(a)
	a.connectCalendar()
	if resp, body := a.calendarEvents(token, ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("events: %d %s", resp.StatusCode, body)
	}
	if a.google.Refreshes() < 1 {
		t.Fatalf("an access token about to expire was used without a refresh")
	}

	// Google refuses an access token before its expiry (401 authError):
	// one refresh, then the call; the new token is stored, so the next
	// call needs no refresh.
	b := newTestApp(t)
	token = calendarOwner(b)
	// Two pages of events: the second page uses the token the first one
	// refreshed, without a refresh of its own.
	var many []googletest.Event
	for i := range 300 {
		many = append(many, googletest.Event{Summary: fmt.Sprintf("Call %d", i),
			Start: googletest.EventTime{DateTime: time.Now().Add(time.Duration(i+60) * time.Minute).Format(time.RFC3339)}})
	}
	b.google.SetEvents(many...)
	b.connectCalendar()
	b.google.ExpireAccessTokens()
	if resp, body := b.calendarEvents(token, ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("after Google refused the access token: %d %s", resp.StatusCode, body)
	}
	if b.google.Refreshes() != 1 {
		t.Fatalf("%d refreshes, want 1", b.google.Refreshes())
	}
	// A restart keeps working with the stored (refreshed) token, without
	// a new consent and without refreshing again.
	restarted, err := b.restart()
	if err != nil {
		t.Fatal(err)
	}
	if resp, body := restarted.calendarEvents(token, ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("after a restart: %d %s", resp.StatusCode, body)
	}
	if b.google.Refreshes() != 1 || b.google.Exchanges() != 1 {
		t.Errorf("after a restart: %d refreshes, %d exchanges; want the stored token used as it is", b.google.Refreshes(), b.google.Exchanges())
	}
}

func TestCalendarRevokedGrantNeedsReconnect(t *testing.T) {
	a := newTestApp(t)
	token := calendarOwner(a)
	a.connectCalendar()
	a.google.RevokeGrants()
	for range 4 {
		resp, body := a.calendarEvents(token, "")
		p := assertProblem(t, resp, body, http.StatusBadGateway)
		if !strings.HasPrefix(p.Detail, "Reconnect Google Calendar:") || !strings.Contains(p.Detail, "Token has been expired or revoked") {
			t.Fatalf("detail %q", p.Detail)
		}
	}
	st := a.calendarStatus(token)
	if st.NeedsReconnect == nil || !strings.Contains(*st.NeedsReconnect, "Token has been expired or revoked") {
		t.Fatalf("status: %+v", st)
	}
	if st.BreakerState != "closed" {
		t.Errorf("a revoked grant counted against the breaker: %s", st.BreakerState)
	}
	_, card := a.get("/integrations")
	_, home := a.get("/")
	_, frag := a.get("/fragments/calendar/events", "HX-Request", "true")
	for what, page := range map[string]string{"the Integrations card": card, "the home section": home} {
		if !strings.Contains(page, "Needs reconnect") {
			t.Errorf("%s does not say it needs reconnecting", what)
		}
	}
	if !strings.Contains(frag, `data-state="needs-reconnect"`) || !strings.Contains(frag, "Reconnect Google Calendar") ||
		!strings.Contains(frag, `action="`+calendar.ConnectPath+`"`) {
		t.Errorf("calendar fragment:\n%s", frag)
	}

	// Connecting again clears it.
	if resp, _ := a.connectCalendar(); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("reconnect: %d", resp.StatusCode)
	}
	if st := a.calendarStatus(token); st.NeedsReconnect != nil {
		t.Errorf("still needs reconnect after connecting again: %+v", st)
	}
	if resp, body := a.calendarEvents(token, ""); resp.StatusCode != http.StatusOK {
		t.Errorf("events after reconnecting: %d %s", resp.StatusCode, body)
	}
}

func TestCalendarGoogleErrors(t *testing.T) {
	a := newTestApp(t)
	token := calendarOwner(a)
	a.connectCalendar()
	for _, f := range []googletest.Failure{
		{Status: 403, Reason: "rateLimitExceeded", Message: "Rate Limit Exceeded"},
		{Status: 403, Reason: "userRateLimitExceeded", Message: "User Rate Limit Exceeded", RetryAfter: "42"},
		{Status: 429, Reason: "rateLimitExceeded", Message: "Too many requests"},
	} {
		a.google.CalendarFaults.FailNext(1, f)
		resp, body := a.calendarEvents(token, "")
		p := assertProblem(t, resp, body, http.StatusTooManyRequests)
		if resp.Header.Get("Retry-After") == "" || !strings.Contains(p.Detail, f.Message) {
			t.Errorf("%d %s: Retry-After %q, detail %q", f.Status, f.Reason, resp.Header.Get("Retry-After"), p.Detail)
		}
		if f.RetryAfter != "" && resp.Header.Get("Retry-After") != f.RetryAfter {
			t.Errorf("Retry-After %q, want Google's %s", resp.Header.Get("Retry-After"), f.RetryAfter)
		}
	}
	a.google.CalendarFaults.FailNext(1, googletest.Failure{Status: 404, Reason: "notFound", Message: "Not Found"})
	resp, body := a.calendarEvents(token, "")
	if p := assertProblem(t, resp, body, http.StatusBadGateway); !strings.Contains(p.Detail, "notFound: Not Found") {
		t.Errorf("Google's words: %q", p.Detail)
	}
	if st := a.calendarStatus(token); st.BreakerState != "closed" {
		t.Fatalf("4xx opened the breaker: %s", st.BreakerState)
	}
	a.google.CalendarFaults.FailAlways(googletest.Failure{Status: 503, Reason: "backendError", Message: "Backend Error"})
	for range 3 {
		a.calendarEvents(token, "")
	}
	resp, body = a.calendarEvents(token, "")
	assertProblem(t, resp, body, http.StatusServiceUnavailable)
	if resp.Header.Get("Retry-After") == "" {
		t.Error("open breaker without Retry-After")
	}
	_, frag := a.get("/fragments/calendar/events", "HX-Request", "true")
	if !strings.Contains(frag, `data-state="error"`) || !strings.Contains(frag, "Try again") || !strings.Contains(frag, "Reference") {
		t.Errorf("fragment with the breaker open:\n%s", frag)
	}
}

func TestCalendarDisconnectRevokesAtGoogle(t *testing.T) {
	a := newTestApp(t)
	token := calendarOwner(a)
	a.connectCalendar()
	issued := a.google.Tokens()

	// Google down: nothing is deleted, the owner can try again.
	a.google.TokenFaults.FailNext(1, googletest.Failure{Status: 503})
	resp, body := a.callAPI(apiRequest{method: http.MethodDelete, path: "/api/v1/integrations/calendar/credentials", token: token})
	assertProblem(t, resp, body, http.StatusBadGateway)
	if st := a.calendarStatus(token); !st.Configured {
		t.Fatal("the tokens were deleted although Google did not revoke them")
	}

	resp, body = a.callAPI(apiRequest{method: http.MethodDelete, path: "/api/v1/integrations/calendar/credentials", token: token})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("disconnect: %d %s", resp.StatusCode, body)
	}
	revoked := a.google.Revoked()
	if len(revoked) != 1 || !contains(issued, revoked[0]) || !strings.HasPrefix(revoked[0], "1//") {
		t.Errorf("revoked %v, want the refresh token", revoked)
	}
	if st := a.calendarStatus(token); st.Configured {
		t.Errorf("still connected: %+v", st)
	}
	// The Disconnect button on the page does the same (and, connected
	// again, a grant revoked at Google already is simply deleted).
	a.connectCalendar()
	a.google.RevokeGrants()
	resp, _ = a.postForm("/integrations/calendar/disconnect", nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("Disconnect button: %d", resp.StatusCode)
	}
	if st := a.calendarStatus(token); st.Configured {
		t.Errorf("still connected after the button: %+v", st)
	}
}

func TestCalendarWithoutAnOAuthClient(t *testing.T) {
	a := newTestApp(t, withEnv("GOOGLE_OAUTH_CLIENT_ID", ""), withEnv("GOOGLE_OAUTH_CLIENT_SECRET", ""))
	token := calendarOwner(a)
	_, page := a.get("/integrations")
	if !strings.Contains(page, "GOOGLE_OAUTH_CLIENT_ID") || strings.Contains(page, `action="`+calendar.ConnectPath+`"`) {
		t.Error("without an OAuth client the card offers to connect, or does not say what is missing")
	}
	resp, body := a.postForm(calendar.ConnectPath, nil)
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "GOOGLE_OAUTH_CLIENT_ID") {
		t.Errorf("connect without an OAuth client: %d", resp.StatusCode)
	}
	resp, body = a.calendarEvents(token, "")
	if p := assertProblem(t, resp, body, http.StatusNotFound); !strings.HasPrefix(p.Detail, "Google Calendar is not connected.") {
		t.Errorf("detail %q", p.Detail)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

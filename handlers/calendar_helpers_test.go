package handlers_test

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/ava/console/services/calendar"
)

// noRedirects is a client that stops at the first redirect, as a test
// reads each step of the consent.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// startCalendarConnect presses Connect Google Calendar and returns
// Google's consent URL the console sent the browser to.
func (a *testApp) startCalendarConnect() string {
	a.t.Helper()
	resp, body := a.postForm(calendar.ConnectPath, nil)
	if resp.StatusCode != http.StatusSeeOther {
		a.t.Fatalf("connect: %d %s", resp.StatusCode, body)
	}
	return resp.Header.Get("Location")
}

// consent asks the fake Google for consent at authURL and returns the
// path and query of the console's callback it redirects to.
func (a *testApp) consent(authURL string) string {
	a.t.Helper()
	resp, err := noRedirects.Get(authURL) //nolint:noctx // a test's one request
	if err != nil {
		a.t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		a.t.Fatalf("consent at the fake: %d", resp.StatusCode)
	}
	back, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(back.String(), testBaseURL+calendar.CallbackPath) {
		a.t.Fatalf("Google sent the browser to %q, want the callback", resp.Header.Get("Location"))
	}
	return back.RequestURI()
}

// connectCalendar walks the whole consent (the fake allows at once) and
// returns the callback's answer.
func (a *testApp) connectCalendar() (*http.Response, string) {
	a.t.Helper()
	return a.get(a.consent(a.startCalendarConnect()))
}

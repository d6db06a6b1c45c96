package handlers_test

import (
	"strings"
	"testing"
)

// The Connect button's POST is answered with a redirect to Google's consent page, and
// browsers check the page's form-action on a form's redirects too (Chromium blocks it
// otherwise): the pages allow the consent page's origin, and only it, as a form target.
func TestCalendarConsentOriginIsAFormTarget(t *testing.T) {
	a := newTestApp(t)
	resp, _ := a.get("/login")
	csp := resp.Header.Get("Content-Security-Policy")
	if want := "form-action 'self' " + a.google.URL + ";"; !strings.Contains(csp, want) {
		t.Errorf("CSP %q, want %q", csp, want)
	}
}

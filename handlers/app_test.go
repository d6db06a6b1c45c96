package handlers_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ava/console/app/console"
	"github.com/ava/console/handlers"
	"github.com/ava/console/services"
	"github.com/ava/console/services/account"
	"github.com/ava/console/services/calendar/googletest"
	"github.com/ava/console/services/email/resendtest"
	"github.com/ava/console/services/logtest"
	"github.com/ava/console/services/twilio"
	"github.com/ava/console/services/twilio/twiliotest"
	"github.com/ava/console/services/upstream"
	"github.com/ava/console/services/vapi/vapitest"
)

// testApp is the real console, built by the same constructor as the server
// (console.New: real SQLite in a temp folder, the real services, breakers
// and registry) against wire-level fakes, driven through fiber's app.Test
// with a cookie jar like a browser.
type testApp struct {
	t *testing.T
	// vapi is the wire-level fake Vapi the console talks to; guards are
	// the real breakers in front of it.
	vapi    *vapitest.Server
	vapiURL string
	// twilio is the wire-level fake Twilio, behind the real client pool.
	twilio *twiliotest.Server
	// resend is the wire-level fake Resend.
	resend *resendtest.Server
	// google is the wire-level fake of Google's OAuth and Calendar
	// endpoints; consent is given at once (AutoAllow) unless set otherwise.
	google   *googletest.Fake
	pool     *twilio.Pool
	guards   *upstream.Guards
	app      *fiber.App
	db       services.Store
	accounts *account.Service
	logs     *logtest.Buffer
	registry *prometheus.Registry
	console  *console.Console
	cookies  map[string]string
}

// appSetup is what a test may change before the app is built.
type appSetup struct {
	// env is the console's environment, as the server reads it.
	env  map[string]string
	http []func(*handlers.Deps)
	opts console.Options
	// google are the fake Google's options.
	google googletest.Options
}

type appOption func(*appSetup)

// withEnv sets one environment variable of the console.
func withEnv(key, value string) appOption {
	return func(s *appSetup) { s.env[key] = value }
}

// withGoogle changes the fake Google's options.
func withGoogle(f func(*googletest.Options)) appOption {
	return func(s *appSetup) { f(&s.google) }
}

// withTwilioEnv sets the environment's Twilio credentials.
func withTwilioEnv(sid, token string) appOption {
	return func(s *appSetup) { s.env["TWILIO_ACCOUNT_SID"], s.env["TWILIO_AUTH_TOKEN"] = sid, token }
}

func withConfig(f func(*handlers.Config)) appOption {
	return func(s *appSetup) { s.http = append(s.http, func(d *handlers.Deps) { f(&d.Config) }) }
}

func withDeps(f func(*handlers.Deps)) appOption {
	return func(s *appSetup) { s.http = append(s.http, f) }
}

// withUpstream changes the breakers' and clients' settings (UPSTREAM_TIMEOUT, BREAKER_*).
func withUpstream(f func(*upstream.Settings)) appOption {
	return func(s *appSetup) {
		st := upstream.Settings{Timeout: 2 * time.Second, FailureThreshold: 3, RecoveryTimeout: 30 * time.Second, SuccessThreshold: 2}
		f(&st)
		s.env["UPSTREAM_TIMEOUT"] = st.Timeout.String()
		s.env["BREAKER_FAILURE_THRESHOLD"] = strconv.Itoa(int(st.FailureThreshold))
		s.env["BREAKER_RECOVERY_TIMEOUT"] = st.RecoveryTimeout.String()
		s.env["BREAKER_SUCCESS_THRESHOLD"] = strconv.Itoa(int(st.SuccessThreshold))
	}
}

// withVapiEnv sets the environment's Vapi credentials (VAPI_API_KEY, VAPI_ASSISTANT_ID).
func withVapiEnv(key, assistantID string) appOption {
	return func(s *appSetup) { s.env["VAPI_API_KEY"], s.env["VAPI_ASSISTANT_ID"] = key, assistantID }
}

func newTestApp(t *testing.T, opts ...appOption) *testApp {
	t.Helper()
	fake, twilioFake, resendFake := vapitest.New(), twiliotest.New(), resendtest.New()
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	twilioSrv := httptest.NewServer(twilioFake)
	t.Cleanup(twilioSrv.Close)
	resendSrv := httptest.NewServer(resendFake)
	t.Cleanup(resendSrv.Close)
	setup := appSetup{env: map[string]string{}, google: googletest.Options{
		Consent: googletest.AutoAllow, RedirectURI: testBaseURL + "/integrations/calendar/google/callback",
	}}
	for _, o := range opts {
		o(&setup)
	}
	google := googletest.Start(t, setup.google)
	defaults := map[string]string{
		"AVA_ENV":                    "development",
		"AVA_SECRET_KEY":             base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)),
		"DATABASE_URL":               "sqlite:" + filepath.Join(t.TempDir(), "ava.db"),
		"LOG_LEVEL":                  "debug",
		"UPSTREAM_TIMEOUT":           "2s",
		"VAPI_BASE_URL":              srv.URL,
		"TWILIO_BASE_URL":            twilioSrv.URL,
		"RESEND_BASE_URL":            resendSrv.URL,
		"GOOGLE_CALENDAR_BASE_URL":   google.URL,
		"GOOGLE_OAUTH_AUTH_URL":      google.AuthURL(),
		"GOOGLE_OAUTH_TOKEN_URL":     google.TokenURL(),
		"GOOGLE_OAUTH_REVOKE_URL":    google.RevokeURL(),
		"GOOGLE_OAUTH_CLIENT_ID":     google.ClientID(),
		"GOOGLE_OAUTH_CLIENT_SECRET": google.ClientSecret(),
		"AVA_BASE_URL":               testBaseURL,
		"BREAKER_RECOVERY_TIMEOUT":   "30s",
		"BREAKER_FAILURE_THRESHOLD":  "3",
	}
	for k, v := range defaults {
		if _, set := setup.env[k]; !set {
			setup.env[k] = v
		}
	}
	cfg, err := console.LoadConfig(func(k string) string { return setup.env[k] })
	if err != nil {
		t.Fatal(err)
	}
	logs := &logtest.Buffer{}
	hooks := setup.http
	setup.opts.HTTP = func(d *handlers.Deps) {
		for _, f := range hooks {
			f(d)
		}
	}
	c, err := console.New(context.Background(), cfg, logs, setup.opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &testApp{
		t: t, app: c.App, db: c.DB, accounts: c.Accounts, logs: logs, registry: c.Metrics, cookies: map[string]string{},
		vapi: fake, vapiURL: srv.URL, guards: c.Guards, twilio: twilioFake, pool: c.TwilioPool, resend: resendFake, google: google, console: c,
	}
}

// restart builds a second console on the same configuration and database,
// as a restarted server (or another instance) would be; cookies start empty.
func (a *testApp) restart() (*testApp, error) {
	c, err := console.New(context.Background(), a.console.Config, a.logs, console.Options{})
	if err != nil {
		return nil, err
	}
	a.t.Cleanup(func() { _ = c.Close() })
	b := *a
	b.app, b.console, b.db, b.accounts, b.guards, b.registry, b.pool = c.App, c, c.DB, c.Accounts, c.Guards, c.Metrics, c.TwilioPool
	b.cookies = map[string]string{}
	return &b, nil
}

// do sends a request, keeping cookies like a browser would.
func (a *testApp) do(req *http.Request) (*http.Response, string) {
	a.t.Helper()
	for name, value := range a.cookies {
		req.AddCookie(&http.Cookie{Name: name, Value: value})
	}
	resp, err := a.app.Test(req, -1)
	if err != nil {
		a.t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		a.t.Fatal(err)
	}
	for _, c := range resp.Cookies() {
		if c.MaxAge < 0 || c.Value == "" {
			delete(a.cookies, c.Name)
		} else {
			a.cookies[c.Name] = c.Value
		}
	}
	return resp, string(body)
}

func (a *testApp) get(path string, header ...string) (*http.Response, string) {
	a.t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return a.do(req)
}

// postForm posts a form with the CSRF token a browser would have.
func (a *testApp) postForm(path string, form url.Values, header ...string) (*http.Response, string) {
	a.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if form.Get("_csrf") == "" {
		form.Set("_csrf", a.csrf())
	}
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return a.do(req)
}

var csrfField = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)

// csrf returns the CSRF token a page would render now: signed in, the
// session's; signed out, the signed one of the ava_csrf cookie, which the
// sign-in and setup pages set (fetching /login when there is none yet).
func (a *testApp) csrf() string {
	a.t.Helper()
	for _, name := range []string{"ava_session", "__Host-ava_session"} {
		if s, ok := a.cookies[name]; ok {
			if _, err := a.accounts.SessionUser(context.Background(), s); err == nil {
				return a.accounts.CSRFToken(s)
			}
		}
	}
	for _, name := range []string{"ava_csrf", "__Host-ava_csrf"} {
		if tok, ok := a.cookies[name]; ok {
			return tok
		}
	}
	// Signed out without a token: the sign-in (or, on a fresh install,
	// setup) page sets one.
	a.get("/login")
	if _, ok := a.cookies["ava_csrf"]; !ok {
		a.get("/setup")
	}
	tok, ok := a.cookies["ava_csrf"]
	if !ok {
		a.t.Fatal("neither GET /login nor GET /setup set a CSRF cookie")
	}
	return tok
}

// testBaseURL is the console's public address in these tests
// (AVA_BASE_URL): the OAuth redirect URI's origin.
const testBaseURL = "http://console.test"

const (
	ownerEmail    = "owner@example.com"
	ownerPassword = "correct horse battery"
)

// signedIn creates the owner through the setup page and stays signed in.
func (a *testApp) signedIn() services.User {
	a.t.Helper()
	resp, body := a.postForm("/setup", url.Values{
		"email": {ownerEmail}, "password": {ownerPassword}, "password_confirm": {ownerPassword},
	})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		a.t.Fatalf("setup: %d %s\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	u, _, err := a.db.UserByEmail(context.Background(), ownerEmail)
	if err != nil {
		a.t.Fatal(err)
	}
	return u
}

// apiGet calls the JSON API with a bearer token (no cookies).
func (a *testApp) apiGet(path, token string) (*http.Response, string) {
	a.t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := a.app.Test(req, -1)
	if err != nil {
		a.t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		a.t.Fatal(err)
	}
	return resp, string(body)
}

func decodeJSON(t *testing.T, body string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, body)
	}
}

// logLines returns the JSON log records written so far.
func (a *testApp) logLines() []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(a.logs.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			a.t.Fatalf("log line is not JSON: %q", line)
		}
		out = append(out, m)
	}
	return out
}

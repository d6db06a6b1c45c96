package handlers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ava/console/services/logtest"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ava/console/handlers"
	"github.com/ava/console/services"
	"github.com/ava/console/services/account"
	"github.com/ava/console/services/integrations"
	"github.com/ava/console/services/secrets"
	"github.com/ava/console/services/sqlite"
	"github.com/ava/console/services/twilio"
	"github.com/ava/console/services/twilio/twiliotest"
	"github.com/ava/console/services/upstream"
	"github.com/ava/console/services/vapi"
	"github.com/ava/console/services/vapi/vapitest"
)

// testApp is the real console (real SQLite in a temp folder, real account
// service) driven through fiber's app.Test, with a cookie jar like a browser.
type testApp struct {
	t *testing.T
	// vapi is the wire-level fake Vapi the console talks to; guards are
	// the real breakers in front of it.
	vapi    *vapitest.Server
	vapiURL string
	// twilio is the wire-level fake Twilio, behind the real client pool.
	twilio   *twiliotest.Server
	pool     *twilio.Pool
	guards   *upstream.Guards
	app      *fiber.App
	db       *sqlite.DB
	accounts *account.Service
	logs     *logtest.Buffer
	registry *prometheus.Registry
	cookies  map[string]string
}

// appSetup is what a test may change before the app is built.
type appSetup struct {
	deps     handlers.Deps
	upstream upstream.Settings
	// vapiEnv are VAPI_API_KEY and VAPI_ASSISTANT_ID.
	vapiEnv [2]string
	// twilioEnv are TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN.
	twilioEnv [2]string
}

// withTwilioEnv sets the environment's Twilio credentials.
func withTwilioEnv(sid, token string) appOption {
	return func(s *appSetup) { s.twilioEnv = [2]string{sid, token} }
}

type appOption func(*appSetup)

func withConfig(f func(*handlers.Config)) appOption {
	return func(s *appSetup) { f(&s.deps.Config) }
}

func withDeps(f func(*handlers.Deps)) appOption {
	return func(s *appSetup) { f(&s.deps) }
}

func withUpstream(f func(*upstream.Settings)) appOption {
	return func(s *appSetup) { f(&s.upstream) }
}

// withVapiEnv sets the environment's Vapi credentials (VAPI_API_KEY, VAPI_ASSISTANT_ID).
func withVapiEnv(key, assistantID string) appOption {
	return func(s *appSetup) { s.vapiEnv = [2]string{key, assistantID} }
}

func newTestApp(t *testing.T, opts ...appOption) *testApp {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "ava.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	accounts, err := account.New(db, bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	logs := &logtest.Buffer{}
	log := services.NewLogger(logs, slog.LevelDebug, "json")
	reg := prometheus.NewRegistry()
	setup := appSetup{
		deps: handlers.Deps{
			Config:   handlers.Config{RateLimiting: true},
			Logger:   log,
			Accounts: accounts,
			DB:       db,
			Sections: func(context.Context, services.User) ([]handlers.Section, error) {
				return []handlers.Section{{Name: "API tokens", Href: "/tokens", State: "No active tokens", StateKind: "off"}}, nil
			},
			Registry: reg,
		},
		upstream: upstream.Settings{
			Timeout: 2 * time.Second, FailureThreshold: 3, RecoveryTimeout: 30 * time.Second, SuccessThreshold: 2,
		},
	}
	for _, o := range opts {
		o(&setup)
	}

	// The same wiring as app/serve.go, against a fake Vapi.
	fake := vapitest.New()
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	guards, err := upstream.NewGuards(setup.upstream, log, reg)
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := secrets.NewSealer(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	creds := integrations.NewCredentials(db, sealer, log,
		vapi.Kind(setup.vapiEnv[0], setup.vapiEnv[1]), twilio.Kind(setup.twilioEnv[0], setup.twilioEnv[1]))
	twilioFake := twiliotest.New()
	twilioSrv := httptest.NewServer(twilioFake)
	t.Cleanup(twilioSrv.Close)
	twilioHTTP := guards.Client(services.IntegrationTwilio)
	twilioHTTP.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if twilioHTTP.Transport, err = twilio.NewRewriteTransport(twilioHTTP.Transport, twilioSrv.URL); err != nil {
		t.Fatal(err)
	}
	pool, err := twilio.NewPool(twilio.PoolSize, twilioHTTP, reg)
	if err != nil {
		t.Fatal(err)
	}
	if setup.deps.Twilio == nil {
		setup.deps.Twilio = twilio.NewService(pool, creds, setup.upstream.Timeout)
	}
	if setup.deps.Vapi == nil {
		setup.deps.Vapi = vapi.NewService(vapi.NewClient(srv.URL, guards.Client(services.IntegrationVapi)), creds, db, setup.upstream.Timeout)
	}
	if setup.deps.Integrations == nil {
		setup.deps.Integrations = integrations.NewReporter(creds, func(name string) string { return guards.Breaker(name).State() })
	}

	app, err := handlers.NewApp(setup.deps)
	if err != nil {
		t.Fatal(err)
	}
	return &testApp{
		t: t, app: app, db: db, accounts: accounts, logs: logs, registry: reg, cookies: map[string]string{},
		vapi: fake, vapiURL: srv.URL, guards: guards, twilio: twilioFake, pool: pool,
	}
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

// csrf returns the CSRF token of the current cookie, fetching a page to get
// one when there is none yet.
func (a *testApp) csrf() string {
	a.t.Helper()
	if tok, ok := a.cookies["ava_csrf"]; ok {
		return tok
	}
	// Every page sets the CSRF cookie, redirects included.
	a.get("/login")
	tok, ok := a.cookies["ava_csrf"]
	if !ok {
		a.t.Fatal("GET /login set no CSRF cookie")
	}
	return tok
}

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

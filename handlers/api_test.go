package handlers_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/ava/console/docs"
	"github.com/ava/console/docs/contract"
	"github.com/ava/console/handlers"
)

var (
	contractOnce      sync.Once
	contractValidator *contract.Validator
	contractErr       error
)

// apiContract returns the checker of docs/openapi.json, loaded once.
func apiContract(t *testing.T) *contract.Validator {
	t.Helper()
	contractOnce.Do(func() { contractValidator, contractErr = contract.New() })
	if contractErr != nil {
		t.Fatal(contractErr)
	}
	return contractValidator
}

// assertContract fails the test unless the answer (from a.get, a.apiGet,
// a.do: fiber's app.Test keeps the request in resp.Request) matches the
// OpenAPI document.
func assertContract(t *testing.T, resp *http.Response, body string) {
	t.Helper()
	if err := apiContract(t).CheckResponse(resp, []byte(body)); err != nil {
		t.Errorf("%v\nbody: %s", err, body)
	}
}

// apiRequest is one call of the JSON API.
type apiRequest struct {
	method string // GET when empty
	path   string
	token  string // sent as "Authorization: Bearer <token>" when set
	// session sends the cookie jar (the signed-in browser session) along.
	session bool
	header  map[string]string
	// body, when set, is sent as application/json.
	body string
}

// callAPI sends the request and checks the exchange against the OpenAPI
// document; a mismatch fails the test (but lets it go on).
func (a *testApp) callAPI(r apiRequest) (*http.Response, string) {
	a.t.Helper()
	method := r.method
	if method == "" {
		method = http.MethodGet
	}
	var reqBody io.Reader
	if r.body != "" {
		reqBody = strings.NewReader(r.body)
	}
	req := httptest.NewRequest(method, r.path, reqBody)
	if r.body != "" {
		req.Header.Set("Content-Type", "application/json")
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(r.body)), nil }
	}
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	var (
		resp *http.Response
		body string
	)
	if r.session {
		resp, body = a.do(req)
	} else {
		var err error
		if resp, err = a.app.Test(req, -1); err != nil {
			a.t.Fatal(err)
		}
		var buf bytes.Buffer
		if _, err := buf.ReadFrom(resp.Body); err != nil {
			a.t.Fatal(err)
		}
		_ = resp.Body.Close()
		body = buf.String()
	}
	if err := apiContract(a.t).Check(req, resp.StatusCode, resp.Header, []byte(body)); err != nil {
		a.t.Errorf("%v\nbody: %s", err, body)
	}
	return resp, body
}

// apiToken creates an API token for the user through the account service.
func (a *testApp) apiToken(userID int64, name string) (string, int64) {
	a.t.Helper()
	plain, tok, err := a.accounts.CreateToken(context.Background(), userID, name)
	if err != nil {
		a.t.Fatal(err)
	}
	return plain, tok.ID
}

// problemDoc is an RFC 9457 problem as the console writes it.
type problemDoc struct {
	Type          string `json:"type"`
	Title         string `json:"title"`
	Status        int    `json:"status"`
	Detail        string `json:"detail"`
	Instance      string `json:"instance"`
	CorrelationID string `json:"correlation_id"`
	Field         string `json:"field"`
}

// assertProblem checks a problem+json answer: its status, members, and that
// its correlation_id is the X-Correlation-ID header.
func assertProblem(t *testing.T, resp *http.Response, body string, status int) problemDoc {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d\n%s", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Errorf("Content-Type %q, want application/problem+json", ct)
	}
	var p problemDoc
	decodeJSON(t, body, &p)
	if p.Status != status || p.Type == "" || p.Title == "" || p.Detail == "" {
		t.Errorf("incomplete problem: %+v", p)
	}
	if corr := resp.Header.Get("X-Correlation-ID"); corr == "" || p.CorrelationID != corr {
		t.Errorf("correlation_id %q, X-Correlation-ID header %q: want equal and set", p.CorrelationID, corr)
	}
	for _, leak := range []string{"goroutine", "sql:", "runtime error", ".go:"} {
		if strings.Contains(body, leak) {
			t.Errorf("problem leaks internals (%q): %s", leak, body)
		}
	}
	return p
}

type meBody struct {
	ID        int64  `json:"id"`
	AccountID int64  `json:"account_id"`
	Email     string `json:"email"`
	CreatedAt string `json:"created_at"`
}

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func TestAPIMe(t *testing.T) {
	type setup struct {
		token   string // bearer token to send
		session bool   // send the browser session cookie
		header  map[string]string
	}
	tests := []struct {
		name string
		// prepare runs on a fresh console with a signed-in owner.
		prepare    func(a *testApp, owner int64) setup
		status     int
		detailHas  string
		corrHeader string // the X-Correlation-ID the answer must carry ("" = any; "uuid" = a new UUID)
	}{
		{
			name: "valid token",
			prepare: func(a *testApp, owner int64) setup {
				tok, _ := a.apiToken(owner, "ci")
				return setup{token: tok}
			},
			status: http.StatusOK,
		},
		{
			name:      "no credentials",
			prepare:   func(*testApp, int64) setup { return setup{} },
			status:    http.StatusUnauthorized,
			detailHas: "Authorization",
		},
		{
			name: "revoked token",
			prepare: func(a *testApp, owner int64) setup {
				tok, id := a.apiToken(owner, "old")
				if _, err := a.accounts.RevokeToken(context.Background(), owner, id); err != nil {
					a.t.Fatal(err)
				}
				return setup{token: tok}
			},
			status:    http.StatusUnauthorized,
			detailHas: "invalid or revoked",
		},
		{
			name:      "garbage token",
			prepare:   func(*testApp, int64) setup { return setup{token: "garbage"} },
			status:    http.StatusUnauthorized,
			detailHas: "invalid or revoked",
		},
		{
			name: "well-formed but unknown token",
			prepare: func(*testApp, int64) setup {
				return setup{token: "ava_" + strings.Repeat("x", 43)}
			},
			status:    http.StatusUnauthorized,
			detailHas: "invalid or revoked",
		},
		{
			name:    "browser session",
			prepare: func(*testApp, int64) setup { return setup{session: true} },
			status:  http.StatusOK,
		},
		{
			// A bearer token is judged alone: the session cookie next to it
			// does not rescue a revoked token.
			name: "revoked token with a valid session",
			prepare: func(a *testApp, owner int64) setup {
				tok, id := a.apiToken(owner, "old")
				if _, err := a.accounts.RevokeToken(context.Background(), owner, id); err != nil {
					a.t.Fatal(err)
				}
				return setup{token: tok, session: true}
			},
			status:    http.StatusUnauthorized,
			detailHas: "invalid or revoked",
		},
		{
			name: "caller's correlation id is kept",
			prepare: func(a *testApp, owner int64) setup {
				tok, _ := a.apiToken(owner, "ci")
				return setup{token: tok, header: map[string]string{"X-Correlation-ID": "job-42.run:7"}}
			},
			status:     http.StatusOK,
			corrHeader: "job-42.run:7",
		},
		{
			name: "caller's correlation id is kept in a problem",
			prepare: func(*testApp, int64) setup {
				return setup{header: map[string]string{"X-Correlation-ID": "job-42.run:8"}}
			},
			status:     http.StatusUnauthorized,
			corrHeader: "job-42.run:8",
		},
		{
			name: "invalid correlation id is replaced",
			prepare: func(*testApp, int64) setup {
				return setup{header: map[string]string{"X-Correlation-ID": "has spaces/and slashes"}}
			},
			status:     http.StatusUnauthorized,
			corrHeader: "uuid",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newTestApp(t)
			owner := a.signedIn()
			s := tt.prepare(a, owner.ID)
			resp, body := a.callAPI(apiRequest{path: "/api/v1/me", token: s.token, session: s.session, header: s.header})

			switch corr := resp.Header.Get("X-Correlation-ID"); tt.corrHeader {
			case "":
			case "uuid":
				if !uuidPattern.MatchString(corr) {
					t.Errorf("X-Correlation-ID %q, want a new UUID", corr)
				}
			default:
				if corr != tt.corrHeader {
					t.Errorf("X-Correlation-ID %q, want %q", corr, tt.corrHeader)
				}
			}

			if tt.status != http.StatusOK {
				p := assertProblem(t, resp, body, tt.status)
				if p.Type != "urn:ava:problem:unauthorized" || p.Title != "Unauthorized" || p.Instance != "/api/v1/me" {
					t.Errorf("problem: %+v", p)
				}
				if !strings.Contains(p.Detail, tt.detailHas) {
					t.Errorf("detail %q does not say %q", p.Detail, tt.detailHas)
				}
				if www := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(www, "Bearer") {
					t.Errorf("WWW-Authenticate %q, want Bearer", www)
				}
				if s.token != "" && strings.Contains(body, s.token) {
					t.Errorf("the problem repeats the token: %s", body)
				}
				return
			}
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, want 200\n%s", resp.StatusCode, body)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q", ct)
			}
			var me meBody
			decodeJSON(t, body, &me)
			if me.Email != ownerEmail || me.ID != owner.ID || me.AccountID != owner.AccountID || me.CreatedAt == "" {
				t.Errorf("me = %+v, owner %+v", me, owner)
			}
			if got := resp.Header.Get("X-RateLimit-Limit"); got != "60" {
				t.Errorf("X-RateLimit-Limit %q, want 60", got)
			}
		})
	}
}

func TestAPIProbes(t *testing.T) {
	a := newTestApp(t)
	for _, tt := range []struct {
		path, status string
	}{
		{"/healthz", "ok"},
		{"/readyz", "ready"},
	} {
		t.Run(tt.path, func(t *testing.T) {
			resp, body := a.callAPI(apiRequest{path: tt.path})
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d\n%s", resp.StatusCode, body)
			}
			var got struct {
				Status string `json:"status"`
			}
			decodeJSON(t, body, &got)
			if got.Status != tt.status {
				t.Errorf("status %q, want %q", got.Status, tt.status)
			}
		})
	}
}

func TestAPIReadyzWithoutDatabase(t *testing.T) {
	a := newTestApp(t)
	if err := a.db.Close(); err != nil {
		t.Fatal(err)
	}
	resp, body := a.callAPI(apiRequest{path: "/readyz"})
	p := assertProblem(t, resp, body, http.StatusServiceUnavailable)
	if p.Type != "urn:ava:problem:unavailable" {
		t.Errorf("type %q", p.Type)
	}
	if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 {
		t.Errorf("Retry-After %q, want seconds", resp.Header.Get("Retry-After"))
	}
	resp, body = a.callAPI(apiRequest{path: "/healthz"})
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz without the database: %d %s", resp.StatusCode, body)
	}
}

func TestAPIOpenAPIDocument(t *testing.T) {
	a := newTestApp(t)
	resp, body := a.callAPI(apiRequest{path: "/api/openapi.json"})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d\n%s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q", ct)
	}
	if !bytes.Equal([]byte(body), docs.OpenAPI) {
		t.Error("/api/openapi.json is not docs.OpenAPI")
	}
}

func TestAPIUnknownAddress(t *testing.T) {
	a := newTestApp(t)
	owner := a.signedIn()
	tok, _ := a.apiToken(owner.ID, "ci")
	for _, tt := range []struct {
		name string
		req  apiRequest
	}{
		{"anonymous", apiRequest{path: "/api/v1/nope"}},
		{"token", apiRequest{path: "/api/v1/nope", token: tok}},
		{"session", apiRequest{path: "/api/v1/nope", session: true}},
		{"unknown version", apiRequest{path: "/api/v2/me", token: tok}},
		// Another method on a known path is 405 (protocol_test.go).
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.req
			resp, body := a.callAPI(r)
			p := assertProblem(t, resp, body, http.StatusNotFound)
			if p.Type != "urn:ava:problem:not_found" || p.Title != "Not found" {
				t.Errorf("problem %+v", p)
			}
			if p.Instance != r.path {
				t.Errorf("instance %q, want %q", p.Instance, r.path)
			}
		})
	}
}

func TestAPIRateLimited(t *testing.T) {
	a := newTestApp(t, withConfig(func(c *handlers.Config) { c.DefaultLimit = 2 }))
	owner := a.signedIn()
	tok, _ := a.apiToken(owner.ID, "ci")
	for i := range 2 {
		resp, body := a.callAPI(apiRequest{path: "/api/v1/me", token: tok})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("call %d: %d %s", i+1, resp.StatusCode, body)
		}
		if got, want := resp.Header.Get("X-RateLimit-Remaining"), strconv.Itoa(1-i); got != want {
			t.Errorf("call %d: X-RateLimit-Remaining %q, want %q", i+1, got, want)
		}
	}
	resp, body := a.callAPI(apiRequest{path: "/api/v1/me", token: tok})
	p := assertProblem(t, resp, body, http.StatusTooManyRequests)
	if p.Type != "urn:ava:problem:rate_limited" || p.Title != "Too many requests" {
		t.Errorf("problem %+v", p)
	}
	if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
		t.Errorf("Retry-After %q, want 1..60 seconds", resp.Header.Get("Retry-After"))
	}
}

// assertContract works on answers of the harness's own helpers too.
func TestAPIContractOnHarnessAnswers(t *testing.T) {
	a := newTestApp(t)
	owner := a.signedIn()
	tok, _ := a.apiToken(owner.ID, "ci")
	resp, body := a.apiGet("/api/v1/me", tok)
	assertContract(t, resp, body)
	resp, body = a.get("/api/v1/me")
	assertContract(t, resp, body)
	resp, body = a.apiGet("/api/v1/me", "")
	assertContract(t, resp, body)
}

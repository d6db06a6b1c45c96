package handlers_test

// The conformance suite: what every registered integration must do, checked
// through the real console (console.New) against each provider's wire
// fake. An integration added to the registry gets a row in conformanceCases;
// TestEveryIntegrationHasAConformanceCase fails until it does.

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ava/console/services/calendar/googletest"
	"github.com/ava/console/services/email/resendtest"
	"github.com/ava/console/services/twilio/twiliotest"
	"github.com/ava/console/services/vapi/vapitest"
)

// conformanceCase is one integration as the suite drives it.
type conformanceCase struct {
	name, label string
	// accept makes the fake take some credentials and returns them as the
	// credentials API's JSON body, with the secret values among them.
	accept func(a *testApp) (body string, secrets []string)
	// refused is a body the provider (or the spec's rules) refuses, and
	// the field the 422 must name.
	refused, refusedField string
	// serverError makes the fake answer every request with a 5xx;
	// clientError with a 4xx about the request; recover ends both.
	serverError, clientError, recover func(a *testApp)
	// seen is what the fake received: the correlation id of each request.
	seen func(a *testApp) []string
	// use is the integration's own API call that needs its credentials.
	use apiRequest
	// oauth integrations are connected through the provider's consent:
	// connect walks it, their secrets are the tokens the provider issued,
	// and typed credentials are refused (405) instead of checked.
	oauth bool
}

var conformanceCases = []conformanceCase{
	{
		name: "vapi", label: "Vapi",
		accept: func(a *testApp) (string, []string) {
			a.vapi.AddKey(vapiKey)
			a.vapi.PutAssistant(vapitest.DefaultAssistant(vapiAssistant))
			return `{"api_key":"` + vapiKey + `","assistant_id":"` + vapiAssistant + `"}`, []string{vapiKey}
		},
		refused:      `{"api_key":"sk-wrong-key-0000","assistant_id":"` + vapiAssistant + `"}`,
		refusedField: "api_key",
		serverError:  func(a *testApp) { a.vapi.FailAlways(vapitest.Failure{Status: 500, Message: "conformance: down"}) },
		clientError: func(a *testApp) {
			a.vapi.FailAlways(vapitest.Failure{Status: 400, Message: "conformance: bad request"})
		},
		recover: func(a *testApp) { a.vapi.Recover() },
		seen: func(a *testApp) []string {
			var ids []string
			for _, r := range a.vapi.Requests() {
				ids = append(ids, r.CorrelationID)
			}
			return ids
		},
		use: apiRequest{path: "/api/v1/vapi/settings"},
	},
	{
		name: "twilio", label: "Twilio",
		accept: func(a *testApp) (string, []string) {
			sid, token := twiliotest.AccountSID(0), twiliotest.AuthToken(0)
			a.twilio.AddAccount(sid, token, 2)
			return twilioCredentialsBody(sid, token, ""), []string{token}
		},
		refused:      twilioCredentialsBody(twiliotest.AccountSID(0), twiliotest.AuthToken(9), ""),
		refusedField: "auth_token",
		serverError:  func(a *testApp) { a.twilio.FailAlways(twiliotest.Failure{Status: 503}) },
		clientError: func(a *testApp) {
			a.twilio.FailAlways(twiliotest.Failure{Status: 400, Code: 21452, Message: "conformance: bad request"})
		},
		recover: func(a *testApp) { a.twilio.Recover() },
		seen: func(a *testApp) []string {
			var ids []string
			for _, r := range a.twilio.Requests() {
				ids = append(ids, r.CorrelationID)
			}
			return ids
		},
		use: apiRequest{path: "/api/v1/twilio/numbers"},
	},
	{
		name: "email", label: "Email",
		accept: func(a *testApp) (string, []string) {
			const key = "re_conformance_9f8e7d6c5b4a"
			a.resend.AddKey(key, false)
			return `{"provider":"resend","api_key":"` + key + `","from":"Ava <ava@example.com>"}`, []string{key}
		},
		refused:      `{"provider":"resend","api_key":"re_not_a_key_0000","from":"Ava <ava@example.com>"}`,
		refusedField: "api_key",
		serverError: func(a *testApp) {
			a.resend.FailAlways(resendtest.Failure{Status: 500, Name: "internal_server_error", Message: "conformance: down"})
		},
		clientError: func(a *testApp) {
			a.resend.FailAlways(resendtest.Failure{Status: 422, Name: "validation_error", Message: "conformance: bad request"})
		},
		recover: func(a *testApp) { a.resend.Recover() },
		seen: func(a *testApp) []string {
			var ids []string
			for _, r := range a.resend.Requests() {
				ids = append(ids, r.CorrelationID)
			}
			return ids
		},
		use: apiRequest{method: http.MethodPost, path: "/api/v1/integrations/email/test",
			body: `{"to":"someone@example.com","subject":"Conformance","text":"Hello."}`},
	},
	{
		name: "calendar", label: "Google Calendar", oauth: true,
		accept: func(a *testApp) (string, []string) {
			a.google.SetEvents(googletest.Event{Summary: "Conformance", Start: googletest.EventTime{DateTime: time.Now().Add(time.Hour).Format(time.RFC3339)}})
			return "", nil
		},
		serverError: func(a *testApp) {
			a.google.CalendarFaults.FailAlways(googletest.Failure{Status: 500, Reason: "backendError", Message: "conformance: down"})
		},
		clientError: func(a *testApp) {
			a.google.CalendarFaults.FailAlways(googletest.Failure{Status: 400, Reason: "badRequest", Message: "conformance: bad request"})
		},
		recover: func(a *testApp) { a.google.CalendarFaults.Recover() },
		seen: func(a *testApp) []string {
			var ids []string
			for _, r := range a.google.Requests() {
				if r.Method != http.MethodGet || !strings.HasPrefix(r.Path, "/o/oauth2") {
					ids = append(ids, r.CorrelationID) // the browser's consent carries none
				}
			}
			return ids
		},
		use: apiRequest{path: "/api/v1/integrations/calendar/google/events"},
	},
}

func TestEveryIntegrationHasAConformanceCase(t *testing.T) {
	a := newTestApp(t)
	covered := map[string]bool{}
	for _, c := range conformanceCases {
		covered[c.name] = true
	}
	for _, spec := range a.console.Integrations.Specs() {
		if !covered[spec.Name] {
			t.Errorf("integration %q has no conformance case", spec.Name)
		}
	}
}

// conformanceOwner is a signed-in owner with an API token.
func conformanceOwner(a *testApp) string {
	a.t.Helper()
	ctx := context.Background()
	u, err := a.db.CreateUser(ctx, ownerEmail, "not-a-hash", true)
	if err != nil {
		a.t.Fatal(err)
	}
	tok, _ := a.apiToken(u.ID, "conformance")
	cookie, _, err := a.accounts.StartSession(ctx, u.ID)
	if err != nil {
		a.t.Fatal(err)
	}
	a.cookies["ava_session"] = cookie
	return tok
}

// status is the integration's entry of GET /api/v1/integrations.
func (c conformanceCase) status(a *testApp, token string) integrationBody {
	a.t.Helper()
	resp, body := a.callAPI(apiRequest{path: "/api/v1/integrations", token: token})
	if resp.StatusCode != http.StatusOK {
		a.t.Fatalf("integrations: %d %s", resp.StatusCode, body)
	}
	var got struct {
		Integrations []integrationBody `json:"integrations"`
	}
	decodeJSON(a.t, body, &got)
	for _, i := range got.Integrations {
		if i.Name == c.name {
			return i
		}
	}
	a.t.Fatalf("no %s in %s", c.name, body)
	return integrationBody{}
}

func (c conformanceCase) connect(a *testApp, token string) (string, []string) {
	a.t.Helper()
	body, secrets := c.accept(a)
	if c.oauth {
		if resp, got := a.connectCalendar(); resp.StatusCode != http.StatusSeeOther {
			a.t.Fatalf("connect %s: %d %s", c.name, resp.StatusCode, got)
		}
		resp, got := a.callAPI(apiRequest{path: "/api/v1/integrations", token: token})
		if resp.StatusCode != http.StatusOK {
			a.t.Fatalf("status: %d %s", resp.StatusCode, got)
		}
		st, err := json.Marshal(c.status(a, token))
		if err != nil {
			a.t.Fatal(err)
		}
		return string(st), a.google.Tokens()
	}
	resp, got := a.callAPI(apiRequest{method: http.MethodPut, path: "/api/v1/integrations/" + c.name + "/credentials", token: token, body: body})
	if resp.StatusCode != http.StatusOK {
		a.t.Fatalf("connect %s: %d %s", c.name, resp.StatusCode, got)
	}
	return got, secrets
}

// testConnection presses the card's Test connection (htmx, session, CSRF).
func (c conformanceCase) testConnection(a *testApp, correlationID string) *http.Response {
	a.t.Helper()
	resp, _ := a.postForm("/integrations/"+c.name+"/test", url.Values{}, "HX-Request", "true", "X-Correlation-ID", correlationID)
	return resp
}

func TestIntegrationConformance(t *testing.T) {
	for _, c := range conformanceCases {
		t.Run(c.name, func(t *testing.T) {
			t.Run("secrets are sealed, masked and never shown or logged", func(t *testing.T) {
				a := newTestApp(t)
				token := conformanceOwner(a)
				answer, secrets := c.connect(a, token)
				var st integrationBody
				decodeJSON(t, answer, &st)
				if !st.Configured || st.CredentialSource == nil || *st.CredentialSource != "account" {
					t.Fatalf("after connecting: %s", answer)
				}
				_, page := a.get("/integrations")
				logs := a.logs.String()
				path, _ := a.console.Config.SQLitePath()
				if len(secrets) == 0 {
					t.Fatal("no secrets to look for")
				}
				for _, s := range secrets {
					// Typed secrets are shown masked; tokens a provider
					// issued are not shown at all.
					masked := "••••" + s[len(s)-4:]
					found := false
					for _, hint := range st.Credentials {
						found = found || hint == masked
					}
					if found == c.oauth {
						t.Errorf("hint %q among %v: %v, want %v", masked, st.Credentials, found, !c.oauth)
					}
					if strings.Contains(page, masked) == c.oauth {
						t.Errorf("the card shows %q: %v, want %v", masked, !c.oauth, c.oauth)
					}
					for what, text := range map[string]string{"the answer": answer, "the Integrations page": page, "the log": logs} {
						if strings.Contains(text, s) {
							t.Errorf("%s contains the secret %q in clear", what, s)
						}
					}
					for _, f := range []string{path, path + "-wal"} {
						data, err := os.ReadFile(f) //nolint:gosec // the test's own database
						if err != nil && !os.IsNotExist(err) {
							t.Fatal(err)
						}
						if bytes.Contains(data, []byte(s)) {
							t.Errorf("%s contains the secret %q in clear", f, s)
						}
					}
				}
			})

			t.Run("a refused field is named and nothing is stored", func(t *testing.T) {
				a := newTestApp(t)
				token := conformanceOwner(a)
				if c.oauth {
					resp, body := a.callAPI(apiRequest{method: http.MethodPut, path: "/api/v1/integrations/" + c.name + "/credentials", token: token, body: `{}`})
					assertProblem(t, resp, body, http.StatusMethodNotAllowed)
					if allow := resp.Header.Get("Allow"); !strings.Contains(allow, http.MethodDelete) {
						t.Errorf("Allow %q, want DELETE among it", allow)
					}
					return
				}
				c.accept(a)
				resp, body := a.callAPI(apiRequest{method: http.MethodPut, path: "/api/v1/integrations/" + c.name + "/credentials", token: token, body: c.refused})
				p := assertProblem(t, resp, body, http.StatusUnprocessableEntity)
				if p.Field != c.refusedField || p.Detail == "" {
					t.Errorf("problem %+v, want field %q with a reason", p, c.refusedField)
				}
				if st := c.status(a, token); st.Configured {
					t.Errorf("refused credentials were stored: %+v", st)
				}
				resp, body = a.callAPI(apiRequest{method: http.MethodPut, path: "/api/v1/integrations/" + c.name + "/credentials", token: token, body: `{"no_such_field":"x"}`})
				if p := assertProblem(t, resp, body, http.StatusUnprocessableEntity); p.Field != "no_such_field" {
					t.Errorf("unknown member: %+v, want it named", p)
				}
			})

			t.Run("success and error are recorded, with the correlation id upstream", func(t *testing.T) {
				a := newTestApp(t)
				token := conformanceOwner(a)
				c.connect(a, token)
				if st := c.status(a, token); st.LastSuccessAt == nil || st.LastError != nil {
					t.Fatalf("after connecting: %+v", st)
				}
				if resp := c.testConnection(a, "conformance-ok-"+c.name); resp.StatusCode != http.StatusOK {
					t.Fatalf("test connection: %d", resp.StatusCode)
				}
				if ids := c.seen(a); len(ids) == 0 || ids[len(ids)-1] != "conformance-ok-"+c.name {
					t.Errorf("the fake saw correlation ids %v, want the request's last", ids)
				}
				c.clientError(a)
				if resp := c.testConnection(a, "conformance-4xx-"+c.name); resp.StatusCode < 400 {
					t.Fatalf("test connection against a failing fake: %d", resp.StatusCode)
				}
				st := c.status(a, token)
				if st.LastError == nil || st.LastError.Message == "" || st.LastError.At == "" {
					t.Fatalf("no last error recorded: %+v", st)
				}
			})

			t.Run("the breaker opens on 5xx and not on 4xx", func(t *testing.T) {
				a := newTestApp(t)
				token := conformanceOwner(a)
				c.connect(a, token)
				c.clientError(a)
				for range 5 {
					c.testConnection(a, "conformance-4xx")
				}
				if st := c.status(a, token); st.BreakerState != "closed" {
					t.Fatalf("breaker after five 4xx: %s", st.BreakerState)
				}
				c.recover(a)
				c.serverError(a)
				for range 3 {
					c.testConnection(a, "conformance-5xx")
				}
				if st := c.status(a, token); st.BreakerState != "open" {
					t.Fatalf("breaker after three 5xx: %s", st.BreakerState)
				}
				before := len(c.seen(a))
				resp := c.testConnection(a, "conformance-open")
				if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
					t.Errorf("test connection with the breaker open: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
				}
				if after := len(c.seen(a)); after != before {
					t.Errorf("the open breaker let %d call(s) through", after-before)
				}
			})

			t.Run("the stub rule", func(t *testing.T) {
				for _, tt := range []struct {
					env    string
					stub   string
					status int
					detail string
				}{
					{"development", "true", http.StatusOK, ""},
					{"production", "true", http.StatusForbidden, "Stub integrations are disabled in production: connect " + c.label + " on the Integrations page."},
					{"production", "false", http.StatusNotFound, c.label + " is not connected."},
					{"development", "false", http.StatusNotFound, c.label + " is not connected."},
				} {
					a := newTestApp(t, withEnv("AVA_ENV", tt.env), withEnv("INTEGRATIONS_STUB_MODE", tt.stub))
					token := conformanceOwner(a)
					req := c.use
					req.token = token
					resp, body := a.callAPI(req)
					if tt.status == http.StatusOK {
						if resp.StatusCode != http.StatusOK {
							t.Fatalf("%s with stubs: %d %s", tt.env, resp.StatusCode, body)
						}
						if st := c.status(a, token); st.CredentialSource == nil || *st.CredentialSource != "stub" {
							t.Errorf("%s with stubs: source %v, want stub", tt.env, st.CredentialSource)
						}
						if len(c.seen(a)) != 0 {
							t.Errorf("the stub reached the fake provider")
						}
						continue
					}
					p := assertProblem(t, resp, body, tt.status)
					if !strings.HasPrefix(p.Detail, tt.detail) {
						t.Errorf("%s, stub mode %s: %q, want it to start %q", tt.env, tt.stub, p.Detail, tt.detail)
					}
				}
			})

			t.Run("disconnect removes the account's credentials", func(t *testing.T) {
				a := newTestApp(t)
				token := conformanceOwner(a)
				c.connect(a, token)
				resp, body := a.callAPI(apiRequest{method: http.MethodDelete, path: "/api/v1/integrations/" + c.name + "/credentials", token: token})
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("delete: %d %s", resp.StatusCode, body)
				}
				var st integrationBody
				if err := json.Unmarshal([]byte(body), &st); err != nil || st.Configured {
					t.Fatalf("after delete: %s", body)
				}
				resp, body = a.callAPI(apiRequest{method: http.MethodDelete, path: "/api/v1/integrations/" + c.name + "/credentials", token: token})
				assertProblem(t, resp, body, http.StatusNotFound)
			})
		})
	}
}

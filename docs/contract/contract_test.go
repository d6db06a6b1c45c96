package contract_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/ava/console/docs"
	"github.com/ava/console/docs/contract"
)

func TestDocumentLoadsAndValidates(t *testing.T) {
	v, err := contract.New()
	if err != nil {
		t.Fatal(err)
	}
	doc := v.Doc()
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi = %q, want 3.1.0", doc.OpenAPI)
	}
	if doc.Info.Title != "Ava console API" || doc.Info.Version != "1.0.0" {
		t.Errorf("info = %q %q", doc.Info.Title, doc.Info.Version)
	}
	for _, s := range []string{"API tokens", "ava token create --email E --name N"} {
		if !strings.Contains(doc.Info.Description, s) {
			t.Errorf("info.description does not say %q", s)
		}
	}
	for _, path := range []string{"/healthz", "/readyz", "/api/openapi.json", "/api/v1/me"} {
		if doc.Paths.Find(path) == nil || doc.Paths.Find(path).Get == nil {
			t.Errorf("GET %s is not documented", path)
		}
	}
	for _, name := range []string{"Unauthorized", "NotFound", "UnprocessableEntity", "TooManyRequests",
		"InternalError", "BadGateway", "ServiceUnavailable", "GatewayTimeout"} {
		r := doc.Components.Responses[name]
		if r == nil || r.Value.Content.Get(contract.ProblemMediaType) == nil {
			t.Errorf("components.responses.%s is missing or not %s", name, contract.ProblemMediaType)
		}
	}
	for _, name := range []string{"X-Correlation-ID", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "Retry-After"} {
		if doc.Components.Headers[name] == nil {
			t.Errorf("components.headers.%s is missing", name)
		}
	}
	schemes := doc.Components.SecuritySchemes
	if s := schemes["bearerAuth"]; s == nil || s.Value.Type != "http" || s.Value.Scheme != "bearer" {
		t.Errorf("bearerAuth scheme: %+v", s)
	}
	if s := schemes["sessionCookie"]; s == nil || s.Value.Type != "apiKey" || s.Value.In != "cookie" || s.Value.Name != "ava_session" {
		t.Errorf("sessionCookie scheme: %+v", s)
	}
}

// Our own objects are strict: no member the document does not name, and
// every member listed as required.
func TestSchemasAreStrict(t *testing.T) {
	v, err := contract.New()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"Problem", "Me", "Liveness", "Readiness"} {
		s := v.Doc().Components.Schemas[name]
		if s == nil {
			t.Errorf("components.schemas.%s is missing", name)
			continue
		}
		ap := s.Value.AdditionalProperties
		if ap.Has == nil || *ap.Has {
			t.Errorf("components.schemas.%s does not say additionalProperties: false", name)
		}
		if len(s.Value.Required) == 0 {
			t.Errorf("components.schemas.%s has no required members", name)
		}
	}
	problem := v.Doc().Components.Schemas["Problem"].Value
	for _, m := range []string{"type", "title", "status", "detail", "correlation_id"} {
		if !contains(problem.Required, m) {
			t.Errorf("Problem does not require %q", m)
		}
	}
	if contains(problem.Required, "field") {
		t.Error("Problem requires field, which only validation errors carry")
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestLoadRejectsBadDocuments(t *testing.T) {
	for name, doc := range map[string]string{
		"not JSON": `{`,
		"3.0":      `{"openapi":"3.0.3","info":{"title":"t","version":"1"},"paths":{}}`,
		"no NotFound": `{"openapi":"3.1.0","info":{"title":"t","version":"1"},"paths":{},
			"components":{"responses":{}}}`,
		"broken ref": `{"openapi":"3.1.0","info":{"title":"t","version":"1"},"paths":{"/x":{"get":{"responses":{
			"200":{"description":"x","content":{"application/json":{"schema":{"$ref":"#/components/schemas/Nope"}}}}}}}}}`,
	} {
		if _, err := contract.Load([]byte(doc)); err == nil {
			t.Errorf("%s: Load accepted it", name)
		}
	}
}

// exchange is one request and the answer to check.
type exchange struct {
	name   string
	method string
	path   string
	status int
	header map[string]string
	body   string
}

const corr = "test-corr-1"

func problemHeader(extra ...string) map[string]string {
	h := map[string]string{"Content-Type": "application/problem+json", "X-Correlation-ID": corr}
	for i := 0; i+1 < len(extra); i += 2 {
		h[extra[i]] = extra[i+1]
	}
	return h
}

func jsonHeader() map[string]string {
	return map[string]string{
		"Content-Type": "application/json", "X-Correlation-ID": corr,
		"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "59", "X-RateLimit-Reset": "60",
	}
}

const me = `{"id":1,"account_id":1,"email":"owner@example.com","created_at":"2025-01-31T09:30:00Z"}`

func problem(status int, mutate func(map[string]any)) string {
	p := map[string]any{
		"type": "urn:ava:problem:unauthorized", "title": "Unauthorized", "status": status,
		"detail": "Sign in.", "instance": "/api/v1/me", "correlation_id": corr,
	}
	if mutate != nil {
		mutate(p)
	}
	b, _ := json.Marshal(p)
	return string(b)
}

func (e exchange) check(v *contract.Validator) error {
	method := e.method
	if method == "" {
		method = http.MethodGet
	}
	req := httptest.NewRequest(method, e.path, nil)
	h := http.Header{}
	for k, val := range e.header {
		h.Set(k, val)
	}
	return v.Check(req, e.status, h, []byte(e.body))
}

func TestCheckAcceptsRightAnswers(t *testing.T) {
	v, err := contract.New()
	if err != nil {
		t.Fatal(err)
	}
	www := []string{"WWW-Authenticate", `Bearer realm="ava"`}
	for _, e := range []exchange{
		{name: "me", path: "/api/v1/me", status: 200, header: jsonHeader(), body: me},
		{name: "me without rate-limit headers", path: "/api/v1/me", status: 200,
			header: map[string]string{"Content-Type": "application/json", "X-Correlation-ID": corr}, body: me},
		{name: "me 401", path: "/api/v1/me", status: 401, header: problemHeader(www...), body: problem(401, nil)},
		{name: "me 429", path: "/api/v1/me", status: 429, header: problemHeader("Retry-After", "12"), body: problem(429, nil)},
		{name: "healthz", path: "/healthz", status: 200, header: jsonHeader(), body: `{"status":"ok"}`},
		{name: "readyz", path: "/readyz", status: 200, header: jsonHeader(), body: `{"status":"ready"}`},
		{name: "readyz 503", path: "/readyz", status: 503, header: problemHeader("Retry-After", "5"), body: problem(503, nil)},
		{name: "openapi.json", path: "/api/openapi.json", status: 200, header: jsonHeader(), body: string(docs.OpenAPI)},
		{name: "unknown address 404", path: "/api/v1/nope", status: 404, header: problemHeader(),
			body: problem(404, func(p map[string]any) { p["instance"] = "/api/v1/nope" })},
		{name: "undocumented method 404", method: http.MethodDelete, path: "/api/v1/me", status: 404, header: problemHeader(),
			body: problem(404, nil)},
		{name: "problem with field", path: "/api/v1/nope", status: 404, header: problemHeader(),
			body: problem(404, func(p map[string]any) { p["field"] = "value" })},
	} {
		if err := e.check(v); err != nil {
			t.Errorf("%s: %v", e.name, err)
		}
	}
}

// The checker provably fails: each of these answers breaks the document.
func TestCheckRejectsWrongAnswers(t *testing.T) {
	v, err := contract.New()
	if err != nil {
		t.Fatal(err)
	}
	www := []string{"WWW-Authenticate", `Bearer realm="ava"`}
	for _, e := range []exchange{
		{name: "problem without correlation_id", path: "/api/v1/me", status: 401, header: problemHeader(www...),
			body: problem(401, func(p map[string]any) { delete(p, "correlation_id") })},
		{name: "problem with status of the wrong type", path: "/api/v1/me", status: 401, header: problemHeader(www...),
			body: problem(401, func(p map[string]any) { p["status"] = "401" })},
		{name: "problem with an unknown member", path: "/api/v1/me", status: 401, header: problemHeader(www...),
			body: problem(401, func(p map[string]any) { p["stack"] = "goroutine 1" })},
		{name: "problem whose correlation_id differs from the header", path: "/api/v1/me", status: 401, header: problemHeader(www...),
			body: problem(401, func(p map[string]any) { p["correlation_id"] = "other" })},
		{name: "problem whose status differs from the answer's", path: "/api/v1/me", status: 401, header: problemHeader(www...),
			body: problem(403, nil)},
		{name: "problem without detail", path: "/api/v1/me", status: 401, header: problemHeader(www...),
			body: problem(401, func(p map[string]any) { delete(p, "detail") })},
		{name: "401 without WWW-Authenticate", path: "/api/v1/me", status: 401, header: problemHeader(), body: problem(401, nil)},
		{name: "429 without Retry-After", path: "/api/v1/me", status: 429, header: problemHeader(), body: problem(429, nil)},
		{name: "429 with a date in Retry-After", path: "/api/v1/me", status: 429,
			header: problemHeader("Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT"), body: problem(429, nil)},
		{name: "error as plain JSON", path: "/api/v1/me", status: 401,
			header: map[string]string{"Content-Type": "application/json", "X-Correlation-ID": corr, "WWW-Authenticate": "Bearer"},
			body:   problem(401, nil)},
		{name: "no X-Correlation-ID", path: "/api/v1/me", status: 200,
			header: map[string]string{"Content-Type": "application/json"}, body: me},
		{name: "bad X-Correlation-ID", path: "/api/v1/me", status: 200,
			header: map[string]string{"Content-Type": "application/json", "X-Correlation-ID": "has spaces"}, body: me},
		{name: "me with id as a string", path: "/api/v1/me", status: 200, header: jsonHeader(),
			body: strings.Replace(me, `"id":1`, `"id":"1"`, 1)},
		{name: "me without email", path: "/api/v1/me", status: 200, header: jsonHeader(),
			body: `{"id":1,"account_id":1,"created_at":"2025-01-31T09:30:00Z"}`},
		{name: "me with a bad created_at", path: "/api/v1/me", status: 200, header: jsonHeader(),
			body: strings.Replace(me, "2025-01-31T09:30:00Z", "yesterday", 1)},
		{name: "me with an extra member", path: "/api/v1/me", status: 200, header: jsonHeader(),
			body: strings.Replace(me, `{`, `{"password_hash":"x",`, 1)},
		{name: "me as HTML", path: "/api/v1/me", status: 200,
			header: map[string]string{"Content-Type": "text/html", "X-Correlation-ID": corr}, body: "<p>hi</p>"},
		{name: "undocumented status", path: "/api/v1/me", status: 418, header: problemHeader(), body: problem(418, nil)},
		{name: "healthz says ready", path: "/healthz", status: 200, header: jsonHeader(), body: `{"status":"ready"}`},
		{name: "readyz 503 without Retry-After", path: "/readyz", status: 503, header: problemHeader(), body: problem(503, nil)},
		{name: "undocumented route answering 200", path: "/api/v1/secret", status: 200, header: jsonHeader(), body: `{}`},
		{name: "undocumented method answering 200", method: http.MethodPost, path: "/api/v1/me", status: 200, header: jsonHeader(), body: me},
		{name: "unknown address 404 that is not a problem", path: "/api/v1/nope", status: 404,
			header: map[string]string{"Content-Type": "text/html", "X-Correlation-ID": corr}, body: "<p>404</p>"},
	} {
		if err := e.check(v); err == nil {
			t.Errorf("%s: accepted", e.name)
		} else {
			t.Logf("%s: %v", e.name, err)
		}
	}
}

func TestCheckIsSafeForConcurrentUse(t *testing.T) {
	v, err := contract.New()
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := exchange{path: "/api/v1/me", status: 200, header: jsonHeader(), body: me}
			if i%2 == 1 {
				e = exchange{path: "/api/v1/me", status: 401,
					header: problemHeader("WWW-Authenticate", "Bearer"), body: problem(401, nil)}
			}
			if err := e.check(v); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
}

// Browser tests get header names in lower case (Playwright).
func TestCheckAcceptsLowercaseHeaderNames(t *testing.T) {
	v, err := contract.New()
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1:8080/api/v1/me", nil)
	h := http.Header{"content-type": {"application/json"}, "x-correlation-id": {corr}}
	if err := v.Check(req, 200, h, []byte(me)); err != nil {
		t.Error(err)
	}
	delete(h, "x-correlation-id")
	if err := v.Check(req, 200, h, []byte(me)); err == nil {
		t.Error("a missing X-Correlation-ID was accepted")
	}
}

func TestCheckResponseNeedsTheRequest(t *testing.T) {
	v, err := contract.New()
	if err != nil {
		t.Fatal(err)
	}
	if err := v.CheckResponse(&http.Response{StatusCode: 200, Header: http.Header{}}, nil); err == nil {
		t.Error("CheckResponse accepted a response without its request")
	}
}

// A document with a request body, like the PUT operations to come.
const putDoc = `{
  "openapi": "3.1.0",
  "info": {"title": "t", "version": "1"},
  "paths": {
    "/things/{key}": {
      "put": {
        "parameters": [{"name": "key", "in": "path", "required": true, "schema": {"type": "string"}}],
        "requestBody": {"required": true, "content": {"application/json": {"schema": {
          "type": "object", "additionalProperties": false, "required": ["value"],
          "properties": {"value": {"type": "integer", "minimum": 1}}}}}},
        "responses": {
          "200": {"description": "ok", "content": {"application/json": {"schema": {"type": "object"}}}},
          "422": {"$ref": "#/components/responses/NotFound"}
        }
      }
    }
  },
  "components": {"responses": {"NotFound": {"description": "nf", "content": {"application/problem+json": {
    "schema": {"type": "object", "required": ["status", "correlation_id"]}}}}}}
}`

func TestCheckRequestBodies(t *testing.T) {
	v, err := contract.Load([]byte(putDoc))
	if err != nil {
		t.Fatal(err)
	}
	ok := http.Header{"Content-Type": {"application/json"}}
	problem := http.Header{"Content-Type": {"application/problem+json"}, "X-Correlation-Id": {"c"}}
	problemBody := []byte(`{"status":422,"correlation_id":"c"}`)
	put := func(body string) *http.Request {
		req, err := http.NewRequest(http.MethodPut, "http://localhost/things/a", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		return req
	}

	if err := v.Check(put(`{"value":3}`), 200, ok, []byte(`{}`)); err != nil {
		t.Errorf("valid PUT: %v", err)
	}
	if err := v.Check(put(`{"value":"3"}`), 200, ok, []byte(`{}`)); err == nil {
		t.Error("a bad body the server accepted: no error")
	}
	if err := v.Check(put(`{"value":"3"}`), 422, problem, problemBody); err != nil {
		t.Errorf("a bad body the server refused with 422: %v", err)
	}

	// The caller still has its body after the check.
	req := put(`{"value":3}`)
	req.GetBody = nil
	if err := v.Check(req, 200, ok, []byte(`{}`)); err != nil {
		t.Errorf("valid PUT without GetBody: %v", err)
	}
	if b, _ := io.ReadAll(req.Body); string(b) != `{"value":3}` {
		t.Errorf("the request body after Check: %q", b)
	}

	// A body already sent (read to the end) cannot be checked: only the answer is.
	sent := httptest.NewRequest(http.MethodPut, "/things/a", strings.NewReader(`{"value":"3"}`))
	sent.Header.Set("Content-Type", "application/json")
	_, _ = io.ReadAll(sent.Body)
	if err := v.Check(sent, 200, ok, []byte(`{}`)); err != nil {
		t.Errorf("a consumed body: %v", err)
	}
	if err := v.Check(sent, 200, ok, []byte(`[]`)); err == nil {
		t.Error("a consumed body with a wrong answer: no error")
	}
}

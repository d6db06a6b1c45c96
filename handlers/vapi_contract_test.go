package handlers_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/ava/console/services/vapi/vapitest"
)

// TestVapiAPIContract runs every Vapi and integrations answer, successes and
// errors, through the OpenAPI document.
func TestVapiAPIContract(t *testing.T) {
	a := newTestApp(t)
	u := a.signedIn()
	token, _ := a.apiToken(u.ID, "contract")
	a.vapi.AddKey(vapiKey)
	a.vapi.PutAssistant(vapitest.DefaultAssistant(vapiAssistant))

	call := func(method, path, body string, want int) string {
		t.Helper()
		resp, got := a.callAPI(apiRequest{method: method, path: path, token: token, body: body})
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %d, want %d\n%s", method, path, resp.StatusCode, want, got)
		}
		return got
	}

	call("GET", "/api/v1/vapi/settings", "", http.StatusNotFound) // not connected yet
	body := call("GET", "/api/v1/integrations", "", http.StatusOK)
	if !strings.Contains(body, `"name":"vapi","label":"Vapi","configured":false`) {
		t.Fatalf("integrations before connecting: %s", body)
	}
	body = call("PUT", "/api/v1/integrations/vapi/credentials", `{"api_key":"wrong-key-0000","assistant_id":"`+vapiAssistant+`"}`, http.StatusUnprocessableEntity)
	if !strings.Contains(body, `"field":"api_key"`) || !strings.Contains(body, "Invalid Key") {
		t.Fatalf("bad key: %s", body)
	}
	body = call("PUT", "/api/v1/integrations/vapi/credentials", `{"api_key":"`+vapiKey+`","assistant_id":"`+vapiAssistant+`"}`, http.StatusOK)
	if strings.Contains(body, vapiKey) || !strings.Contains(body, `"api_key":"••••1234"`) || !strings.Contains(body, `"credential_source":"account"`) {
		t.Fatalf("credentials answer: %s", body)
	}

	body = call("GET", "/api/v1/vapi/settings", "", http.StatusOK)
	if !strings.Contains(body, `{"key":"max_call_duration","value":600,`) || !strings.Contains(body, `{"key":"voice_speed","value":1,`) {
		t.Fatalf("settings: %s", body)
	}
	body = call("PUT", "/api/v1/vapi/settings/greeting_message", `{"value":"Hi, Ava here."}`, http.StatusOK)
	if !strings.Contains(body, `"value":"Hi, Ava here."`) {
		t.Fatalf("update: %s", body)
	}
	a.vapi.ResetRequests()
	body = call("PUT", "/api/v1/vapi/settings/voice_speed", `{"value":2}`, http.StatusUnprocessableEntity)
	if !strings.Contains(body, `"field":"voice_speed"`) || !strings.Contains(body, "0.5 to 1.2") || len(a.vapi.Requests()) != 0 {
		t.Fatalf("out of range (%d upstream calls): %s", len(a.vapi.Requests()), body)
	}
	call("PUT", "/api/v1/vapi/settings/volume", `{"value":2}`, http.StatusNotFound)
	call("PUT", "/api/v1/vapi/settings/max_call_duration", `{"nope":1}`, http.StatusUnprocessableEntity)

	a.vapi.FailAlways(vapitest.Failure{Status: http.StatusInternalServerError, Message: "Internal server error"})
	body = call("GET", "/api/v1/vapi/settings", "", http.StatusBadGateway)
	if !strings.Contains(body, "Internal server error") {
		t.Fatalf("upstream error: %s", body)
	}
	call("GET", "/api/v1/vapi/settings", "", http.StatusBadGateway)
	call("GET", "/api/v1/vapi/settings", "", http.StatusBadGateway)
	a.vapi.ResetRequests()
	resp, body := a.callAPI(apiRequest{path: "/api/v1/vapi/settings", token: token})
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || len(a.vapi.Requests()) != 0 {
		t.Fatalf("open breaker: %d %q (%d upstream calls)\n%s", resp.StatusCode, resp.Header.Get("Retry-After"), len(a.vapi.Requests()), body)
	}
	body = call("GET", "/api/v1/integrations", "", http.StatusOK)
	if !strings.Contains(body, `"breaker_state":"open"`) || !strings.Contains(body, `"last_error":{"message":"Vapi`) {
		t.Fatalf("integrations after failures: %s", body)
	}
	if _, err := a.db.IntegrationHealth(context.Background(), u.AccountID, "vapi"); err != nil {
		t.Fatal(err)
	}
}

// TestVapiAPIMissingValueSaysWhatIsAllowed: a body without a value names the
// field and what the setting takes.
func TestVapiAPIMissingValueSaysWhatIsAllowed(t *testing.T) {
	a := newTestApp(t)
	u := a.signedIn()
	token, _ := a.apiToken(u.ID, "missing")
	for key, want := range map[string]string{
		"greeting_message":  "1 to 1000 characters",
		"max_call_duration": "from 60 to 3600",
		"voice_speed":       "from 0.5 to 1.2",
	} {
		resp, body := a.callAPI(apiRequest{method: "PUT", path: "/api/v1/vapi/settings/" + key, token: token, body: `{}`})
		if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, `"field":"value"`) || !strings.Contains(body, want) {
			t.Errorf("%s: %d %s", key, resp.StatusCode, body)
		}
	}
	if n := len(a.vapi.Requests()); n != 0 {
		t.Errorf("%d calls to Vapi for bodies without a value", n)
	}
}

package handlers_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/ava/console/services/vapi/vapitest"
)

const (
	vapiKey       = "vapi-private-key-1234"
	vapiAssistant = "asst-0001"
)

// connectedToVapi signs in and connects the fake Vapi through the Integrations page.
func (a *testApp) connectedToVapi() {
	a.t.Helper()
	a.vapi.AddKey(vapiKey)
	a.vapi.PutAssistant(vapitest.DefaultAssistant(vapiAssistant))
	a.signedIn()
	resp, body := a.postForm("/integrations/vapi", url.Values{"api_key": {vapiKey}, "assistant_id": {vapiAssistant}}, "HX-Request", "true")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Vapi connected") {
		a.t.Fatalf("connect: %d\n%s", resp.StatusCode, body)
	}
}

func TestVapiSettingsPageFlow(t *testing.T) {
	a := newTestApp(t)
	a.connectedToVapi()
	resp, body := a.get("/vapi")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `hx-get="/fragments/vapi/settings"`) || !strings.Contains(body, `class="skeleton"`) {
		t.Fatalf("page: %d\n%s", resp.StatusCode, body)
	}
	resp, body = a.get("/fragments/vapi/settings", "HX-Request", "true")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Hello, thanks for calling.") || !strings.Contains(body, "600 seconds") {
		t.Fatalf("settings: %d\n%s", resp.StatusCode, body)
	}
	resp, body = a.postForm("/vapi/settings/max_call_duration", url.Values{"value": {"900"}}, "HX-Request", "true")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "900 seconds") || !strings.Contains(body, "Maximum call duration saved") {
		t.Fatalf("save: %d\n%s", resp.StatusCode, body)
	}
	if got := a.vapi.Assistant(vapiAssistant)["maxDurationSeconds"]; got != float64(900) {
		t.Fatalf("Vapi has %v", got)
	}
	resp, body = a.postForm("/vapi/settings/max_call_duration", url.Values{"value": {"5000"}}, "HX-Request", "true")
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "60 to 3600") || !strings.Contains(body, "900 seconds") {
		t.Fatalf("refused save: %d\n%s", resp.StatusCode, body)
	}
	_, body = a.get("/fragments/vapi/changes", "HX-Request", "true")
	if !strings.Contains(body, ownerEmail) || !strings.Contains(body, "changed <strong>Maximum call duration</strong>") || !strings.Contains(body, "<code>600</code> to <code>900</code>") {
		t.Fatalf("changes:\n%s", body)
	}
	_, body = a.get("/integrations")
	if !strings.Contains(body, "••••1234") || strings.Contains(body, vapiKey) {
		t.Fatalf("integrations page must mask the key:\n%s", body)
	}
	if _, err := a.db.Credentials(context.Background(), 1, "vapi"); err != nil {
		t.Fatal(err)
	}
}

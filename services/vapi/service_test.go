package vapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ava/console/services"
	"github.com/ava/console/services/integrations"
	"github.com/ava/console/services/upstream"
	"github.com/ava/console/services/vapi"
	"github.com/ava/console/services/vapi/vapitest"
)

func raw(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

func TestListReadsVapiEveryTime(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.connected(t)
	ctx := context.Background()
	for i := 1; i <= 3; i++ {
		settings, err := w.svc.List(ctx, w.user.AccountID)
		if err != nil {
			t.Fatal(err)
		}
		if s, _ := vapi.Find(settings, vapi.KeyMaxDuration); s.Value != 600 {
			t.Fatalf("max_call_duration %v", s.Value)
		}
		if got := len(w.requests(http.MethodGet)); got != i {
			t.Fatalf("after %d sequential lists Vapi got %d GETs: want one each (no cache)", i, got)
		}
	}
	// A change made at Vapi (elsewhere) shows on the next list.
	a := w.fake.Assistant(testAssistant)
	a["maxDurationSeconds"] = 1200.0
	w.fake.PutAssistant(a)
	settings, err := w.svc.List(ctx, w.user.AccountID)
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := vapi.Find(settings, vapi.KeyMaxDuration); s.Value != 1200 {
		t.Errorf("after a change at Vapi: %v", s.Value)
	}
}

func TestConcurrentListsShareOneCall(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.connected(t)
	w.fake.SetDelay(400 * time.Millisecond)
	const n = 8
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	results := make([][]vapi.Setting, n)
	errs := make([]error, n)
	for i := range n {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			ready.Done()
			<-start
			results[i], errs[i] = w.svc.List(context.Background(), w.user.AccountID)
		}()
	}
	ready.Wait()
	close(start)
	done.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("list %d: %v", i, err)
		}
		if s, _ := vapi.Find(results[i], vapi.KeyGreeting); s.Value != "Hello, thanks for calling. How can I help you today?" {
			t.Errorf("list %d: greeting %v", i, s.Value)
		}
	}
	if got := len(w.fake.Requests()); got != 1 {
		t.Errorf("%d concurrent lists made %d upstream GETs, want 1", n, got)
	}
}

func TestUpdateRefusesBadValuesWithoutCallingVapi(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.connected(t)
	tests := []struct {
		key  string
		raw  string
		code services.Code
	}{
		{vapi.KeyMaxDuration, `5000`, services.EINVALID},
		{vapi.KeyMaxDuration, `"600"`, services.EINVALID},
		{vapi.KeyVoiceSpeed, `2`, services.EINVALID},
		{vapi.KeyGreeting, `""`, services.EINVALID},
		{"volume", `1`, services.ENOTFOUND},
	}
	for _, tt := range tests {
		_, err := w.svc.Update(context.Background(), w.user.AccountID, w.user.ID, tt.key, json.RawMessage(tt.raw))
		if services.ErrorCode(err) != tt.code {
			t.Errorf("%s=%s: %v, want %s", tt.key, tt.raw, err, tt.code)
		}
	}
	if got := w.fake.Requests(); len(got) != 0 {
		t.Errorf("refused values reached Vapi: %+v", got)
	}
}

func TestUpdateSendsOnlyTheChangedField(t *testing.T) {
	t.Parallel()
	ctx := services.WithCorrelationID(context.Background(), "corr-update")
	tests := []struct {
		key   string
		value any
		want  map[string]any // the PATCH body, as JSON decodes it
		check func(t *testing.T, at map[string]any)
	}{
		{vapi.KeyGreeting, "Hi, Ava here.", map[string]any{"firstMessage": "Hi, Ava here."}, func(t *testing.T, at map[string]any) {
			if at["firstMessage"] != "Hi, Ava here." {
				t.Errorf("Vapi has %v", at["firstMessage"])
			}
		}},
		{vapi.KeyMaxDuration, 900, map[string]any{"maxDurationSeconds": 900.0}, func(t *testing.T, at map[string]any) {
			if at["maxDurationSeconds"] != 900.0 {
				t.Errorf("Vapi has %v", at["maxDurationSeconds"])
			}
		}},
		{vapi.KeyVoiceSpeed, 1.1, map[string]any{"voice": map[string]any{"provider": "11labs", "voiceId": "burt", "speed": 1.1, "stability": 0.5}},
			func(t *testing.T, at map[string]any) {
				v := at["voice"].(map[string]any)
				if v["speed"] != 1.1 || v["voiceId"] != "burt" || v["stability"] != 0.5 {
					t.Errorf("Vapi has voice %v", v)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			w.connected(t)
			before := w.fake.Assistant(testAssistant)
			s, err := w.svc.Update(ctx, w.user.AccountID, w.user.ID, tt.key, raw(tt.value))
			if err != nil {
				t.Fatal(err)
			}
			if s.Key != tt.key || s.Value != tt.value {
				t.Errorf("updated setting %+v, want value %v", s, tt.value)
			}
			if time.Since(s.UpdatedAt) > time.Minute {
				t.Errorf("updated at %v", s.UpdatedAt)
			}
			patches := w.requests(http.MethodPatch)
			if len(patches) != 1 {
				t.Fatalf("%d PATCHes, want 1", len(patches))
			}
			if b, _ := json.Marshal(patches[0].Body); string(b) != string(mustJSON(t, tt.want)) {
				t.Errorf("PATCH body %s, want %s", b, mustJSON(t, tt.want))
			}
			if patches[0].CorrelationID != "corr-update" || patches[0].Authorization != "Bearer "+testKey {
				t.Errorf("PATCH headers %+v", patches[0])
			}
			after := w.fake.Assistant(testAssistant)
			tt.check(t, after)
			// Nothing else moved.
			for _, k := range []string{"name", "model", "transcriber", "firstMessage", "maxDurationSeconds", "voice"} {
				if _, changed := tt.want[k]; changed {
					continue
				}
				if string(mustJSON(t, before[k])) != string(mustJSON(t, after[k])) {
					t.Errorf("%s changed: %v -> %v", k, before[k], after[k])
				}
			}
		})
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestUpdateToTheSameValueSendsNothing(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.connected(t)
	ctx := context.Background()
	for key, value := range map[string]any{
		vapi.KeyGreeting:    "Hello, thanks for calling. How can I help you today?",
		vapi.KeyMaxDuration: 600,
		vapi.KeyVoiceSpeed:  1.0,
	} {
		s, err := w.svc.Update(ctx, w.user.AccountID, w.user.ID, key, raw(value))
		if err != nil || s.Value != value {
			t.Errorf("%s: %+v %v", key, s, err)
		}
	}
	if p := w.requests(http.MethodPatch); len(p) != 0 {
		t.Errorf("unchanged values were PATCHed: %+v", p)
	}
	if c, _ := w.svc.Changes(ctx, w.user.AccountID, 10); len(c) != 0 {
		t.Errorf("unchanged values were audited: %+v", c)
	}
}

func TestUpdateRefusedByTheVoiceProvider(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.connected(t)
	_, err := w.svc.Update(context.Background(), w.user.AccountID, w.user.ID, vapi.KeyVoiceSpeed, raw(0.6))
	var e *services.Error
	if !errors.As(err, &e) || e.Code != services.EINVALID || e.Field != vapi.KeyVoiceSpeed || !strings.Contains(e.Message, "0.7 to 1.2") {
		t.Fatalf("0.6 on an 11labs voice: %v", err)
	}
	if p := w.requests(http.MethodPatch); len(p) != 0 {
		t.Errorf("a speed 11labs refuses was sent: %+v", p)
	}
	// Cartesia takes 0.6.
	a := w.fake.Assistant(testAssistant)
	a["voice"] = map[string]any{"provider": "cartesia", "voiceId": "sonic", "generationConfig": map[string]any{"speed": 1.0}}
	w.fake.PutAssistant(a)
	if _, err := w.svc.Update(context.Background(), w.user.AccountID, w.user.ID, vapi.KeyVoiceSpeed, raw(0.6)); err != nil {
		t.Fatal(err)
	}
	v := w.fake.Assistant(testAssistant)["voice"].(map[string]any)
	if v["generationConfig"].(map[string]any)["speed"] != 0.6 || v["voiceId"] != "sonic" {
		t.Errorf("Vapi has voice %v", v)
	}
}

func TestFailedPatchChangesNothing(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.connected(t)
	ctx := context.Background()
	// Vapi answers the read, then fails the PATCH.
	w.setBeforeFake(func(r *http.Request) {
		if r.Method == http.MethodPatch {
			w.fake.FailNext(1, vapitest.Failure{Status: 500, Message: "Internal server error while saving"})
		}
	})
	_, err := w.svc.Update(ctx, w.user.AccountID, w.user.ID, vapi.KeyMaxDuration, raw(900))
	var e *services.Error
	if !errors.As(err, &e) || e.Code != services.EUPSTREAM || !strings.Contains(e.Message, "Internal server error while saving") {
		t.Fatalf("got %v, want EUPSTREAM with Vapi's message", err)
	}
	if len(w.requests(http.MethodPatch)) != 1 {
		t.Fatalf("the PATCH was not attempted")
	}
	if got := w.fake.Assistant(testAssistant)["maxDurationSeconds"]; got != 600.0 {
		t.Errorf("Vapi has %v after a failed PATCH, want 600", got)
	}
	if c, err := w.svc.Changes(ctx, w.user.AccountID, 10); err != nil || len(c) != 0 {
		t.Errorf("a failed save was audited: %+v %v", c, err)
	}
	if h := w.health(t); !strings.Contains(h.LastError, "Internal server error while saving") || h.LastErrorAt == nil {
		t.Errorf("health %+v", h)
	}
}

func TestUpdateTranslatesVapiAnswers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		failure vapitest.Failure
		code    services.Code
		says    []string
		retry   time.Duration
	}{
		{"server error", vapitest.Failure{Status: 503, Message: "Service Unavailable"}, services.EUPSTREAM,
			[]string{"Vapi is having trouble (Service Unavailable)"}, 0},
		{"rate limited", vapitest.Failure{Status: 429, Message: "Too Many Requests", RetryAfter: "12"}, services.ERATELIMIT,
			[]string{"Vapi is rate limiting us", "12 seconds"}, 12 * time.Second},
		{"key revoked since", vapitest.Failure{Status: 401, Message: "Invalid Key. Hot tip, make sure you're using the private key."}, services.EUPSTREAM,
			[]string{"Vapi refused the API key: Invalid Key", "Integrations page"}, 0},
		{"assistant deleted since", vapitest.Failure{Status: 404, Message: "Couldn't Get Assistant. Assistant Not Found."}, services.EUPSTREAM,
			[]string{testAssistant, "Assistant Not Found"}, 0},
		{"dropped connection", vapitest.Failure{Drop: true}, services.EUPSTREAM, []string{"Could not reach Vapi"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			w.connected(t)
			w.fake.FailAlways(tt.failure)
			_, err := w.svc.Update(context.Background(), w.user.AccountID, w.user.ID, vapi.KeyMaxDuration, raw(900))
			var e *services.Error
			if !errors.As(err, &e) || e.Code != tt.code {
				t.Fatalf("got %v, want %s", err, tt.code)
			}
			for _, s := range tt.says {
				if !strings.Contains(e.Message, s) {
					t.Errorf("message %q does not say %q", e.Message, s)
				}
			}
			if e.RetryAfter != tt.retry {
				t.Errorf("RetryAfter %s, want %s", e.RetryAfter, tt.retry)
			}
			if strings.Contains(e.Message, testKey) {
				t.Errorf("the message shows the key: %q", e.Message)
			}
		})
	}
}

func TestUpdateTimesOut(t *testing.T) {
	t.Parallel()
	w := newWorld(t, withSettings(func(s *upstream.Settings) { s.Timeout = 100 * time.Millisecond }))
	w.connected(t)
	w.fake.SetDelay(2 * time.Second)
	start := time.Now()
	_, err := w.svc.List(context.Background(), w.user.AccountID)
	if services.ErrorCode(err) != services.ETIMEOUT || !strings.Contains(services.ErrorMessage(err), "did not answer within 100ms") {
		t.Fatalf("got %v, want ETIMEOUT", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("took %s", took)
	}
}

func TestOpenBreakerStopsCalls(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.connected(t)
	w.fake.FailAlways(vapitest.Failure{Status: 500})
	for range 3 {
		if _, err := w.svc.List(context.Background(), w.user.AccountID); services.ErrorCode(err) != services.EUPSTREAM {
			t.Fatalf("got %v", err)
		}
	}
	w.fake.ResetRequests()
	_, err := w.svc.Update(context.Background(), w.user.AccountID, w.user.ID, vapi.KeyMaxDuration, raw(900))
	var e *services.Error
	if !errors.As(err, &e) || e.Code != services.EUNAVAILABLE || e.RetryAfter < time.Second {
		t.Fatalf("got %v, want EUNAVAILABLE with RetryAfter", err)
	}
	if n := len(w.fake.Requests()); n != 0 {
		t.Errorf("the open breaker let %d calls through", n)
	}
	if w.breaker() != "open" {
		t.Errorf("breaker %s", w.breaker())
	}
}

func TestAuditTrail(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.connected(t)
	ctx := context.Background()
	before := time.Now().Add(-time.Second)
	for _, v := range []int{900, 1200} {
		if _, err := w.svc.Update(ctx, w.user.AccountID, w.user.ID, vapi.KeyMaxDuration, raw(v)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.svc.Update(ctx, w.user.AccountID, w.user.ID, vapi.KeyGreeting, raw(`Say "hi"`)); err != nil {
		t.Fatal(err)
	}
	changes, err := w.svc.Changes(ctx, w.user.AccountID, 10)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ key, old, new string }{
		{vapi.KeyGreeting, `"Hello, thanks for calling. How can I help you today?"`, `"Say \"hi\""`},
		{vapi.KeyMaxDuration, `900`, `1200`},
		{vapi.KeyMaxDuration, `600`, `900`},
	}
	if len(changes) != len(want) {
		t.Fatalf("%d changes, want %d: %+v", len(changes), len(want), changes)
	}
	for i, c := range changes {
		if c.Key != want[i].key || c.OldValue != want[i].old || c.NewValue != want[i].new {
			t.Errorf("change %d: %s %s -> %s, want %s %s -> %s", i, c.Key, c.OldValue, c.NewValue, want[i].key, want[i].old, want[i].new)
		}
		if c.UserID != w.user.ID || c.UserEmail != "owner@example.com" || c.Integration != vapi.Name || c.AccountID != w.user.AccountID {
			t.Errorf("change %d: who %+v", i, c)
		}
		if c.ChangedAt.Before(before) || c.ChangedAt.After(time.Now().Add(time.Second)) {
			t.Errorf("change %d at %v", i, c.ChangedAt)
		}
	}
	if c, _ := w.svc.Changes(ctx, w.user.AccountID, 1); len(c) != 1 || c[0].Key != vapi.KeyGreeting {
		t.Errorf("limit 1: %+v", c)
	}
	// A setting changed through the console shows when it was changed.
	settings, err := w.svc.List(ctx, w.user.AccountID)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := vapi.Find(settings, vapi.KeyMaxDuration)
	if !s.UpdatedAt.Equal(changes[1].ChangedAt) {
		t.Errorf("max_call_duration updated at %v, want the audit's %v", s.UpdatedAt, changes[1].ChangedAt)
	}
	if s.Value != 1200 {
		t.Errorf("value %v", s.Value)
	}
}

func TestConnectRefusals(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("k", 201)
	tests := []struct {
		name, key, assistant string
		field                string
		says                 string
		callsVapi            bool
	}{
		{"bad key", "sk-wrong-key-0000", testAssistant, vapi.FieldAPIKey, "Invalid Key", true},
		{"unknown assistant", testKey, "asst-missing", vapi.FieldAssistantID, "Assistant Not Found", true},
		{"no key", "  ", testAssistant, vapi.FieldAPIKey, "api_key is required", false},
		{"no assistant", testKey, "", vapi.FieldAssistantID, "assistant_id is required", false},
		{"long key", long, testAssistant, vapi.FieldAPIKey, "at most 200", false},
		{"assistant id with a slash", testKey, "a/../b", vapi.FieldAssistantID, "must be a Vapi assistant id", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			ctx := context.Background()
			_, err := w.connect(ctx, tt.key, tt.assistant)
			var e *services.Error
			if !errors.As(err, &e) || e.Code != services.EINVALID || e.Field != tt.field || !strings.Contains(e.Message, tt.says) {
				t.Fatalf("got %#v, want EINVALID on %s saying %q", err, tt.field, tt.says)
			}
			if got := len(w.fake.Requests()) > 0; got != tt.callsVapi {
				t.Errorf("called Vapi: %v, want %v", got, tt.callsVapi)
			}
			if _, err := w.db.Credentials(ctx, w.user.AccountID, vapi.Name); services.ErrorCode(err) != services.ENOTFOUND {
				t.Errorf("refused credentials were stored (%v)", err)
			}
			if r, _ := w.svc.Connection(ctx, w.user.AccountID); r.Configured() {
				t.Errorf("connection after a refusal: %+v", r)
			}
		})
	}
}

func TestConnectKeepsEarlierCredentialsOnRefusal(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.connected(t)
	ctx := context.Background()
	if _, err := w.connect(ctx, "sk-wrong-key-0000", testAssistant); services.ErrorCode(err) != services.EINVALID {
		t.Fatalf("bad key: %v", err)
	}
	if _, err := w.svc.List(ctx, w.user.AccountID); err != nil {
		t.Fatalf("the stored credentials stopped working: %v", err)
	}
	if r := w.requests(http.MethodGet); r[len(r)-1].Authorization != "Bearer "+testKey {
		t.Errorf("list used %q", r[len(r)-1].Authorization)
	}
}

func TestConnectStoresCredentialsSealed(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	r, err := w.connect(ctx, "  "+testKey+"\n", testAssistant)
	if err != nil {
		t.Fatal(err)
	}
	// Connect checked the trimmed credentials with Vapi: one read of the assistant.
	if got := w.fake.Requests(); len(got) != 1 || got[0].Method != http.MethodGet ||
		got[0].Path != "/assistant/"+testAssistant || got[0].Authorization != "Bearer "+testKey {
		t.Errorf("connect sent %+v, want one GET of the assistant with the trimmed key", got)
	}
	wantHints := map[string]string{vapi.FieldAPIKey: "••••abcd", vapi.FieldAssistantID: testAssistant}
	if r.Source != integrations.SourceAccount || r.Values[vapi.FieldAPIKey] != testKey || !equalMaps(r.Hints, wantHints) {
		t.Errorf("resolved %+v", r)
	}

	// The row: sealed bytes and hints, never the key.
	row, err := w.db.Credentials(ctx, w.user.AccountID, vapi.Name)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(row.Sealed, []byte(testKey)) || bytes.Contains(row.Sealed, []byte("Q7x2Lm9Pz4Rt")) {
		t.Error("the sealed value contains the key in clear")
	}
	if !equalMaps(row.Hints, wantHints) {
		t.Errorf("stored hints %v", row.Hints)
	}

	// The database files, WAL included, never hold the key's bytes.
	if err := w.db.Close(); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(w.dbPath + "*")
	if len(files) == 0 {
		t.Fatal("no database files")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(testKey)) || bytes.Contains(b, []byte("Q7x2Lm9Pz4Rt")) {
			t.Errorf("%s contains the API key", filepath.Base(f))
		}
	}
	if strings.Contains(w.logs.String(), "Q7x2Lm9Pz4Rt") {
		t.Error("the logs contain the API key")
	}
}

func TestConnectionResolution(t *testing.T) {
	t.Parallel()
	const envKey, envAssistant = "sk-env-key-from-environment-wxyz", "asst-env"
	tests := []struct {
		name   string
		env    [2]string
		stored bool
		source string
		key    string // the key List sends
	}{
		{"nothing", [2]string{}, false, "", ""},
		{"environment only", [2]string{envKey, envAssistant}, false, integrations.SourceEnvironment, envKey},
		{"half an environment", [2]string{envKey, ""}, false, "", ""},
		{"account over environment", [2]string{envKey, envAssistant}, true, integrations.SourceAccount, testKey},
		{"account only", [2]string{}, true, integrations.SourceAccount, testKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, withEnv(tt.env[0], tt.env[1]))
			w.fake.AddKey(envKey)
			w.fake.PutAssistant(vapitest.DefaultAssistant(envAssistant))
			if tt.stored {
				w.connected(t)
			}
			ctx := context.Background()
			r, err := w.svc.Connection(ctx, w.user.AccountID)
			if err != nil {
				t.Fatal(err)
			}
			if r.Source != tt.source {
				t.Fatalf("source %q, want %q", r.Source, tt.source)
			}
			_, err = w.svc.List(ctx, w.user.AccountID)
			if tt.source == "" {
				wantNotConnected(t, err)
				if n := len(w.fake.Requests()); n != 0 {
					t.Errorf("%d calls to Vapi without credentials", n)
				}
				_, err := w.test(ctx)
				wantNotConnected(t, err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := w.requests(http.MethodGet)
			if got[len(got)-1].Authorization != "Bearer "+tt.key {
				t.Errorf("List sent %q, want the %s key", got[len(got)-1].Authorization, tt.source)
			}
			if tt.source == integrations.SourceEnvironment {
				if r.Hints[vapi.FieldAPIKey] != "••••wxyz" || r.Hints[vapi.FieldAssistantID] != envAssistant || r.UpdatedAt != nil {
					t.Errorf("environment hints %+v", r)
				}
			}
		})
	}
}

// wantNotConnected fails unless err is Vapi's "not connected" error.
func wantNotConnected(t *testing.T, err error) {
	t.Helper()
	const want = "Vapi is not connected. Add your Vapi API key and assistant id on the Integrations page."
	if !integrations.IsNotConnected(err) || services.ErrorCode(err) != services.ENOTFOUND || services.ErrorMessage(err) != want {
		t.Fatalf("got %v, want ENOTFOUND %q", err, want)
	}
}

// An account without credentials answers from the built-in stub only in
// development with the flag on; in production the flag is refused, and
// without it Vapi is simply not connected. The stub never reaches the real
// client.
func TestStubSourceNeedsTheStub(t *testing.T) {
	t.Parallel()
	const refused = "Stub integrations are disabled in production: connect Vapi on the Integrations page."
	for _, tt := range []struct {
		name   string
		stubs  integrations.StubPolicy
		source string
	}{
		{"development with the flag", integrations.StubsAllowed, integrations.SourceStub},
		{"production with the flag", integrations.StubsRefused, ""},
		{"flag off", integrations.StubsOff, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, withStubs(tt.stubs))
			ctx := context.Background()
			r, err := w.svc.Connection(ctx, w.user.AccountID)
			if err != nil || r.Source != tt.source {
				t.Fatalf("connection %+v %v, want source %q", r, err, tt.source)
			}
			settings, listErr := w.svc.List(ctx, w.user.AccountID)
			msg, testErr := w.test(ctx)
			switch tt.stubs {
			case integrations.StubsAllowed:
				if listErr != nil || len(settings) == 0 {
					t.Fatalf("List through the stub: %v %v", settings, listErr)
				}
				if r.Values[vapi.FieldAPIKey] != vapitest.StubKey || r.Values[vapi.FieldAssistantID] != vapitest.StubAssistantID {
					t.Errorf("stub credentials %v", r.Values)
				}
				if testErr != nil || msg != "Connected: Vapi answered with assistant Stub assistant." {
					t.Fatalf("Test through the stub: %q %v", msg, testErr)
				}
			case integrations.StubsRefused:
				for _, err := range []error{listErr, testErr} {
					if services.ErrorCode(err) != services.EFORBIDDEN || services.ErrorMessage(err) != refused {
						t.Fatalf("stub refused in production: %v, want EFORBIDDEN %q", err, refused)
					}
					if integrations.IsNotConnected(err) {
						t.Errorf("the refusal reads as not connected: %v", err)
					}
				}
			default:
				wantNotConnected(t, listErr)
				wantNotConnected(t, testErr)
			}
			if n := len(w.fake.Requests()); n != 0 {
				t.Errorf("%d requests reached the real client", n)
			}
		})
	}
}

func TestHealthRecords(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.connected(t)
	ctx := context.Background()
	w.fake.FailNext(1, vapitest.Failure{Status: 500, Message: "Database unavailable"})
	before := time.Now().Add(-time.Second)
	if _, err := w.svc.List(ctx, w.user.AccountID); err == nil {
		t.Fatal("List succeeded against a failing Vapi")
	}
	st, err := w.registry.Status(ctx, w.user.AccountID, vapi.Name)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Configured || st.Source != integrations.SourceAccount || st.BreakerState != "closed" ||
		!strings.Contains(st.LastError, "Vapi is having trouble (Database unavailable)") ||
		st.LastErrorAt == nil || st.LastErrorAt.Before(before) {
		t.Fatalf("status after a failure %+v", st)
	}
	firstErrorAt := *st.LastErrorAt

	msg, err := w.test(ctx)
	if err != nil || msg != "Connected: Vapi answered with assistant Front desk." {
		t.Fatalf("Test: %q %v", msg, err)
	}
	st, _ = w.registry.Status(ctx, w.user.AccountID, vapi.Name)
	if st.LastOKAt == nil || st.LastOKAt.Before(firstErrorAt) {
		t.Errorf("last success not recorded: %+v", st)
	}
	if st.LastErrorAt == nil || !st.LastErrorAt.Equal(firstErrorAt) {
		t.Errorf("the last error is kept with its time after a success: %+v", st)
	}

	w.fake.FailNext(1, vapitest.Failure{Status: 401, Message: "Invalid Key. Hot tip, make sure you're using the private key."})
	if _, err := w.test(ctx); err == nil {
		t.Fatal("Test succeeded against a refusing Vapi")
	}
	st, _ = w.registry.Status(ctx, w.user.AccountID, vapi.Name)
	if !strings.Contains(st.LastError, "Vapi refused the API key: Invalid Key") {
		t.Errorf("last error %q", st.LastError)
	}
	all, err := w.registry.Statuses(ctx, w.user.AccountID)
	if err != nil || len(all) != 1 || all[0].Name() != vapi.Name {
		t.Errorf("statuses %+v %v", all, err)
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// Credentials belong to one account: another account does not see them,
// and a sealed row moved to another account does not open.
func TestAccountsAreIsolated(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.connected(t)
	ctx := context.Background()
	if _, err := w.svc.Update(ctx, w.user.AccountID, w.user.ID, vapi.KeyMaxDuration, raw(900)); err != nil {
		t.Fatal(err)
	}
	other, err := w.db.CreateUser(ctx, "other@example.com", "hash", false)
	if err != nil {
		t.Fatal(err)
	}
	if other.AccountID == w.user.AccountID {
		t.Fatal("the second owner shares the first one's account")
	}
	_, err = w.svc.List(ctx, other.AccountID)
	wantNotConnected(t, err)
	if c, _ := w.svc.Changes(ctx, other.AccountID, 10); len(c) != 0 {
		t.Errorf("another account sees the audit trail: %+v", c)
	}

	// (A third account, which nothing has read yet: the registry keeps
	// what it read of the second for a few seconds.)
	third, err := w.db.CreateUser(ctx, "third@example.com", "hash", false)
	if err != nil {
		t.Fatal(err)
	}
	row, err := w.db.Credentials(ctx, w.user.AccountID, vapi.Name)
	if err != nil {
		t.Fatal(err)
	}
	row.AccountID = third.AccountID
	if err := w.db.SaveCredentials(ctx, row); err != nil {
		t.Fatal(err)
	}
	_, err = w.svc.Connection(ctx, third.AccountID)
	if services.ErrorCode(err) != services.EINTERNAL {
		t.Fatalf("a sealed row moved to another account: %v, want EINTERNAL (does not open)", err)
	}
	if strings.Contains(services.ErrorMessage(err), "sealed") || strings.Contains(err.Error(), testKey) {
		t.Errorf("error %v", err)
	}
}

// One caller leaving does not cancel the read the others wait on, and a
// caller's own cancellation says nothing about Vapi: no last error.
func TestCallerLeavingCancelsNothingAndRecordsNothing(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.connected(t)
	w.fake.ResetRequests()
	w.fake.SetDelay(300 * time.Millisecond)

	leaving, leave := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		_, err := w.svc.List(leaving, w.user.AccountID)
		first <- err
	}()
	for len(w.fake.Requests()) == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	second := make(chan error, 1)
	go func() {
		_, err := w.svc.List(context.Background(), w.user.AccountID)
		second <- err
	}()
	time.Sleep(20 * time.Millisecond) // let the second caller join the shared read
	leave()
	if err := <-second; err != nil {
		t.Fatalf("the caller who stayed got %v", err)
	}
	// The caller who left waited for the shared read too, then stopped at
	// its own canceled context (or finished): either way, nothing else.
	if err := <-first; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("the caller who left got %v", err)
	}
	if n := len(w.fake.Requests()); n != 1 {
		t.Fatalf("%d upstream reads, want 1 shared", n)
	}

	// An update whose caller leaves before the PATCH: canceled, not recorded.
	w.fake.ResetRequests()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel) // during the (slow) read
	_, err := w.svc.Update(ctx, w.user.AccountID, w.user.ID, vapi.KeyMaxDuration, []byte("900"))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("update with a caller gone: %v", err)
	}
	if h := w.health(t); h.LastError != "" || h.LastErrorAt != nil {
		t.Fatalf("a caller leaving was recorded as Vapi's error: %+v", h)
	}
	if got := w.fake.Assistant(testAssistant)["maxDurationSeconds"]; got != float64(600) {
		t.Fatalf("Vapi changed to %v although the update was canceled", got)
	}
}

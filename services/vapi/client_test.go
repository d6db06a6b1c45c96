package vapi_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ava/console/services"
	"github.com/ava/console/services/vapi"
	"github.com/ava/console/services/vapi/vapitest"
)

func TestClientGetAssistant(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := services.WithCorrelationID(context.Background(), "corr-7.a:b")
	a, err := w.client.GetAssistant(ctx, testKey, testAssistant)
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != testAssistant || a.Name != "Front desk" || a.FirstMessage == nil || *a.FirstMessage == "" ||
		a.MaxDurationSeconds == nil || *a.MaxDurationSeconds != 600 || a.Voice["voiceId"] != "burt" || a.UpdatedAt.IsZero() {
		t.Errorf("assistant %+v", a)
	}
	reqs := w.fake.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.Method != http.MethodGet || r.Path != "/assistant/"+testAssistant {
		t.Errorf("request %s %s", r.Method, r.Path)
	}
	if r.Authorization != "Bearer "+testKey {
		t.Errorf("Authorization %q, want the Bearer key", r.Authorization)
	}
	if r.CorrelationID != "corr-7.a:b" {
		t.Errorf("X-Correlation-ID %q, want the context's", r.CorrelationID)
	}
}

func TestClientUpdateAssistant(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := services.WithCorrelationID(context.Background(), "corr-patch")
	a, err := w.client.UpdateAssistant(ctx, testKey, testAssistant, map[string]any{"maxDurationSeconds": 900})
	if err != nil {
		t.Fatal(err)
	}
	if a.MaxDurationSeconds == nil || *a.MaxDurationSeconds != 900 {
		t.Errorf("answer %+v", a)
	}
	r := w.fake.Requests()[0]
	if r.Method != http.MethodPatch || r.Authorization != "Bearer "+testKey || r.CorrelationID != "corr-patch" {
		t.Errorf("request %+v", r)
	}
	if len(r.Body) != 1 || r.Body["maxDurationSeconds"] != 900.0 {
		t.Errorf("PATCH body %v", r.Body)
	}
}

func TestClientVapiErrors(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	tests := []struct {
		name   string
		call   func() error
		status int
		says   string
	}{
		{"message string: bad key", func() error {
			_, err := w.client.GetAssistant(ctx, "wrong", testAssistant)
			return err
		}, 401, "Invalid Key. Hot tip, make sure you're using the private key."},
		{"message string: unknown assistant", func() error {
			_, err := w.client.GetAssistant(ctx, testKey, "nope")
			return err
		}, 404, "Couldn't Get Assistant. Assistant Not Found."},
		{"message array of one", func() error {
			_, err := w.client.UpdateAssistant(ctx, testKey, testAssistant, map[string]any{"maxDurationSeconds": 5})
			return err
		}, 400, "maxDurationSeconds must not be less than 10"},
		{"message array of two", func() error {
			_, err := w.client.UpdateAssistant(ctx, testKey, testAssistant, map[string]any{"voice": map[string]any{"speed": 1}})
			return err
		}, 400, "voice.provider must be one of the following values: 11labs, cartesia, openai, lmnt, azure, playht, deepgram; voice.voiceId should not be empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.call()
			var api *vapi.APIError
			if !errors.As(err, &api) {
				t.Fatalf("got %T %v, want *APIError", err, err)
			}
			if api.Status != tt.status || api.Message != tt.says {
				t.Errorf("APIError %d %q, want %d %q", api.Status, api.Message, tt.status, tt.says)
			}
			if !strings.Contains(err.Error(), tt.says) || !vapi.IsStatus(err, tt.status) {
				t.Errorf("error text %q", err.Error())
			}
		})
	}
	// The fake kept the assistant as it was.
	if got := w.fake.Assistant(testAssistant)["maxDurationSeconds"]; got != 600.0 {
		t.Errorf("refused PATCH changed the assistant: %v", got)
	}
}

func TestClientRateLimitedAnswer(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.fake.FailNext(1, vapitest.Failure{Status: 429, Message: "Too many requests, slow down", RetryAfter: "7"})
	_, err := w.client.GetAssistant(context.Background(), testKey, testAssistant)
	var api *vapi.APIError
	if !errors.As(err, &api) || api.Status != 429 || api.RetryAfter != 7*time.Second || api.Message != "Too many requests, slow down" {
		t.Fatalf("got %#v", err)
	}
}

// Answers that are not Vapi's JSON: the status speaks for them.
func TestClientOddAnswers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		status int
		header map[string]string
		body   string
		check  func(t *testing.T, a *vapi.Assistant, err error)
	}{
		{"HTML error page", 502, nil, "<html>Bad gateway</html>", func(t *testing.T, _ *vapi.Assistant, err error) {
			var api *vapi.APIError
			if !errors.As(err, &api) || api.Status != 502 || api.Message != "502 Bad Gateway" {
				t.Errorf("got %#v", err)
			}
		}},
		{"error member only", 403, nil, `{"error":"Forbidden","statusCode":403}`, func(t *testing.T, _ *vapi.Assistant, err error) {
			var api *vapi.APIError
			if !errors.As(err, &api) || api.Message != "Forbidden" {
				t.Errorf("got %#v", err)
			}
		}},
		{"empty message array", 400, nil, `{"message":[],"error":"Bad Request"}`, func(t *testing.T, _ *vapi.Assistant, err error) {
			var api *vapi.APIError
			if !errors.As(err, &api) || api.Message != "Bad Request" {
				t.Errorf("got %#v", err)
			}
		}},
		{"Retry-After as a date", 429, map[string]string{"Retry-After": time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)}, `{}`,
			func(t *testing.T, _ *vapi.Assistant, err error) {
				var api *vapi.APIError
				if !errors.As(err, &api) || api.RetryAfter < 59*time.Minute || api.RetryAfter > time.Hour {
					t.Errorf("got %#v", err)
				}
			}},
		{"unreadable success", 200, nil, `not json`, func(t *testing.T, _ *vapi.Assistant, err error) {
			if err == nil || !strings.Contains(err.Error(), "unreadable answer") {
				t.Errorf("got %v", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			c := vapi.NewClient(srv.URL+"/", srv.Client())
			a, err := c.GetAssistant(context.Background(), testKey, testAssistant)
			tt.check(t, a, err)
		})
	}
}

// Assistant ids go into the path escaped: an id cannot reach another endpoint.
func TestClientEscapesTheAssistantID(t *testing.T) {
	t.Parallel()
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.URL.EscapedPath()
		_, _ = w.Write([]byte(`{"id":"x"}`))
	}))
	defer srv.Close()
	c := vapi.NewClient(srv.URL, srv.Client())
	if _, err := c.GetAssistant(context.Background(), testKey, "../phone-number?x=1"); err != nil {
		t.Fatal(err)
	}
	if got != "/assistant/..%2Fphone-number%3Fx=1" {
		t.Errorf("path %q", got)
	}
}

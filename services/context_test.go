package services_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/ava/console/services"
)

func TestCorrelationIDFrom(t *testing.T) {
	long := strings.Repeat("a", 128)
	tests := []struct {
		name     string
		incoming string
		keep     bool
	}{
		{"uuid", "0b5f1c7e-3a1d-4c9b-9f7e-2d8c4b6a1e3f", true},
		{"allowed punctuation", "req._:-42", true},
		{"one character", "x", true},
		{"128 characters", long, true},
		{"empty", "", false},
		{"129 characters", long + "a", false},
		{"space", "a b", false},
		{"slash", "a/b", false},
		{"newline injection", "abc\r\nSet-Cookie: x=y", false},
		{"non-ascii", "café", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := services.CorrelationIDFrom(tt.incoming)
			if tt.keep {
				if got != tt.incoming {
					t.Fatalf("got %q, want the incoming id kept", got)
				}
				return
			}
			if got == tt.incoming {
				t.Fatalf("invalid id %q was kept", tt.incoming)
			}
			u, err := uuid.Parse(got)
			if err != nil {
				t.Fatalf("replacement %q is not a UUID: %v", got, err)
			}
			if u.Version() != 4 || u.Variant() != uuid.RFC4122 {
				t.Fatalf("replacement %q is version %d, variant %v; want a random (version 4) UUID", got, u.Version(), u.Variant())
			}
			if again := services.CorrelationIDFrom(tt.incoming); again == got {
				t.Fatalf("two replacements are both %q", got)
			}
		})
	}
}

func TestLoggerCarriesContextAttributes(t *testing.T) {
	var buf bytes.Buffer
	log := services.NewLogger(&buf, slog.LevelInfo, "json").With("component", "test")
	ctx := services.WithAccountID(services.WithCorrelationID(context.Background(), "corr-1"), 42)
	log.InfoContext(ctx, "hello", "k", "v")
	log.Info("no context")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 records, got %d: %s", len(lines), buf.String())
	}
	var first, second map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &second); err != nil {
		t.Fatal(err)
	}
	if first["correlation_id"] != "corr-1" || first["account_id"] != float64(42) || first["component"] != "test" {
		t.Fatalf("record lacks context attributes: %v", first)
	}
	if _, ok := second["correlation_id"]; ok {
		t.Fatalf("record without context has a correlation id: %v", second)
	}
}

func TestLoggerTextFormatAndLevel(t *testing.T) {
	var buf bytes.Buffer
	log := services.NewLogger(&buf, slog.LevelWarn, "text")
	ctx := services.WithCorrelationID(context.Background(), "corr-2")
	log.InfoContext(ctx, "dropped")
	log.WarnContext(ctx, "kept")
	out := buf.String()
	if strings.Contains(out, "dropped") || !strings.Contains(out, "msg=kept") || !strings.Contains(out, "correlation_id=corr-2") {
		t.Fatalf("unexpected text log: %q", out)
	}
}

func TestCorrelationTransportSendsTheContextID(t *testing.T) {
	got := make(chan string, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get(services.CorrelationHeader)
	}))
	defer srv.Close()
	client := &http.Client{Transport: services.CorrelationTransport{}}

	ctx := services.WithCorrelationID(context.Background(), "corr-up-1")
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if id := <-got; id != "corr-up-1" {
		t.Fatalf("upstream saw %q, want corr-up-1", id)
	}
	if req.Header.Get(services.CorrelationHeader) != "" {
		t.Fatal("the transport modified the caller's request")
	}

	// Without an id in the context, no header is invented.
	req, _ = http.NewRequestWithContext(context.Background(), http.MethodGet, srv.URL, nil)
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if id := <-got; id != "" {
		t.Fatalf("upstream saw %q without a context id", id)
	}
}

func TestErrorHelpers(t *testing.T) {
	if services.ErrorCode(nil) != "" {
		t.Fatal("nil error has a code")
	}
	if services.ErrorCode(context.Canceled) != services.EINTERNAL {
		t.Fatal("foreign errors are internal")
	}
	if msg := services.ErrorMessage(context.Canceled); msg != "Internal error." {
		t.Fatalf("foreign error text leaked: %q", msg)
	}
	fe := services.FieldError("voice_speed", "must be %.1f..%.1f", 0.5, 1.2)
	if services.ErrorCode(fe) != services.EINVALID || fe.Field != "voice_speed" || services.ErrorMessage(fe) != "must be 0.5..1.2" {
		t.Fatalf("field error: %+v", fe)
	}
	wrapped := services.Internal(context.DeadlineExceeded)
	if services.ErrorMessage(wrapped) != "Internal error." || !strings.Contains(wrapped.Error(), "deadline") {
		t.Fatalf("internal error: %v", wrapped)
	}
}

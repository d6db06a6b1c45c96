package vapi_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ava/console/services"
	"github.com/ava/console/services/upstream"
	"github.com/ava/console/services/vapi"
)

// TestSandbox runs against the real Vapi API, opt-in: set
// VAPI_SANDBOX_KEY (a private key of a test organisation) and
// VAPI_SANDBOX_ASSISTANT_ID (an assistant it may change). It reads the
// assistant, changes its maximum call duration and puts it back.
// VAPI_SANDBOX_BASE_URL overrides https://api.vapi.ai.
func TestSandbox(t *testing.T) {
	key, assistantID := os.Getenv("VAPI_SANDBOX_KEY"), os.Getenv("VAPI_SANDBOX_ASSISTANT_ID")
	if key == "" || assistantID == "" {
		t.Skip("real Vapi API test: set VAPI_SANDBOX_KEY and VAPI_SANDBOX_ASSISTANT_ID to run it")
	}
	base := os.Getenv("VAPI_SANDBOX_BASE_URL")
	if base == "" {
		base = "https://api.vapi.ai"
	}
	guards, err := upstream.NewGuards(upstream.Settings{
		Timeout: 15 * time.Second, FailureThreshold: 3, RecoveryTimeout: time.Minute, SuccessThreshold: 1,
	}, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	c := vapi.NewClient(base, guards.Client(services.IntegrationVapi))
	ctx := services.WithCorrelationID(context.Background(), "ava-sandbox-test")

	a, err := c.GetAssistant(ctx, key, assistantID)
	if err != nil {
		t.Fatalf("read the assistant: %v", err)
	}
	if a.ID != assistantID {
		t.Fatalf("Vapi answered assistant %q", a.ID)
	}
	settings := vapi.FromAssistant(a)
	for _, s := range settings {
		t.Logf("%s = %v (%s) %s", s.Key, s.Value, s.Constraint, s.Unsupported)
	}
	orig, _ := vapi.Find(settings, vapi.KeyMaxDuration)
	restore, _ := orig.Value.(int)
	origField := a.MaxDurationSeconds
	t.Cleanup(func() {
		// Put back what was there: Vapi's own field when it was set.
		patch := map[string]any{"maxDurationSeconds": restore}
		if origField != nil {
			patch["maxDurationSeconds"] = *origField
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if _, err := c.UpdateAssistant(ctx, key, assistantID, patch); err != nil {
			t.Errorf("RESTORE FAILED: set maxDurationSeconds of %s back to %v by hand: %v", assistantID, patch["maxDurationSeconds"], err)
		}
	})

	next := vapi.MinCallDuration + 1
	if restore == next {
		next++
	}
	value, err := vapi.ParseValue(vapi.KeyMaxDuration, []byte(strconv.Itoa(next)))
	if err != nil {
		t.Fatal(err)
	}
	patch, err := vapi.Patch(a, vapi.KeyMaxDuration, value)
	if err != nil || patch == nil {
		t.Fatalf("Patch: %v %v", patch, err)
	}
	updated, err := c.UpdateAssistant(ctx, key, assistantID, patch)
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if got, _ := vapi.Find(vapi.FromAssistant(updated), vapi.KeyMaxDuration); got.Value != next {
		t.Errorf("Vapi answered max_call_duration %v, want %d", got.Value, next)
	}
	again, err := c.GetAssistant(ctx, key, assistantID)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := vapi.Find(vapi.FromAssistant(again), vapi.KeyMaxDuration); got.Value != next {
		t.Errorf("read back max_call_duration %v, want %d", got.Value, next)
	}
	// Vapi's own error text comes through for a value it refuses.
	if _, err := c.UpdateAssistant(ctx, key, assistantID, map[string]any{"maxDurationSeconds": 1}); !vapi.IsStatus(err, 400) {
		t.Errorf("maxDurationSeconds 1: %v, want Vapi's 400", err)
	} else {
		t.Logf("Vapi refused maxDurationSeconds 1: %v", err)
	}
	if _, err := c.GetAssistant(ctx, key+"x", assistantID); !vapi.IsStatus(err, 401) {
		t.Errorf("bad key: %v, want 401", err)
	}
}

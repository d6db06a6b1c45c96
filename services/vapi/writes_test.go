package vapi_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/ava/console/services"
	"github.com/ava/console/services/upstream"
	"github.com/ava/console/services/vapi"
	"github.com/ava/console/services/vapi/vapitest"
)

// trail returns the owner's Vapi changes, newest first.
func (w *world) trail(t *testing.T) []services.SettingChange {
	t.Helper()
	c, err := w.svc.Changes(context.Background(), w.user.AccountID, 200)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// wantChain fails unless the trail's rows of key chain (each row's "from"
// is the previous row's "to"), the oldest starts at first and the newest
// ends at what Vapi has now.
func wantChain(t *testing.T, changes []services.SettingChange, first, atVapi string) {
	t.Helper()
	if len(changes) == 0 {
		t.Fatal("no changes recorded")
	}
	broken := 0
	for i := 0; i+1 < len(changes); i++ {
		if changes[i].OldValue != changes[i+1].NewValue {
			broken++
			if broken <= 3 {
				t.Errorf("row %d (id %d) starts from %s, but the row before it (id %d) ended at %s",
					i, changes[i].ID, changes[i].OldValue, changes[i+1].ID, changes[i+1].NewValue)
			}
		}
	}
	if broken > 0 {
		t.Errorf("%d of %d rows do not chain", broken, len(changes)-1)
	}
	if oldest := changes[len(changes)-1]; oldest.OldValue != first {
		t.Errorf("the oldest row starts from %s, want %s", oldest.OldValue, first)
	}
	if changes[0].NewValue != atVapi {
		t.Errorf("the newest row ends at %s, but Vapi has %s", changes[0].NewValue, atVapi)
	}
}

// Concurrent changes of one setting are serialised: Vapi ends on the
// newest row's value, and every row starts where the one before ended.
func TestConcurrentUpdatesKeepTheTrailInOrder(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.connected(t)
	w.fake.SetDelay(2 * time.Millisecond) // let the calls overlap
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			_, err := w.svc.Update(context.Background(), w.user.AccountID, w.user.ID, vapi.KeyGreeting, raw(fmt.Sprintf("Greeting number %d", i)))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a concurrent update failed: %v", err)
		}
	}
	changes := w.trail(t)
	if len(changes) != n {
		t.Fatalf("%d rows for %d different values", len(changes), n)
	}
	atVapi := w.fake.Assistant(testAssistant)["firstMessage"].(string)
	wantChain(t, changes, `"Hello, thanks for calling. How can I help you today?"`, mustJSONString(t, atVapi))
	if p := len(w.requests(http.MethodPatch)); p != n {
		t.Errorf("%d PATCHes, want %d", p, n)
	}
}

func mustJSONString(t *testing.T, s string) string {
	t.Helper()
	return string(mustJSON(t, s))
}

// A PATCH Vapi applied but whose answer was lost (a dropped connection, an
// answer later than UPSTREAM_TIMEOUT) is read back: the change is recorded
// and the update succeeds.
func TestLostAnswerIsReadBackAndRecorded(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		failure vapitest.Failure
	}{
		{"dropped after applying", vapitest.Failure{AfterApply: true, Drop: true}},
		{"answered after the timeout", vapitest.Failure{AfterApply: true, Delay: time.Second}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, withSettings(func(s *upstream.Settings) { s.Timeout = 300 * time.Millisecond }))
			w.connected(t)
			w.fake.FailMethod(http.MethodPatch, 1, tt.failure)
			s, err := w.svc.Update(context.Background(), w.user.AccountID, w.user.ID, vapi.KeyMaxDuration, raw(900))
			if err != nil {
				t.Fatalf("Vapi applied the change, but the update says %v", err)
			}
			if s.Value != 900 {
				t.Errorf("answer %+v", s)
			}
			if got := w.fake.Assistant(testAssistant)["maxDurationSeconds"]; got != 900.0 {
				t.Fatalf("Vapi has %v", got)
			}
			changes := w.trail(t)
			if len(changes) != 1 || changes[0].OldValue != "600" || changes[0].NewValue != "900" || changes[0].UserID != w.user.ID {
				t.Fatalf("trail %+v, want one change 600 -> 900", changes)
			}
			if gets := len(w.requests(http.MethodGet)); gets != 2 {
				t.Errorf("%d GETs, want 2 (the read before, the read back)", gets)
			}
			// Retrying finds it there and records nothing more.
			if _, err := w.svc.Update(context.Background(), w.user.AccountID, w.user.ID, vapi.KeyMaxDuration, raw(900)); err != nil {
				t.Fatal(err)
			}
			if c := w.trail(t); len(c) != 1 {
				t.Errorf("a retry of a recorded change recorded again: %+v", c)
			}
		})
	}
}

// When even the read back fails, the update fails and returns the setting
// as it was before; the retry finds the value at Vapi and records the
// change the trail lacks, exactly once.
func TestRetryRecordsALostChangeOnce(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		prior bool // the trail already has a change of the setting
	}{
		{"first change of the setting", false},
		{"after a recorded change", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			w.connected(t)
			ctx := context.Background()
			from := "600"
			if tt.prior {
				if _, err := w.svc.Update(ctx, w.user.AccountID, w.user.ID, vapi.KeyMaxDuration, raw(700)); err != nil {
					t.Fatal(err)
				}
				from = "700"
			}
			// The PATCH is applied and its answer lost; the read back fails.
			w.fake.FailMethod(http.MethodPatch, 1, vapitest.Failure{AfterApply: true, Drop: true})
			w.setBeforeFake(func(r *http.Request) {
				if r.Method == http.MethodPatch {
					w.fake.FailNext(1, vapitest.Failure{Status: 500, Message: "Internal server error"})
				}
			})
			s, err := w.svc.Update(ctx, w.user.AccountID, w.user.ID, vapi.KeyMaxDuration, raw(900))
			if services.ErrorCode(err) != services.EUPSTREAM {
				t.Fatalf("got %v, want EUPSTREAM (the outcome is unknown)", err)
			}
			if s.Key != vapi.KeyMaxDuration || fmt.Sprint(s.Value) != from {
				t.Errorf("the failed update returned %+v, want the setting as it was before (%s)", s, from)
			}
			w.setBeforeFake(nil)
			if got := w.fake.Assistant(testAssistant)["maxDurationSeconds"]; got != 900.0 {
				t.Fatalf("Vapi has %v: the fault did not apply the PATCH", got)
			}
			before := len(w.trail(t))

			for i := range 2 {
				s, err := w.svc.Update(ctx, w.user.AccountID, w.user.ID, vapi.KeyMaxDuration, raw(900))
				if err != nil || s.Value != 900 {
					t.Fatalf("retry %d: %+v %v", i+1, s, err)
				}
			}
			changes := w.trail(t)
			if len(changes) != before+1 {
				t.Fatalf("%d rows after the retries, want %d (the lost change, once)", len(changes), before+1)
			}
			if c := changes[0]; c.OldValue != from || c.NewValue != "900" || c.UserID != w.user.ID {
				t.Errorf("recorded %+v, want %s -> 900", c, from)
			}
			wantChain(t, changes, "600", "900")
			if p := len(w.requests(http.MethodPatch)); p != 1+btoi(tt.prior) {
				t.Errorf("%d PATCHes: the retries must send nothing", p)
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// A save whose PATCH and read back both go unanswered fails within
// UPSTREAM_TIMEOUT and the short read back, well under twice the timeout.
func TestUnansweredSaveIsBounded(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	w := newWorld(t, withSettings(func(s *upstream.Settings) { s.Timeout = timeout }))
	w.connected(t)
	w.fake.FailMethod(http.MethodPatch, 1, vapitest.Failure{Delay: 3 * time.Second})
	w.setBeforeFake(func(r *http.Request) {
		if r.Method == http.MethodPatch {
			w.fake.FailNext(1, vapitest.Failure{Delay: 3 * time.Second})
		}
	})
	start := time.Now()
	s, err := w.svc.Update(context.Background(), w.user.AccountID, w.user.ID, vapi.KeyMaxDuration, raw(900))
	took := time.Since(start)
	if services.ErrorCode(err) != services.ETIMEOUT {
		t.Fatalf("got %v, want ETIMEOUT", err)
	}
	// Bounded by UPSTREAM_TIMEOUT (a few of them for the read before and
	// the write), never by the fake's 3 s silence. The margin is wide: a
	// loaded machine running -race is slow, and speed is not the point.
	if took >= 2*time.Second {
		t.Errorf("the failed save took %s: it waited for the unanswered upstream (3s), not UPSTREAM_TIMEOUT (%s)", took, timeout)
	}
	if s.Value != 600 {
		t.Errorf("returned %+v, want the setting as it was (600)", s)
	}
	if c := w.trail(t); len(c) != 0 {
		t.Errorf("an unapplied change was recorded: %+v", c)
	}
}

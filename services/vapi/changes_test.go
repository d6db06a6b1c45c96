package vapi_test

import (
	"context"
	"testing"
	"time"

	"github.com/ava/console/services"
	"github.com/ava/console/services/vapi"
)

// A setting shows when it was last changed through the console however
// many changes of other settings came since, and a change made here shows
// at once.
func TestSettingsShowTheirLastChange(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.connected(t)
	ctx := context.Background()
	greeting, err := w.svc.Update(ctx, w.user.AccountID, w.user.ID, vapi.KeyGreeting, raw("Welcome to the front desk."))
	if err != nil {
		t.Fatal(err)
	}
	// Many changes of another setting since (as another instance would
	// record them).
	at := time.Now().UTC()
	for i := range 60 {
		if err := w.db.RecordSettingChange(ctx, services.SettingChange{
			AccountID: w.user.AccountID, UserID: w.user.ID, Integration: vapi.Name, Key: vapi.KeyMaxDuration,
			OldValue: "600", NewValue: "900", ChangedAt: at.Add(time.Duration(i) * time.Millisecond),
		}); err != nil {
			t.Fatal(err)
		}
	}
	settings, err := w.svc.List(ctx, w.user.AccountID)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := vapi.Find(settings, vapi.KeyGreeting)
	if !got.UpdatedAt.Equal(greeting.UpdatedAt.Truncate(time.Millisecond)) {
		t.Errorf("greeting updated at %v, want its change at %v", got.UpdatedAt, greeting.UpdatedAt)
	}
	if d, _ := vapi.Find(settings, vapi.KeyMaxDuration); !d.UpdatedAt.Equal(at.Add(59 * time.Millisecond).Truncate(time.Millisecond)) {
		t.Errorf("max duration updated at %v, want the newest of its changes", d.UpdatedAt)
	}

	speed, err := w.svc.Update(ctx, w.user.AccountID, w.user.ID, vapi.KeyVoiceSpeed, raw(1.1))
	if err != nil {
		t.Fatal(err)
	}
	settings, err = w.svc.List(ctx, w.user.AccountID)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := vapi.Find(settings, vapi.KeyVoiceSpeed); !got.UpdatedAt.Equal(speed.UpdatedAt.Truncate(time.Millisecond)) {
		t.Errorf("voice speed updated at %v right after its change at %v", got.UpdatedAt, speed.UpdatedAt)
	}
}

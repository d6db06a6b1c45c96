package events

import (
	"context"
	"testing"
	"time"
)

// Events older than MissWindow are never returned, however early the page
// says it was served (a reconnect hours later sends the same time), and
// accounts quiet for longer are forgotten once there are many.
func TestSubscribeSinceLooksBackAMinuteAtMost(t *testing.T) {
	h, err := New("a", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	now := time.Now()
	h.now = func() time.Time { return now }
	served := now
	h.Publish(context.Background(), Event{Kind: SettingChanged, AccountID: 1, Integration: "vapi", Key: "old"})
	now = now.Add(MissWindow + time.Second)
	h.Publish(context.Background(), Event{Kind: SettingChanged, AccountID: 1, Integration: "vapi", Key: "new"})
	_, missed := h.SubscribeSince(1, served, "a")
	if len(missed) != 1 || missed[0].Key != "new" {
		t.Errorf("missed %+v, want only the event of the last minute", missed)
	}

	for a := range int64(manyAccounts + 1) {
		h.Publish(context.Background(), Event{Kind: IntegrationChanged, AccountID: 100 + a, Integration: "vapi"})
	}
	now = now.Add(MissWindow + sweepEvery + time.Second)
	h.Publish(context.Background(), Event{Kind: IntegrationChanged, AccountID: 1, Integration: "vapi"})
	h.mu.Lock()
	n := len(h.recent)
	h.mu.Unlock()
	if n != 1 {
		t.Errorf("%d accounts kept after a quiet minute, want 1 (the one just delivered)", n)
	}
}

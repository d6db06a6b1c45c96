package sqlite_test

import (
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ava/console/services"
)

func TestOAuthStateIsTakenOnceAndExpires(t *testing.T) {
	ctx := context.Background()
	db := open(t, filepath.Join(t.TempDir(), "ava.db"))
	defer func() { _ = db.Close() }()
	u, err := db.CreateUser(ctx, "a@example.com", "hash", true)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	st := services.OAuthState{Hash: "h1", Binding: "b1", AccountID: u.AccountID, Integration: "calendar",
		SealedVerifier: []byte{1, 2, 3}, ExpiresAt: now.Add(10 * time.Minute)}
	if err := db.SaveOAuthState(ctx, st); err != nil {
		t.Fatal(err)
	}
	if err := db.SaveOAuthState(ctx, st); err == nil {
		t.Fatal("the same state was saved twice")
	}

	// Many callbacks with one state at once: exactly one takes it.
	var took atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := db.TakeOAuthState(ctx, "h1", now)
			switch services.ErrorCode(err) {
			case "":
				took.Add(1)
				if got.Binding != "b1" || got.AccountID != u.AccountID || got.Integration != "calendar" ||
					string(got.SealedVerifier) != "\x01\x02\x03" || got.ExpiresAt.UnixMilli() != st.ExpiresAt.UnixMilli() {
					t.Errorf("taken: %+v", got)
				}
			case services.ENOTFOUND:
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if took.Load() != 1 {
		t.Fatalf("the state was taken %d times, want once", took.Load())
	}

	// An expired state is refused, and gone.
	st.Hash, st.ExpiresAt = "h2", now.Add(time.Minute)
	if err := db.SaveOAuthState(ctx, st); err != nil {
		t.Fatal(err)
	}
	if _, err := db.TakeOAuthState(ctx, "h2", now.Add(2*time.Minute)); services.ErrorCode(err) != services.ENOTFOUND {
		t.Fatalf("expired state: %v, want ENOTFOUND", err)
	}
	if _, err := db.TakeOAuthState(ctx, "h2", now); services.ErrorCode(err) != services.ENOTFOUND {
		t.Fatalf("an expired state was kept: %v", err)
	}
}

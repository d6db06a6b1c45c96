package account_test

import (
	"bytes"
	"encoding/base64"
	"testing"
	"time"

	"github.com/ava/console/services/account"
)

func TestSessionCSRFTokens(t *testing.T) {
	s, db := newService(t)
	other, err := account.New(db, bytes.Repeat([]byte{2}, 32))
	if err != nil {
		t.Fatal(err)
	}
	a, b := s.CSRFToken("session-a"), s.CSRFToken("session-b")
	if a == "" || a == b || a != s.CSRFToken("session-a") {
		t.Fatalf("tokens must be stable per session and differ between sessions: %q %q", a, b)
	}
	if a == other.CSRFToken("session-a") {
		t.Fatal("another secret key derives the same token")
	}
	if s.CSRFToken("") != "" {
		t.Fatal("no session, no token")
	}
	if _, ok := s.FormTokenIssued(a); ok {
		t.Fatal("a session's token passes as a signed-out form's")
	}
}

func TestFormCSRFTokens(t *testing.T) {
	s, db := newService(t)
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	account.SetClock(s, func() time.Time { return now })
	tok, err := s.NewFormToken()
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := s.NewFormToken(); again == tok {
		t.Fatal("two form tokens are equal")
	}
	if issued, ok := s.FormTokenIssued(tok); !ok || !issued.Equal(now) {
		t.Fatalf("own token: %v %v", issued, ok)
	}
	// Another instance with the same key accepts it.
	same, err := account.New(db, bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	account.SetClock(same, func() time.Time { return now })
	if _, ok := same.FormTokenIssued(tok); !ok {
		t.Fatal("an instance with the same key refuses the token")
	}
	other, _ := account.New(db, bytes.Repeat([]byte{2}, 32))
	if _, ok := other.FormTokenIssued(tok); ok {
		t.Fatal("an instance with another key accepts the token")
	}
	// Tampered, truncated, garbage.
	raw, _ := base64.RawURLEncoding.DecodeString(tok)
	raw[0] ^= 1
	for _, bad := range []string{"", "x", tok[:len(tok)-1], base64.RawURLEncoding.EncodeToString(raw), tok + "A"} {
		if _, ok := s.FormTokenIssued(bad); ok {
			t.Errorf("accepted %q", bad)
		}
	}
	// Expired.
	now = now.Add(account.FormTokenTTL + time.Second)
	if _, ok := s.FormTokenIssued(tok); ok {
		t.Fatal("an expired token was accepted")
	}
}

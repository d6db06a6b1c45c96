package secrets_test

import (
	"bytes"
	"testing"

	"github.com/ava/console/services/secrets"
)

func sealer(t *testing.T, b byte) *secrets.Sealer {
	t.Helper()
	s, err := secrets.NewSealer(bytes.Repeat([]byte{b}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSealOpen(t *testing.T) {
	s := sealer(t, 1)
	plain := []byte(`{"api_key":"sk-live-0123456789"}`)
	a, err := s.Seal(plain, "account 1 integration vapi")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := s.Seal(plain, "account 1 integration vapi")
	if bytes.Equal(a, b) {
		t.Error("two seals of one value are equal: the nonce is not random")
	}
	if bytes.Contains(a, []byte("sk-live")) {
		t.Error("the sealed value contains the plaintext")
	}
	got, err := s.Open(a, "account 1 integration vapi")
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("Open: %q %v", got, err)
	}

	tests := []struct {
		name    string
		s       *secrets.Sealer
		sealed  []byte
		context string
	}{
		{"another account's row", s, a, "account 2 integration vapi"},
		{"another integration", s, a, "account 1 integration twilio"},
		{"another AVA_SECRET_KEY", sealer(t, 2), a, "account 1 integration vapi"},
		{"tampered", s, append(append([]byte{}, a[:len(a)-1]...), a[len(a)-1]^1), "account 1 integration vapi"},
		{"too short", s, a[:5], "account 1 integration vapi"},
		{"empty", s, nil, "account 1 integration vapi"},
	}
	for _, tt := range tests {
		if got, err := tt.s.Open(tt.sealed, tt.context); err == nil {
			t.Errorf("%s: opened to %q", tt.name, got)
		} else if bytes.Contains([]byte(err.Error()), plain) {
			t.Errorf("%s: error shows the plaintext", tt.name)
		}
	}
}

func TestMask(t *testing.T) {
	tests := []struct{ in, want string }{
		{"sk-live-0123456789abcd", "••••abcd"},
		{"123456789", "••••6789"},
		{"12345678", "••••"}, // short secrets are masked entirely
		{"abc", "••••"},
		{"", "••••"},
		{"clé-secrète-éèêë", "••••éèêë"}, // characters, not bytes
	}
	for _, tt := range tests {
		if got := secrets.Mask(tt.in); got != tt.want {
			t.Errorf("Mask(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

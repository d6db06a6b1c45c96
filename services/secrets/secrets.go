// Package secrets seals credentials for storage (AES-256-GCM under a key
// derived from AVA_SECRET_KEY) and masks them for display.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"strings"
	"unicode/utf8"
)

// Sealer encrypts and decrypts stored credentials.
type Sealer struct {
	aead cipher.AEAD
}

// NewSealer derives the credentials key from the console's secret key.
func NewSealer(secret []byte) (*Sealer, error) {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte("ava credentials key v1"))
	block, err := aes.NewCipher(mac.Sum(nil))
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts plaintext bound to context (for example "account 7 vapi"),
// so a sealed value moved to another row does not open.
func (s *Sealer) Seal(plaintext []byte, context string) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return s.aead.Seal(nonce, nonce, plaintext, []byte(context)), nil
}

// Open decrypts what Seal produced with the same context.
func (s *Sealer) Open(sealed []byte, context string) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n {
		return nil, errors.New("sealed value too short")
	}
	plain, err := s.aead.Open(nil, sealed[:n], sealed[n:], []byte(context))
	if err != nil {
		return nil, errors.New("sealed value does not open: wrong AVA_SECRET_KEY or corrupted data")
	}
	return plain, nil
}

// Mask shows the last four characters of a secret only ("••••abcd"); short
// secrets are masked entirely.
func Mask(secret string) string {
	n := utf8.RuneCountInString(secret)
	if n <= 8 {
		return strings.Repeat("•", 4)
	}
	r := []rune(secret)
	return "••••" + string(r[n-4:])
}

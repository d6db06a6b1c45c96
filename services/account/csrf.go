package account

// CSRF tokens that need no server memory: they are derived from, or signed
// with, a key derived from AVA_SECRET_KEY, so every instance sharing the key
// accepts them, also after a restart, and nothing is stored per token.
//
//   - A signed-in browser's token is derived from its session:
//     base64url(HMAC-SHA256(key, "csrf\x00session\x00" + the session's stored
//     hash)). It lives as long as the session, and ends with it.
//   - Signed-out forms (sign-in, setup) use a signed double-submit token:
//     base64url(random || issued-at || HMAC-SHA256(key, "csrf\x00form\x00" +
//     random || issued-at)), sent both in a cookie and in the form; the two
//     must be equal and the signature must verify (FormTokenIssued).

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"time"
)

// FormTokenTTL is how long a signed-out form's token is accepted.
const FormTokenTTL = 12 * time.Hour

const (
	formRandomLen = 16
	formTimeLen   = 8
	formMACLen    = sha256.Size
	formTokenLen  = formRandomLen + formTimeLen + formMACLen
)

// deriveKey is a key for one purpose, derived from the secret.
func deriveKey(secret []byte, purpose string) []byte {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(purpose))
	return mac.Sum(nil)
}

func (s *Service) csrfMAC(parts ...[]byte) []byte {
	mac := hmac.New(sha256.New, s.csrfKey)
	for _, p := range parts {
		mac.Write(p)
	}
	return mac.Sum(nil)
}

// CSRFToken is the CSRF token of the browser signed in with this session
// cookie value ("" for none). It needs no lookup: the caller has checked
// the session already.
func (s *Service) CSRFToken(session string) string {
	if session == "" {
		return ""
	}
	if e, ok := s.sessions.Get(sha256.Sum256([]byte(session)), s.now()); ok {
		return e.csrf // derived when the session was read
	}
	return s.sessionCSRF(s.sessionHash(session))
}

// sessionCSRF is the CSRF token of the session stored under hash.
func (s *Service) sessionCSRF(hash string) string {
	return base64.RawURLEncoding.EncodeToString(s.csrfMAC([]byte("csrf\x00session\x00"), []byte(hash)))
}

// NewFormToken returns a fresh signed token for a signed-out form.
func (s *Service) NewFormToken() (string, error) {
	b := make([]byte, formRandomLen+formTimeLen, formTokenLen)
	if _, err := rand.Read(b[:formRandomLen]); err != nil {
		return "", err
	}
	binary.BigEndian.PutUint64(b[formRandomLen:], uint64(s.now().Unix())) //nolint:gosec // a Unix time after 1970
	b = append(b, s.csrfMAC([]byte("csrf\x00form\x00"), b)...)
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// FormTokenIssued returns when a signed-out form's token was issued, and
// whether it is one of ours and still within FormTokenTTL.
func (s *Service) FormTokenIssued(token string) (time.Time, bool) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) != formTokenLen {
		return time.Time{}, false
	}
	body, sum := b[:formRandomLen+formTimeLen], b[formRandomLen+formTimeLen:]
	if !hmac.Equal(sum, s.csrfMAC([]byte("csrf\x00form\x00"), body)) {
		return time.Time{}, false
	}
	issued := time.Unix(int64(binary.BigEndian.Uint64(body[formRandomLen:])), 0) //nolint:gosec // signed by us
	now := s.now()
	if now.Sub(issued) > FormTokenTTL || issued.Sub(now) > time.Minute {
		return time.Time{}, false
	}
	return issued, true
}

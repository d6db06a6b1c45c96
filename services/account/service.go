// Package account is the console's account owners, their browser sessions
// and their API tokens: validation, password hashing and token handling over
// a services.Store.
package account

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/mail"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/ava/console/services"
	"github.com/ava/console/services/cache"
	"github.com/ava/console/services/events"
)

// Limits on what owners type.
const (
	MinPasswordLen = 10
	MaxPasswordLen = 128
	MaxEmailLen    = 254
	MaxTokenName   = 64
	// TokenPrefix starts every API token, so that leaked tokens are easy to
	// recognise (secret scanners) and to tell from session cookies.
	TokenPrefix = "ava_"
	// SessionTTL is how long a sign-in lasts.
	SessionTTL = 14 * 24 * time.Hour
	// TouchInterval is how often a token's last use is written at most:
	// "Last used" is exact to this much, and a token used all the time
	// costs one write in this interval, not one a request.
	TouchInterval = time.Minute
	// cacheSize bounds each of the caches of tokens and sessions.
	cacheSize = 10_000
)

// Service implements sign-up, sign-in, sessions and API tokens.
type Service struct {
	store services.Store
	// sessionKey keys the hash under which session tokens are stored, so a
	// copy of the database alone cannot forge or recognise a cookie.
	sessionKey []byte
	// csrfKey signs CSRF tokens (csrf.go).
	csrfKey []byte
	now     func() time.Time
	// dummyHash makes sign-in with an unknown email cost as much as with a
	// known one, so timing does not tell which emails exist.
	dummyHash string
	// tokens and sessions cache who a valid API token or session cookie
	// is, by the SHA-256 of the token or cookie, for cache.Staleness:
	// revoking a token or ending a session drops it here at once; other
	// instances read it again within cache.Staleness.
	tokens   *cache.Cache[[sha256.Size]byte, *tokenEntry]
	sessions *cache.Cache[[sha256.Size]byte, sessionEntry]
	// events is told of each session signed out (events.SessionEnded).
	events events.Publisher
}

// PublishTo makes the service tell p of each session it ends; s is
// returned.
func (s *Service) PublishTo(p events.Publisher) *Service {
	s.events = p
	return s
}

// SessionID names a session cookie among events and streams without
// giving it away: the hex SHA-256 of its value, the key this instance
// caches it under.
func SessionID(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// Invalidate drops a session another instance ended (an event it
// published) from this instance's cache at once.
func (s *Service) Invalidate(e events.Event) {
	if e.Kind != events.SessionEnded {
		return
	}
	var key [sha256.Size]byte
	if b, err := hex.DecodeString(e.Session); err == nil && len(b) == len(key) {
		copy(key[:], b)
		s.sessions.Remove(key)
	}
}

// tokenEntry is a valid API token as last read.
type tokenEntry struct {
	user    services.User
	tokenID int64
	// used is the token's last use (Unix ms) as stored when read, or as
	// this instance last wrote it.
	used atomic.Int64
}

// sessionEntry is a session as last read, and its CSRF token.
type sessionEntry struct {
	user    services.User
	expires time.Time
	csrf    string
}

// New returns the account service over store; secret is AVA_SECRET_KEY.
func New(store services.Store, secret []byte) (*Service, error) {
	dummy, err := HashPassword("not a real password, only for timing")
	if err != nil {
		return nil, err
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte("ava session key v1"))
	return &Service{
		store: store, sessionKey: mac.Sum(nil), csrfKey: deriveKey(secret, "ava csrf key v1"), now: time.Now, dummyHash: dummy,
		tokens:   cache.New[[sha256.Size]byte, *tokenEntry](cacheSize, cache.Staleness),
		sessions: cache.New[[sha256.Size]byte, sessionEntry](cacheSize, cache.Staleness),
	}, nil
}

// SetClock replaces the clock that sessions, tokens' use and the caches
// go by (tests move it past an expiry); time.Now by default.
func (s *Service) SetClock(now func() time.Time) { s.now = now }

// SetupNeeded reports whether no owner exists yet (first run).
func (s *Service) SetupNeeded(ctx context.Context) (bool, error) {
	n, err := s.store.CountUsers(ctx)
	if err != nil {
		return false, services.Internal(err)
	}
	return n == 0, nil
}

// ValidateEmail normalises an email address or says why it is refused.
func ValidateEmail(email string) (string, error) {
	email = strings.TrimSpace(email)
	if email == "" {
		return "", services.FieldError("email", "Email is required.")
	}
	if len(email) > MaxEmailLen {
		return "", services.FieldError("email", "Email must be at most %d characters.", MaxEmailLen)
	}
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Address != email {
		return "", services.FieldError("email", "Email must be an address like owner@example.com.")
	}
	return strings.ToLower(email), nil
}

// ValidatePassword says why a new password is refused, or returns nil.
func ValidatePassword(password string) error {
	if n := utf8.RuneCountInString(password); n < MinPasswordLen || n > MaxPasswordLen {
		return services.FieldError("password", "Password must be %d to %d characters.", MinPasswordLen, MaxPasswordLen)
	}
	return nil
}

// CreateOwner creates an account and its owner. With firstRun set it only
// succeeds while no owner exists (the first-visit setup page).
func (s *Service) CreateOwner(ctx context.Context, email, password string, firstRun bool) (services.User, error) {
	email, err := ValidateEmail(email)
	if err != nil {
		return services.User{}, err
	}
	if err := ValidatePassword(password); err != nil {
		return services.User{}, err
	}
	hash, err := HashPassword(password)
	if err != nil {
		return services.User{}, services.Internal(err)
	}
	u, err := s.store.CreateUser(ctx, email, hash, firstRun)
	if err != nil {
		if services.ErrorCode(err) == services.EINTERNAL {
			return services.User{}, services.Internal(err)
		}
		return services.User{}, err
	}
	return u, nil
}

// errBadCredentials is a fresh refusal of a sign-in each time it is needed.
func errBadCredentials() error {
	return services.Errorf(services.EUNAUTHORIZED, "Incorrect email or password.")
}

// Authenticate returns the owner whose email and password these are. Unknown
// email and wrong password give the same error, after the same work.
func (s *Service) Authenticate(ctx context.Context, email, password string) (services.User, error) {
	u, hash, err := s.store.UserByEmail(ctx, strings.ToLower(strings.TrimSpace(email)))
	switch services.ErrorCode(err) {
	case "":
	case services.ENOTFOUND:
		_, _ = CheckPassword(s.dummyHash, password)
		return services.User{}, errBadCredentials()
	default:
		return services.User{}, services.Internal(err)
	}
	ok, err := CheckPassword(hash, password)
	if err != nil {
		return services.User{}, services.Internal(err)
	}
	if !ok {
		return services.User{}, errBadCredentials()
	}
	return u, nil
}

func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func (s *Service) sessionHash(token string) string {
	mac := hmac.New(sha256.New, s.sessionKey)
	mac.Write([]byte(token))
	return hex.EncodeToString(mac.Sum(nil))
}

// StartSession signs the user in and returns the cookie value and its expiry.
func (s *Service) StartSession(ctx context.Context, userID int64) (string, time.Time, error) {
	token, err := randomToken()
	if err != nil {
		return "", time.Time{}, services.Internal(err)
	}
	now := s.now()
	sess := services.Session{TokenHash: s.sessionHash(token), UserID: userID, CreatedAt: now, ExpiresAt: now.Add(SessionTTL)}
	if err := s.store.CreateSession(ctx, sess); err != nil {
		return "", time.Time{}, services.Internal(err)
	}
	return token, sess.ExpiresAt, nil
}

// SessionUser returns the owner signed in with this cookie value.
func (s *Service) SessionUser(ctx context.Context, token string) (services.User, error) {
	if token == "" {
		return services.User{}, services.Errorf(services.EUNAUTHORIZED, "Sign in to continue.")
	}
	key, now := sha256.Sum256([]byte(token)), s.now()
	if e, ok := s.sessions.Get(key, now); ok && now.Before(e.expires) {
		return e.user, nil
	}
	gen := s.sessions.Generation()
	hash := s.sessionHash(token)
	sess, err := s.store.SessionByHash(ctx, hash, now)
	switch services.ErrorCode(err) {
	case "":
	case services.ENOTFOUND:
		return services.User{}, services.Errorf(services.EUNAUTHORIZED, "Your session has ended. Sign in again.")
	default:
		return services.User{}, services.Internal(err)
	}
	u, err := s.store.UserByID(ctx, sess.UserID)
	if err != nil {
		return services.User{}, services.Internal(err)
	}
	s.sessions.Add(key, sessionEntry{user: u, expires: sess.ExpiresAt, csrf: s.sessionCSRF(hash)}, gen, now)
	return u, nil
}

// EndSession signs the browser with this cookie value out, on this
// instance at once, on the others as soon as they hear of it
// (events.SessionEnded; within cache.Staleness without events).
func (s *Service) EndSession(ctx context.Context, token string) error {
	if token == "" {
		return nil
	}
	u, unknown := s.SessionUser(ctx, token)
	err := s.store.DeleteSession(ctx, s.sessionHash(token))
	s.sessions.Remove(sha256.Sum256([]byte(token)))
	if err != nil {
		return services.Internal(err)
	}
	if unknown == nil {
		events.Publish(ctx, s.events, events.Event{Kind: events.SessionEnded, AccountID: u.AccountID, Session: SessionID(token)})
	}
	return nil
}

// tokenHash is how an API token is stored: its SHA-256, in hex.
func tokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// CreateToken creates an API token for the user. The returned plain text is
// the only time the token exists outside the caller's hands: only its hash is
// stored.
func (s *Service) CreateToken(ctx context.Context, userID int64, name string) (string, services.APIToken, error) {
	name = strings.TrimSpace(name)
	if n := utf8.RuneCountInString(name); n < 1 || n > MaxTokenName {
		return "", services.APIToken{}, services.FieldError("name", "Token name must be 1 to %d characters.", MaxTokenName)
	}
	secret, err := randomToken()
	if err != nil {
		return "", services.APIToken{}, services.Internal(err)
	}
	plain := TokenPrefix + secret
	t, err := s.store.CreateToken(ctx, services.APIToken{
		UserID: userID, Name: name, Hash: tokenHash(plain), Last4: plain[len(plain)-4:], CreatedAt: s.now(),
	})
	if err != nil {
		return "", services.APIToken{}, services.Internal(err)
	}
	return plain, t, nil
}

// Tokens returns the user's tokens, newest first.
func (s *Service) Tokens(ctx context.Context, userID int64) ([]services.APIToken, error) {
	ts, err := s.store.ListTokens(ctx, userID)
	if err != nil {
		return nil, services.Internal(err)
	}
	return ts, nil
}

// RevokeToken stops the user's token from working: on this instance at
// once, on others within cache.Staleness.
func (s *Service) RevokeToken(ctx context.Context, userID, tokenID int64) (services.APIToken, error) {
	t, err := s.store.RevokeToken(ctx, userID, tokenID, s.now())
	if err != nil && services.ErrorCode(err) == services.EINTERNAL {
		return services.APIToken{}, services.Internal(err)
	}
	if err == nil {
		var key [sha256.Size]byte
		if n, herr := hex.Decode(key[:], []byte(t.Hash)); herr == nil && n == len(key) {
			s.tokens.Remove(key)
		} else {
			s.tokens.Purge() // a hash of another form: forget every token
		}
	}
	return t, err
}

// TokenUser returns the owner of a valid, unrevoked API token and records
// its use (at most once every TouchInterval).
func (s *Service) TokenUser(ctx context.Context, plain string) (services.User, error) {
	if !strings.HasPrefix(plain, TokenPrefix) {
		return services.User{}, errInvalidToken()
	}
	key, now := sha256.Sum256([]byte(plain)), s.now()
	e, ok := s.tokens.Get(key, now)
	if !ok {
		gen := s.tokens.Generation()
		t, err := s.store.TokenByHash(ctx, hex.EncodeToString(key[:]))
		switch services.ErrorCode(err) {
		case "":
		case services.ENOTFOUND:
			return services.User{}, errInvalidToken()
		default:
			return services.User{}, services.Internal(err)
		}
		if t.Revoked() {
			return services.User{}, errInvalidToken()
		}
		u, err := s.store.UserByID(ctx, t.UserID)
		if err != nil {
			return services.User{}, services.Internal(err)
		}
		e = &tokenEntry{user: u, tokenID: t.ID}
		if t.LastUsedAt != nil {
			e.used.Store(t.LastUsedAt.UnixMilli())
		}
		s.tokens.Add(key, e, gen, now)
	}
	if err := s.touch(ctx, e, now); err != nil {
		return services.User{}, services.Internal(err)
	}
	return e.user, nil
}

// errInvalidToken is a fresh refusal of an API token each time it is needed.
func errInvalidToken() error {
	return services.Errorf(services.EUNAUTHORIZED, "The API token is invalid or revoked.")
}

// touch writes the token's last use when what is known of it is at least
// TouchInterval old; one request writes it, the others go on.
func (s *Service) touch(ctx context.Context, e *tokenEntry, now time.Time) error {
	last, at := e.used.Load(), now.UnixMilli()
	if at-last < TouchInterval.Milliseconds() || !e.used.CompareAndSwap(last, at) {
		return nil
	}
	if err := s.store.TouchToken(ctx, e.tokenID, now); err != nil {
		e.used.CompareAndSwap(at, last) // the next request tries again
		return err
	}
	return nil
}

// CleanExpiredSessions removes sessions past their expiry; run it now and then.
func (s *Service) CleanExpiredSessions(ctx context.Context) (int64, error) {
	n, err := s.store.DeleteExpiredSessions(ctx, s.now())
	if err != nil {
		return 0, fmt.Errorf("delete expired sessions: %w", err)
	}
	return n, nil
}

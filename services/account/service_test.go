package account_test

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ava/console/services"
	"github.com/ava/console/services/account"
	"github.com/ava/console/services/sqlite"
)

func newService(t *testing.T) (*account.Service, *sqlite.DB) {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "ava.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	s, err := account.New(db, bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return s, db
}

func TestPasswordHash(t *testing.T) {
	h1, err := account.HashPassword("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	h2, _ := account.HashPassword("correct horse battery")
	if h1 == h2 || !strings.HasPrefix(h1, "$argon2id$v=19$") {
		t.Fatalf("hashes must be salted argon2id: %q %q", h1, h2)
	}
	if strings.Contains(h1, "correct") {
		t.Fatal("hash contains the password")
	}
	if ok, err := account.CheckPassword(h1, "correct horse battery"); !ok || err != nil {
		t.Fatalf("right password refused: %v", err)
	}
	if ok, _ := account.CheckPassword(h1, "correct horse batterY"); ok {
		t.Fatal("wrong password accepted")
	}
	if _, err := account.CheckPassword("$2a$10$bcrypt", "x"); err == nil {
		t.Fatal("unknown hash format accepted")
	}
}

func TestCreateOwnerValidation(t *testing.T) {
	tests := []struct {
		name, email, password, field string
	}{
		{"missing email", "", "long enough pw", "email"},
		{"not an address", "owner", "long enough pw", "email"},
		{"display name form", "Owner <o@example.com>", "long enough pw", "email"},
		{"short password", "o@example.com", "short", "password"},
		{"long password", "o@example.com", strings.Repeat("p", 129), "password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, db := newService(t)
			_, err := s.CreateOwner(context.Background(), tt.email, tt.password, true)
			var e *services.Error
			if services.ErrorCode(err) != services.EINVALID || !asError(err, &e) || e.Field != tt.field {
				t.Fatalf("got %v, want EINVALID on %s", err, tt.field)
			}
			if n, _ := db.CountUsers(context.Background()); n != 0 {
				t.Fatal("an invalid owner was stored")
			}
		})
	}
}

func asError(err error, target **services.Error) bool {
	e, ok := err.(*services.Error) //nolint:errorlint // the service returns *Error unwrapped
	*target = e
	return ok
}

func TestSignInAndSessions(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t)
	if needed, _ := s.SetupNeeded(ctx); !needed {
		t.Fatal("fresh database does not need setup")
	}
	u, err := s.CreateOwner(ctx, " Owner@Example.com ", "correct horse battery", true)
	if err != nil {
		t.Fatal(err)
	}
	if u.Email != "owner@example.com" {
		t.Fatalf("email not normalised: %q", u.Email)
	}
	if needed, _ := s.SetupNeeded(ctx); needed {
		t.Fatal("setup still offered after the owner exists")
	}
	if _, err := s.CreateOwner(ctx, "second@example.com", "correct horse battery", true); services.ErrorCode(err) != services.ECONFLICT {
		t.Fatalf("second first-run owner: %v", err)
	}

	_, wrongPw := s.Authenticate(ctx, "owner@example.com", "wrong password!")
	_, unknown := s.Authenticate(ctx, "nobody@example.com", "correct horse battery")
	if services.ErrorCode(wrongPw) != services.EUNAUTHORIZED || services.ErrorMessage(wrongPw) != services.ErrorMessage(unknown) {
		t.Fatalf("wrong password %v and unknown email %v must look the same", wrongPw, unknown)
	}
	got, err := s.Authenticate(ctx, "OWNER@example.com", "correct horse battery")
	if err != nil || got.ID != u.ID {
		t.Fatalf("sign-in: %+v %v", got, err)
	}

	token, expires, err := s.StartSession(ctx, u.ID)
	if err != nil || len(token) < 40 || !expires.After(u.CreatedAt) {
		t.Fatalf("session: %q %v %v", token, expires, err)
	}
	if su, err := s.SessionUser(ctx, token); err != nil || su.ID != u.ID {
		t.Fatalf("session user: %+v %v", su, err)
	}
	if err := s.EndSession(ctx, token); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SessionUser(ctx, token); services.ErrorCode(err) != services.EUNAUTHORIZED {
		t.Fatalf("ended session still works: %v", err)
	}
}

func TestSessionTokensAreKeyedBySecret(t *testing.T) {
	ctx := context.Background()
	s, db := newService(t)
	u, _ := s.CreateOwner(ctx, "o@example.com", "correct horse battery", true)
	token, _, _ := s.StartSession(ctx, u.ID)

	// The same database with another secret does not recognise the cookie.
	other, err := account.New(db, bytes.Repeat([]byte{2}, 32))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.SessionUser(ctx, token); services.ErrorCode(err) != services.EUNAUTHORIZED {
		t.Fatalf("session valid under another secret: %v", err)
	}
}

func TestAPITokens(t *testing.T) {
	ctx := context.Background()
	s, db := newService(t)
	u, _ := s.CreateOwner(ctx, "o@example.com", "correct horse battery", true)

	for _, name := range []string{"", "   ", strings.Repeat("n", 65)} {
		if _, _, err := s.CreateToken(ctx, u.ID, name); services.ErrorCode(err) != services.EINVALID {
			t.Fatalf("name %q: %v", name, err)
		}
	}
	plain, tok, err := s.CreateToken(ctx, u.ID, "  deploy  ")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(plain, account.TokenPrefix) || tok.Name != "deploy" || tok.Last4 != plain[len(plain)-4:] {
		t.Fatalf("token %q %+v", plain, tok)
	}
	stored, _ := db.ListTokens(ctx, u.ID)
	if len(stored) != 1 || stored[0].Hash == plain || strings.Contains(stored[0].Hash, plain[4:]) {
		t.Fatalf("the token is stored in clear: %+v", stored)
	}

	if got, err := s.TokenUser(ctx, plain); err != nil || got.ID != u.ID {
		t.Fatalf("token user: %+v %v", got, err)
	}
	if list, _ := s.Tokens(ctx, u.ID); list[0].LastUsedAt == nil {
		t.Fatal("use of the token not recorded")
	}
	for _, bad := range []string{"", "ava_", "nope", plain + "x", "Bearer " + plain} {
		if _, err := s.TokenUser(ctx, bad); services.ErrorCode(err) != services.EUNAUTHORIZED {
			t.Fatalf("token %q: %v", bad, err)
		}
	}
	if _, err := s.RevokeToken(ctx, u.ID, tok.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TokenUser(ctx, plain); services.ErrorCode(err) != services.EUNAUTHORIZED {
		t.Fatalf("revoked token works: %v", err)
	}
	if _, err := s.RevokeToken(ctx, u.ID, tok.ID+100); services.ErrorCode(err) != services.ENOTFOUND {
		t.Fatalf("revoke unknown: %v", err)
	}
}

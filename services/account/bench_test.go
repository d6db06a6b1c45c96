package account_test

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/ava/console/services/account"
	"github.com/ava/console/services/sqlite"
)

// benchService is the account service over a real SQLite store with an
// owner, an API token and a session.
func benchService(b *testing.B) (s *account.Service, token, cookie string) {
	b.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "ava.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	if s, err = account.New(db, bytes.Repeat([]byte{1}, 32)); err != nil {
		b.Fatal(err)
	}
	u, err := s.CreateOwner(ctx, "o@example.com", "correct horse battery", true)
	if err != nil {
		b.Fatal(err)
	}
	if token, _, err = s.CreateToken(ctx, u.ID, "bench"); err != nil {
		b.Fatal(err)
	}
	if cookie, _, err = s.StartSession(ctx, u.ID); err != nil {
		b.Fatal(err)
	}
	return s, token, cookie
}

// BenchmarkAuthLookup is who a request's credentials are, as every
// authenticated request asks: an API token (TokenUser), a session cookie
// and its CSRF token (SessionUser, CSRFToken), in the steady state of
// repeated use.
func BenchmarkAuthLookup(b *testing.B) {
	ctx := context.Background()
	b.Run("token", func(b *testing.B) {
		s, token, _ := benchService(b)
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.TokenUser(ctx, token); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("session", func(b *testing.B) {
		s, _, cookie := benchService(b)
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.SessionUser(ctx, cookie); err != nil {
					b.Error(err)
					return
				}
				if s.CSRFToken(cookie) == "" {
					b.Error("no CSRF token")
					return
				}
			}
		})
	})
}

package integrations_test

import (
	"context"
	"testing"

	"github.com/ava/console/services/integrations"
)

// BenchmarkResolve is the credentials every call to a provider starts
// with, in the steady state of repeated calls: an account's own (stored
// sealed), and the environment's.
func BenchmarkResolve(b *testing.B) {
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		own  bool
	}{{"account", true}, {"environment", false}} {
		b.Run(tt.name, func(b *testing.B) {
			s := newStore(b)
			r, err := integrations.NewRegistry(s.DB, s.sealer, integrations.Options{}, acme().withEnv(acmeValues("env-key-0000000000-ENVK")))
			if err != nil {
				b.Fatal(err)
			}
			u, err := s.CreateUser(ctx, "owner@example.com", "hash", true)
			if err != nil {
				b.Fatal(err)
			}
			want := integrations.SourceEnvironment
			if tt.own {
				if _, err := r.Connect(ctx, u.AccountID, "acme", acmeValues(acmeSecret)); err != nil {
					b.Fatal(err)
				}
				want = integrations.SourceAccount
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					conn, err := r.Resolve(ctx, u.AccountID, "acme")
					if err != nil || conn.Source != want {
						b.Errorf("resolved %q, %v; want %q", conn.Source, err, want)
						return
					}
				}
			})
		})
	}
}

package integrations_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ava/console/services"
	"github.com/ava/console/services/integrations"
	"github.com/ava/console/services/secrets"
	"github.com/ava/console/services/sqlite"
)

// fake is a tiny integration: its behaviour is in function fields, nil
// meaning "accept" (Check returns the values, Test says "ok").
type fake struct {
	spec  integrations.Spec
	env   integrations.Values
	check func(ctx context.Context, v integrations.Values) (integrations.Values, error)
	test  func(ctx context.Context, conn integrations.Resolved) (string, error)

	mu     sync.Mutex
	checks int
}

func (f *fake) Spec() integrations.Spec             { return f.spec }
func (f *fake) Env() integrations.Values            { return f.env }
func (f *fake) checked() int                        { f.mu.Lock(); defer f.mu.Unlock(); return f.checks }
func (f *fake) countCheck()                         { f.mu.Lock(); f.checks++; f.mu.Unlock() }
func (f *fake) withEnv(v integrations.Values) *fake { f.env = v; return f }

func (f *fake) Check(ctx context.Context, v integrations.Values) (integrations.Values, error) {
	f.countCheck()
	if f.check != nil {
		return f.check(ctx, v)
	}
	return v, nil
}

func (f *fake) Test(ctx context.Context, conn integrations.Resolved) (string, error) {
	if f.test != nil {
		return f.test(ctx, conn)
	}
	return "ok", nil
}

// stubbed is a fake with a development stub (a Stubber).
type stubbed struct {
	*fake
	stub integrations.Values
}

func (s stubbed) Stub() integrations.Values { return s.stub }

// replacing is a fake told when the account's credentials are replaced or
// removed (a Replacer).
type replacing struct {
	*fake
	mu  sync.Mutex
	old []integrations.Resolved
}

func (r *replacing) Replaced(old, _ integrations.Resolved) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.old = append(r.old, old)
}

func (r *replacing) replaced() []integrations.Resolved {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]integrations.Resolved(nil), r.old...)
}

const acmeSecret = "acme-live-SECRET-9f8e7d6c5b4a-wxyz"

// acmeSpec: a secret key, a region of two, an optional port (a number), an
// optional short note, a visible account id.
func acmeSpec() integrations.Spec {
	return integrations.Spec{
		Name: "acme", Label: "Acme", Needs: "your Acme key",
		Fields: []integrations.Field{
			{Name: "key", Label: "Acme API key", Secret: true},
			{Name: "account", Label: "Acme account"},
			{Name: "region", Label: "Region", Choices: []integrations.Choice{{Value: "us", Label: "US"}, {Value: "eu", Label: "EU"}}},
			{Name: "port", Label: "Port", Number: true, Optional: true},
			{Name: "note", Label: "Note", Optional: true, MaxLen: 10},
		},
	}
}

func acme() *fake { return &fake{spec: acmeSpec()} }

func acmeValues(key string) integrations.Values {
	return integrations.Values{"key": key, "account": "acct-visible-123456", "region": "eu"}
}

// mailSpec: the provider (the selector) decides which fields apply.
func mailSpec() integrations.Spec {
	return integrations.Spec{
		Name: "mail", Label: "Mail", Needs: "a mail provider", Selector: "provider",
		Fields: []integrations.Field{
			{Name: "provider", Label: "Provider", Choices: []integrations.Choice{{Value: "resend"}, {Value: "smtp"}}},
			{Name: "api_key", Label: "Resend API key", Secret: true, When: "resend"},
			{Name: "host", Label: "SMTP host", When: "smtp"},
			{Name: "password", Label: "SMTP password", Secret: true, When: "smtp"},
			{Name: "username", Label: "SMTP username", Optional: true, When: "smtp"},
			{Name: "from", Label: "From address"},
		},
	}
}

func mail() *fake { return &fake{spec: mailSpec()} }

// store is a real SQLite store in a temporary directory.
type store struct {
	*sqlite.DB
	path   string
	sealer *secrets.Sealer
	n      int
}

func newStore(t testing.TB) *store {
	t.Helper()
	path := filepath.Join(t.TempDir(), "registry.db")
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	sealer, err := secrets.NewSealer(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return &store{DB: db, path: path, sealer: sealer}
}

// account creates an account and returns its id.
func (s *store) account(t *testing.T) int64 {
	t.Helper()
	s.n++
	u, err := s.CreateUser(context.Background(), fmt.Sprintf("owner%d@example.com", s.n), "hash", false)
	if err != nil {
		t.Fatal(err)
	}
	return u.AccountID
}

func (s *store) registry(t *testing.T, stubs integrations.StubPolicy, all ...integrations.Integration) *integrations.Registry {
	t.Helper()
	r, err := integrations.NewRegistry(s.DB, s.sealer, integrations.Options{Stubs: stubs}, all...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (s *store) health(t *testing.T, accountID int64, name string) services.IntegrationHealth {
	t.Helper()
	h, err := s.IntegrationHealth(context.Background(), accountID, name)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// wantError fails unless err is a *services.Error with the code, field and
// message (exactly).
func wantError(t *testing.T, err error, code services.Code, field, message string) {
	t.Helper()
	var e *services.Error
	if !errors.As(err, &e) || e.Code != code || e.Field != field || e.Message != message {
		t.Fatalf("got %#v, want %s on field %q: %q", err, code, field, message)
	}
}

func TestNormalize(t *testing.T) {
	t.Parallel()
	full := func(edit func(v integrations.Values)) integrations.Values {
		v := acmeValues(acmeSecret)
		edit(v)
		return v
	}
	for _, tt := range []struct {
		name  string
		spec  integrations.Spec
		raw   integrations.Values
		want  integrations.Values // nil: refused
		field string
		says  string
	}{
		{"trimmed, optional empty dropped, unknown dropped", acmeSpec(),
			integrations.Values{"key": "  k-1234567890 \n", "account": " a ", "region": "us", "port": "", "note": "   ", "bogus": "x"},
			integrations.Values{"key": "k-1234567890", "account": "a", "region": "us"}, "", ""},
		{"optional values kept", acmeSpec(), full(func(v integrations.Values) { v["port"] = " 8080 "; v["note"] = "0123456789" }),
			full(func(v integrations.Values) { v["port"] = "8080"; v["note"] = "0123456789" }), "", ""},
		{"length counts characters, not bytes", acmeSpec(), full(func(v integrations.Values) { v["note"] = strings.Repeat("é", 10) }),
			full(func(v integrations.Values) { v["note"] = strings.Repeat("é", 10) }), "", ""},
		{"default bound is 200", acmeSpec(), full(func(v integrations.Values) { v["key"] = strings.Repeat("k", 200) }),
			full(func(v integrations.Values) { v["key"] = strings.Repeat("k", 200) }), "", ""},
		{"required missing", acmeSpec(), full(func(v integrations.Values) { delete(v, "key") }),
			nil, "key", "key is required: Acme API key."},
		{"required blank", acmeSpec(), full(func(v integrations.Values) { v["account"] = " \t " }),
			nil, "account", "account is required: Acme account."},
		{"over the default bound", acmeSpec(), full(func(v integrations.Values) { v["key"] = strings.Repeat("k", 201) }),
			nil, "key", "key must be at most 200 characters."},
		{"over MaxLen", acmeSpec(), full(func(v integrations.Values) { v["note"] = "01234567890" }),
			nil, "note", "note must be at most 10 characters."},
		{"not a choice", acmeSpec(), full(func(v integrations.Values) { v["region"] = "asia" }),
			nil, "region", "region must be one of us, eu."},
		{"choice is exact", acmeSpec(), full(func(v integrations.Values) { v["region"] = "EU" }),
			nil, "region", "region must be one of us, eu."},
		{"not a number", acmeSpec(), full(func(v integrations.Values) { v["port"] = "80a" }),
			nil, "port", "port must be a whole number."},
		{"smtp drops resend's fields", mailSpec(),
			integrations.Values{"provider": " smtp ", "host": "mail.example.com", "password": "pw", "api_key": "re_123", "from": "a@example.com"},
			integrations.Values{"provider": "smtp", "host": "mail.example.com", "password": "pw", "from": "a@example.com"}, "", ""},
		{"resend drops smtp's fields", mailSpec(),
			integrations.Values{"provider": "resend", "api_key": "re_123", "host": "mail.example.com", "password": "pw", "username": "u", "from": "a@example.com"},
			integrations.Values{"provider": "resend", "api_key": "re_123", "from": "a@example.com"}, "", ""},
		{"a field of the chosen group is required", mailSpec(),
			integrations.Values{"provider": "smtp", "api_key": "re_123", "password": "pw", "from": "a@example.com"},
			nil, "host", "host is required: SMTP host."},
		{"another group's missing field is no matter", mailSpec(),
			integrations.Values{"provider": "resend", "api_key": "re_123", "from": "a@example.com"},
			integrations.Values{"provider": "resend", "api_key": "re_123", "from": "a@example.com"}, "", ""},
		{"no selector value", mailSpec(),
			integrations.Values{"api_key": "re_123", "from": "a@example.com"},
			nil, "provider", "provider is required: one of resend, smtp."},
		{"selector not a choice", mailSpec(),
			integrations.Values{"provider": "sendmail", "from": "a@example.com"},
			nil, "provider", "provider must be one of resend, smtp."},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := integrations.Normalize(tt.spec, tt.raw)
			if tt.want == nil {
				wantError(t, err, services.EINVALID, tt.field, tt.says)
				if got != nil {
					t.Errorf("refused values came back: %v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestResolveOrder(t *testing.T) {
	t.Parallel()
	envAcme := integrations.Values{"key": "env-key-0000000000-ENVK", "account": "acct-env", "region": "us"}
	stubAcme := integrations.Values{"key": "stub-key-000000-STUB", "account": "acct-stub", "region": "us"}
	halfAcme := integrations.Values{"key": "env-key-0000000000-ENVK", "account": "", "region": "us"}
	for _, tt := range []struct {
		name   string
		stubs  integrations.StubPolicy
		env    integrations.Values
		stub   bool // the integration is a Stubber
		stored bool
		source string
		key    string
	}{
		{"nothing", integrations.StubsOff, nil, false, false, "", ""},
		{"account over environment", integrations.StubsOff, envAcme, false, true, integrations.SourceAccount, acmeSecret},
		{"account over environment and stub", integrations.StubsAllowed, envAcme, true, true, integrations.SourceAccount, acmeSecret},
		{"account over stub", integrations.StubsAllowed, nil, true, true, integrations.SourceAccount, acmeSecret},
		{"complete environment", integrations.StubsOff, envAcme, false, false, integrations.SourceEnvironment, envAcme["key"]},
		{"environment over stub", integrations.StubsAllowed, envAcme, true, false, integrations.SourceEnvironment, envAcme["key"]},
		{"half an environment is none", integrations.StubsOff, halfAcme, false, false, "", ""},
		{"half an environment, stubs allowed", integrations.StubsAllowed, halfAcme, true, false, integrations.SourceStub, stubAcme["key"]},
		{"stub when allowed", integrations.StubsAllowed, nil, true, false, integrations.SourceStub, stubAcme["key"]},
		{"no stub when off", integrations.StubsOff, nil, true, false, "", ""},
		{"no stub when refused", integrations.StubsRefused, nil, true, false, "", ""},
		{"stubs allowed but none", integrations.StubsAllowed, nil, false, false, "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			var i integrations.Integration = acme().withEnv(tt.env)
			if tt.stub {
				i = stubbed{fake: i.(*fake), stub: stubAcme}
			}
			r := s.registry(t, tt.stubs, i)
			ctx := context.Background()
			id := s.account(t)
			if tt.stored {
				if _, err := r.Connect(ctx, id, "acme", acmeValues(acmeSecret)); err != nil {
					t.Fatal(err)
				}
			}
			got, err := r.Resolve(ctx, id, "acme")
			if err != nil {
				t.Fatal(err)
			}
			if got.Source != tt.source || got.Values["key"] != tt.key || got.Configured() != (tt.source != "") ||
				got.IsStub() != (tt.source == integrations.SourceStub) {
				t.Fatalf("resolved %+v, want source %q with key %q", got, tt.source, tt.key)
			}
			switch tt.source {
			case integrations.SourceAccount:
				if got.UpdatedAt == nil || got.Hints["key"] != "••••wxyz" {
					t.Errorf("account credentials %+v", got)
				}
			case integrations.SourceEnvironment, integrations.SourceStub:
				want := map[string]string{"key": secrets.Mask(tt.key), "account": got.Values["account"], "region": "us"}
				if got.UpdatedAt != nil || !maps.Equal(got.Hints, want) {
					t.Errorf("hints %v (updated %v), want %v", got.Hints, got.UpdatedAt, want)
				}
			default:
				if got.Values != nil || len(got.Hints) != 0 {
					t.Errorf("unconfigured %+v", got)
				}
			}
			// Another account sees none of this account's own credentials.
			other, err := r.Resolve(ctx, s.account(t), "acme")
			if err != nil {
				t.Fatal(err)
			}
			if other.Source == integrations.SourceAccount {
				t.Errorf("another account resolved %+v", other)
			}
		})
	}
	t.Run("unknown integration", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		_, err := s.registry(t, integrations.StubsOff, acme()).Resolve(context.Background(), s.account(t), "nope")
		wantError(t, err, services.ENOTFOUND, "", `There is no integration "nope".`)
	})
}

// An environment is complete when every field that applies for its selector
// value has a value: the other group's fields are not needed.
func TestResolveEnvironmentCompletenessFollowsTheSelector(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		env    integrations.Values
		source string
		hints  map[string]string
	}{
		{"smtp without resend's key", integrations.Values{"provider": "smtp", "host": "mail.example.com", "password": "smtp-password-PW42", "from": "a@example.com"},
			integrations.SourceEnvironment,
			map[string]string{"provider": "smtp", "host": "mail.example.com", "password": "••••PW42", "from": "a@example.com"}},
		{"resend without smtp's fields", integrations.Values{"provider": "resend", "api_key": "re_live_key_KEY9", "host": "ignored", "from": "a@example.com"},
			integrations.SourceEnvironment,
			map[string]string{"provider": "resend", "api_key": "••••KEY9", "from": "a@example.com"}},
		{"smtp without its password", integrations.Values{"provider": "smtp", "host": "mail.example.com", "api_key": "re_live_key_KEY9", "from": "a@example.com"}, "", nil},
		{"resend without its key", integrations.Values{"provider": "resend", "host": "mail.example.com", "password": "pw", "from": "a@example.com"}, "", nil},
		{"no provider", integrations.Values{"api_key": "re_live_key_KEY9", "host": "h", "password": "pw", "from": "a@example.com"}, "", nil},
		{"no from", integrations.Values{"provider": "resend", "api_key": "re_live_key_KEY9"}, "", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			r := s.registry(t, integrations.StubsOff, mail().withEnv(tt.env))
			got, err := r.Resolve(context.Background(), s.account(t), "mail")
			if err != nil {
				t.Fatal(err)
			}
			if got.Source != tt.source {
				t.Fatalf("source %q, want %q", got.Source, tt.source)
			}
			if tt.hints != nil && !maps.Equal(got.Hints, tt.hints) {
				t.Errorf("hints %v, want %v", got.Hints, tt.hints)
			}
		})
	}
}

// Use runs fn only with credentials; without, the stub rule decides the
// error: refused in production for an integration that has a stub, not
// connected otherwise.
func TestUseStubRule(t *testing.T) {
	t.Parallel()
	const (
		refused      = "Stub integrations are disabled in production: connect Acme on the Integrations page."
		notConnected = "Acme is not connected. Add your Acme key on the Integrations page."
	)
	stub := integrations.Values{"key": "stub-key-000000-STUB", "account": "acct-stub", "region": "us"}
	for _, tt := range []struct {
		name    string
		stubs   integrations.StubPolicy
		stubber bool
		code    services.Code // "" when fn runs on the stub
		message string
	}{
		{"allowed, with a stub", integrations.StubsAllowed, true, "", ""},
		{"refused, with a stub", integrations.StubsRefused, true, services.EFORBIDDEN, refused},
		{"off, with a stub", integrations.StubsOff, true, services.ENOTFOUND, notConnected},
		{"allowed, no stub", integrations.StubsAllowed, false, services.ENOTFOUND, notConnected},
		{"refused, no stub", integrations.StubsRefused, false, services.ENOTFOUND, notConnected},
		{"off, no stub", integrations.StubsOff, false, services.ENOTFOUND, notConnected},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			var i integrations.Integration = acme()
			if tt.stubber {
				i = stubbed{fake: i.(*fake), stub: stub}
			}
			r := s.registry(t, tt.stubs, i)
			ctx := context.Background()
			id := s.account(t)
			called := 0
			var conn integrations.Resolved
			err := r.Use(ctx, id, "acme", func(_ context.Context, c integrations.Resolved) error {
				called++
				conn = c
				return nil
			})
			if tt.code == "" {
				if err != nil || called != 1 || !conn.IsStub() || !maps.Equal(conn.Values, stub) {
					t.Fatalf("err %v, called %d with %+v: want the stub's credentials", err, called, conn)
				}
				return
			}
			wantError(t, err, tt.code, "", tt.message)
			if called != 0 {
				t.Errorf("fn called %d times without credentials", called)
			}
			if got := integrations.IsNotConnected(err); got != (tt.code == services.ENOTFOUND) {
				t.Errorf("IsNotConnected %v for %v", got, err)
			}
			// Test connection follows the same rule.
			msg, err := r.Test(ctx, id, "acme")
			wantError(t, err, tt.code, "", tt.message)
			if msg != "" {
				t.Errorf("Test said %q", msg)
			}
			if h := s.health(t, id, "acme"); h.LastError != "" || h.LastErrorAt != nil || h.LastOKAt != nil {
				t.Errorf("a call that never ran was recorded: %+v", h)
			}
		})
	}
}

func TestConnect(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("a refusal stores nothing and keeps the earlier credentials", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		f := acme()
		f.check = func(_ context.Context, v integrations.Values) (integrations.Values, error) {
			if v["key"] != acmeSecret {
				return nil, services.FieldError("key", "Acme refused the key: unknown key.")
			}
			return v, nil
		}
		r := s.registry(t, integrations.StubsOff, f)
		id := s.account(t)
		if _, err := r.Connect(ctx, id, "acme", acmeValues(acmeSecret)); err != nil {
			t.Fatal(err)
		}
		before, err := s.Credentials(ctx, id, "acme")
		if err != nil {
			t.Fatal(err)
		}
		for _, tt := range []struct {
			name   string
			values integrations.Values
			field  string
			says   string
			checks int // Check calls it took
		}{
			{"refused by the provider", acmeValues("acme-live-OTHER-000000000000-abcd"), "key", "Acme refused the key: unknown key.", 1},
			{"refused by the spec", integrations.Values{"key": "x", "account": "a", "region": "mars"}, "region", "region must be one of us, eu.", 0},
		} {
			checks := f.checked()
			_, err := r.Connect(ctx, id, "acme", tt.values)
			wantError(t, err, services.EINVALID, tt.field, tt.says)
			if got := f.checked() - checks; got != tt.checks {
				t.Errorf("%s: Check called %d times, want %d", tt.name, got, tt.checks)
			}
			after, err := s.Credentials(ctx, id, "acme")
			if err != nil || !bytes.Equal(after.Sealed, before.Sealed) || !maps.Equal(after.Hints, before.Hints) || !after.UpdatedAt.Equal(before.UpdatedAt) {
				t.Errorf("%s: the stored row changed: %+v -> %+v (%v)", tt.name, before, after, err)
			}
			got, err := r.Resolve(ctx, id, "acme")
			if err != nil || got.Values["key"] != acmeSecret || !got.UpdatedAt.Equal(before.UpdatedAt) {
				t.Errorf("%s: resolved %+v %v, want the earlier credentials", tt.name, got, err)
			}
		}
		// A refusal on a first connect stores nothing at all.
		other := s.account(t)
		if _, err := r.Connect(ctx, other, "acme", acmeValues("acme-live-OTHER-000000000000-abcd")); services.ErrorCode(err) != services.EINVALID {
			t.Fatalf("got %v", err)
		}
		if _, err := s.Credentials(ctx, other, "acme"); services.ErrorCode(err) != services.ENOTFOUND {
			t.Errorf("a refused first connect stored a row (%v)", err)
		}
		if h := s.health(t, other, "acme"); h.LastError != "" || h.LastOKAt != nil {
			t.Errorf("a refused connect was recorded: %+v", h)
		}
	})

	t.Run("Check's values are what is stored", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		f := acme()
		var seen integrations.Values
		f.check = func(_ context.Context, v integrations.Values) (integrations.Values, error) {
			seen = maps.Clone(v)
			out := maps.Clone(v)
			out["account"] = strings.ToUpper(v["account"])
			return out, nil
		}
		r := s.registry(t, integrations.StubsOff, f)
		id := s.account(t)
		if _, err := r.Connect(ctx, id, "acme", integrations.Values{"key": " " + acmeSecret + " ", "account": "acct-1", "region": "eu", "bogus": "x"}); err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(seen, integrations.Values{"key": acmeSecret, "account": "acct-1", "region": "eu"}) {
			t.Errorf("Check saw %v, want the normalized values", seen)
		}
		got, err := r.Resolve(ctx, id, "acme")
		if err != nil || !maps.Equal(got.Values, integrations.Values{"key": acmeSecret, "account": "ACCT-1", "region": "eu"}) {
			t.Errorf("stored %v %v", got.Values, err)
		}
	})

	t.Run("success seals the secret and masks it", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		r := s.registry(t, integrations.StubsOff, acme())
		id := s.account(t)
		values := acmeValues(acmeSecret)
		values["note"] = "hi"
		got, err := r.Connect(ctx, id, "acme", values)
		if err != nil {
			t.Fatal(err)
		}
		wantHints := map[string]string{"key": "••••wxyz", "account": "acct-visible-123456", "region": "eu", "note": "hi"}
		if got.Source != integrations.SourceAccount || got.UpdatedAt == nil || !maps.Equal(got.Values, values) || !maps.Equal(got.Hints, wantHints) {
			t.Errorf("connected %+v, want hints %v", got, wantHints)
		}
		row, err := s.Credentials(ctx, id, "acme")
		if err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(row.Hints, wantHints) || bytes.Contains(row.Sealed, []byte(acmeSecret)) || bytes.Contains(row.Sealed, []byte("acct-visible-123456")) {
			t.Errorf("row hints %v, or the sealed bytes hold the values in clear", row.Hints)
		}
		if resolved, err := r.Resolve(ctx, id, "acme"); err != nil || !maps.Equal(resolved.Values, values) || !maps.Equal(resolved.Hints, wantHints) {
			t.Errorf("resolved %+v %v", resolved, err)
		}
		if h := s.health(t, id, "acme"); h.LastOKAt == nil {
			t.Error("a successful connect was not recorded")
		}

		// The database's bytes, write-ahead log included: the visible
		// account id is there (the scan finds clear text), the secret is not.
		scan := func(when string, wantWAL bool) {
			files, _ := filepath.Glob(s.path + "*")
			sawWAL, sawVisible := false, false
			for _, f := range files {
				b, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				if strings.HasSuffix(f, "-wal") && len(b) > 0 {
					sawWAL = true
				}
				sawVisible = sawVisible || bytes.Contains(b, []byte("acct-visible-123456"))
				for _, part := range []string{acmeSecret, "SECRET-9f8e7d6c5b4a"} {
					if bytes.Contains(b, []byte(part)) {
						t.Errorf("%s: %s holds %q in clear", when, filepath.Base(f), part)
					}
				}
			}
			if wantWAL && !sawWAL {
				t.Errorf("%s: no write-ahead log among %v: the scan would miss the latest writes", when, files)
			}
			if !sawVisible {
				t.Errorf("%s: the hints are nowhere in %v: the scan reads the wrong files", when, files)
			}
		}
		scan("open", true)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		scan("closed", false)
	})

	t.Run("a short secret is masked entirely", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		r := s.registry(t, integrations.StubsOff, acme())
		got, err := r.Connect(ctx, s.account(t), "acme", acmeValues("k1234567"))
		if err != nil || got.Hints["key"] != "••••" {
			t.Errorf("hints %v %v", got.Hints, err)
		}
	})

	t.Run("unknown integration", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		_, err := s.registry(t, integrations.StubsOff, acme()).Connect(ctx, s.account(t), "nope", acmeValues(acmeSecret))
		wantError(t, err, services.ENOTFOUND, "", `There is no integration "nope".`)
	})
}

// The Replacer hears of the account's own credentials when a connect
// replaces them and when they are removed; never of the environment's,
// never on a refusal.
func TestReplacerAndDisconnect(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	env := integrations.Values{"key": "env-key-0000000000-ENVK", "account": "acct-env", "region": "us"}
	f := acme().withEnv(env)
	f.check = func(_ context.Context, v integrations.Values) (integrations.Values, error) {
		if v["key"] == "refused-key-000000" {
			return nil, services.FieldError("key", "Acme refused the key.")
		}
		return v, nil
	}
	rep := &replacing{fake: f}
	r := s.registry(t, integrations.StubsOff, rep)
	id := s.account(t)
	keyOf := func(rs []integrations.Resolved) []string {
		var out []string
		for _, x := range rs {
			if x.Source != integrations.SourceAccount {
				out = append(out, "non-account:"+x.Source)
				continue
			}
			out = append(out, x.Values["key"])
		}
		return out
	}
	steps := []struct {
		name string
		do   func() error
		code services.Code
		want []string // every old key the Replacer was told of, so far
	}{
		{"first connect replaces the environment's: not told", func() error {
			_, err := r.Connect(ctx, id, "acme", acmeValues("first-key-00000000"))
			return err
		}, "", nil},
		{"replacing: told of the first", func() error {
			_, err := r.Connect(ctx, id, "acme", acmeValues("second-key-0000000"))
			return err
		}, "", []string{"first-key-00000000"}},
		{"a refused replacement: not told", func() error {
			_, err := r.Connect(ctx, id, "acme", acmeValues("refused-key-000000"))
			return err
		}, services.EINVALID, []string{"first-key-00000000"}},
		{"disconnect: told of the second", func() error {
			return r.Disconnect(ctx, id, "acme")
		}, "", []string{"first-key-00000000", "second-key-0000000"}},
		{"disconnect with only the environment's: ENOTFOUND, not told", func() error {
			return r.Disconnect(ctx, id, "acme")
		}, services.ENOTFOUND, []string{"first-key-00000000", "second-key-0000000"}},
	}
	for _, st := range steps {
		err := st.do()
		if services.ErrorCode(err) != st.code {
			t.Fatalf("%s: %v, want %q", st.name, err, st.code)
		}
		if got := keyOf(rep.replaced()); !slicesEqual(got, st.want) {
			t.Fatalf("%s: the Replacer was told of %v, want %v", st.name, got, st.want)
		}
	}
	// The told credentials were whole: values and source.
	if old := rep.replaced()[1]; old.Values["account"] != "acct-visible-123456" || old.UpdatedAt == nil {
		t.Errorf("told %+v", old)
	}
	err := r.Disconnect(ctx, id, "acme")
	wantError(t, err, services.ENOTFOUND, "", "This account has no Acme credentials of its own to remove.")
	if got, err := r.Resolve(ctx, id, "acme"); err != nil || got.Source != integrations.SourceEnvironment {
		t.Errorf("after disconnecting: %+v %v, want the environment's", got, err)
	}
	if _, err := s.Credentials(ctx, id, "acme"); services.ErrorCode(err) != services.ENOTFOUND {
		t.Errorf("the row outlived the disconnect (%v)", err)
	}

	// Nothing configured at all: nothing to remove either.
	bare := s.registry(t, integrations.StubsOff, acme())
	wantError(t, bare.Disconnect(ctx, s.account(t), "acme"), services.ENOTFOUND, "", "This account has no Acme credentials of its own to remove.")
	wantError(t, bare.Disconnect(ctx, id, "nope"), services.ENOTFOUND, "", `There is no integration "nope".`)
}

func slicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// What Use records: what was learnt about the provider (a success, an
// error the provider gave), not what says nothing of it (the open breaker,
// the caller leaving, a value refused before any call).
func TestUseRecords(t *testing.T) {
	t.Parallel()
	const earlier = "Acme is having trouble (earlier)."
	for _, tt := range []struct {
		name string
		// leave: the caller goes away while fn runs.
		leave   bool
		err     error
		lastErr string // the last error afterwards
		ok      bool   // a success recorded
	}{
		{"success", false, nil, earlier, true},
		{"provider error", false, services.Errorf(services.EUPSTREAM, "Acme is down."), "Acme is down.", false},
		{"timeout", false, services.Errorf(services.ETIMEOUT, "Acme did not answer within 1s."), "Acme did not answer within 1s.", false},
		{"our bug", false, errors.New("nil map"), "Internal error.", false},
		{"provider error while the caller is gone", true, services.Errorf(services.EUPSTREAM, "Acme is down."), "Acme is down.", false},
		{"open breaker", false, services.Errorf(services.EUNAVAILABLE, "Acme has been failing."), earlier, false},
		{"caller gone", true, context.Canceled, earlier, false},
		{"caller gone, wrapped", true, &services.Error{Code: services.EUPSTREAM, Message: "Could not reach Acme.", Err: fmt.Errorf("get: %w", context.Canceled)}, earlier, false},
		{"value refused", false, services.FieldError("speed", "speed must be 0.7 to 1.2."), earlier, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			// The environment's credentials: no connect, so no success yet.
			r := s.registry(t, integrations.StubsOff, acme().withEnv(acmeValues(acmeSecret)))
			id := s.account(t)
			// Start from a known past: an error, and no success.
			err := r.Use(context.Background(), id, "acme", func(context.Context, integrations.Resolved) error {
				return services.Errorf(services.EUPSTREAM, earlier)
			})
			if services.ErrorMessage(err) != earlier {
				t.Fatal(err)
			}
			before := s.health(t, id, "acme")

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			err = r.Use(ctx, id, "acme", func(context.Context, integrations.Resolved) error {
				if tt.leave {
					cancel()
				}
				return tt.err
			})
			if !errors.Is(err, tt.err) {
				t.Fatalf("Use returned %v, want fn's %v", err, tt.err)
			}
			h := s.health(t, id, "acme")
			if h.LastError != tt.lastErr {
				t.Errorf("last error %q, want %q", h.LastError, tt.lastErr)
			}
			if tt.lastErr == earlier && !h.LastErrorAt.Equal(*before.LastErrorAt) {
				t.Errorf("the earlier error's time moved: %v -> %v", before.LastErrorAt, h.LastErrorAt)
			}
			if tt.lastErr != earlier && (h.LastErrorAt == nil || h.LastErrorAt.Before(*before.LastErrorAt)) {
				t.Errorf("the new error's time %v", h.LastErrorAt)
			}
			if before.LastOKAt != nil || before.LastErrorAt == nil {
				t.Fatalf("the known past %+v", before)
			}
			if got := h.LastOKAt != nil; got != tt.ok {
				t.Errorf("success recorded: %v, want %v (%+v)", got, tt.ok, h)
			}
		})
	}
}

// Test connection says what the integration's Test says, with the
// credentials in use, and records the outcome like any call.
func TestTestConnection(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	f := acme()
	fail := false
	f.test = func(_ context.Context, conn integrations.Resolved) (string, error) {
		if fail {
			return "", services.Errorf(services.EUPSTREAM, "Acme refused the key.")
		}
		return fmt.Sprintf("Connected: Acme knows account %s (%s).", conn.Values["account"], conn.Source), nil
	}
	r := s.registry(t, integrations.StubsOff, f)
	id := s.account(t)
	if _, err := r.Connect(ctx, id, "acme", acmeValues(acmeSecret)); err != nil {
		t.Fatal(err)
	}
	msg, err := r.Test(ctx, id, "acme")
	if err != nil || msg != "Connected: Acme knows account acct-visible-123456 (account)." {
		t.Fatalf("Test: %q %v", msg, err)
	}
	fail = true
	msg, err = r.Test(ctx, id, "acme")
	wantError(t, err, services.EUPSTREAM, "", "Acme refused the key.")
	if msg != "" {
		t.Errorf("a failed Test said %q", msg)
	}
	if h := s.health(t, id, "acme"); h.LastError != "Acme refused the key." || h.LastOKAt == nil {
		t.Errorf("health %+v", h)
	}
	_, err = r.Test(ctx, id, "nope")
	wantError(t, err, services.ENOTFOUND, "", `There is no integration "nope".`)
}

func TestStatuses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	var asked []string
	var mu sync.Mutex
	r, err := integrations.NewRegistry(s.DB, s.sealer, integrations.Options{Breakers: func(name string) string {
		mu.Lock()
		defer mu.Unlock()
		asked = append(asked, name)
		if name == "mail" {
			return "open"
		}
		return "closed"
	}}, acme(), mail())
	if err != nil {
		t.Fatal(err)
	}
	id := s.account(t)
	if _, err := r.Connect(ctx, id, "acme", acmeValues(acmeSecret)); err != nil {
		t.Fatal(err)
	}
	_ = r.Use(ctx, id, "acme", func(context.Context, integrations.Resolved) error {
		return services.Errorf(services.EUPSTREAM, "Acme is down.")
	})
	all, err := r.Statuses(ctx, id)
	if err != nil || len(all) != 2 || all[0].Name() != "acme" || all[1].Name() != "mail" {
		t.Fatalf("statuses %+v %v: want acme then mail, in registration order", all, err)
	}
	a, m := all[0], all[1]
	if !a.Configured || a.Source != integrations.SourceAccount || a.Hints["key"] != "••••wxyz" || a.BreakerState != "closed" ||
		a.LastError != "Acme is down." || a.LastOKAt == nil || a.LastErrorAt == nil || !a.Failing() || a.Spec.Label != "Acme" {
		t.Errorf("acme %+v", a)
	}
	if m.Configured || m.Source != "" || m.BreakerState != "open" || m.LastError != "" || m.Failing() {
		t.Errorf("mail %+v", m)
	}
	if !slicesEqual(asked, []string{"acme", "mail"}) {
		t.Errorf("breakers asked for %v", asked)
	}
	if specs := r.Specs(); len(specs) != 2 || specs[0].Name != "acme" || specs[1].Name != "mail" {
		t.Errorf("specs %+v", specs)
	}
	if _, err := r.Status(ctx, id, "nope"); services.ErrorCode(err) != services.ENOTFOUND {
		t.Errorf("status of an unknown integration: %v", err)
	}
}

func TestNewRegistryRefuses(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	for _, tt := range []struct {
		name string
		all  []integrations.Integration
		says string
	}{
		{"the same name twice", []integrations.Integration{acme(), acme()}, `integration "acme" registered twice`},
		{"no label", []integrations.Integration{&fake{spec: integrations.Spec{Name: "x"}}}, "a spec needs a name and a label"},
		{"no name", []integrations.Integration{&fake{spec: integrations.Spec{Label: "X"}}}, "a spec needs a name and a label"},
	} {
		if _, err := integrations.NewRegistry(s.DB, s.sealer, integrations.Options{}, tt.all...); err == nil || !strings.Contains(err.Error(), tt.says) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.says)
		}
	}
}

// countingStore counts how often the registry asks which account is first.
type countingStore struct {
	*sqlite.DB
	mu    sync.Mutex
	asked int
}

func (c *countingStore) FirstAccountID(ctx context.Context) (int64, error) {
	c.mu.Lock()
	c.asked++
	c.mu.Unlock()
	return c.DB.FirstAccountID(ctx)
}

func (c *countingStore) times() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.asked
}

// The environment's credentials serve the first account created only
// (ENV_CREDENTIALS_SCOPE=first, the default); another account without its
// own is not connected, and its status says the environment's are the
// first account's. EnvAllAccounts lets every account use them.
func TestEnvironmentCredentialsServeTheFirstAccount(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := integrations.Values{"key": "env-key-0000000000-ENVK", "account": "acct-env", "region": "us"}
	stub := integrations.Values{"key": "stub-key-000000-STUB", "account": "acct-stub", "region": "us"}
	for _, tt := range []struct {
		name   string
		scope  integrations.EnvScope
		stubs  integrations.StubPolicy
		second string // the second account's source
	}{
		{"first (default)", integrations.EnvFirstAccount, integrations.StubsOff, ""},
		{"first, stubs allowed: the second gets the stub", integrations.EnvFirstAccount, integrations.StubsAllowed, integrations.SourceStub},
		{"all", integrations.EnvAllAccounts, integrations.StubsOff, integrations.SourceEnvironment},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			cs := &countingStore{DB: s.DB}
			r, err := integrations.NewRegistry(cs, s.sealer, integrations.Options{Stubs: tt.stubs, EnvScope: tt.scope},
				stubbed{fake: acme().withEnv(env), stub: stub})
			if err != nil {
				t.Fatal(err)
			}
			// No account yet: nobody is first, and that is not remembered.
			if got, err := r.Resolve(ctx, 1, "acme"); err != nil || (tt.scope == integrations.EnvFirstAccount && got.Source == integrations.SourceEnvironment) {
				t.Fatalf("before any account: %+v %v", got, err)
			}
			first, second := s.account(t), s.account(t)
			// Asked for the second first: the first is still the lowest id.
			got, err := r.Resolve(ctx, second, "acme")
			if err != nil || got.Source != tt.second {
				t.Fatalf("second account: source %q (%v), want %q", got.Source, err, tt.second)
			}
			got, err = r.Resolve(ctx, first, "acme")
			if err != nil || got.Source != integrations.SourceEnvironment || got.Values["key"] != env["key"] {
				t.Fatalf("first account: %+v %v, want the environment's", got, err)
			}
			called := false
			err = r.Use(ctx, second, "acme", func(context.Context, integrations.Resolved) error { called = true; return nil })
			if tt.second == "" && (called || !integrations.IsNotConnected(err)) {
				t.Errorf("the second account used the environment's credentials (called %v, %v)", called, err)
			}
			if tt.second != "" && (!called || err != nil) {
				t.Errorf("the second account: called %v, %v", called, err)
			}
			st1, err := r.Status(ctx, first, "acme")
			if err != nil {
				t.Fatal(err)
			}
			st2, err := r.Status(ctx, second, "acme")
			if err != nil {
				t.Fatal(err)
			}
			if st1.EnvElsewhere || st1.EnvScope != tt.scope || st1.Source != integrations.SourceEnvironment {
				t.Errorf("first account's status %+v", st1)
			}
			if want := tt.scope == integrations.EnvFirstAccount; st2.EnvElsewhere != want || st2.Configured != (tt.second != "") {
				t.Errorf("second account's status %+v: EnvElsewhere want %v", st2, want)
			}
			// Its own credentials still serve the second account.
			if _, err := r.Connect(ctx, second, "acme", acmeValues(acmeSecret)); err != nil {
				t.Fatal(err)
			}
			if got, _ := r.Resolve(ctx, second, "acme"); got.Source != integrations.SourceAccount {
				t.Errorf("second account after connecting: %q", got.Source)
			}
			if tt.scope == integrations.EnvFirstAccount {
				// Once known, the first account is remembered (1 look-up
				// before any account, 1 once there are).
				if n := cs.times(); n != 2 {
					t.Errorf("the store was asked for the first account %d times, want 2", n)
				}
			}
		})
	}
}

// An error marked NoCall (nothing left for the provider) is not recorded.
func TestNoCallErrorsAreNotRecorded(t *testing.T) {
	s := newStore(t)
	r := s.registry(t, integrations.StubsOff, acme())
	ctx := context.Background()
	id := s.account(t)
	if _, err := r.Connect(ctx, id, "acme", acmeValues(acmeSecret)); err != nil {
		t.Fatal(err)
	}
	err := r.Use(ctx, id, "acme", func(context.Context, integrations.Resolved) error {
		return integrations.NoCall(services.Errorf(services.ETIMEOUT, "Waited too long for our own lock."))
	})
	if services.ErrorCode(err) != services.ETIMEOUT {
		t.Fatalf("Use: %v", err)
	}
	if h := s.health(t, id, "acme"); h.LastError != "" || h.LastErrorAt != nil {
		t.Fatalf("health %+v: a NoCall error was recorded", h)
	}
}

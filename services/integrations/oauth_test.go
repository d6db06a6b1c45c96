package integrations_test

import (
	"context"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ava/console/services"
	"github.com/ava/console/services/integrations"
)

// consenting is a fake connected through a consent (an OAuthConnector):
// its "provider" issues a token for any code, and records the verifiers
// it was given.
type consenting struct {
	*fake
	mu        sync.Mutex
	exchanged []string
}

func (c *consenting) OAuthReady() error { return nil }

func (c *consenting) AuthCodeURL(state, verifier string) string {
	return "https://provider.example/auth?" + url.Values{"state": {state}, "v": {verifier}}.Encode()
}

func (c *consenting) Exchange(_ context.Context, code, verifier string) (integrations.Values, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.exchanged = append(c.exchanged, verifier)
	return integrations.Values{"account": "owner@provider.example", "token": "tok-" + code}, nil
}

func (c *consenting) exchanges() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.exchanged...)
}

func oauthSpec() integrations.Spec {
	return integrations.Spec{Name: "cal", Label: "Cal", Needs: "a consent",
		Fields: []integrations.Field{{Name: "account", Label: "Account"}},
		OAuth:  &integrations.OAuthRoutes{Connect: "/integrations/cal/connect", Callback: "/integrations/cal/callback"}}
}

func TestOAuthStateIsBoundSingleUseAndExpires(t *testing.T) {
	s := newStore(t)
	acct, other := s.account(t), s.account(t)
	now := time.Now()
	clock := func() time.Time { return now }
	c := &consenting{fake: &fake{spec: oauthSpec()}}
	r, err := integrations.NewRegistry(s.DB, s.sealer, integrations.Options{Now: func() time.Time { return clock() }}, c)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	begin := func(account int64, binding string) (state, verifier string) {
		t.Helper()
		to, err := r.BeginConnect(ctx, account, "cal", binding)
		if err != nil {
			t.Fatal(err)
		}
		u, _ := url.Parse(to)
		return u.Query().Get("state"), u.Query().Get("v")
	}
	refused := func(err error) bool {
		return services.ErrorCode(err) == services.EFORBIDDEN && strings.Contains(services.ErrorMessage(err), "cannot be finished")
	}

	// The right session finishes it; the verifier given at the start is the one exchanged.
	state, verifier := begin(acct, "session-a")
	if _, err := r.FinishConnect(ctx, acct, "cal", "session-a", integrations.Callback{State: state, Code: "c1"}); err != nil {
		t.Fatal(err)
	}
	if got := c.exchanges(); len(got) != 1 || got[0] != verifier {
		t.Fatalf("exchanged with %v, want the verifier %q", got, verifier)
	}
	// Used once only.
	if _, err := r.FinishConnect(ctx, acct, "cal", "session-a", integrations.Callback{State: state, Code: "c1"}); !refused(err) {
		t.Errorf("replay: %v", err)
	}
	// Another session, another account: refused, and the state is spent.
	state, _ = begin(acct, "session-a")
	if _, err := r.FinishConnect(ctx, acct, "cal", "session-b", integrations.Callback{State: state, Code: "c2"}); !refused(err) {
		t.Errorf("another session: %v", err)
	}
	state, _ = begin(acct, "session-a")
	if _, err := r.FinishConnect(ctx, other, "cal", "session-a", integrations.Callback{State: state, Code: "c3"}); !refused(err) {
		t.Errorf("another account: %v", err)
	}
	// Expired after ten minutes.
	state, _ = begin(acct, "session-a")
	clock = func() time.Time { return now.Add(integrations.OAuthStateTTL + time.Second) }
	if _, err := r.FinishConnect(ctx, acct, "cal", "session-a", integrations.Callback{State: state, Code: "c4"}); !refused(err) {
		t.Errorf("expired: %v", err)
	}
	if n := len(c.exchanges()); n != 1 {
		t.Errorf("%d exchanges, want only the first connect's", n)
	}
	// A consent refused at the provider is told apart, and stores nothing new.
	clock = func() time.Time { return now }
	if err := r.Disconnect(ctx, acct, "cal"); err != nil {
		t.Fatal(err)
	}
	state, _ = begin(acct, "session-a")
	_, err = r.FinishConnect(ctx, acct, "cal", "session-a", integrations.Callback{State: state, Error: "access_denied"})
	if !integrations.IsConsentDenied(err) {
		t.Errorf("access_denied: %v", err)
	}
	if st, err := r.Status(ctx, acct, "cal"); err != nil || st.Configured {
		t.Errorf("after a refused consent: %+v %v", st, err)
	}
}

func TestRefreshDoesNotOverwriteNewerCredentials(t *testing.T) {
	s := newStore(t)
	acct := s.account(t)
	c := &consenting{fake: &fake{spec: oauthSpec()}}
	r, err := integrations.NewRegistry(s.DB, s.sealer, integrations.Options{}, c)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	old, err := r.Save(ctx, acct, "cal", integrations.Values{"account": "a", "token": "old"})
	if err != nil {
		t.Fatal(err)
	}
	// The grant read by a call is still the stored one: its refresh is kept.
	refreshed, stored, err := r.Refresh(ctx, acct, "cal", old, integrations.Values{"account": "a", "token": "refreshed"})
	if err != nil || !stored || refreshed.Values["token"] != "refreshed" {
		t.Fatalf("refresh of the current grant: %+v %v %v", refreshed, stored, err)
	}
	// Meanwhile the owner connected again: a call that began with the
	// refreshed grant must not put it back over the new one.
	time.Sleep(2 * time.Millisecond)
	if _, err := r.Save(ctx, acct, "cal", integrations.Values{"account": "a", "token": "new"}); err != nil {
		t.Fatal(err)
	}
	if _, stored, err := r.Refresh(ctx, acct, "cal", refreshed, integrations.Values{"account": "a", "token": "stale", "reconnect": "x"}); err != nil || stored {
		t.Fatalf("a stale refresh was stored: %v %v", stored, err)
	}
	if conn, err := r.Resolve(ctx, acct, "cal"); err != nil || conn.Values["token"] != "new" || conn.Values["reconnect"] != "" {
		t.Fatalf("after a stale refresh: %+v %v", conn.Values, err)
	}
	// Removed meanwhile: nothing comes back.
	if err := r.Disconnect(ctx, acct, "cal"); err != nil {
		t.Fatal(err)
	}
	if _, stored, err := r.Refresh(ctx, acct, "cal", refreshed, integrations.Values{"token": "zombie"}); err != nil || stored {
		t.Fatalf("a refresh after a disconnect was stored: %v %v", stored, err)
	}
}

// Package storetest is the suite every implementation of services.Store
// passes (SQLite and PostgreSQL): each store's own tests call Run, so a
// method added to the interface is tested against both the same way.
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) storetest.Opener { ... })
//	}
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ava/console/services"
)

// Opener opens a store on one database, bringing its schema up to date.
// Each call is a new store on the same data, as a restart or another
// instance would open it.
type Opener func() (services.Store, error)

// Fresh makes an empty database of its own for one test (a folder, a
// schema), removed when the test ends, and returns how to open it.
type Fresh func(t *testing.T) Opener

// Run runs the suite, each test on a fresh database.
func Run(t *testing.T, fresh Fresh) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open Opener)
	}{
		{"DataSurvivesARestart", testDataSurvivesARestart},
		{"MigrationsAtOnce", testMigrationsAtOnce},
		{"FirstOwnerOnlyOnce", testFirstOwnerOnlyOnce},
		{"Users", testUsers},
		{"EmailsAreUniqueWhateverTheCase", testEmailCase},
		{"SessionsExpire", testSessionsExpire},
		{"Tokens", testTokens},
		{"RevokeOnlyOwnTokens", testRevokeOnlyOwnTokens},
		{"Credentials", testCredentials},
		{"IntegrationHealth", testIntegrationHealth},
		{"SettingChanges", testSettingChanges},
		{"LatestSettingChanges", testLatestSettingChanges},
		{"WritesAreCounted", testWritesAreCounted},
		{"FirstAccountID", testFirstAccountID},
		{"Outbox", testOutbox},
		{"OAuthStates", testOAuthStates},
		{"TimesAreUTCMilliseconds", testTimes},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, fresh(t))
		})
	}
}

// must opens a store and closes it when the test ends.
func must(t *testing.T, open Opener) services.Store {
	t.Helper()
	s, err := open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func user(t *testing.T, s services.Store, email string) services.User {
	t.Helper()
	u, err := s.CreateUser(context.Background(), email, "hash of "+email, false)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func wantCode(t *testing.T, err error, code services.Code, what string) {
	t.Helper()
	if got := services.ErrorCode(err); got != code {
		t.Fatalf("%s: error %v (code %q), want code %q", what, err, got, code)
	}
}

func testDataSurvivesARestart(t *testing.T, open Opener) {
	ctx := context.Background()
	db, err := open()
	if err != nil {
		t.Fatal(err)
	}
	u, err := db.CreateUser(ctx, "a@example.com", "hash", true)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := db.CreateToken(ctx, services.APIToken{UserID: u.ID, Name: "ci", Hash: "h1", Last4: "abcd", CreatedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = must(t, open) // migrations run again and must be a no-op
	got, hash, err := db.UserByEmail(ctx, "A@Example.com")
	if err != nil || got != u || hash != "hash" {
		t.Fatalf("user after restart: %+v %q %v, want %+v", got, hash, err, u)
	}
	gt, err := db.TokenByHash(ctx, "h1")
	if err != nil || gt.ID != tok.ID || gt.Name != "ci" || gt.Revoked() || !gt.CreatedAt.Equal(tok.CreatedAt) {
		t.Fatalf("token after restart: %+v %v", gt, err)
	}
}

// testMigrationsAtOnce: instances starting at the same moment on one empty
// database all open it, each migration applied once.
func testMigrationsAtOnce(t *testing.T, open Opener) {
	const n = 4
	stores := make([]services.Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			stores[i], errs[i] = open()
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("open %d of %d at once: %v", i+1, n, err)
		}
		t.Cleanup(func() { _ = stores[i].Close() })
	}
	// Every one works on the same data.
	ctx := context.Background()
	for i, s := range stores {
		if _, err := s.CreateUser(ctx, fmt.Sprintf("owner%d@example.com", i), "h", false); err != nil {
			t.Fatalf("store %d: %v", i+1, err)
		}
	}
	for i, s := range stores {
		if c, err := s.CountUsers(ctx); err != nil || c != n {
			t.Fatalf("store %d counts %d users (%v), want %d", i+1, c, err, n)
		}
	}
}

func testFirstOwnerOnlyOnce(t *testing.T, open Opener) {
	ctx := context.Background()
	db := must(t, open)

	// Setups racing: exactly one wins.
	const racers = 8
	var wg sync.WaitGroup
	errs := make([]error, racers)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = db.CreateUser(ctx, fmt.Sprintf("racer%d@example.com", i), "h", true)
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch services.ErrorCode(err) {
		case "":
			ok++
		case services.ECONFLICT:
		default:
			t.Fatalf("unexpected error: %v", err)
		}
	}
	if n, _ := db.CountUsers(ctx); ok != 1 || n != 1 {
		t.Fatalf("%d setups succeeded, %d users exist; want 1 and 1", ok, n)
	}
	// Later owners come from the command line (onlyFirst off), emails stay unique.
	if _, err := db.CreateUser(ctx, "z@example.com", "h", false); err != nil {
		t.Fatal(err)
	}
	_, err := db.CreateUser(ctx, "Z@example.com", "h", false)
	wantCode(t, err, services.ECONFLICT, "duplicate email (other case)")
	var appErr *services.Error
	if !errors.As(err, &appErr) || appErr.Field != "email" {
		t.Fatalf("duplicate email: %#v, want a conflict about the email field", err)
	}
	if _, err := db.CreateUser(ctx, "later@example.com", "h", true); services.ErrorCode(err) != services.ECONFLICT {
		t.Fatalf("first-run setup with owners: %v", err)
	}
}

func testUsers(t *testing.T, open Opener) {
	ctx := context.Background()
	db := must(t, open)
	if n, err := db.CountUsers(ctx); err != nil || n != 0 {
		t.Fatalf("empty: %d %v", n, err)
	}
	_, _, err := db.UserByEmail(ctx, "nobody@example.com")
	wantCode(t, err, services.ENOTFOUND, "unknown email")
	_, err = db.UserByID(ctx, 12345)
	wantCode(t, err, services.ENOTFOUND, "unknown id")

	a := user(t, db, "a@example.com")
	b := user(t, db, "b@example.com")
	if a.ID == b.ID || a.AccountID == b.AccountID || a.ID == 0 || a.AccountID == 0 {
		t.Fatalf("ids: %+v %+v (each owner has an account of their own)", a, b)
	}
	if a.Email != "a@example.com" || a.CreatedAt.IsZero() {
		t.Fatalf("created: %+v", a)
	}
	got, err := db.UserByID(ctx, b.ID)
	if err != nil || got != b {
		t.Fatalf("by id: %+v %v, want %+v", got, err, b)
	}
	got, hash, err := db.UserByEmail(ctx, "B@EXAMPLE.COM")
	if err != nil || got != b || hash != "hash of b@example.com" {
		t.Fatalf("by email: %+v %q %v", got, hash, err)
	}
	if n, err := db.CountUsers(ctx); err != nil || n != 2 {
		t.Fatalf("count: %d %v", n, err)
	}
}

// testEmailCase: emails are unique whatever the case of their ASCII letters
// (SQLite's NOCASE, which folds A-Z only); the email keeps the case it was
// created with.
func testEmailCase(t *testing.T, open Opener) {
	ctx := context.Background()
	db := must(t, open)
	u := user(t, db, "Mixed.Case@Example.com")
	if u.Email != "Mixed.Case@Example.com" {
		t.Fatalf("email stored as %q", u.Email)
	}
	if got, _, err := db.UserByEmail(ctx, "mixed.case@example.COM"); err != nil || got.ID != u.ID || got.Email != u.Email {
		t.Fatalf("lookup in another case: %+v %v", got, err)
	}
	_, err := db.CreateUser(ctx, "MIXED.CASE@EXAMPLE.COM", "h", false)
	wantCode(t, err, services.ECONFLICT, "same email in capitals")
	// Letters outside ASCII are compared as they are.
	e1 := user(t, db, "élodie@example.com")
	e2 := user(t, db, "Élodie@example.com")
	if e1.ID == e2.ID {
		t.Fatal("two users, one id")
	}
	if got, _, err := db.UserByEmail(ctx, "ÉLODIE@example.com"); err != nil || got.ID != e2.ID {
		t.Fatalf("lookup folds ASCII only: %+v %v, want user %d", got, err, e2.ID)
	}
}

func testSessionsExpire(t *testing.T, open Opener) {
	ctx := context.Background()
	db := must(t, open)
	u := user(t, db, "a@example.com")
	now := time.Now()
	for _, s := range []services.Session{
		{TokenHash: "live", UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(time.Hour)},
		{TokenHash: "dead", UserID: u.ID, CreatedAt: now.Add(-2 * time.Hour), ExpiresAt: now.Add(-time.Hour)},
		{TokenHash: "edge", UserID: u.ID, CreatedAt: now.Add(-time.Hour), ExpiresAt: now},
	} {
		if err := db.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.CreateSession(ctx, services.Session{TokenHash: "live", UserID: u.ID, CreatedAt: now, ExpiresAt: now}); err == nil {
		t.Fatal("a second session with the same hash was stored")
	}
	s, err := db.SessionByHash(ctx, "live", now)
	if err != nil || s.UserID != u.ID || !s.ExpiresAt.Equal(now.Add(time.Hour).Truncate(time.Millisecond)) {
		t.Fatalf("live session: %+v %v", s, err)
	}
	_, err = db.SessionByHash(ctx, "dead", now)
	wantCode(t, err, services.ENOTFOUND, "expired session")
	_, err = db.SessionByHash(ctx, "edge", now)
	wantCode(t, err, services.ENOTFOUND, "session expiring now")
	if n, err := db.DeleteExpiredSessions(ctx, now); err != nil || n != 2 {
		t.Fatalf("deleted %d, %v; want 2", n, err)
	}
	if err := db.DeleteSession(ctx, "live"); err != nil {
		t.Fatal(err)
	}
	_, err = db.SessionByHash(ctx, "live", now)
	wantCode(t, err, services.ENOTFOUND, "deleted session")
	if err := db.DeleteSession(ctx, "never existed"); err != nil {
		t.Fatalf("deleting a missing session: %v", err)
	}
}

func testTokens(t *testing.T, open Opener) {
	ctx := context.Background()
	db := must(t, open)
	u := user(t, db, "a@example.com")
	created := time.Now().Add(-time.Hour)
	first, err := db.CreateToken(ctx, services.APIToken{UserID: u.ID, Name: "first", Hash: "h1", Last4: "1111", CreatedAt: created})
	if err != nil {
		t.Fatal(err)
	}
	second, err := db.CreateToken(ctx, services.APIToken{UserID: u.ID, Name: "second", Hash: "h2", Last4: "2222", CreatedAt: created})
	if err != nil {
		t.Fatal(err)
	}
	if first.ID == 0 || second.ID == first.ID || first.LastUsedAt != nil || first.Revoked() {
		t.Fatalf("created: %+v %+v", first, second)
	}
	if _, err := db.CreateToken(ctx, services.APIToken{UserID: u.ID, Name: "copy", Hash: "h1", Last4: "1111", CreatedAt: created}); err == nil {
		t.Fatal("a second token with the same hash was stored")
	}
	list, err := db.ListTokens(ctx, u.ID)
	if err != nil || len(list) != 2 || list[0].ID != second.ID || list[1].ID != first.ID {
		t.Fatalf("list (newest first): %+v %v", list, err)
	}
	if list[1] != first {
		t.Fatalf("listed %+v, created %+v", list[1], first)
	}
	_, err = db.TokenByHash(ctx, "no such hash")
	wantCode(t, err, services.ENOTFOUND, "unknown token")

	used := time.Now()
	if err := db.TouchToken(ctx, first.ID, used); err != nil {
		t.Fatal(err)
	}
	got, err := db.TokenByHash(ctx, "h1")
	if err != nil || got.LastUsedAt == nil || !got.LastUsedAt.Equal(used.Truncate(time.Millisecond)) {
		t.Fatalf("touched: %+v %v", got, err)
	}
	if got.Name != "first" || got.Last4 != "1111" || got.Hash != "h1" || got.UserID != u.ID {
		t.Fatalf("token fields: %+v", got)
	}
	if list, _ := db.ListTokens(ctx, 999); len(list) != 0 {
		t.Fatalf("a user without tokens lists %d", len(list))
	}
}

func testRevokeOnlyOwnTokens(t *testing.T, open Opener) {
	ctx := context.Background()
	db := must(t, open)
	a := user(t, db, "a@example.com")
	b := user(t, db, "b@example.com")
	tok, _ := db.CreateToken(ctx, services.APIToken{UserID: a.ID, Name: "a's", Hash: "ha", Last4: "1234", CreatedAt: time.Now()})

	_, err := db.RevokeToken(ctx, b.ID, tok.ID, time.Now())
	wantCode(t, err, services.ENOTFOUND, "b revoking a's token")
	_, err = db.RevokeToken(ctx, a.ID, 98765, time.Now())
	wantCode(t, err, services.ENOTFOUND, "revoking a missing token")
	first := time.Now().Add(-time.Minute)
	got, err := db.RevokeToken(ctx, a.ID, tok.ID, first)
	if err != nil || !got.Revoked() || !got.RevokedAt.Equal(first.Truncate(time.Millisecond)) || got.Name != "a's" {
		t.Fatalf("revoke: %+v %v", got, err)
	}
	again, err := db.RevokeToken(ctx, a.ID, tok.ID, time.Now())
	if err != nil || !again.RevokedAt.Equal(*got.RevokedAt) {
		t.Fatalf("second revoke moved the time from %v to %v (%v)", got.RevokedAt, again.RevokedAt, err)
	}
	if byHash, _ := db.TokenByHash(ctx, "ha"); !byHash.Revoked() {
		t.Fatal("a revoked token reads back unrevoked")
	}
	list, _ := db.ListTokens(ctx, b.ID)
	if len(list) != 0 {
		t.Fatalf("b sees %d tokens", len(list))
	}
}

func testCredentials(t *testing.T, open Opener) {
	ctx := context.Background()
	db := must(t, open)
	a := user(t, db, "a@example.com")
	b := user(t, db, "b@example.com")
	_, err := db.Credentials(ctx, a.AccountID, services.IntegrationVapi)
	wantCode(t, err, services.ENOTFOUND, "no credentials")

	at := time.Now()
	sealed := []byte{0, 1, 2, 0xff, 'x'}
	c := services.StoredCredentials{
		AccountID: a.AccountID, Integration: services.IntegrationVapi, Sealed: sealed,
		Hints: map[string]string{"api_key": "••••abcd", "assistant_id": "asst-1"}, UpdatedAt: at,
	}
	if err := db.SaveCredentials(ctx, c); err != nil {
		t.Fatal(err)
	}
	got, err := db.Credentials(ctx, a.AccountID, services.IntegrationVapi)
	if err != nil || !bytes.Equal(got.Sealed, sealed) || got.Hints["api_key"] != "••••abcd" || len(got.Hints) != 2 ||
		!got.UpdatedAt.Equal(at.Truncate(time.Millisecond)) || got.AccountID != a.AccountID || got.Integration != services.IntegrationVapi {
		t.Fatalf("credentials: %+v %v", got, err)
	}
	// Saving again replaces them.
	c.Sealed, c.Hints, c.UpdatedAt = []byte("new"), map[string]string{"api_key": "••••wxyz"}, at.Add(time.Minute)
	if err := db.SaveCredentials(ctx, c); err != nil {
		t.Fatal(err)
	}
	got, _ = db.Credentials(ctx, a.AccountID, services.IntegrationVapi)
	if string(got.Sealed) != "new" || len(got.Hints) != 1 || got.Hints["api_key"] != "••••wxyz" {
		t.Fatalf("replaced: %+v", got)
	}
	// Accounts and integrations are apart.
	if _, err := db.Credentials(ctx, b.AccountID, services.IntegrationVapi); services.ErrorCode(err) != services.ENOTFOUND {
		t.Fatalf("b reads a's credentials: %v", err)
	}
	if _, err := db.Credentials(ctx, a.AccountID, services.IntegrationTwilio); services.ErrorCode(err) != services.ENOTFOUND {
		t.Fatalf("twilio reads vapi's credentials: %v", err)
	}
	if deleted, err := db.DeleteCredentials(ctx, b.AccountID, services.IntegrationVapi); err != nil || deleted {
		t.Fatalf("deleting none: %v %v", deleted, err)
	}
	if deleted, err := db.DeleteCredentials(ctx, a.AccountID, services.IntegrationVapi); err != nil || !deleted {
		t.Fatalf("deleting: %v %v", deleted, err)
	}
	_, err = db.Credentials(ctx, a.AccountID, services.IntegrationVapi)
	wantCode(t, err, services.ENOTFOUND, "deleted credentials")
}

func testIntegrationHealth(t *testing.T, open Opener) {
	ctx := context.Background()
	db := must(t, open)
	a := user(t, db, "a@example.com")
	h, err := db.IntegrationHealth(ctx, a.AccountID, services.IntegrationTwilio)
	if err != nil || h != (services.IntegrationHealth{}) {
		t.Fatalf("nothing recorded: %+v %v", h, err)
	}
	failed := time.Now().Add(-time.Minute)
	if err := db.RecordIntegrationError(ctx, a.AccountID, services.IntegrationTwilio, "Twilio refused the token.", failed); err != nil {
		t.Fatal(err)
	}
	h, _ = db.IntegrationHealth(ctx, a.AccountID, services.IntegrationTwilio)
	if h.LastError != "Twilio refused the token." || h.LastErrorAt == nil || !h.LastErrorAt.Equal(failed.Truncate(time.Millisecond)) || h.LastOKAt != nil {
		t.Fatalf("after an error: %+v", h)
	}
	ok := time.Now()
	if err := db.RecordIntegrationOK(ctx, a.AccountID, services.IntegrationTwilio, ok); err != nil {
		t.Fatal(err)
	}
	h, _ = db.IntegrationHealth(ctx, a.AccountID, services.IntegrationTwilio)
	if h.LastError != "Twilio refused the token." || h.LastOKAt == nil || !h.LastOKAt.Equal(ok.Truncate(time.Millisecond)) {
		t.Fatalf("a success keeps the last error beside it: %+v", h)
	}
	// A success first, then an error: both kept.
	if err := db.RecordIntegrationOK(ctx, a.AccountID, services.IntegrationVapi, ok); err != nil {
		t.Fatal(err)
	}
	if err := db.RecordIntegrationError(ctx, a.AccountID, services.IntegrationVapi, "timeout", ok.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	h, _ = db.IntegrationHealth(ctx, a.AccountID, services.IntegrationVapi)
	if h.LastError != "timeout" || h.LastOKAt == nil || h.LastErrorAt == nil {
		t.Fatalf("vapi health: %+v", h)
	}
}

func testSettingChanges(t *testing.T, open Opener) {
	ctx := context.Background()
	db := must(t, open)
	a := user(t, db, "a@example.com")
	b := user(t, db, "b@example.com")
	if list, err := db.SettingChanges(ctx, a.AccountID, "", 10); err != nil || len(list) != 0 {
		t.Fatalf("empty trail: %v %v", list, err)
	}
	if _, found, err := db.LatestSettingChange(ctx, a.AccountID, services.IntegrationVapi, "greeting"); err != nil || found {
		t.Fatalf("latest of none: %v %v", found, err)
	}
	at := time.Now()
	for i, c := range []services.SettingChange{
		{AccountID: a.AccountID, UserID: a.ID, Integration: services.IntegrationVapi, Key: "greeting", OldValue: `"hi"`, NewValue: `"hello"`, ChangedAt: at},
		{AccountID: a.AccountID, UserID: a.ID, Integration: services.IntegrationTwilio, Key: "number", OldValue: `null`, NewValue: `"+1"`, ChangedAt: at.Add(time.Second)},
		{AccountID: a.AccountID, UserID: a.ID, Integration: services.IntegrationVapi, Key: "greeting", OldValue: `"hello"`, NewValue: `"hey"`, ChangedAt: at.Add(2 * time.Second)},
		{AccountID: a.AccountID, UserID: a.ID, Integration: services.IntegrationVapi, Key: "speed", OldValue: `1`, NewValue: `1.5`, ChangedAt: at.Add(3 * time.Second)},
		{AccountID: b.AccountID, UserID: b.ID, Integration: services.IntegrationVapi, Key: "greeting", OldValue: `"x"`, NewValue: `"y"`, ChangedAt: at},
	} {
		if err := db.RecordSettingChange(ctx, c); err != nil {
			t.Fatalf("change %d: %v", i, err)
		}
	}
	all, err := db.SettingChanges(ctx, a.AccountID, "", 10)
	if err != nil || len(all) != 4 {
		t.Fatalf("a's trail: %+v %v", all, err)
	}
	if all[0].Key != "speed" || all[3].NewValue != `"hello"` || all[1].NewValue != `"hey"` {
		t.Fatalf("not newest first: %+v", all)
	}
	want := services.SettingChange{
		ID: all[0].ID, AccountID: a.AccountID, UserID: a.ID, UserEmail: "a@example.com", Integration: services.IntegrationVapi,
		Key: "speed", OldValue: `1`, NewValue: `1.5`, ChangedAt: at.Add(3 * time.Second).Truncate(time.Millisecond),
	}
	if !all[0].ChangedAt.Equal(want.ChangedAt) || all[0].ChangedAt.Location() != time.UTC {
		t.Fatalf("changed at %v, want %v in UTC", all[0].ChangedAt, want.ChangedAt)
	}
	all[0].ChangedAt = want.ChangedAt
	if all[0] != want {
		t.Fatalf("change %+v, want %+v", all[0], want)
	}
	vapi, _ := db.SettingChanges(ctx, a.AccountID, services.IntegrationVapi, 10)
	if len(vapi) != 3 {
		t.Fatalf("vapi's trail: %d entries, want 3", len(vapi))
	}
	limited, _ := db.SettingChanges(ctx, a.AccountID, "", 2)
	if len(limited) != 2 || limited[0].ID != all[0].ID {
		t.Fatalf("limit 2: %+v", limited)
	}
	latest, found, err := db.LatestSettingChange(ctx, a.AccountID, services.IntegrationVapi, "greeting")
	if err != nil || !found || latest.NewValue != `"hey"` || latest.UserEmail != "a@example.com" {
		t.Fatalf("latest greeting: %+v %v %v", latest, found, err)
	}
	if _, found, _ := db.LatestSettingChange(ctx, a.AccountID, services.IntegrationTwilio, "greeting"); found {
		t.Fatal("latest of another integration's key")
	}
}

// testLatestSettingChanges: the newest change of each setting of one
// integration of one account, however long ago, newest first.
func testLatestSettingChanges(t *testing.T, open Opener) {
	ctx := context.Background()
	db := must(t, open)
	a := user(t, db, "a@example.com")
	b := user(t, db, "b@example.com")
	if list, err := db.LatestSettingChanges(ctx, a.AccountID, services.IntegrationVapi); err != nil || len(list) != 0 {
		t.Fatalf("empty trail: %+v %v", list, err)
	}
	at := time.Now().Truncate(time.Millisecond)
	record := func(acct services.User, integration, key, to string, after time.Duration) {
		t.Helper()
		if err := db.RecordSettingChange(ctx, services.SettingChange{
			AccountID: acct.AccountID, UserID: acct.ID, Integration: integration, Key: key,
			OldValue: `null`, NewValue: to, ChangedAt: at.Add(after),
		}); err != nil {
			t.Fatal(err)
		}
	}
	record(a, services.IntegrationVapi, "greeting", `"hello"`, 0)
	record(a, services.IntegrationVapi, "speed", `1.1`, time.Second)
	// Many changes of one setting since: the other's stays found.
	for i := range 60 {
		record(a, services.IntegrationVapi, "max_duration", fmt.Sprint(100+i), time.Duration(2+i)*time.Second)
	}
	record(a, services.IntegrationTwilio, "greeting", `"other integration"`, time.Hour)
	record(b, services.IntegrationVapi, "greeting", `"other account"`, time.Hour)

	list, err := db.LatestSettingChanges(ctx, a.AccountID, services.IntegrationVapi)
	if err != nil || len(list) != 3 {
		t.Fatalf("latest of a's vapi settings: %+v %v", list, err)
	}
	for i, want := range []struct {
		key, value string
		at         time.Time
	}{
		{"max_duration", "159", at.Add(61 * time.Second)},
		{"speed", "1.1", at.Add(time.Second)},
		{"greeting", `"hello"`, at},
	} {
		c := list[i]
		if c.Key != want.key || c.NewValue != want.value || !c.ChangedAt.Equal(want.at) || c.UserEmail != "a@example.com" ||
			c.AccountID != a.AccountID || c.Integration != services.IntegrationVapi {
			t.Errorf("latest %d: %+v, want %s = %s at %v", i, c, want.key, want.value, want.at)
		}
	}
}

// testWritesAreCounted: a store that counts its writes (Writes, exposed as
// ava_db_writes_total) counts each statement that changes the database,
// and no read; one that counts the connections it opens opens none for
// reads one after another.
func testWritesAreCounted(t *testing.T, open Opener) {
	ctx := context.Background()
	db := must(t, open)
	counter, ok := db.(interface{ Writes() uint64 })
	if !ok {
		t.Skip("this store does not count its writes")
	}
	u := user(t, db, "a@example.com")
	before := counter.Writes()
	tok, err := db.CreateToken(ctx, services.APIToken{UserID: u.ID, Name: "n", Hash: "h", Last4: "abcd", CreatedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.TouchToken(ctx, tok.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	if n := counter.Writes() - before; n != 2 {
		t.Fatalf("an insert and an update counted %d writes, want 2", n)
	}
	before = counter.Writes()
	for range 3 {
		if _, err := db.TokenByHash(ctx, "h"); err != nil {
			t.Fatal(err)
		}
		if _, err := db.UserByID(ctx, u.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Credentials(ctx, u.AccountID, services.IntegrationVapi); services.ErrorCode(err) != services.ENOTFOUND {
			t.Fatal(err)
		}
	}
	if n := counter.Writes() - before; n != 0 {
		t.Fatalf("reads counted %d writes", n)
	}
	// The pools keep their connections: reads one after another open none.
	if opener, ok := db.(interface{ ConnectionsOpened() uint64 }); ok {
		before := opener.ConnectionsOpened()
		for range 20 {
			if _, err := db.TokenByHash(ctx, "h"); err != nil {
				t.Fatal(err)
			}
		}
		if n := opener.ConnectionsOpened() - before; n != 0 {
			t.Fatalf("20 reads one after another opened %d connections", n)
		}
	}
}

func testFirstAccountID(t *testing.T, open Opener) {
	ctx := context.Background()
	db := must(t, open)
	_, err := db.FirstAccountID(ctx)
	wantCode(t, err, services.ENOTFOUND, "no account")
	a := user(t, db, "a@example.com")
	user(t, db, "b@example.com")
	if id, err := db.FirstAccountID(ctx); err != nil || id != a.AccountID {
		t.Fatalf("first account %d %v, want %d", id, err, a.AccountID)
	}
}

func testOutbox(t *testing.T, open Opener) {
	ctx := context.Background()
	db := must(t, open)
	a := user(t, db, "a@example.com")
	b := user(t, db, "b@example.com")
	if list, err := db.OutboxEmails(ctx, a.AccountID, 10); err != nil || len(list) != 0 {
		t.Fatalf("empty outbox: %v %v", list, err)
	}
	at := time.Now()
	for i := range 3 {
		if err := db.AddOutboxEmail(ctx, services.OutboxEmail{
			AccountID: a.AccountID, MessageID: fmt.Sprintf("stub-%d", i), From: "Ava <ava@example.com>", To: "owner@example.com",
			Subject: fmt.Sprintf("Test %d", i), Text: "Hello\nthere", SentAt: at.Add(time.Duration(i) * time.Second),
		}); err != nil {
			t.Fatal(err)
		}
	}
	list, err := db.OutboxEmails(ctx, a.AccountID, 2)
	if err != nil || len(list) != 2 || list[0].MessageID != "stub-2" || list[1].MessageID != "stub-1" {
		t.Fatalf("outbox (newest first, 2): %+v %v", list, err)
	}
	want := services.OutboxEmail{
		AccountID: a.AccountID, MessageID: "stub-2", From: "Ava <ava@example.com>", To: "owner@example.com",
		Subject: "Test 2", Text: "Hello\nthere", SentAt: at.Add(2 * time.Second).Truncate(time.Millisecond),
	}
	if !list[0].SentAt.Equal(want.SentAt) {
		t.Fatalf("sent at %v, want %v", list[0].SentAt, want.SentAt)
	}
	list[0].SentAt = want.SentAt
	if list[0] != want {
		t.Fatalf("email %+v, want %+v", list[0], want)
	}
	if list, _ := db.OutboxEmails(ctx, b.AccountID, 10); len(list) != 0 {
		t.Fatalf("b sees %d of a's emails", len(list))
	}
}

// testTimes: every time reads back in UTC, cut to the millisecond, whatever
// zone and precision it was written with.
func testTimes(t *testing.T, open Opener) {
	ctx := context.Background()
	db := must(t, open)
	zone := time.FixedZone("UTC+5:30", 5*3600+1800)
	written := time.Date(2031, 7, 14, 9, 26, 53, 589793238, zone)
	want := time.Date(2031, 7, 14, 3, 56, 53, 589000000, time.UTC)
	same := func(what string, got time.Time) {
		t.Helper()
		if got != want { // == : the same instant, location and no monotonic reading
			t.Errorf("%s: %v (%s), want %v", what, got, got.Location(), want)
		}
	}
	u := user(t, db, "a@example.com")
	if u.CreatedAt.Location() != time.UTC || u.CreatedAt.Nanosecond()%int(time.Millisecond) != 0 {
		t.Errorf("user created at %v", u.CreatedAt)
	}
	if got, _ := db.UserByID(ctx, u.ID); got.CreatedAt != u.CreatedAt {
		t.Errorf("user created at %v, read back %v", u.CreatedAt, got.CreatedAt)
	}
	tok, err := db.CreateToken(ctx, services.APIToken{UserID: u.ID, Name: "t", Hash: "h", Last4: "0000", CreatedAt: written})
	if err != nil {
		t.Fatal(err)
	}
	same("token created (returned)", tok.CreatedAt)
	_ = db.TouchToken(ctx, tok.ID, written)
	revoked, _ := db.RevokeToken(ctx, u.ID, tok.ID, written)
	same("token created", revoked.CreatedAt)
	same("token used", *revoked.LastUsedAt)
	same("token revoked", *revoked.RevokedAt)

	if err := db.CreateSession(ctx, services.Session{TokenHash: "s", UserID: u.ID, CreatedAt: written, ExpiresAt: written}); err != nil {
		t.Fatal(err)
	}
	s, err := db.SessionByHash(ctx, "s", written.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	same("session created", s.CreatedAt)
	same("session expires", s.ExpiresAt)

	_ = db.SaveCredentials(ctx, services.StoredCredentials{AccountID: u.AccountID, Integration: "vapi", Sealed: []byte("x"), UpdatedAt: written})
	c, _ := db.Credentials(ctx, u.AccountID, "vapi")
	same("credentials updated", c.UpdatedAt)
	if c.Hints != nil {
		t.Errorf("no hints read back as %#v", c.Hints)
	}
	_ = db.RecordIntegrationError(ctx, u.AccountID, "vapi", "x", written)
	_ = db.RecordIntegrationOK(ctx, u.AccountID, "vapi", written)
	h, _ := db.IntegrationHealth(ctx, u.AccountID, "vapi")
	same("last error", *h.LastErrorAt)
	same("last ok", *h.LastOKAt)
	_ = db.RecordSettingChange(ctx, services.SettingChange{AccountID: u.AccountID, UserID: u.ID, Integration: "vapi", Key: "k", OldValue: "1", NewValue: "2", ChangedAt: written})
	ch, _, _ := db.LatestSettingChange(ctx, u.AccountID, "vapi", "k")
	same("setting changed", ch.ChangedAt)
	_ = db.AddOutboxEmail(ctx, services.OutboxEmail{AccountID: u.AccountID, MessageID: "m", SentAt: written})
	out, _ := db.OutboxEmails(ctx, u.AccountID, 1)
	if len(out) != 1 {
		t.Fatalf("outbox: %v", out)
	}
	same("email sent", out[0].SentAt)
	if err := db.SaveOAuthState(ctx, services.OAuthState{Hash: "st", Binding: "b", AccountID: u.AccountID, Integration: "calendar",
		SealedVerifier: []byte("v"), ExpiresAt: written}); err != nil {
		t.Fatal(err)
	}
	st, err := db.TakeOAuthState(ctx, "st", written.Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	same("OAuth state expires", st.ExpiresAt)
}

// testOAuthStates: a state is taken once, by one of many callbacks racing,
// and never after it expired.
func testOAuthStates(t *testing.T, open Opener) {
	ctx := context.Background()
	db := must(t, open)
	u := user(t, db, "a@example.com")
	now := time.Now()
	st := services.OAuthState{Hash: "h1", Binding: "b1", AccountID: u.AccountID, Integration: services.IntegrationCalendar,
		SealedVerifier: []byte{1, 2, 3}, ExpiresAt: now.Add(10 * time.Minute)}
	if err := db.SaveOAuthState(ctx, st); err != nil {
		t.Fatal(err)
	}
	if err := db.SaveOAuthState(ctx, st); err == nil {
		t.Fatal("the same state was saved twice")
	}
	_, err := db.TakeOAuthState(ctx, "unknown", now)
	wantCode(t, err, services.ENOTFOUND, "unknown state")

	const racers = 8
	var wg sync.WaitGroup
	var mu sync.Mutex
	var taken []services.OAuthState
	for range racers {
		wg.Go(func() {
			got, err := db.TakeOAuthState(ctx, "h1", now)
			switch services.ErrorCode(err) {
			case "":
				mu.Lock()
				taken = append(taken, got)
				mu.Unlock()
			case services.ENOTFOUND:
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if len(taken) != 1 {
		t.Fatalf("the state was taken %d times, want once", len(taken))
	}
	got := taken[0]
	if got.Hash != "h1" || got.Binding != "b1" || got.AccountID != u.AccountID || got.Integration != services.IntegrationCalendar ||
		!bytes.Equal(got.SealedVerifier, []byte{1, 2, 3}) || !got.ExpiresAt.Equal(st.ExpiresAt.Truncate(time.Millisecond)) {
		t.Fatalf("taken: %+v", got)
	}

	// An expired state is refused, and gone.
	st.Hash, st.ExpiresAt = "h2", now.Add(time.Minute)
	if err := db.SaveOAuthState(ctx, st); err != nil {
		t.Fatal(err)
	}
	_, err = db.TakeOAuthState(ctx, "h2", now.Add(2*time.Minute))
	wantCode(t, err, services.ENOTFOUND, "expired state")
	_, err = db.TakeOAuthState(ctx, "h2", now)
	wantCode(t, err, services.ENOTFOUND, "an expired state taken again")
	// Saving a state forgets the expired ones.
	st.Hash, st.ExpiresAt = "h3", now.Add(-time.Second)
	if err := db.SaveOAuthState(ctx, st); err != nil {
		t.Fatal(err)
	}
	st.Hash, st.ExpiresAt = "h4", now.Add(time.Minute)
	if err := db.SaveOAuthState(ctx, st); err != nil {
		t.Fatal(err)
	}
	_, err = db.TakeOAuthState(ctx, "h3", now.Add(-time.Hour))
	wantCode(t, err, services.ENOTFOUND, "an expired state kept after a save")
}

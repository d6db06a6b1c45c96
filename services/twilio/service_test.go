package twilio_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ava/console/services"
	"github.com/ava/console/services/integrations"
	"github.com/ava/console/services/twilio"
	"github.com/ava/console/services/twilio/twiliotest"
	"github.com/ava/console/services/upstream"
)

const apiKeySID = "SK0123456789abcdef0123456789abcdef"

// wantCode fails unless err is a *services.Error with the code and a
// message containing says; it returns a copy of the error.
func wantCode(t *testing.T, err error, code services.Code, says string) services.Error {
	t.Helper()
	var e *services.Error
	if !errors.As(err, &e) || e.Code != code {
		t.Fatalf("got %v, want code %s", err, code)
	}
	if !strings.Contains(e.Message, says) {
		t.Fatalf("message %q does not say %q", e.Message, says)
	}
	return *e
}

func TestNumbersFollowsEveryPage(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	sid, _ := w.connected(t, 120)
	ctx := services.WithCorrelationID(context.Background(), "corr-numbers-1")
	numbers, err := w.numbers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(numbers) != 120 {
		t.Fatalf("%d numbers, want 120", len(numbers))
	}
	for i, n := range numbers {
		want := twilio.Number{
			SID: fmt.Sprintf("PN%032x", i+1), PhoneNumber: fmt.Sprintf("+1415555%04d", i),
			FriendlyName: fmt.Sprintf("(415) 555-%04d", i), Voice: true, SMS: i%2 == 0, MMS: i%3 == 0,
		}
		if n != want {
			t.Fatalf("number %d = %+v, want %+v (in Twilio's order)", i, n, want)
		}
	}
	reqs := w.fake.Requests()
	if len(reqs) != 3 {
		t.Fatalf("120 numbers took %d requests, want 3 pages of 50", len(reqs))
	}
	wantQuery := []string{"PageSize=50", "PageSize=50&Page=1&PageToken=PA", "PageSize=50&Page=2&PageToken=PA"}
	for i, r := range reqs {
		if r.Path != "/2010-04-01/Accounts/"+sid+"/IncomingPhoneNumbers.json" || !strings.HasPrefix(r.Query, wantQuery[i]) {
			t.Errorf("request %d: %s?%s, want the next_page_uri of the page before", i+1, r.Path, r.Query)
		}
		if r.Username != sid {
			t.Errorf("request %d: Basic auth username %q, want the Account SID", i+1, r.Username)
		}
		if r.CorrelationID != "corr-numbers-1" {
			t.Errorf("request %d: X-Correlation-ID %q, want corr-numbers-1", i+1, r.CorrelationID)
		}
		if !strings.HasPrefix(r.UserAgent, "twilio-go/") {
			t.Errorf("request %d: User-Agent %q, want twilio-go's", i+1, r.UserAgent)
		}
	}
}

func TestNumbersWithAnAPIKey(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	sid, _ := w.account(0, 60)
	secret := "apikeysecret" + strings.Repeat("Q", 20)
	w.fake.AddAPIKey(sid, apiKeySID, secret)
	ctx := services.WithCorrelationID(context.Background(), "corr-key-1")
	r, err := w.connect(ctx, sid, secret, apiKeySID)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{twilio.FieldAccountSID: sid, twilio.FieldAPIKeySID: apiKeySID, twilio.FieldAuthToken: "••••QQQQ"}
	if fmt.Sprint(r.Hints) != fmt.Sprint(want) {
		t.Errorf("hints %v, want %v", r.Hints, want)
	}
	numbers, err := w.numbers(ctx)
	if err != nil || len(numbers) != 60 {
		t.Fatalf("%d numbers, %v", len(numbers), err)
	}
	reqs := w.fake.Requests()
	if len(reqs) != 3 { // the probe, then 2 pages
		t.Fatalf("%d requests, want 3", len(reqs))
	}
	for i, r := range reqs {
		if r.Username != apiKeySID || r.CorrelationID != "corr-key-1" || !strings.Contains(r.Path, "/Accounts/"+sid+"/") {
			t.Errorf("request %d: user %q, correlation %q, path %s: want the API key SID on the account's path", i+1, r.Username, r.CorrelationID, r.Path)
		}
	}
}

func TestNumbersOfAnEmptyAccount(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.connected(t, 0)
	numbers, err := w.numbers(context.Background())
	if err != nil || numbers == nil || len(numbers) != 0 {
		t.Fatalf("numbers %#v, err %v: want an empty list", numbers, err)
	}
	if n := len(w.fake.Requests()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func TestNumbersBoundedAtMaxPages(t *testing.T) {
	t.Parallel()
	limit := twilio.MaxPages * twilio.PageSize
	for _, tt := range []struct {
		name    string
		numbers int
		ok      bool
	}{
		{"exactly the bound", limit, true},
		{"one more", limit + 1, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			w.connected(t, tt.numbers)
			numbers, err := w.numbers(context.Background())
			if tt.ok {
				if err != nil || len(numbers) != limit {
					t.Fatalf("%d numbers, %v; want all %d", len(numbers), err, limit)
				}
			} else {
				wantCode(t, err, services.EUPSTREAM, "more than 1000 phone numbers")
			}
			if n := len(w.fake.Requests()); n != twilio.MaxPages {
				t.Errorf("%d requests, want %d (never a 21st page)", n, twilio.MaxPages)
			}
		})
	}
}

func TestNotConnected(t *testing.T) {
	t.Parallel()
	w := newWorld(t, withEnv(twiliotest.AccountSID(5), "")) // half an environment is none
	const want = "Twilio is not connected. Add your Account SID and Auth Token (or an API key) on the Integrations page."
	_, err := w.numbers(context.Background())
	if !integrations.IsNotConnected(err) || wantCode(t, err, services.ENOTFOUND, "").Message != want {
		t.Fatalf("got %v, want not connected: %q", err, want)
	}
	if _, err := w.test(context.Background()); !integrations.IsNotConnected(err) || wantCode(t, err, services.ENOTFOUND, "").Message != want {
		t.Fatalf("Test: %v", err)
	}
	if n := len(w.fake.Requests()); n != 0 {
		t.Errorf("%d requests without credentials", n)
	}
}

// 401/20003 is the user's to fix: it neither counts against the breaker
// nor resets its count of real failures.
func TestBadCredentialsAreNotAnOutage(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	sid, _ := w.connected(t, 5)
	w.fake.AddAccount(sid, twiliotest.AuthToken(42), 5) // the token was rotated at Twilio
	const want = "Twilio refused the credentials (20003: Authenticate (https://www.twilio.com/docs/errors/20003)). Fix them on the Integrations page."
	for i := range 10 {
		_, err := w.numbers(context.Background())
		if e := wantCode(t, err, services.EUPSTREAM, "Twilio refused the credentials"); e.Message != want {
			t.Fatalf("call %d: %q, want %q", i+1, e.Message, want)
		}
	}
	if s := w.breaker(); s != "closed" {
		t.Fatalf("10 refusals left the breaker %s, want closed", s)
	}
	if n := len(w.fake.Requests()); n != 10 {
		t.Errorf("Twilio got %d of the 10 calls", n)
	}
	if got := w.outcome(t, upstream.OutcomeClientError); got != 10 {
		t.Errorf("client_error outcomes %v, want 10", got)
	}
	if h := w.health(t); h.LastError != want || h.LastErrorAt == nil {
		t.Errorf("health %+v: want the last error recorded", h)
	}

	// Neither do they hide an outage: 2 failures, refusals, 1 failure opens it.
	w.fake.FailNext(2, twiliotest.Failure{Status: 500, Code: 20500, Message: "Internal Server Error"})
	for range 2 {
		_, _ = w.numbers(context.Background())
	}
	for range 5 {
		_, _ = w.numbers(context.Background())
	}
	if s := w.breaker(); s != "closed" {
		t.Fatalf("breaker %s after 2 failures", s)
	}
	w.fake.FailNext(1, twiliotest.Failure{Status: 503})
	_, _ = w.numbers(context.Background())
	if s := w.breaker(); s != "open" {
		t.Fatalf("the third failure left the breaker %s: the refusals reset its count", s)
	}
}

// A 429/20429 is one account's credentials over their limit: however many,
// they never pause Twilio for the other accounts, and they do not reset
// the count of real failures either.
func TestRateLimitsDoNotOpenTheBreaker(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.connected(t, 5)
	w.fake.FailAlways(twiliotest.Failure{Status: 429, Code: 20429, Message: "Too Many Requests"})
	for i := 1; i <= 5; i++ {
		_, err := w.numbers(context.Background())
		wantCode(t, err, services.ERATELIMIT,
			"Twilio is rate limiting us (20429: Too Many Requests (https://www.twilio.com/docs/errors/20429)). Try again in a moment.")
		if s := w.breaker(); s != "closed" {
			t.Fatalf("after %d rate-limited answers the breaker is %s, want closed", i, s)
		}
	}
	if got := w.outcome(t, upstream.OutcomeRateLimited); got != 5 {
		t.Errorf("rate_limited outcomes %v, want 5", got)
	}
	w.fake.Recover()
	if _, err := w.numbers(context.Background()); err != nil {
		t.Fatalf("after the rate limit: %v", err)
	}
}

func TestServerErrorsOpenTheBreaker(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		failure twiliotest.Failure
		says    string
		outcome string
	}{
		{"500 with Twilio's error", twiliotest.Failure{Status: 500, Code: 20500, Message: "An internal server error has occurred"},
			"Twilio is having trouble (20500: An internal server error has occurred (https://www.twilio.com/docs/errors/20500)). Try again in a moment.",
			upstream.OutcomeServerError},
		{"503 from a proxy", twiliotest.Failure{Status: 503},
			"Twilio is having trouble (it answered with an error). Try again in a moment.",
			upstream.OutcomeServerError},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			w.connected(t, 5)
			w.fake.FailAlways(tt.failure)
			for i := 1; i <= 3; i++ {
				_, err := w.numbers(context.Background())
				if e := wantCode(t, err, services.EUPSTREAM, ""); e.Message != tt.says {
					t.Fatalf("call %d: %q, want %q", i, e.Message, tt.says)
				}
				want := map[bool]string{true: "open", false: "closed"}[i == 3]
				if s := w.breaker(); s != want {
					t.Fatalf("after %d failures the breaker is %s, want %s", i, s, want)
				}
			}
			if got := w.outcome(t, tt.outcome); got != 3 {
				t.Errorf("outcome %s counted %v times, want 3", tt.outcome, got)
			}

			// Open: fail fast, Twilio hears nothing, even once it is back.
			w.fake.Recover()
			w.fake.ResetRequests()
			start := time.Now()
			_, err := w.numbers(context.Background())
			e := wantCode(t, err, services.EUNAVAILABLE, "Twilio has been failing, so calls to it are paused. Try again in ")
			if e.RetryAfter < 50*time.Second || e.RetryAfter > time.Minute {
				t.Errorf("RetryAfter %s, want about the 1m recovery timeout", e.RetryAfter)
			}
			if took := time.Since(start); took > time.Second {
				t.Errorf("the open breaker took %s to refuse", took)
			}
			// Connecting needs Twilio too: refused the same way, nothing stored.
			_, err = w.connect(context.Background(), twiliotest.AccountSID(1), twiliotest.AuthToken(1), "")
			wantCode(t, err, services.EUNAVAILABLE, "paused")
			if n := len(w.fake.Requests()); n != 0 {
				t.Errorf("the open breaker let %d requests through", n)
			}
			if r, _ := w.svc.Connection(context.Background(), w.user.AccountID); r.Values[twilio.FieldAccountSID] != twiliotest.AccountSID(0) {
				t.Errorf("a refused connect replaced the credentials: %v", r.Hints)
			}
		})
	}
}

func TestSlowTwilioTimesOut(t *testing.T) {
	t.Parallel()
	w := newWorld(t, withSettings(func(s *upstream.Settings) { s.Timeout = 200 * time.Millisecond }))
	w.connected(t, 5)
	w.fake.SetDelay(3 * time.Second)
	start := time.Now()
	_, err := w.numbers(context.Background())
	wantCode(t, err, services.ETIMEOUT, "Twilio did not answer within 200ms. Try again in a moment.")
	if took := time.Since(start); took > 1500*time.Millisecond {
		t.Errorf("took %s with a 200ms timeout", took)
	}
	if got := w.outcome(t, upstream.OutcomeTimeout); got != 1 {
		t.Errorf("timeout outcomes %v, want 1", got)
	}
}

func TestDroppedConnection(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.connected(t, 5)
	w.fake.FailAlways(twiliotest.Failure{Drop: true})
	_, err := w.numbers(context.Background())
	wantCode(t, err, services.EUPSTREAM, "Could not reach Twilio (the connection failed). Try again in a moment.")
	if got := w.outcome(t, upstream.OutcomeTransport); got != 1 {
		t.Errorf("network_error outcomes %v, want 1", got)
	}
}

// Every call goes back to the one shared connection: after Connect's probe
// (whose page the console does not read) and after error answers (whose
// body twilio-go never closes), nothing is dialed again.
func TestCallsReuseOneConnection(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	sid, _ := w.connected(t, 5)
	w.fake.AddAccount(sid, twiliotest.AuthToken(42), 5)
	for range 20 {
		_, _ = w.numbers(context.Background())
	}
	w.fake.AddAccount(sid, twiliotest.AuthToken(0), 5)
	if _, err := w.numbers(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := w.dials.Load(); d != 1 {
		t.Errorf("the fake accepted %d connections for 22 sequential calls (the probe, 20 refused, 1 listed), want 1", d)
	}
}

func TestConnectRefusesMalformedCredentialsWithoutACall(t *testing.T) {
	t.Parallel()
	sid, token := twiliotest.AccountSID(0), twiliotest.AuthToken(0)
	for _, tt := range []struct {
		name                string
		sid, secret, keySID string
		field               string
	}{
		{"no account SID", "", token, "", twilio.FieldAccountSID},
		{"short account SID", "AC123", token, "", twilio.FieldAccountSID},
		{"API key SID as account SID", "SK" + sid[2:], token, "", twilio.FieldAccountSID},
		{"non-hex account SID", "AC" + strings.Repeat("z", 32), token, "", twilio.FieldAccountSID},
		{"no token", sid, "", "", twilio.FieldAuthToken},
		{"short token", sid, "abc123", "", twilio.FieldAuthToken},
		{"token with symbols", sid, token[:30] + "!?", "", twilio.FieldAuthToken},
		{"malformed API key SID", sid, token, "SK123", twilio.FieldAPIKeySID},
		{"account SID as API key SID", sid, token, sid, twilio.FieldAPIKeySID},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			_, err := w.connect(context.Background(), tt.sid, tt.secret, tt.keySID)
			e := wantCode(t, err, services.EINVALID, tt.field)
			if e.Field != tt.field {
				t.Errorf("field %q, want %q", e.Field, tt.field)
			}
			if n := len(w.fake.Requests()); n != 0 {
				t.Errorf("%d requests for malformed credentials", n)
			}
			if r, _ := w.svc.Connection(context.Background(), w.user.AccountID); r.Configured() || w.pool.Len() != 0 {
				t.Errorf("configured %v, pool %d: want nothing stored or cached", r.Configured(), w.pool.Len())
			}
		})
	}
}

func TestConnectRefusedByTwilio(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		prepare func(w *world) (sid, secret, keySID string)
		field   string
		says    string
	}{
		{"wrong auth token", func(w *world) (string, string, string) {
			sid, _ := w.account(0, 1)
			return sid, twiliotest.AuthToken(7), ""
		}, twilio.FieldAuthToken, "Twilio refused the credentials: 20003: Authenticate (https://www.twilio.com/docs/errors/20003)"},
		{"unknown account", func(*world) (string, string, string) {
			return twiliotest.AccountSID(9), twiliotest.AuthToken(9), ""
		}, twilio.FieldAuthToken, "20003: Authenticate"},
		{"wrong API key secret", func(w *world) (string, string, string) {
			sid, _ := w.account(0, 1)
			w.fake.AddAPIKey(sid, apiKeySID, "rightsecret"+strings.Repeat("x", 21))
			return sid, "wrongsecret" + strings.Repeat("x", 21), apiKeySID
		}, twilio.FieldAuthToken, "20003: Authenticate"},
		{"404 for the account", func(w *world) (string, string, string) {
			sid, token := w.account(0, 1)
			w.fake.FailNext(1, twiliotest.Failure{Status: 404, Code: 20404, Message: "The requested resource was not found"})
			return sid, token, ""
		}, twilio.FieldAccountSID, "Twilio refused the credentials: 20404: The requested resource was not found (https://www.twilio.com/docs/errors/20404)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			sid, secret, keySID := tt.prepare(w)
			_, err := w.connect(context.Background(), sid, secret, keySID)
			e := wantCode(t, err, services.EINVALID, tt.says)
			if e.Field != tt.field {
				t.Errorf("field %q, want %q", e.Field, tt.field)
			}
			if n := len(w.fake.Requests()); n != 1 {
				t.Errorf("%d requests, want the one probe", n)
			}
			if r, _ := w.svc.Connection(context.Background(), w.user.AccountID); r.Configured() {
				t.Errorf("refused credentials were stored: %v", r.Hints)
			}
			if w.pool.Len() != 0 {
				t.Errorf("the pool kept %d clients for refused credentials", w.pool.Len())
			}
			if s := w.breaker(); s != "closed" {
				t.Errorf("breaker %s", s)
			}
		})
	}
}

// A refused replacement keeps the credentials in use.
func TestConnectRefusalKeepsEarlierCredentials(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	sid, _ := w.connected(t, 3)
	if _, err := w.connect(context.Background(), sid, twiliotest.AuthToken(8), ""); services.ErrorCode(err) != services.EINVALID {
		t.Fatalf("got %v", err)
	}
	if numbers, err := w.numbers(context.Background()); err != nil || len(numbers) != 3 {
		t.Fatalf("after a refused replacement: %d numbers, %v", len(numbers), err)
	}
}

func TestConnectStoresCredentialsSealed(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	sid, token := w.account(0, 2)
	ctx := context.Background()
	r, err := w.connect(ctx, "  "+sid+"\n", " "+token+" ", "")
	if err != nil {
		t.Fatal(err)
	}
	wantHints := map[string]string{twilio.FieldAccountSID: sid, twilio.FieldAuthToken: "••••" + token[len(token)-4:]}
	if r.Source != integrations.SourceAccount || r.Values[twilio.FieldAuthToken] != token || fmt.Sprint(r.Hints) != fmt.Sprint(wantHints) {
		t.Errorf("resolved %+v", r)
	}
	stored, err := w.svc.Connection(ctx, w.user.AccountID)
	if err != nil || stored.Source != integrations.SourceAccount || stored.Values[twilio.FieldAuthToken] != token {
		t.Fatalf("stored %+v %v", stored, err)
	}
	row, err := w.db.Credentials(ctx, w.user.AccountID, twilio.Name)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(row.Sealed, []byte(token)) || fmt.Sprint(row.Hints) != fmt.Sprint(wantHints) {
		t.Errorf("row: sealed holds the token or hints %v", row.Hints)
	}
	if h := w.health(t); h.LastOKAt == nil {
		t.Error("a successful connect was not recorded")
	}

	// The database files, WAL included, never hold the token's bytes.
	if err := w.db.Close(); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(w.dbPath + "*")
	if len(files) == 0 {
		t.Fatal("no database files")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(token)) {
			t.Errorf("%s contains the auth token", filepath.Base(f))
		}
	}
	if strings.Contains(w.logs.String(), token) {
		t.Error("the logs contain the auth token")
	}
}

// Replacing the credentials: the next calls use the new ones, and the pool
// holds no client for the old ones.
func TestReplacingCredentials(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	sid0, _ := w.connected(t, 3)
	if _, err := w.numbers(ctx); err != nil {
		t.Fatal(err)
	}
	hitsMisses := func() (float64, float64) {
		return w.metric(t, "ava_twilio_client_cache_hits_total", nil), w.metric(t, "ava_twilio_client_cache_misses_total", nil)
	}
	if hits, misses := hitsMisses(); hits != 1 || misses != 1 {
		t.Errorf("hits %v misses %v: want the probe's client reused by the next call", hits, misses)
	}

	steps := []struct {
		name    string
		connect func() (sid, secret, keySID string)
		user    string
		numbers int
	}{
		{"same account, rotated token", func() (string, string, string) {
			token := twiliotest.AuthToken(50)
			w.fake.AddAccount(sid0, token, 4) // rotated at Twilio: the old token is refused from now on
			return sid0, token, ""
		}, sid0, 4},
		{"another account", func() (string, string, string) {
			sid, token := w.account(1, 2)
			return sid, token, ""
		}, twiliotest.AccountSID(1), 2},
		{"an API key", func() (string, string, string) {
			secret := "keysecret" + strings.Repeat("K", 23)
			w.fake.AddAPIKey(twiliotest.AccountSID(1), apiKeySID, secret)
			return twiliotest.AccountSID(1), secret, apiKeySID
		}, apiKeySID, 2},
	}
	for _, s := range steps {
		sid, secret, keySID := s.connect()
		if _, err := w.connect(ctx, sid, secret, keySID); err != nil {
			t.Fatalf("%s: connect: %v", s.name, err)
		}
		if w.pool.Len() != 1 {
			t.Errorf("%s: the pool holds %d clients, want only the new credentials'", s.name, w.pool.Len())
		}
		w.fake.ResetRequests()
		numbers, err := w.numbers(ctx)
		if err != nil || len(numbers) != s.numbers {
			t.Fatalf("%s: %d numbers, %v; want %d", s.name, len(numbers), err, s.numbers)
		}
		reqs := w.fake.Requests()
		if len(reqs) != 1 || reqs[0].Username != s.user || !strings.Contains(reqs[0].Path, "/Accounts/"+sid+"/") {
			t.Errorf("%s: requests %+v, want one as %s", s.name, reqs, s.user)
		}
	}
}

func TestEnvironmentCredentials(t *testing.T) {
	t.Parallel()
	envSID, envToken := twiliotest.AccountSID(3), twiliotest.AuthToken(3)
	w := newWorld(t, withEnv(envSID, envToken))
	w.fake.AddAccount(envSID, envToken, 2)
	ctx := context.Background()
	r, err := w.svc.Connection(ctx, w.user.AccountID)
	if err != nil || r.Source != integrations.SourceEnvironment {
		t.Fatalf("source %q %v, want environment", r.Source, err)
	}
	if r.Hints[twilio.FieldAccountSID] != envSID || r.Hints[twilio.FieldAuthToken] != "••••"+envToken[len(envToken)-4:] {
		t.Errorf("hints %v", r.Hints)
	}
	numbers, err := w.numbers(ctx)
	if err != nil || len(numbers) != 2 {
		t.Fatalf("%d numbers, %v", len(numbers), err)
	}
	if reqs := w.fake.Requests(); reqs[0].Username != envSID {
		t.Errorf("username %q, want the environment's SID", reqs[0].Username)
	}
	if msg, err := w.test(ctx); err != nil || msg != "Connected: Twilio lists 2 phone number(s) on this account." {
		t.Errorf("Test: %q %v", msg, err)
	}

	// The account's own credentials take over.
	sid, token := w.account(0, 5)
	if _, err := w.connect(ctx, sid, token, ""); err != nil {
		t.Fatal(err)
	}
	if r, _ := w.svc.Connection(ctx, w.user.AccountID); r.Source != integrations.SourceAccount {
		t.Errorf("source %q after connecting, want account", r.Source)
	}
	w.fake.ResetRequests()
	if numbers, err := w.numbers(ctx); err != nil || len(numbers) != 5 || w.fake.Requests()[0].Username != sid {
		t.Errorf("after connecting: %d numbers, %v", len(numbers), err)
	}
}

// Twilio's Retry-After on a 429 reaches the user, although twilio-go drops
// response headers.
func TestRateLimitSaysWhenToRetry(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.connected(t, 5)
	w.fake.FailNext(1, twiliotest.Failure{Status: 429, Code: 20429, Message: "Too Many Requests", RetryAfter: "7"})
	_, err := w.numbers(context.Background())
	wantCode(t, err, services.ERATELIMIT,
		"Twilio is rate limiting us (20429: Too Many Requests (https://www.twilio.com/docs/errors/20429)). Try again in 7 seconds.")
	var e *services.Error
	if !errors.As(err, &e) || e.RetryAfter != 7*time.Second {
		t.Fatalf("RetryAfter of %v", err)
	}
	// The rewritten answer still reads as Twilio's: the next call works.
	if n, err := w.numbers(context.Background()); err != nil || len(n) != 5 {
		t.Fatalf("after the rate limit: %d numbers, %v", len(n), err)
	}
}

// An account without credentials lists the built-in stub's numbers only in
// development with the flag on; the stub never reaches Twilio nor the pool
// of real clients.
func TestStubNumbers(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		stubs integrations.StubPolicy
	}{
		{"development with the flag", integrations.StubsAllowed},
		{"production with the flag", integrations.StubsRefused},
		{"flag off", integrations.StubsOff},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, withStubs(tt.stubs))
			ctx := context.Background()
			numbers, err := w.numbers(ctx)
			msg, testErr := w.test(ctx)
			switch tt.stubs {
			case integrations.StubsAllowed:
				if err != nil || len(numbers) != 3 || numbers[0].FriendlyName != "Stub front desk" {
					t.Fatalf("stub numbers %+v %v", numbers, err)
				}
				if testErr != nil || msg != "Connected: Twilio lists 3 phone number(s) on this account." {
					t.Fatalf("Test through the stub: %q %v", msg, testErr)
				}
				if r, _ := w.svc.Connection(ctx, w.user.AccountID); r.Source != integrations.SourceStub || r.Values[twilio.FieldAccountSID] != twiliotest.StubAccountSID {
					t.Errorf("connection %+v", r)
				}
			case integrations.StubsRefused:
				for _, err := range []error{err, testErr} {
					e := wantCode(t, err, services.EFORBIDDEN, "")
					if e.Message != "Stub integrations are disabled in production: connect Twilio on the Integrations page." {
						t.Errorf("refusal %q", e.Message)
					}
				}
			default:
				if !integrations.IsNotConnected(err) || !integrations.IsNotConnected(testErr) {
					t.Fatalf("flag off: %v / %v, want not connected", err, testErr)
				}
			}
			if n := len(w.fake.Requests()); n != 0 || w.pool.Len() != 0 {
				t.Errorf("%d requests reached the fake Twilio, pool %d: want none", n, w.pool.Len())
			}
		})
	}
}

// Disconnecting drops the account's pooled client; the environment's
// credentials take over again, and there is nothing left to disconnect.
func TestDisconnect(t *testing.T) {
	t.Parallel()
	envSID, envToken := twiliotest.AccountSID(3), twiliotest.AuthToken(3)
	w := newWorld(t, withEnv(envSID, envToken))
	w.fake.AddAccount(envSID, envToken, 2)
	ctx := context.Background()
	w.connected(t, 4)
	if numbers, err := w.numbers(ctx); err != nil || len(numbers) != 4 {
		t.Fatalf("%d numbers, %v", len(numbers), err)
	}
	if w.pool.Len() != 1 {
		t.Fatalf("pool %d, want the account's client", w.pool.Len())
	}
	if err := w.registry.Disconnect(ctx, w.user.AccountID, twilio.Name); err != nil {
		t.Fatal(err)
	}
	if w.pool.Len() != 0 {
		t.Errorf("the pool kept %d clients after disconnecting", w.pool.Len())
	}
	if r, _ := w.svc.Connection(ctx, w.user.AccountID); r.Source != integrations.SourceEnvironment {
		t.Errorf("source %q after disconnecting, want environment", r.Source)
	}
	w.fake.ResetRequests()
	if numbers, err := w.numbers(ctx); err != nil || len(numbers) != 2 || w.fake.Requests()[0].Username != envSID {
		t.Errorf("after disconnecting: %d numbers, %v: want the environment's", len(numbers), err)
	}
	err := w.registry.Disconnect(ctx, w.user.AccountID, twilio.Name)
	if e := wantCode(t, err, services.ENOTFOUND, ""); e.Message != "This account has no Twilio credentials of its own to remove." {
		t.Errorf("second disconnect: %q", e.Message)
	}
}

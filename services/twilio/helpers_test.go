package twilio_test

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ava/console/services/upstream/upstreamtest"

	"github.com/ava/console/services/logtest"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ava/console/services"
	"github.com/ava/console/services/integrations"
	"github.com/ava/console/services/secrets"
	"github.com/ava/console/services/sqlite"
	"github.com/ava/console/services/twilio"
	"github.com/ava/console/services/twilio/twiliotest"
	"github.com/ava/console/services/upstream"
)

// world is the Twilio service wired as in app/console/console.go (guards.Client
// ("twilio") + CheckRedirect + RewriteTransport + NewPool) against the
// wire-level fake over TCP, with real SQLite and a real sealer.
type world struct {
	fake   *twiliotest.Server
	guards *upstream.Guards
	reg    *prometheus.Registry
	pool   *twilio.Pool
	twilio *twilio.Integration
	// registry is the integration registry (reg is the metrics one).
	registry *integrations.Registry
	svc      *twilio.Service
	db       *sqlite.DB
	dbPath   string
	user     services.User
	logs     *logtest.Buffer
	// dials counts the TCP connections the fake accepted.
	dials atomic.Int64
}

type worldOptions struct {
	upstream upstream.Settings
	env      [2]string
	stubs    integrations.StubPolicy
}

type option func(*worldOptions)

// withEnv sets TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN.
func withEnv(sid, token string) option {
	return func(o *worldOptions) { o.env = [2]string{sid, token} }
}

// withStubs sets what INTEGRATIONS_STUB_MODE means (StubsOff by default).
func withStubs(p integrations.StubPolicy) option {
	return func(o *worldOptions) { o.stubs = p }
}

func withSettings(f func(*upstream.Settings)) option {
	return func(o *worldOptions) { f(&o.upstream) }
}

func newWorld(t *testing.T, opts ...option) *world {
	t.Helper()
	o := worldOptions{upstream: upstream.Settings{
		Timeout: 5 * time.Second, FailureThreshold: 3, RecoveryTimeout: time.Minute, SuccessThreshold: 2,
	}}
	for _, f := range opts {
		f(&o)
	}
	ctx := context.Background()
	w := &world{fake: twiliotest.New(), logs: &logtest.Buffer{}, reg: prometheus.NewRegistry()}
	srv := httptest.NewUnstartedServer(w.fake)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			w.dials.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)

	log := services.NewLogger(w.logs, slog.LevelDebug, "json")
	var err error
	if w.guards, err = upstream.NewGuards(o.upstream, log, w.reg); err != nil {
		t.Fatal(err)
	}
	hc := w.guards.Client(twilio.Name)
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if hc.Transport, err = twilio.NewRewriteTransport(hc.Transport, srv.URL); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hc.CloseIdleConnections)
	if w.pool, err = twilio.NewPool(twilio.PoolSize, hc, w.reg); err != nil {
		t.Fatal(err)
	}

	w.dbPath = filepath.Join(t.TempDir(), "ava.db")
	if w.db, err = sqlite.Open(ctx, w.dbPath); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.db.Close() })
	if w.user, err = w.db.CreateUser(ctx, "owner@example.com", "hash", true); err != nil {
		t.Fatal(err)
	}
	sealer, err := secrets.NewSealer(bytes.Repeat([]byte{9}, 32))
	if err != nil {
		t.Fatal(err)
	}
	if w.twilio, err = twilio.NewIntegration(w.pool, o.env[0], o.env[1], o.upstream.Timeout); err != nil {
		t.Fatal(err)
	}
	if w.registry, err = integrations.NewRegistry(w.db, sealer, integrations.Options{
		Stubs:    o.stubs,
		Breakers: func(n string) string { return w.guards.Breaker(n).State() },
		Log:      log,
	}, w.twilio); err != nil {
		t.Fatal(err)
	}
	w.svc = twilio.NewService(w.twilio, w.registry)
	return w
}

// connect connects the owner's account to Twilio through the registry, as
// the Integrations page does (keySID empty: the Auth Token).
func (w *world) connect(ctx context.Context, sid, secret, keySID string) (integrations.Resolved, error) {
	return w.registry.Connect(ctx, w.user.AccountID, twilio.Name, integrations.Values{
		twilio.FieldAccountSID: sid, twilio.FieldAuthToken: secret, twilio.FieldAPIKeySID: keySID,
	})
}

// test is "Test connection" for the owner's account.
func (w *world) test(ctx context.Context) (string, error) {
	return w.registry.Test(ctx, w.user.AccountID, twilio.Name)
}

// health is what the store remembers of the owner's last Twilio calls.
func (w *world) health(t *testing.T) services.IntegrationHealth {
	t.Helper()
	h, err := w.db.IntegrationHealth(context.Background(), w.user.AccountID, twilio.Name)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// account creates fake account i with n numbers and returns its credentials.
func (w *world) account(i, n int) (sid, token string) {
	sid, token = twiliotest.AccountSID(i), twiliotest.AuthToken(i)
	w.fake.AddAccount(sid, token, n)
	return sid, token
}

// connected creates fake account 0 with n numbers, stores its credentials
// through Connect, and forgets the requests that took.
func (w *world) connected(t *testing.T, n int) (sid, token string) {
	t.Helper()
	sid, token = w.account(0, n)
	if _, err := w.connect(context.Background(), sid, token, ""); err != nil {
		t.Fatalf("connect: %v", err)
	}
	w.fake.ResetRequests()
	return sid, token
}

func (w *world) breaker() string { return w.guards.Breaker(twilio.Name).State() }

func (w *world) numbers(ctx context.Context) ([]twilio.Number, error) {
	return w.svc.Numbers(ctx, w.user.AccountID)
}

// metric returns a counter's value with the given labels (0 when absent).
func (w *world) metric(t *testing.T, family string, labels map[string]string) float64 {
	t.Helper()
	v, _, err := upstreamtest.Metric(w.reg, family, labels)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (w *world) outcome(t *testing.T, outcome string) float64 {
	t.Helper()
	return w.metric(t, "ava_upstream_requests_total", map[string]string{"upstream": "twilio", "outcome": outcome})
}

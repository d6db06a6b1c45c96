package vapi_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ava/console/services/logtest"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ava/console/services"
	"github.com/ava/console/services/integrations"
	"github.com/ava/console/services/secrets"
	"github.com/ava/console/services/sqlite"
	"github.com/ava/console/services/upstream"
	"github.com/ava/console/services/vapi"
	"github.com/ava/console/services/vapi/vapitest"
)

const (
	testKey       = "sk-vapi-private-Q7x2Lm9Pz4Rt-abcd"
	testAssistant = "asst-5b9c"
)

// world is the Vapi service wired as in app/console/console.go: the real guarded
// client over the wire-level fake, real SQLite, a real sealer.
type world struct {
	fake     *vapitest.Server
	url      string
	guards   *upstream.Guards
	client   *vapi.Client
	vapi     *vapi.Integration
	registry *integrations.Registry
	svc      *vapi.Service
	db       *sqlite.DB
	dbPath   string
	user     services.User
	logs     *logtest.Buffer
	breaker  func() string
	// beforeFake, when set, runs before the fake serves each request (it
	// may queue a failure for that very request).
	mu         sync.Mutex
	beforeFake func(r *http.Request)
}

type worldOptions struct {
	upstream upstream.Settings
	env      [2]string
	stubs    integrations.StubPolicy
}

type option func(*worldOptions)

func withEnv(key, assistantID string) option {
	return func(o *worldOptions) { o.env = [2]string{key, assistantID} }
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
	w := &world{fake: vapitest.New(), logs: &logtest.Buffer{}}
	w.fake.AddKey(testKey)
	w.fake.PutAssistant(vapitest.DefaultAssistant(testAssistant))
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.mu.Lock()
		before := w.beforeFake
		w.mu.Unlock()
		if before != nil {
			before(r)
		}
		w.fake.ServeHTTP(rw, r)
	}))
	t.Cleanup(srv.Close)
	w.url = srv.URL

	log := services.NewLogger(w.logs, slog.LevelDebug, "json")
	var err error
	if w.guards, err = upstream.NewGuards(o.upstream, log, prometheus.NewRegistry()); err != nil {
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
	w.client = vapi.NewClient(srv.URL, w.guards.Client(vapi.Name))
	w.vapi = vapi.NewIntegration(w.client, o.env[0], o.env[1], o.upstream.Timeout)
	if w.registry, err = integrations.NewRegistry(w.db, sealer, integrations.Options{
		Stubs:    o.stubs,
		Breakers: func(n string) string { return w.guards.Breaker(n).State() },
		Log:      log,
	}, w.vapi); err != nil {
		t.Fatal(err)
	}
	w.svc = vapi.NewService(w.vapi, w.registry, w.db)
	w.breaker = func() string { return w.guards.Breaker(vapi.Name).State() }
	return w
}

// connect connects the owner's account to Vapi with these credentials
// through the registry, as the Integrations page does.
func (w *world) connect(ctx context.Context, key, assistantID string) (integrations.Resolved, error) {
	return w.registry.Connect(ctx, w.user.AccountID, vapi.Name, integrations.Values{vapi.FieldAPIKey: key, vapi.FieldAssistantID: assistantID})
}

// test is "Test connection" for the owner's account.
func (w *world) test(ctx context.Context) (string, error) {
	return w.registry.Test(ctx, w.user.AccountID, vapi.Name)
}

// health is what the store remembers of the owner's last Vapi calls.
func (w *world) health(t *testing.T) services.IntegrationHealth {
	t.Helper()
	h, err := w.db.IntegrationHealth(context.Background(), w.user.AccountID, vapi.Name)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func (w *world) setBeforeFake(f func(r *http.Request)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.beforeFake = f
}

// connected stores the account's credentials through Connect, then forgets
// the requests that took.
func (w *world) connected(t *testing.T) {
	t.Helper()
	if _, err := w.connect(context.Background(), testKey, testAssistant); err != nil {
		t.Fatalf("connect: %v", err)
	}
	w.fake.ResetRequests()
}

// requests returns the fake's requests with the given method ("" = all).
func (w *world) requests(method string) []vapitest.Request {
	var out []vapitest.Request
	for _, r := range w.fake.Requests() {
		if method == "" || r.Method == method {
			out = append(out, r)
		}
	}
	return out
}

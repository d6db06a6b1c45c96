package e2e

// Several instances: two console processes on one PostgreSQL database and one Redis, as
// behind a load balancer. Each test gets a database of its own (ava_e2e_<random> on the
// machine's PostgreSQL, dropped at the end) and a Redis key prefix of its own.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/playwright-community/playwright-go"
	"github.com/redis/go-redis/v9"
)

// postgresTestURL is the PostgreSQL the tests use (POSTGRES_TEST_URL, by default the
// machine's). It runs on every development and CI machine of this project.
func postgresTestURL() string {
	if u := os.Getenv("POSTGRES_TEST_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// redisTestURL is the Redis the tests use (REDIS_TEST_URL, by default the machine's).
func redisTestURL() string {
	if u := os.Getenv("REDIS_TEST_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

// freshDatabase creates an empty database for the test and returns its URL; it is dropped
// when the test ends (after the consoles, whose cleanups were registered later, stopped).
func freshDatabase(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, postgresTestURL())
	if err != nil {
		t.Fatalf("PostgreSQL does not answer at POSTGRES_TEST_URL or 127.0.0.1:5432 (see README): %v", err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "ava_e2e_" + hex.EncodeToString(b)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		_ = admin.Close(ctx)
		t.Fatal(err)
	}
	_ = admin.Close(ctx)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		admin, err := pgx.Connect(ctx, postgresTestURL())
		if err != nil {
			t.Errorf("drop database %s: %v", name, err)
			return
		}
		defer func() { _ = admin.Close(ctx) }()
		if _, err := admin.Exec(ctx, "DROP DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(postgresTestURL())
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// redisPrefix returns a key prefix of the test's own (REDIS_KEY_PREFIX) in the shared Redis,
// whose keys are deleted when the test ends. Nothing else of Redis is touched.
func redisPrefix(t *testing.T) string {
	t.Helper()
	opts, err := redis.ParseURL(redisTestURL())
	if err != nil {
		t.Fatal(err)
	}
	client := redis.NewClient(opts)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		_ = client.Close()
		t.Fatalf("Redis does not answer at REDIS_TEST_URL or 127.0.0.1:6379 (see README): %v", err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	prefix := "ava-e2e-" + hex.EncodeToString(b) + ":"
	t.Cleanup(func() {
		defer func() { _ = client.Close() }()
		ctx := context.Background()
		iter := client.Scan(ctx, 0, "*"+prefix+"*", 100).Iterator()
		for iter.Next(ctx) {
			client.Del(ctx, iter.Val())
		}
	})
	return prefix
}

// instance is one console process of a group sharing a database, which a test may restart.
type instance struct {
	name string
	c    *console
	env  map[string]string
	port int
}

// startInstances launches one console process per name at the same moment, all with env
// (each in its own folder, on its own port), and waits until every one is ready. Each is
// stopped (SIGTERM, exit 0) when the test ends.
func startInstances(t *testing.T, env map[string]string, names ...string) []*instance {
	t.Helper()
	out := make([]*instance, len(names))
	for i, name := range names {
		out[i] = &instance{name: name, env: env, port: freePort(t)}
		c, err := launch(t.TempDir(), env, out[i].port)
		if err != nil {
			t.Fatal(err)
		}
		out[i].c = c
	}
	for _, in := range out {
		if err := in.c.waitReady(); err != nil {
			logs := in.c.logs()
			in.c.kill()
			t.Fatalf("instance %s did not become ready: %v\n--- last %d log lines ---\n%s", in.name, err, failureLogLines, tail(logs, failureLogLines))
		}
		t.Cleanup(func() { in.c.stop(t) })
	}
	return out
}

// restart stops the instance (SIGTERM; it must exit 0) and starts it again with the same
// folder, port and environment, waiting until it is ready.
func (in *instance) restart(t *testing.T) {
	t.Helper()
	in.c.restart(t, func() {}) // the cleanup stops whichever process is current
}

// requestLogged reports whether the instance's log has an access-log line for route with
// that status.
func (in *instance) requestLogged(route string, status int) bool {
	return logLineWith(in.c, `"msg":"request"`, `"route":"`+route+`"`, `"status":`+strconv.Itoa(status)) != ""
}

// sharedInstances starts instances A and B on one fresh PostgreSQL database and one Redis
// prefix, with one secret key and the same fake Vapi in their environment, and returns
// them with the database's URL.
func sharedInstances(t *testing.T) (instances []*instance, dsn string) {
	t.Helper()
	dsn = freshDatabase(t)
	prefix := redisPrefix(t)
	fake := newFakeVapi()
	vapi := httptest.NewServer(fake)
	t.Cleanup(vapi.Close)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	cfg := &consoleConfig{env: map[string]string{
		"AVA_ENV":                "development",
		"AVA_SECRET_KEY":         base64.StdEncoding.EncodeToString(key), // one key for both
		"DATABASE_URL":           dsn,
		"REDIS_URL":              redisTestURL(),
		"REDIS_KEY_PREFIX":       prefix,
		"LOG_FORMAT":             "json",
		"LOG_LEVEL":              "debug",
		"INTEGRATIONS_STUB_MODE": "false",
		"VAPI_BASE_URL":          vapi.URL,
	}}
	withVapiEnv()(t, cfg)
	for _, v := range upstreamVars {
		if _, ok := cfg.env[v]; !ok {
			withUpstream(v, unexpectedUpstream(t, v))(t, cfg)
		}
	}
	return startInstances(t, cfg.env, "A", "B"), dsn
}

// TestSeveralInstances: two instances on one PostgreSQL database and one Redis, started at
// the same moment, both migrate and become ready; what one instance issues (a session, a
// form's CSRF token, signed in or out) the other accepts, also after a restart; and one
// account's 40 concurrent listings of the Vapi settings, split across both, get exactly the
// budget's 10, the 30 others refused with Retry-After.
func TestSeveralInstances(t *testing.T) {
	t.Parallel()
	instances, dsn := sharedInstances(t)
	a, b := instances[0], instances[1]

	// Both migrated the one database: each migration is recorded once.
	files, err := filepath.Glob(filepath.Join(repoRoot, "services", "postgres", "migrations", "*.sql"))
	if err != nil || len(files) == 0 {
		t.Fatalf("migrations: %v %v", files, err)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	var applied, distinct int
	err = conn.QueryRow(ctx, "SELECT count(*), count(DISTINCT version) FROM schema_migrations").Scan(&applied, &distinct)
	_ = conn.Close(ctx)
	if err != nil || applied != len(files) || distinct != len(files) {
		t.Fatalf("schema_migrations holds %d rows (%d versions) for %d migrations: %v", applied, distinct, len(files), err)
	}

	// A session made on A is accepted by B (cookies belong to the host, 127.0.0.1, whatever
	// the port: one browser reaches both, as through a load balancer).
	page := newPage(t)
	createOwner(t, page, a.c, ownerEmail, ownerPassword)
	open(t, page, b.c, "/")
	expectAt(t, page, b.c, "/")
	check(t, expect.Locator(getRole(page, "heading", "Home")).ToBeVisible(), "B's home page with A's session")
	if !b.requestLogged("GET /", http.StatusOK) {
		t.Errorf("B's log has no GET / answered 200")
	}

	// A form opened on A is submitted to B (the browser's request is sent on to B): B
	// accepts its CSRF token.
	open(t, page, a.c, "/tokens")
	toB := func(path string) func(playwright.Route) {
		return func(r playwright.Route) {
			if r.Request().Method() != http.MethodPost {
				_ = r.Continue()
				return
			}
			// The browser context makes the request to B, with the cookies it keeps for
			// the host (those A set), and the page gets B's answer.
			res, err := r.Fetch(playwright.RouteFetchOptions{URL: playwright.String(b.c.URL + path), MaxRedirects: playwright.Int(0)})
			if err != nil {
				t.Errorf("send %s to B: %v", path, err)
				_ = r.Abort()
				return
			}
			if err := r.Fulfill(playwright.RouteFulfillOptions{Response: res}); err != nil {
				t.Errorf("answer %s with B's response: %v", path, err)
			}
		}
	}
	check(t, page.Route(a.c.URL+"/tokens", toB("/tokens")), "send POST /tokens to B")
	fill(t, page, "Token name", "made-on-b")
	click(t, page, "button", "Create token")
	check(t, expect.Locator(page.Locator("#toasts")).ToContainText("Token created"), "token created by B from A's form")
	check(t, page.Unroute(a.c.URL+"/tokens"), "unroute")
	if !b.requestLogged("POST /tokens", http.StatusOK) || a.requestLogged("POST /tokens", http.StatusOK) {
		t.Fatalf("the form was not answered by B alone (B: %v, A: %v)",
			b.requestLogged("POST /tokens", http.StatusOK), a.requestLogged("POST /tokens", http.StatusOK))
	}

	// The signed-out form too: the sign-in page opened on A, submitted to B.
	other := newPage(t)
	open(t, other, a.c, "/login")
	check(t, other.Route(a.c.URL+"/login", toB("/login")), "send POST /login to B")
	fill(t, other, "Email", ownerEmail)
	fill(t, other, "Password", ownerPassword)
	click(t, other, "button", "Sign in")
	expectAt(t, other, a.c, "/")
	check(t, expect.Locator(getRole(other, "heading", "Home")).ToBeVisible(), "signed in by B from A's sign-in form")
	if !b.requestLogged("POST /login", http.StatusSeeOther) {
		t.Fatal("B's log has no POST /login answered 303")
	}

	// Forms opened on A before A restarts still submit after: the signed-in one (/tokens)
	// and the signed-out one (/login, its token in the ava_csrf cookie A set).
	open(t, page, a.c, "/tokens")
	third := newPage(t)
	open(t, third, a.c, "/login")
	a.restart(t)
	fill(t, page, "Token name", "after-restart")
	click(t, page, "button", "Create token")
	check(t, expect.Locator(getRole(page, "row", "").Filter(playwright.LocatorFilterOptions{HasText: "after-restart"})).ToBeVisible(),
		"token created from the form opened before the restart")
	fill(t, third, "Email", ownerEmail)
	fill(t, third, "Password", ownerPassword)
	click(t, third, "button", "Sign in")
	expectAt(t, third, a.c, "/")
	check(t, expect.Locator(getRole(third, "heading", "Home")).ToBeVisible(), "signed in with the form opened before the restart")
	if !a.requestLogged("POST /tokens", http.StatusOK) || !a.requestLogged("POST /login", http.StatusSeeOther) {
		t.Fatal("the restarted A did not answer both forms")
	}

	// 40 concurrent listings by one account, 20 on each instance: exactly the budget's 10
	// succeed, on either instance, and 30 are refused with Retry-After.
	token := newToken(t, a.c, ownerEmail, "load")
	type answer struct {
		instance                     string
		status                       int
		limit, retryAfter, remaining string
		err                          error
	}
	answers := make([]answer, 40)
	var wg sync.WaitGroup
	start := make(chan struct{})
	client := &http.Client{Timeout: pageTimeout}
	for i := range answers {
		in := instances[i%2]
		wg.Go(func() {
			<-start
			answers[i].instance = in.name
			req, err := http.NewRequest(http.MethodGet, in.c.URL+"/api/v1/vapi/settings", nil)
			if err != nil {
				answers[i].err = err
				return
			}
			req.Header.Set("Authorization", "Bearer "+token)
			res, err := client.Do(req)
			if err != nil {
				answers[i].err = err
				return
			}
			_, _ = io.Copy(io.Discard, res.Body)
			_ = res.Body.Close()
			answers[i].status = res.StatusCode
			answers[i].limit = res.Header.Get("X-RateLimit-Limit")
			answers[i].remaining = res.Header.Get("X-RateLimit-Remaining")
			answers[i].retryAfter = res.Header.Get("Retry-After")
		})
	}
	close(start)
	wg.Wait()
	counts := map[string]int{}
	for i, ans := range answers {
		if ans.err != nil {
			t.Fatalf("listing %d on %s: %v", i, ans.instance, ans.err)
		}
		counts[fmt.Sprintf("%s %d", ans.instance, ans.status)]++
		if ans.limit != "10" {
			t.Errorf("listing %d on %s: X-RateLimit-Limit %q, want 10", i, ans.instance, ans.limit)
		}
		switch ans.status {
		case http.StatusOK:
		case http.StatusTooManyRequests:
			if s, err := strconv.Atoi(ans.retryAfter); err != nil || s < 1 || s > 60 || ans.remaining != "0" {
				t.Errorf("refusal %d on %s: Retry-After %q, X-RateLimit-Remaining %q", i, ans.instance, ans.retryAfter, ans.remaining)
			}
		default:
			t.Errorf("listing %d on %s: status %d", i, ans.instance, ans.status)
		}
	}
	ok := counts["A 200"] + counts["B 200"]
	refused := counts["A 429"] + counts["B 429"]
	t.Logf("40 concurrent listings: %d succeeded, %d refused (%v)", ok, refused, counts)
	if ok != 10 || refused != 30 {
		t.Fatalf("%d successes and %d refusals, want exactly 10 and 30 (%v)", ok, refused, counts)
	}

	for _, in := range instances {
		if line := logLineWith(in.c, `"level":"ERROR"`); line != "" {
			t.Errorf("instance %s logged an error: %s", in.name, line)
		}
		if strings.Contains(in.c.logs(), token) {
			t.Errorf("instance %s logged the API token", in.name)
		}
	}
}

// newToken creates an API token for the user through the CLI (ava token
// create) and returns it.
func newToken(t testing.TB, c *console, email, name string) string {
	t.Helper()
	return lastLine(c.cli(t, "", "token", "create", "--email", email, "--name", name))
}

// lastLine is the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// TestLiveUpdatesAcrossInstances: a page served by B shows, live, a change made through A
// (the events cross through Redis), and B drops what it cached of it first.
func TestLiveUpdatesAcrossInstances(t *testing.T) {
	t.Parallel()
	instances, _ := sharedInstances(t)
	a, b := instances[0], instances[1]
	page := newPage(t)
	createOwner(t, page, a.c, ownerEmail, ownerPassword)
	token := newToken(t, a.c, ownerEmail, "script")
	open(t, page, b.c, "/vapi")
	expectSettingsList(t, page)
	liveOpen(t, page)
	markPage(t, page)

	if res := a.c.api(t, http.MethodPut, "/api/v1/vapi/settings/max_call_duration", token, map[string]any{"value": 1500}); res.Status != http.StatusOK {
		t.Fatalf("PUT through A: %d %s", res.Status, res.Body)
	}
	check(t, expect.Locator(settingValue(page, "max_call_duration")).ToHaveText(exactly("1500 seconds"), within()), "A's change on B's page")
	check(t, expect.Locator(changesRegion(page)).ToContainText("1500"), "in Recent changes on B's page")

	// The account's own credentials saved through A: B's Integrations page shows them at
	// once, though B had cached the environment's a moment before.
	open(t, page, b.c, "/integrations")
	check(t, expect.Locator(page.Locator("#integration-vapi [data-testid=credential-source]")).ToContainText("From the server's environment"), "B: environment credentials")
	if res := a.c.api(t, http.MethodPut, "/api/v1/integrations/vapi/credentials", token, map[string]any{"api_key": vapiKey, "assistant_id": vapiAssistantID}); res.Status != http.StatusOK {
		t.Fatalf("connect through A: %d %s", res.Status, res.Body)
	}
	check(t, expect.Locator(page.Locator("#integration-vapi [data-testid=credential-source]")).ToHaveText(regexp.MustCompile(`This account's own`), within()),
		"B's card shows the account's own credentials")
	check(t, expect.Locator(getRole(page, "button", "Disconnect Vapi")).ToBeVisible(), "B's card offers Disconnect")
}

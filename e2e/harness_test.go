package e2e

// The harness: one console process per test, fake upstreams beside it, pages in fresh
// browser contexts.
//
//	c := startConsole(t, withUpstream("VAPI_BASE_URL", fakeVapi), withEnv("LOG_LEVEL", "info"))
//	page := newPage(t)                    // or newPhonePage(t)
//	createOwner(t, page, c, "owner@example.com", "correct horse battery")
//	open(t, page, c, "/tokens")
//	check(t, expect.Locator(page.GetByRole("heading", byName("API tokens"))).ToBeVisible())
//	res := c.api(t, "GET", "/api/v1/me", token, nil)
//
// Everything is cleaned up with t.Cleanup: pages are closed (with a screenshot in
// e2e/artifacts/ if the test failed), then the console gets SIGTERM and must exit 0,
// then the fake upstreams close.

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/playwright-community/playwright-go"
)

const (
	readyTimeout    = 20 * time.Second
	shutdownTimeout = 10 * time.Second
	failureLogLines = 40
)

// console is one running server process.
type console struct {
	URL     string // base URL, e.g. http://127.0.0.1:41234 (no trailing slash)
	Dir     string // the process's working directory; holds ava.db and ava.log
	env     []string
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the process has exited
	waitErr error         // set before exited is closed
}

// consoleOption changes how startConsole runs the server.
type consoleOption func(t testing.TB, cfg *consoleConfig)

type consoleConfig struct {
	env map[string]string
	// selfBaseURL sets AVA_BASE_URL to the console's own address once its port is chosen.
	selfBaseURL bool
}

// withEnv sets one environment variable of the server process (overrides the defaults).
func withEnv(key, value string) consoleOption {
	return func(_ testing.TB, cfg *consoleConfig) { cfg.env[key] = value }
}

// withSelfBaseURL sets AVA_BASE_URL to the console's own address (c.URL), which is known
// only once the harness has chosen the port: OAuth redirect URIs are made from it, and a
// browser sent back to another host ("localhost") would arrive without its session cookie.
func withSelfBaseURL() consoleOption {
	return func(_ testing.TB, cfg *consoleConfig) { cfg.selfBaseURL = true }
}

// withUpstream starts an httptest.Server serving h, points envVar (e.g. "VAPI_BASE_URL")
// at it, and closes it when the test ends (after the console has stopped).
func withUpstream(envVar string, h http.Handler) consoleOption {
	return func(t testing.TB, cfg *consoleConfig) {
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		cfg.env[envVar] = srv.URL
	}
}

// upstreamVars are the base URLs of every outside service. startConsole points each one that
// no withUpstream option set at a guard server that fails the test if it is called, so a test
// never reaches a real provider by accident.
var upstreamVars = []string{"VAPI_BASE_URL", "TWILIO_BASE_URL", "RESEND_BASE_URL", "GOOGLE_CALENDAR_BASE_URL"}

func unexpectedUpstream(t testing.TB, envVar string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("unexpected upstream call to %s: %s %s (fake it with withUpstream(%q, handler))", envVar, r.Method, r.URL, envVar)
		http.Error(w, `{"error":"unexpected call in e2e test"}`, http.StatusInternalServerError)
	})
}

// startConsole builds nothing (TestMain built the binary): it starts the server in its own
// temp folder with a clean environment, waits for GET /readyz to answer 200 and registers
// the graceful-shutdown check. The server's stdout and stderr go to c.Dir/ava.log.
func startConsole(t testing.TB, opts ...consoleOption) *console {
	t.Helper()
	dir := t.TempDir()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	cfg := &consoleConfig{env: map[string]string{
		"AVA_ENV":                "development",
		"DATABASE_URL":           "sqlite:" + filepath.Join(dir, "ava.db"),
		"AVA_SECRET_KEY":         base64.StdEncoding.EncodeToString(key),
		"LOG_FORMAT":             "json",
		"LOG_LEVEL":              "debug",
		"INTEGRATIONS_STUB_MODE": "false",
	}}
	for _, opt := range opts {
		opt(t, cfg)
	}
	for _, v := range upstreamVars {
		if _, ok := cfg.env[v]; !ok {
			withUpstream(v, unexpectedUpstream(t, v))(t, cfg)
		}
	}
	if _, ok := cfg.env["PORT"]; ok {
		t.Fatal("startConsole: PORT is chosen by the harness")
	}
	if _, ok := cfg.env["AVA_BASE_URL"]; ok && cfg.selfBaseURL {
		t.Fatal("startConsole: AVA_BASE_URL is set twice (withEnv and withSelfBaseURL)")
	}

	// A free port can be taken between our probe and the server's bind: retry that case.
	for attempt := 1; ; attempt++ {
		port := freePort(t)
		if cfg.selfBaseURL {
			cfg.env["AVA_BASE_URL"] = consoleURL(port)
		}
		c, err := launch(dir, cfg.env, port)
		if err != nil {
			t.Fatal(err)
		}
		err = c.waitReady()
		if err == nil {
			t.Cleanup(func() { c.stop(t) })
			return c
		}
		logs := c.logs()
		c.kill()
		if attempt < 3 && strings.Contains(logs, "address already in use") {
			continue
		}
		t.Fatalf("console did not become ready: %v\n--- last %d log lines ---\n%s", err, failureLogLines, tail(logs, failureLogLines))
	}
}

func launch(dir string, env map[string]string, port int) (*console, error) {
	logPath := filepath.Join(dir, "ava.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer func() { _ = logFile.Close() }() // the child keeps its own descriptor

	c := &console{
		URL:     consoleURL(port),
		Dir:     dir,
		logPath: logPath,
		exited:  make(chan struct{}),
	}
	// A clean environment: nothing from the parent but PATH, HOME and TMPDIR, so a
	// developer's AVA_*, VAPI_*, TWILIO_*, DATABASE_URL, REDIS_URL... never leak in.
	for _, k := range []string{"PATH", "HOME", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			c.env = append(c.env, k+"="+v)
		}
	}
	for k, v := range env {
		c.env = append(c.env, k+"="+v)
	}
	c.env = append(c.env, "PORT="+strconv.Itoa(port))

	c.cmd = exec.Command(serverBinary, "serve")
	c.cmd.Dir = dir
	c.cmd.Env = c.env
	c.cmd.Stdout = logFile
	c.cmd.Stderr = logFile
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", serverBinary, err)
	}
	go func() {
		c.waitErr = c.cmd.Wait()
		close(c.exited)
	}()
	return c, nil
}

// consoleURL is the base URL of a console listening on port.
func consoleURL(port int) string { return "http://127.0.0.1:" + strconv.Itoa(port) }

func (c *console) waitReady() error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(readyTimeout)
	lastErr := errors.New("no answer yet")
	for time.Now().Before(deadline) {
		select {
		case <-c.exited:
			return fmt.Errorf("server process exited before it was ready: %w", c.waitErr)
		default:
		}
		res, err := client.Get(c.URL + "/readyz")
		if err == nil {
			_ = res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET /readyz answered %s", res.Status)
		}
		lastErr = err
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("not ready after %s: %w", readyTimeout, lastErr)
}

// stop sends SIGTERM and requires a clean exit (status 0) within shutdownTimeout.
// If the test failed, it logs the last lines of the server log.
func (c *console) stop(t testing.TB) {
	t.Helper()
	select {
	case <-c.exited:
		t.Errorf("console exited before the end of the test: %v", c.waitErr)
	default:
		if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Errorf("send SIGTERM to console: %v", err)
		}
		select {
		case <-c.exited:
			if c.waitErr != nil {
				t.Errorf("console did not shut down cleanly after SIGTERM: %v", c.waitErr)
			}
		case <-time.After(shutdownTimeout):
			t.Errorf("console did not exit within %s of SIGTERM; killed it. Its goroutines:\n%s", shutdownTimeout, c.hung())
		}
	}
	if t.Failed() {
		t.Logf("last %d lines of the console log (%s):\n%s", failureLogLines, c.logPath, tail(c.logs(), failureLogLines))
	}
}

func (c *console) kill() {
	_ = c.cmd.Process.Kill()
	<-c.exited
}

// hung ends a console that did not exit after SIGTERM: SIGQUIT first, so that the Go
// runtime writes every goroutine's stack to the log (where it stands is the bug), then
// SIGKILL. It returns those stacks.
func (c *console) hung() string {
	before := len(c.logs())
	_ = c.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-c.exited:
	case <-time.After(2 * time.Second):
		c.kill()
	}
	logs := c.logs()
	if len(logs) < before {
		return ""
	}
	return logs[before:]
}

// logs returns everything the server has written so far (JSON lines with LOG_FORMAT=json).
func (c *console) logs() string {
	b, err := os.ReadFile(c.logPath)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", c.logPath, err)
	}
	return string(b)
}

// cli runs the server binary with the console's environment and folder, e.g.
// c.cli(t, "secret\n", "user", "create", "--email", e, "--password-stdin"), and returns stdout.
// It fails the test on a non-zero exit.
func (c *console) cli(t testing.TB, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(serverBinary, args...)
	cmd.Dir = c.Dir
	cmd.Env = c.env
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("ava %s: %v\nstderr: %s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// apiResult is one answer of c.api.
type apiResult struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into a map, failing the test if it is not a JSON object.
func (r apiResult) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v\n%s", err, r.Body)
	}
	return m
}

// api calls the console with Go's net/http. token (if not "") goes in
// "Authorization: Bearer"; body (if not nil) is sent as JSON. Extra headers may be given
// as key, value pairs.
func (c *console) api(t testing.TB, method, path, token string, body any, headers ...string) apiResult {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	client := &http.Client{Timeout: pageTimeout}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer func() { _ = res.Body.Close() }()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return apiResult{Status: res.StatusCode, Header: res.Header, Body: b}
}

// newPage opens a page in a fresh browser context (own cookies), 1280x800.
func newPage(t testing.TB) playwright.Page {
	t.Helper()
	return openPage(t, playwright.BrowserNewContextOptions{
		Viewport: &playwright.Size{Width: 1280, Height: 800},
	})
}

// newPhonePage opens a page in a fresh browser context at phone size, 390x844, with touch.
func newPhonePage(t testing.TB) playwright.Page {
	t.Helper()
	return openPage(t, playwright.BrowserNewContextOptions{
		Viewport: &playwright.Size{Width: 390, Height: 844},
		IsMobile: playwright.Bool(true),
		HasTouch: playwright.Bool(true),
	})
}

func openPage(t testing.TB, opts playwright.BrowserNewContextOptions) playwright.Page {
	t.Helper()
	ctx, err := browser.NewContext(opts)
	if err != nil {
		t.Fatalf("new browser context: %v", err)
	}
	ms := float64(pageTimeout.Milliseconds())
	ctx.SetDefaultTimeout(ms)
	ctx.SetDefaultNavigationTimeout(ms)
	page, err := ctx.NewPage()
	if err != nil {
		_ = ctx.Close()
		t.Fatalf("new page: %v", err)
	}

	// Keep what the browser complains about; print it if the test fails.
	var mu sync.Mutex
	var problems []string
	note := func(s string) {
		mu.Lock()
		problems = append(problems, s)
		mu.Unlock()
	}
	page.OnConsole(func(m playwright.ConsoleMessage) {
		if m.Type() == "error" || m.Type() == "warning" {
			note(m.Type() + ": " + m.Text())
		}
	})
	page.OnPageError(func(err error) { note("page error: " + err.Error()) })

	t.Cleanup(func() {
		if t.Failed() {
			saveScreenshot(t, page)
			mu.Lock()
			if len(problems) > 0 {
				t.Logf("browser console of the page (%s):\n%s", page.URL(), strings.Join(problems, "\n"))
			}
			mu.Unlock()
		}
		_ = ctx.Close()
	})
	return page
}

var (
	unsafeName = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)
	shotsMu    sync.Mutex
	shotsTaken = map[string]int{} // screenshots per test name in this run
)

// saveScreenshot writes a full-page screenshot to e2e/artifacts/<TestName>.png.
func saveScreenshot(t testing.TB, page playwright.Page) {
	t.Helper()
	dir := filepath.Join(repoRoot, "e2e", "artifacts")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Logf("screenshot: %v", err)
		return
	}
	name := unsafeName.ReplaceAllString(t.Name(), "_")
	shotsMu.Lock()
	shotsTaken[name]++
	if n := shotsTaken[name]; n > 1 { // a second page of the same test
		name += "-" + strconv.Itoa(n)
	}
	shotsMu.Unlock()
	path := filepath.Join(dir, name+".png")
	if _, err := page.Screenshot(playwright.PageScreenshotOptions{
		Path:     playwright.String(path),
		FullPage: playwright.Bool(true),
	}); err != nil {
		t.Logf("screenshot of %s failed: %v", page.URL(), err)
		return
	}
	t.Logf("screenshot of %s: %s", page.URL(), path)
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return port
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

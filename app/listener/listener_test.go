package listener_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/ava/console/app/listener"
	"github.com/ava/console/services/logtest"
)

// emfile is the error Accept returns when the process is out of file
// descriptors, as the net package wraps it.
func emfile() error {
	return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
}

// flaky is a listener whose first failures Accepts fail with err, then
// passes through to the real listener.
type flaky struct {
	net.Listener
	mu       sync.Mutex
	failures int
	err      func() error
}

func (f *flaky) Accept() (net.Conn, error) {
	f.mu.Lock()
	if f.failures > 0 {
		f.failures--
		f.mu.Unlock()
		return nil, f.err()
	}
	f.mu.Unlock()
	return f.Listener.Accept()
}

// fake is a listener that returns the queued results in order.
type fake struct {
	results chan result
	closed  chan struct{}
}

type result struct {
	c   net.Conn
	err error
}

func newFake() *fake { return &fake{results: make(chan result, 16), closed: make(chan struct{})} }

func (f *fake) Accept() (net.Conn, error) {
	select {
	case r := <-f.results:
		return r.c, r.err
	case <-f.closed:
		return nil, net.ErrClosed
	}
}
func (f *fake) Close() error   { close(f.closed); return nil }
func (f *fake) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

func warnings(t *testing.T, logs *logtest.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["level"] == "WARN" {
			out = append(out, m)
		}
	}
	return out
}

// TestAcceptRetriesEMFILE: out of descriptors, Accept waits (5 ms, 10 ms,
// 20 ms...) and tries again instead of failing; the failures make one
// warning, not one each.
func TestAcceptRetriesEMFILE(t *testing.T) {
	f := newFake()
	server, client := net.Pipe()
	defer func() { _ = client.Close() }()
	for range 4 {
		f.results <- result{err: emfile()}
	}
	f.results <- result{c: server}
	logs := &logtest.Buffer{}
	ln := listener.New(f, listener.Options{Log: slog.New(slog.NewJSONHandler(logs, nil))})

	start := time.Now()
	c, err := ln.Accept()
	if err != nil {
		t.Fatalf("Accept gave up on EMFILE: %v", err)
	}
	if c == nil {
		t.Fatal("no connection")
	}
	// 5 + 10 + 20 + 40 ms of back-off.
	if elapsed := time.Since(start); elapsed < 75*time.Millisecond {
		t.Errorf("retried without backing off: %v", elapsed)
	}
	w := warnings(t, logs)
	if len(w) != 1 || !strings.Contains(w[0]["error"].(string), "too many open files") {
		t.Fatalf("want one warning naming the error, got %v", w)
	}
}

func TestAcceptReturnsPermanentErrors(t *testing.T) {
	f := newFake()
	ln := listener.New(f, listener.Options{})
	f.results <- result{err: errors.New("accept: invalid argument")}
	if _, err := ln.Accept(); err == nil {
		t.Fatal("a permanent error was swallowed")
	}
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

func TestCloseEndsTheBackOff(t *testing.T) {
	f := newFake()
	ln := listener.New(f, listener.Options{})
	for range 16 {
		f.results <- result{err: emfile()}
	}
	done := make(chan error, 1)
	go func() { _, err := ln.Accept(); done <- err }()
	time.Sleep(50 * time.Millisecond)
	_ = ln.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Accept returned a connection after Close")
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Accept still waiting after Close")
	}
}

func TestTemporary(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{emfile(), true},
		{&net.OpError{Op: "accept", Err: os.NewSyscallError("accept4", syscall.ENFILE)}, true},
		{&net.OpError{Op: "accept", Err: os.NewSyscallError("accept4", syscall.ECONNABORTED)}, true},
		{&net.OpError{Op: "accept", Err: os.NewSyscallError("accept4", syscall.ENOBUFS)}, true},
		{net.ErrClosed, false},
		{&net.OpError{Op: "accept", Err: os.NewSyscallError("accept4", syscall.EBADF)}, false},
		{io.EOF, false},
	} {
		if got := listener.Temporary(tc.err); got != tc.want {
			t.Errorf("Temporary(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// TestServeSurvivesEMFILE: fiber (fasthttp) serving through the listener
// keeps serving after accept errors that end a bare Serve.
func TestServeSurvivesEMFILE(t *testing.T) {
	newApp := func() *fiber.App {
		app := fiber.New(fiber.Config{DisableStartupMessage: true})
		app.Get("/healthz", func(c *fiber.Ctx) error { return c.SendString("ok") })
		return app
	}
	tcpListen := func() net.Listener {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		return ln
	}

	// Without the listener: fasthttp's Serve returns on the first EMFILE.
	bare := newApp()
	served := make(chan error, 1)
	go func() { served <- bare.Listener(&flaky{Listener: tcpListen(), failures: 1, err: emfile}) }()
	select {
	case err := <-served:
		if !errors.Is(err, syscall.EMFILE) {
			t.Fatalf("bare Serve: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("bare Serve kept going: the premise of this test is gone")
	}

	// With it: Serve goes on and answers.
	app := newApp()
	tcp := tcpListen()
	ln := listener.New(&flaky{Listener: tcp, failures: 5, err: emfile}, listener.Options{MaxConnsPerIP: 10})
	served = make(chan error, 1)
	go func() { served <- app.Listener(ln) }()
	t.Cleanup(func() { _ = app.Shutdown() })

	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + tcp.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	select {
	case err := <-served:
		t.Fatalf("Serve returned: %v", err)
	default:
	}
}

// TestPerIPCap: one address may hold MaxConnsPerIP connections; the next is
// answered 429 and closed; closing one frees a place. Exempt peers have no cap.
func TestPerIPCap(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := listener.New(tcp, listener.Options{MaxConnsPerIP: 2})
	defer func() { _ = ln.Close() }()
	accepted := make(chan net.Conn, 8)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", tcp.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	var held []net.Conn
	for range 2 {
		dial()
		held = append(held, <-accepted)
	}
	over := dial()
	_ = over.SetReadDeadline(time.Now().Add(2 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(over), nil)
	if err != nil {
		t.Fatalf("the connection over the cap got no answer: %v", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("X-Correlation-ID") == "" {
		t.Fatalf("over the cap: %d %v", resp.StatusCode, resp.Header)
	}
	loopback := netip.MustParseAddr("127.0.0.1")
	if n := ln.Open(loopback); n != 2 {
		t.Fatalf("open connections %d, want 2", n)
	}
	_ = held[0].Close()
	if n := ln.Open(loopback); n != 1 {
		t.Fatalf("after a close: %d open, want 1", n)
	}
	dial()
	select {
	case <-accepted:
	case <-time.After(2 * time.Second):
		t.Fatal("a freed place was not given to the next connection")
	}

}

// TestTotalCap: over MaxConns open connections, the next is answered 503.
func TestTotalCap(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := &logtest.Buffer{}
	ln := listener.New(tcp, listener.Options{MaxConns: 2, Log: slog.New(slog.NewJSONHandler(logs, nil))})
	defer func() { _ = ln.Close() }()
	accepted := make(chan net.Conn, 8)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	var conns []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", tcp.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = c.Close() }()
		conns = append(conns, c)
	}
	for range 2 {
		s := <-accepted
		defer func() { _ = s.Close() }()
	}
	_ = conns[2].SetReadDeadline(time.Now().Add(2 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conns[2]), nil)
	if err != nil {
		t.Fatalf("the connection over the cap got no answer: %v", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("over the cap: %d %v", resp.StatusCode, resp.Header)
	}
	if w := warnings(t, logs); len(w) != 1 {
		t.Fatalf("warnings: %v", w)
	}
}

func TestExemptPeersHaveNoCap(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := listener.New(tcp, listener.Options{MaxConnsPerIP: 1, Exempt: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	defer func() { _ = ln.Close() }()
	for range 3 {
		c, err := net.Dial("tcp", tcp.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = c.Close() }()
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = s.Close() }()
	}
}

func TestLimits(t *testing.T) {
	for _, tc := range []struct {
		fds          uint64
		conns, perIP int
	}{
		{0, 256 * 1024, 100},
		{256, 128, 100},
		{100, 50, 50},
		{1 << 20, 256 * 1024, 100},
	} {
		if conns, perIP := listener.Limits(tc.fds); conns != tc.conns || perIP != tc.perIP {
			t.Errorf("Limits(%d) = %d, %d; want %d, %d", tc.fds, conns, perIP, tc.conns, tc.perIP)
		}
	}
}

// TestCloseUnused: a stopping server closes the connections that never sent a byte (a
// browser's preconnects), and keeps those that did.
func TestCloseUnused(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := listener.New(tcp, listener.Options{MaxConns: 10, MaxConnsPerIP: 10})
	defer func() { _ = ln.Close() }()
	accept := func() net.Conn {
		t.Helper()
		c, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	idle, err := net.Dial("tcp", tcp.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = idle.Close() }()
	serverIdle := accept()
	talking, err := net.Dial("tcp", tcp.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = talking.Close() }()
	serverTalking := accept()
	if _, err := talking.Write([]byte("GET / HTTP/1.1\r\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := serverTalking.Read(buf); err != nil {
		t.Fatal(err)
	}

	if n := ln.CloseUnused(time.Hour); n != 0 {
		t.Errorf("CloseUnused(1h) closed %d connections younger than that", n)
	}
	if n := ln.CloseUnused(0); n != 1 {
		t.Errorf("CloseUnused(0) closed %d connections, want the one that sent nothing", n)
	}
	if _, err := serverIdle.Read(buf); err == nil {
		t.Error("the unused connection is still open")
	}
	_ = idle.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := idle.Read(buf); err == nil {
		t.Error("the client of the unused connection was not told it closed")
	}
	if _, err := talking.Write([]byte("Host: x\r\n")); err != nil {
		t.Errorf("the used connection was closed: %v", err)
	}
	if n := ln.CloseUnused(0); n != 0 {
		t.Errorf("a second CloseUnused(0) closed %d", n)
	}
}

// TestAnswerBeforeTheRequestEnds: a server that answers a request before
// reading all of it (a 431 for headers over its limit) and closes the
// connection still gets its answer to the client, which is still sending:
// the close lingers instead of resetting the connection. The place under
// the cap is given back once the lingering ends.
func TestAnswerBeforeTheRequestEnds(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := listener.New(tcp, listener.Options{MaxConnsPerIP: 10})
	defer func() { _ = ln.Close() }()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				buf := make([]byte, 4<<10)
				_, _ = c.Read(buf)
				_, _ = io.WriteString(c, "HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 9\r\n\r\ntoo large")
				_ = c.Close()
			}()
		}
	}()
	for i := range 5 {
		req, _ := http.NewRequest(http.MethodGet, "http://"+tcp.Addr().String()+"/", nil)
		req.Header.Set("X-Padding", strings.Repeat("p", 512<<10))
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
		if err != nil {
			t.Fatalf("request %d: the answer was lost: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge || string(body) != "too large" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
	}
	loopback := netip.MustParseAddr("127.0.0.1")
	deadline := time.Now().Add(5 * time.Second)
	for ln.Open(loopback) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connection(s) still counted open after lingering", ln.Open(loopback))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

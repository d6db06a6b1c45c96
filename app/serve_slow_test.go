package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// slowTests says whether the slow tests run (AVA_SLOW_TESTS=1, as
// `go tool task test:slow` sets it).
func slowTests(t *testing.T) {
	t.Helper()
	if os.Getenv("AVA_SLOW_TESTS") != "1" {
		t.Skip("slow test: set AVA_SLOW_TESTS=1 (go tool task test:slow)")
	}
}

// TestSlowServeSurvivesFileDescriptorExhaustion starts the real binary with
// 256 file descriptors and opens 300 idle connections (from three loopback
// addresses, 100 each, so that the per-address cap alone does not save it):
// the server must stay up and answer /healthz once they are closed. Before
// the accept loop retried EMFILE, serve returned and the process exited 1.
func TestSlowServeSurvivesFileDescriptorExhaustion(t *testing.T) {
	slowTests(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "ava")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	port := freePort(t)
	var logs syncBuffer
	cmd := exec.Command("sh", "-c", `ulimit -n 256 && exec "$0" serve`, bin)
	cmd.Env = append(os.Environ(),
		"PORT="+strconv.Itoa(port),
		"AVA_ENV=development",
		"AVA_SECRET_KEY="+testKey,
		"DATABASE_URL=sqlite:"+filepath.Join(dir, "ava.db"),
		"LOG_LEVEL=info",
	)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// exited is closed when the process ends; waitErr is then its status.
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})

	base := "http://127.0.0.1:" + strconv.Itoa(port)
	healthy := func(within time.Duration) error {
		deadline := time.Now().Add(within)
		client := &http.Client{Timeout: time.Second}
		var last error
		for time.Now().Before(deadline) {
			select {
			case <-exited:
				return fmt.Errorf("the server exited: %w", waitErr)
			default:
			}
			resp, err := client.Get(base + "/healthz")
			if err == nil {
				_ = resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return nil
				}
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
			last = err
			time.Sleep(50 * time.Millisecond)
		}
		return fmt.Errorf("/healthz did not answer 200 within %v: %w", within, last)
	}
	if err := healthy(30 * time.Second); err != nil {
		t.Fatalf("start: %v\n%s", err, logs.String())
	}
	limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", cmd.Process.Pid))
	if err == nil && !strings.Contains(string(limits), "Max open files            256") {
		t.Fatalf("the descriptor limit did not take:\n%s", limits)
	}

	var conns []net.Conn
	for _, from := range []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"} {
		d := net.Dialer{Timeout: 2 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		for range 100 {
			c, err := d.DialContext(context.Background(), "tcp", "127.0.0.1:"+strconv.Itoa(port))
			if err != nil {
				t.Logf("dial from %s: %v", from, err)
				break
			}
			conns = append(conns, c)
		}
	}
	if len(conns) < 257 {
		t.Fatalf("only %d connections opened: not enough to exhaust 256 descriptors", len(conns))
	}
	// Let the server's accept loop meet them all (and run out).
	time.Sleep(time.Second)
	select {
	case <-exited:
		t.Fatalf("the server exited with %d connections open: %v\n%s", len(conns), waitErr, logs.String())
	default:
	}
	for _, c := range conns {
		_ = c.Close()
	}
	if err := healthy(10 * time.Second); err != nil {
		t.Fatalf("after closing %d connections: %v\n%s", len(conns), err, logs.String())
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().(*net.TCPAddr).Port
}

// syncBuffer is a bytes.Buffer the child process and the test may share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Package listener keeps the server's accept loop alive when the world is
// hostile: fasthttp's Serve returns on the first accept error it does not
// know as a timeout, so running out of file descriptors (EMFILE) would end
// the process. Listener retries such temporary errors with a back-off, as
// net/http does, and caps the connections open at once and those of one
// client address, so that neither all clients nor one use up the
// descriptors.
package listener

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/uuid"
)

// Back-off after a temporary accept error: 5 ms, doubling up to 1 s (net/http's).
const (
	minDelay = 5 * time.Millisecond
	maxDelay = time.Second
)

// warnEvery bounds the warnings: at most one line a second for each kind.
const warnEvery = time.Second

// Options are a Listener's limits.
type Options struct {
	// MaxConns caps the open connections; zero means no cap. A connection
	// over the cap is answered 503 and closed.
	MaxConns int
	// MaxConnsPerIP caps the open connections of one client address; zero
	// means no cap. A connection over the cap is answered 429 and closed.
	MaxConnsPerIP int
	// Exempt are the peers the cap does not apply to: trusted reverse
	// proxies carry the connections of many clients.
	Exempt []netip.Prefix
	// Log gets the warnings (retried accept errors, refused connections).
	Log *slog.Logger
}

// Listener wraps a net.Listener; see the package documentation.
type Listener struct {
	net.Listener
	opts Options

	done      chan struct{}
	closeOnce sync.Once

	mu    sync.Mutex
	total int
	open  map[netip.Addr]int
	warns map[string]*warning
	// conns are the connections admitted and not closed yet.
	conns map[*conn]struct{}
}

// warning counts what was not logged since the last line of its kind.
type warning struct {
	last   time.Time
	missed int
}

// New wraps ln.
func New(ln net.Listener, opts Options) *Listener {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	return &Listener{
		Listener: ln, opts: opts, done: make(chan struct{}),
		open: map[netip.Addr]int{}, warns: map[string]*warning{}, conns: map[*conn]struct{}{},
	}
}

// Accept waits for the next connection the caps allow. Temporary errors
// (out of file descriptors or buffers, a connection aborted before it was
// accepted) are retried after a back-off; other errors are returned.
func (l *Listener) Accept() (net.Conn, error) {
	var delay time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if !Temporary(err) {
				return nil, err
			}
			delay = nextDelay(delay)
			l.warn("accept", "accepting a connection failed; retrying",
				slog.String("error", err.Error()), slog.String("retry_in", delay.String()))
			select {
			case <-l.done:
				// Closed while waiting: the next Accept says so.
			case <-time.After(delay):
			}
			continue
		}
		delay = 0
		if conn := l.admit(c); conn != nil {
			return conn, nil
		}
	}
}

// Close stops a back-off wait and closes the listener.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// nextDelay is the wait after one more failure in a row.
func nextDelay(d time.Duration) time.Duration {
	if d == 0 {
		return minDelay
	}
	return min(2*d, maxDelay)
}

// temporaryErrnos are the accept errors worth waiting out.
var temporaryErrnos = []syscall.Errno{
	syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM,
	syscall.ECONNABORTED, syscall.ECONNRESET, syscall.EINTR, syscall.EAGAIN, syscall.EPROTO,
}

// Temporary reports whether an accept error may go away by itself.
func Temporary(err error) bool {
	if errors.Is(err, net.ErrClosed) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, e := range temporaryErrnos {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// admit counts c against the caps; over one it answers (503 over
// MaxConns, 429 over MaxConnsPerIP), closes c and returns nil.
func (l *Listener) admit(c net.Conn) net.Conn {
	ip := remoteIP(c)
	perIP := l.opts.MaxConnsPerIP > 0 && ip.IsValid() && !l.exempt(ip)
	l.mu.Lock()
	if l.opts.MaxConns > 0 && l.total >= l.opts.MaxConns {
		l.mu.Unlock()
		l.warn("total", "connection refused: the server is at its connection limit",
			slog.Int("max_conns", l.opts.MaxConns))
		refuse(c, "503 Service Unavailable", "The server is at its connection limit. Try again shortly.\n")
		return nil
	}
	if perIP && l.open[ip] >= l.opts.MaxConnsPerIP {
		l.mu.Unlock()
		l.warn("per-ip", "connection refused: too many open connections from one address",
			slog.String("remote_ip", ip.String()), slog.Int("max_conns_per_ip", l.opts.MaxConnsPerIP))
		refuse(c, "429 Too Many Requests", "Too many open connections from your address. Close some and try again.\n")
		return nil
	}
	l.total++
	if perIP {
		l.open[ip]++
	}
	wrapped := &conn{Conn: c, accepted: time.Now()}
	wrapped.release = func() { l.release(wrapped, ip, perIP) }
	l.conns[wrapped] = struct{}{}
	l.mu.Unlock()
	return wrapped
}

// CloseUnused closes the connections that have sent nothing since they
// were accepted at least olderThan ago: a browser opens some ahead of need
// (preconnect) and may never use them. The server counts them as busy
// from the start (fasthttp reads the first request with the whole read
// timeout), so a graceful stop would wait for them; a stopping server
// closes them instead. It returns how many it closed.
func (l *Listener) CloseUnused(olderThan time.Duration) int {
	cutoff := time.Now().Add(-olderThan)
	l.mu.Lock()
	var unused []*conn
	for c := range l.conns {
		if !c.used.Load() && c.accepted.Before(cutoff) {
			unused = append(unused, c)
		}
	}
	l.mu.Unlock()
	for _, c := range unused {
		c.closeNow()
	}
	return len(unused)
}

func (l *Listener) release(c *conn, ip netip.Addr, perIP bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.conns, c)
	l.total--
	if !perIP {
		return
	}
	if l.open[ip] <= 1 {
		delete(l.open, ip)
	} else {
		l.open[ip]--
	}
}

// Open returns how many connections ip holds open (tests).
func (l *Listener) Open(ip netip.Addr) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open[ip]
}

func (l *Listener) exempt(ip netip.Addr) bool {
	for _, p := range l.opts.Exempt {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// refuse answers a connection over a cap with a short answer and closes it.
func refuse(c net.Conn, status, body string) {
	_ = c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	_, _ = fmt.Fprintf(c, "HTTP/1.1 %s\r\nContent-Type: text/plain; charset=utf-8\r\n"+
		"Retry-After: 1\r\nX-Correlation-ID: %s\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s",
		status, uuid.NewString(), len(body), body)
	_ = c.Close()
}

// warn logs at most one line a second of each kind, with how many were
// left out since the previous one.
func (l *Listener) warn(kind, msg string, attrs ...slog.Attr) {
	now := time.Now()
	l.mu.Lock()
	w := l.warns[kind]
	if w == nil {
		w = &warning{}
		l.warns[kind] = w
	}
	if !w.last.IsZero() && now.Sub(w.last) < warnEvery {
		w.missed++
		l.mu.Unlock()
		return
	}
	missed := w.missed
	w.last, w.missed = now, 0
	l.mu.Unlock()
	if missed > 0 {
		attrs = append(attrs, slog.Int("repeated", missed))
	}
	l.opts.Log.LogAttrs(context.Background(), slog.LevelWarn, msg, attrs...)
}

func remoteIP(c net.Conn) netip.Addr {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		a, _ := netip.AddrFromSlice(ta.IP)
		return a.Unmap()
	}
	ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// A connection the server closes may still be receiving: the client can
// be in the middle of sending a request the server refused before reading
// it all (headers over the limit, a body too large). Closed at once with
// unread input, the socket answers with a reset, and the client may lose
// the answer already sent (it reports "connection reset" instead of the
// 431 or 413). So a connection that has read something is half-closed
// (its answer ends with FIN), and what still arrives is read and thrown
// away for at most lingerFor or lingerBytes before it is closed, as
// net/http does. A client that closes first ends this at once.
const (
	lingerFor   = 500 * time.Millisecond
	lingerBytes = 1 << 20
)

// conn gives back its place under the cap when closed, knows whether it
// has read anything, and lingers on close (above).
type conn struct {
	net.Conn
	once     sync.Once
	release  func()
	accepted time.Time
	used     atomic.Bool
	closed   atomic.Bool
}

func (c *conn) Read(b []byte) (int, error) {
	if c.closed.Load() {
		return 0, net.ErrClosed
	}
	n, err := c.Conn.Read(b)
	if n > 0 && !c.used.Load() {
		c.used.Store(true)
	}
	return n, err
}

// SetDeadline and SetReadDeadline do nothing once the connection is
// closed: the server may still be reading it when another goroutine closes
// it (an idle connection at shutdown), and must not stretch the lingering.
func (c *conn) SetDeadline(t time.Time) error {
	if c.closed.Load() {
		return net.ErrClosed
	}
	return c.Conn.SetDeadline(t)
}

func (c *conn) SetReadDeadline(t time.Time) error {
	if c.closed.Load() {
		return net.ErrClosed
	}
	return c.Conn.SetReadDeadline(t)
}

// Close half-closes a connection that has read something and lingers
// (above); one that has read nothing it closes at once.
func (c *conn) Close() error {
	err := net.ErrClosed
	c.once.Do(func() {
		c.closed.Store(true)
		cw, ok := c.Conn.(interface{ CloseWrite() error })
		if ok && c.used.Load() && cw.CloseWrite() == nil {
			err = nil
			// Also ends, within lingerFor, a read the server has under way.
			_ = c.Conn.SetReadDeadline(time.Now().Add(lingerFor))
			go c.linger()
			return
		}
		err = c.Conn.Close()
		c.release()
	})
	return err
}

// closeNow closes the connection at once, without lingering.
func (c *conn) closeNow() {
	c.once.Do(func() {
		c.closed.Store(true)
		_ = c.Conn.Close()
		c.release()
	})
}

// linger reads what still arrives after the half-close (bounded by the
// deadline Close set and by lingerBytes), then closes the connection and
// gives back its place.
func (c *conn) linger() {
	defer c.release()
	_, _ = io.CopyN(io.Discard, c.Conn, lingerBytes)
	_ = c.Conn.Close()
}

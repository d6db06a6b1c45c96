// Package smtptest runs a real SMTP server (emersion/go-smtp) on 127.0.0.1
// for tests: STARTTLS, implicit TLS or none with a self-signed certificate
// made at start, AUTH PLAIN when given a username, and failures on demand
// (refused recipients, dropped connections, a slow greeting). It records
// the sessions it served and the messages it received.
package smtptest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"io"
	"log"
	"math/big"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Options configure the server.
type Options struct {
	// TLS is "starttls" (the default), "tls" (implicit) or "none".
	TLS string
	// Username and Password, when set, are the only credentials AUTH PLAIN
	// accepts, and mail is refused (530) without signing in first.
	Username, Password string
}

// Received is a message the server accepted.
type Received struct {
	From string
	To   []string
	// Data is the message as sent after DATA (headers and encoded body).
	Data string
	// Header is Data's header.
	Header mail.Header
	// Body is Data's body, decoded from its Content-Transfer-Encoding, with
	// LF line ends.
	Body string
}

// Session is what one connection did.
type Session struct {
	// AuthUser is who signed in; empty when nobody did.
	AuthUser string
	// TLS tells whether the session ended up encrypted.
	TLS bool
	// Mail tells whether a MAIL FROM was accepted.
	Mail bool
}

// Server is a running SMTP server.
type Server struct {
	opts  Options
	srv   *smtp.Server
	addr  *net.TCPAddr
	roots *x509.CertPool
	tls   *tls.Config
	done  chan struct{}

	mu         sync.Mutex
	messages   []Received
	order      []*smtp.Conn
	sessions   map[*smtp.Conn]*Session
	rejectRcpt *smtp.SMTPError
	drop       int
	delay      time.Duration
	conns      int
}

// Start starts a server on 127.0.0.1; t.Cleanup stops it.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.TLS == "" {
		opts.TLS = "starttls"
	}
	cert, roots, err := selfSigned()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{
		opts: opts, addr: ln.Addr().(*net.TCPAddr), roots: roots, done: make(chan struct{}),
		tls:      &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		sessions: map[*smtp.Conn]*Session{},
	}
	s.srv = smtp.NewServer(backend{s})
	s.srv.Domain = "localhost"
	s.srv.ReadTimeout, s.srv.WriteTimeout = 10*time.Second, 10*time.Second
	s.srv.ErrorLog = log.New(io.Discard, "", 0) // handlers may outlive the test
	switch opts.TLS {
	case "starttls":
		s.srv.TLSConfig = s.tls
	case "none":
		// The server would take a password in clear: refusing it is the client's job.
		s.srv.AllowInsecureAuth = true
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = s.srv.Serve(&listener{Listener: ln, s: s})
	}()
	t.Cleanup(func() {
		close(s.done)
		_ = s.srv.Close()
		_ = ln.Close() // in case Serve had not registered it yet
		<-served
	})
	return s
}

// Host is the server's address, 127.0.0.1.
func (s *Server) Host() string { return s.addr.IP.String() }

// Port is the port it listens on.
func (s *Server) Port() int { return s.addr.Port }

// RootCAs holds the server's self-signed certificate (valid for 127.0.0.1,
// ::1 and localhost): set it as the client's tls.Config.RootCAs.
func (s *Server) RootCAs() *x509.CertPool { return s.roots }

// TrustIn adds the server's certificate to pool, for a client that talks
// to several fake servers.
func (s *Server) TrustIn(pool *x509.CertPool) error {
	leaf, err := x509.ParseCertificate(s.tls.Certificates[0].Certificate[0])
	if err != nil {
		return err
	}
	pool.AddCert(leaf)
	return nil
}

// Messages returns the messages received so far.
func (s *Server) Messages() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.messages...)
}

// Sessions returns what each connection that said EHLO did, in order.
func (s *Server) Sessions() []Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Session, 0, len(s.order))
	for _, c := range s.order {
		out = append(out, *s.sessions[c])
	}
	return out
}

// Connections counts the connections accepted, dropped ones included.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

// RejectRecipient makes every RCPT TO fail with code and msg (550, "No such
// user"); code 0 accepts recipients again.
func (s *Server) RejectRecipient(code int, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if code == 0 {
		s.rejectRcpt = nil
		return
	}
	s.rejectRcpt = &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{code / 100, 1, 1}, Message: msg}
}

// DropNext closes the next n connections as soon as they are accepted.
func (s *Server) DropNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drop += n
}

// SetDelay makes the server wait d before its first word on each new
// connection (the greeting, or the TLS handshake's answer).
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

func (s *Server) record(c *smtp.Conn, update func(*Session)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.sessions[c]
	if !ok {
		rec = &Session{}
		s.sessions[c] = rec
		s.order = append(s.order, c)
	}
	update(rec)
}

type listener struct {
	net.Listener
	s *Server
}

func (l *listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		s := l.s
		s.mu.Lock()
		s.conns++
		drop := s.drop > 0
		if drop {
			s.drop--
		}
		delay := s.delay
		s.mu.Unlock()
		if drop {
			_ = c.Close()
			continue
		}
		if delay > 0 {
			c = &slowConn{Conn: c, delay: delay, done: s.done, closed: make(chan struct{})}
		}
		if s.opts.TLS == "tls" {
			c = tls.Server(c, s.tls)
		}
		return c, nil
	}
}

// slowConn holds back its first write.
type slowConn struct {
	net.Conn
	delay     time.Duration
	done      chan struct{}
	waited    sync.Once
	closed    chan struct{}
	closeOnce sync.Once
}

func (c *slowConn) Write(p []byte) (int, error) {
	c.waited.Do(func() {
		timer := time.NewTimer(c.delay)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-c.done:
		case <-c.closed:
		}
	})
	return c.Conn.Write(p)
}

func (c *slowConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

type backend struct{ s *Server }

func (b backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	_, isTLS := c.TLSConnectionState()
	b.s.record(c, func(r *Session) { r.TLS = isTLS })
	return &session{s: b.s, conn: c}, nil
}

type session struct {
	s      *Server
	conn   *smtp.Conn
	authed bool
	from   string
	to     []string
}

func (ss *session) AuthMechanisms() []string {
	if ss.s.opts.Username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain || ss.s.opts.Username == "" {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(_, username, password string) error {
		if username != ss.s.opts.Username || password != ss.s.opts.Password {
			return smtp.ErrAuthFailed
		}
		ss.authed = true
		ss.s.record(ss.conn, func(r *Session) { r.AuthUser = username })
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.opts.Username != "" && !ss.authed {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}
	}
	ss.from = from
	ss.s.record(ss.conn, func(r *Session) { r.Mail = true })
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.s.mu.Lock()
	reject := ss.s.rejectRcpt
	ss.s.mu.Unlock()
	if reject != nil {
		return reject
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	rec := Received{From: ss.from, To: append([]string(nil), ss.to...), Data: string(data)}
	if m, err := mail.ReadMessage(bytes.NewReader(data)); err == nil {
		rec.Header = m.Header
		rec.Body = decodeBody(m.Header.Get("Content-Transfer-Encoding"), m.Body)
	}
	ss.s.mu.Lock()
	ss.s.messages = append(ss.s.messages, rec)
	ss.s.mu.Unlock()
	return nil
}

func (ss *session) Reset() { ss.from, ss.to = "", nil }

func (ss *session) Logout() error { return nil }

func decodeBody(encoding string, body io.Reader) string {
	var r io.Reader
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "quoted-printable":
		r = quotedprintable.NewReader(body)
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, body) // it skips line breaks
	default:
		r = body
	}
	b, err := io.ReadAll(r)
	if err != nil && !errors.Is(err, io.EOF) {
		return ""
	}
	return strings.ReplaceAll(string(b), "\r\n", "\n")
}

// selfSigned makes a certificate for 127.0.0.1, ::1 and localhost and the
// pool that trusts it.
func selfSigned() (tls.Certificate, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "smtptest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool, nil
}

// Package twilio lists an account's Twilio phone numbers with twilio-go:
// a pool of RestClients keyed by credentials (pool.go), the service that
// pages through the numbers and checks credentials (service.go).
package twilio

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/prometheus/client_golang/prometheus"
	twilioapi "github.com/twilio/twilio-go"
	"github.com/twilio/twilio-go/client"
)

// PoolSize is how many RestClients the pool keeps.
const PoolSize = 128

// Credentials authenticate with Twilio: the Account SID with its Auth Token,
// or with an API key (SID SK... and secret).
type Credentials struct {
	AccountSID string
	// APIKeySID is empty when authenticating with the Auth Token.
	APIKeySID string
	// Secret is the Auth Token, or the API key's secret.
	Secret string
}

func (c Credentials) username() string {
	if c.APIKeySID != "" {
		return c.APIKeySID
	}
	return c.AccountSID
}

// key identifies the credentials in the pool without holding the secret as
// a readable key.
func (c Credentials) key() string {
	sum := sha256.Sum256([]byte(c.AccountSID + "\x00" + c.APIKeySID + "\x00" + c.Secret))
	return hex.EncodeToString(sum[:])
}

// Pool caches twilio-go RestClients by credentials. Every client shares one
// *http.Client (the guarded "twilio" client: timeout, breaker, correlation
// id, one connection pool), so connections are reused across accounts.
type Pool struct {
	cache  *lru.Cache[string, *twilioapi.RestClient]
	http   *http.Client
	hits   prometheus.Counter
	misses prometheus.Counter
}

// NewPool returns a pool of size clients over hc, registering its metrics.
func NewPool(size int, hc *http.Client, reg prometheus.Registerer) (*Pool, error) {
	cache, err := lru.New[string, *twilioapi.RestClient](size)
	if err != nil {
		return nil, err
	}
	p := &Pool{
		cache: cache, http: hc,
		hits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ava_twilio_client_cache_hits_total", Help: "Twilio client pool lookups that found a client.",
		}),
		misses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ava_twilio_client_cache_misses_total", Help: "Twilio client pool lookups that had to build a client.",
		}),
	}
	for _, c := range []prometheus.Collector{p.hits, p.misses} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// Client returns the RestClient for the credentials, building it on a miss.
// Different credentials never share a client: the key covers all of them.
func (p *Pool) Client(c Credentials) *twilioapi.RestClient {
	key := c.key()
	if rc, ok := p.cache.Get(key); ok {
		p.hits.Inc()
		return rc
	}
	p.misses.Inc()
	base := &client.Client{Credentials: client.NewCredentials(c.username(), c.Secret), HTTPClient: p.http}
	base.SetAccountSid(c.AccountSID)
	rc := twilioapi.NewRestClientWithParams(twilioapi.ClientParams{Client: base})
	p.cache.Add(key, rc)
	return rc
}

// Forget drops the client of credentials that are no longer in use.
func (p *Pool) Forget(c Credentials) { p.cache.Remove(c.key()) }

// Len is the number of cached clients.
func (p *Pool) Len() int { return p.cache.Len() }

// apiHost is where twilio-go sends requests; RewriteTransport moves them to
// TWILIO_BASE_URL.
const apiHost = "https://api.twilio.com"

// RewriteTransport sends requests addressed to api.twilio.com to another
// base URL (TWILIO_BASE_URL: a sandbox, or the tests' fake). The SDK builds
// absolute URLs itself, next pages included, so this is the one place to
// redirect them.
type RewriteTransport struct {
	Base   http.RoundTripper
	Target *url.URL
}

// NewRewriteTransport returns a transport to baseURL over base; with
// Twilio's own URL it passes requests through unchanged.
func NewRewriteTransport(base http.RoundTripper, baseURL string) (*RewriteTransport, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil {
		return nil, err
	}
	return &RewriteTransport{Base: base, Target: u}, nil
}

// RoundTrip implements http.RoundTripper.
func (t *RewriteTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host == "api.twilio.com" && (t.Target.Host != req.URL.Host || t.Target.Scheme != req.URL.Scheme) {
		req = req.Clone(req.Context())
		req.URL.Scheme = t.Target.Scheme
		req.URL.Host = t.Target.Host
		req.URL.Path = t.Target.Path + req.URL.Path
		req.Host = t.Target.Host
	}
	resp, err := t.Base.RoundTrip(req)
	if err == nil && resp.StatusCode == http.StatusTooManyRequests {
		keepRetryAfter(resp)
	}
	return resp, err
}

// retryAfterDetail is where keepRetryAfter puts Twilio's Retry-After.
const retryAfterDetail = "ava_retry_after_seconds"

// keepRetryAfter copies the Retry-After header of a 429 into the error
// body's "details": twilio-go decodes the body into a TwilioRestError and
// drops the headers, and the user should know when to try again.
func keepRetryAfter(resp *http.Response) {
	secs, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || secs < 0 {
		return
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	var doc map[string]any
	if err != nil || json.Unmarshal(body, &doc) != nil {
		resp.Body = io.NopCloser(bytes.NewReader(body))
		return
	}
	details, _ := doc["details"].(map[string]any)
	if details == nil {
		details = map[string]any{}
	}
	details[retryAfterDetail] = secs
	doc["details"] = details
	out, _ := json.Marshal(doc)
	resp.Body = io.NopCloser(bytes.NewReader(out))
	resp.ContentLength = int64(len(out))
	resp.Header.Del("Content-Length")
}

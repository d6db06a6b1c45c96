package twilio

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	twilioapi "github.com/twilio/twilio-go"
	"github.com/twilio/twilio-go/client"

	"github.com/ava/console/services/twilio/twiliotest"
)

// creds returns well-formed credentials of test account i.
func creds(i int) Credentials {
	return Credentials{AccountSID: twiliotest.AccountSID(i), Secret: twiliotest.AuthToken(i)}
}

// newTestPool returns a pool over a plain client, with its fresh registry.
func newTestPool(t testing.TB, size int, hc *http.Client) (*Pool, *prometheus.Registry) {
	t.Helper()
	if hc == nil {
		hc = &http.Client{}
	}
	reg := prometheus.NewRegistry()
	p, err := NewPool(size, hc, reg)
	if err != nil {
		t.Fatal(err)
	}
	return p, reg
}

// counter reads a counter from the registry (what /metrics would show); -1
// when the registry has no such family.
func counter(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && mf.GetType() == dto.MetricType_COUNTER && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return -1
}

func hitsMisses(t testing.TB, reg *prometheus.Registry) (float64, float64) {
	t.Helper()
	return counter(t, reg, "ava_twilio_client_cache_hits_total"), counter(t, reg, "ava_twilio_client_cache_misses_total")
}

// authOf returns what a pooled client authenticates with.
func authOf(t testing.TB, rc *twilioapi.RestClient) (username, password, accountSID string) {
	t.Helper()
	base, ok := rc.Client.(*client.Client)
	if !ok {
		t.Fatalf("the pooled client's base is %T, want *client.Client", rc.Client)
	}
	return base.Username, base.Password, base.AccountSid()
}

func TestPoolEvictsLeastRecentlyUsed(t *testing.T) {
	p, reg := newTestPool(t, 3, nil)
	a, b, c, d := creds(0), creds(1), creds(2), creds(3)
	ca, cb, cc := p.Client(a), p.Client(b), p.Client(c)
	if p.Client(a) != ca { // a is now the most recently used; b the least
		t.Fatal("a second lookup of the same credentials built a new client")
	}
	p.Client(d) // evicts b
	if p.Len() != 3 {
		t.Fatalf("Len %d, want the capacity 3", p.Len())
	}
	if p.Client(a) != ca || p.Client(c) != cc {
		t.Fatal("a recently used client was evicted")
	}
	if p.Client(b) == cb {
		t.Fatal("b, the least recently used, was not evicted")
	}
	// Order now (oldest first): d, a, c, b.
	hits, misses := hitsMisses(t, reg)
	if hits != 3 || misses != 5 {
		t.Errorf("hits %v misses %v, want 3 and 5", hits, misses)
	}
}

func TestPoolCapacityIsPoolSize(t *testing.T) {
	p, reg := newTestPool(t, PoolSize, nil)
	first := p.Client(creds(0))
	for i := 1; i < PoolSize; i++ {
		p.Client(creds(i))
	}
	if p.Len() != 128 || p.Client(creds(0)) != first {
		t.Fatalf("with 128 accounts the pool holds %d and lost the first", p.Len())
	}
	// creds(0) and then creds(1) were just used: creds(2) is the oldest,
	// and the 129th account evicts it.
	second := p.Client(creds(1))
	p.Client(creds(PoolSize))
	if p.Len() != PoolSize {
		t.Fatalf("Len %d after 129 accounts, want %d", p.Len(), PoolSize)
	}
	_, before := hitsMisses(t, reg)
	if p.Client(creds(1)) != second || p.Client(creds(0)) != first {
		t.Fatal("recently used clients were evicted")
	}
	p.Client(creds(2))
	if _, after := hitsMisses(t, reg); after != before+1 {
		t.Errorf("the oldest entry was not the one evicted: misses went %v -> %v", before, after)
	}
}

// A new Auth Token for the same account is a new client, and the old token
// is never used for the new credentials, however the cache is visited.
func TestPoolCredentialChange(t *testing.T) {
	p, _ := newTestPool(t, PoolSize, nil)
	old := creds(0)
	rotated := Credentials{AccountSID: old.AccountSID, Secret: twiliotest.AuthToken(99)}
	apiKey := Credentials{AccountSID: old.AccountSID, APIKeySID: "SK" + strings.Repeat("ab", 16), Secret: old.Secret}

	oldClient := p.Client(old)
	newClient := p.Client(rotated)
	keyClient := p.Client(apiKey)
	if newClient == oldClient || keyClient == oldClient || keyClient == newClient {
		t.Fatal("different credentials share a client")
	}
	for _, tt := range []struct {
		name   string
		c      Credentials
		client *twilioapi.RestClient
		user   string
	}{
		{"old token", old, oldClient, old.AccountSID},
		{"new token", rotated, newClient, old.AccountSID},
		{"API key", apiKey, keyClient, apiKey.APIKeySID},
	} {
		for range 3 { // hits return the same, right client
			got := p.Client(tt.c)
			user, pass, sid := authOf(t, got)
			if got != tt.client || user != tt.user || pass != tt.c.Secret || sid != tt.c.AccountSID {
				t.Fatalf("%s: client authenticates as %s/%s for account %s", tt.name, user, pass, sid)
			}
		}
	}

	// Once the old credentials are forgotten (Connect does it), the new
	// ones keep their client and the old ones would need a new one.
	p.Forget(old)
	if p.Client(rotated) != newClient {
		t.Fatal("forgetting the old token dropped the new one")
	}
	if p.Len() != 2 {
		t.Fatalf("Len %d, want 2 (the rotated token and the API key)", p.Len())
	}
}

// On the wire: after the token is rotated at Twilio, the pool's client for
// the new token is accepted (it sends the new token, not the cached one).
func TestPoolCredentialChangeOnTheWire(t *testing.T) {
	fake := twiliotest.New()
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	rt, err := NewRewriteTransport(srv.Client().Transport, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := newTestPool(t, PoolSize, &http.Client{Transport: rt})
	old := creds(0)
	rotated := Credentials{AccountSID: old.AccountSID, Secret: twiliotest.AuthToken(99)}
	fake.AddAccount(old.AccountSID, old.Secret, 1)
	if status := get(t, p.Client(old), old); status != 200 {
		t.Fatalf("old token before rotation: %d", status)
	}
	fake.AddAccount(old.AccountSID, rotated.Secret, 1) // rotated at Twilio
	if status := get(t, p.Client(rotated), rotated); status != 200 {
		t.Fatalf("new token after rotation: %d, want 200", status)
	}
	if status := get(t, p.Client(old), old); status != 401 {
		t.Fatalf("old token after rotation: %d, want 401", status)
	}
}

// get lists one page with rc and returns the status (401 from Twilio's error).
func get(t *testing.T, rc *twilioapi.RestClient, c Credentials) int {
	t.Helper()
	resp, err := rc.Get(apiHost+"/2010-04-01/Accounts/"+c.AccountSID+"/IncomingPhoneNumbers.json?PageSize=1", nil, map[string]any{}, "")
	if err != nil {
		var te *client.TwilioRestError
		if errors.As(err, &te) {
			return te.Status
		}
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

func TestPoolForget(t *testing.T) {
	p, reg := newTestPool(t, PoolSize, nil)
	a, b := creds(0), creds(1)
	ca, cb := p.Client(a), p.Client(b)
	p.Forget(a)
	p.Forget(creds(7)) // never cached: nothing happens
	if p.Len() != 1 {
		t.Fatalf("Len %d after forgetting one of two, want 1", p.Len())
	}
	if p.Client(b) != cb {
		t.Fatal("Forget(a) dropped b's client")
	}
	if got := p.Client(a); got == ca {
		t.Fatal("a forgotten client was served again")
	}
	hits, misses := hitsMisses(t, reg)
	if hits != 1 || misses != 3 {
		t.Errorf("hits %v misses %v, want 1 and 3", hits, misses)
	}
}

func TestPoolMetrics(t *testing.T) {
	p, reg := newTestPool(t, 2, nil)
	if hits, misses := hitsMisses(t, reg); hits != 0 || misses != 0 {
		t.Fatalf("a new pool exports hits %v misses %v, want both 0", hits, misses)
	}
	p.Client(creds(0)) // miss
	p.Client(creds(0)) // hit
	p.Client(creds(1)) // miss
	p.Client(creds(2)) // miss, evicts 0
	p.Client(creds(0)) // miss
	p.Client(creds(2)) // hit
	if hits, misses := hitsMisses(t, reg); hits != 2 || misses != 4 {
		t.Errorf("hits %v misses %v, want 2 and 4", hits, misses)
	}
	// The metrics belong to one pool: a second on the same registry is refused.
	if _, err := NewPool(2, &http.Client{}, reg); err == nil {
		t.Error("a second pool registered the same metrics on one registry")
	}
}

// The cache is keyed by a hash: no key holds a token, an API key secret or
// anything else readable, and the key covers every field.
func TestPoolKeyHidesTheSecret(t *testing.T) {
	p, _ := newTestPool(t, PoolSize, nil)
	all := []Credentials{
		creds(0),
		{AccountSID: creds(0).AccountSID, Secret: twiliotest.AuthToken(1)},
		{AccountSID: creds(0).AccountSID, APIKeySID: "SK" + strings.Repeat("0f", 16), Secret: "keysecret" + strings.Repeat("Z", 23)},
	}
	for _, c := range all {
		p.Client(c)
	}
	keys := p.cache.Keys()
	if len(keys) != len(all) {
		t.Fatalf("%d keys for %d different credentials", len(keys), len(all))
	}
	for _, k := range keys {
		for _, c := range all {
			for _, part := range []string{c.Secret, c.Secret[len(c.Secret)-8:], c.AccountSID, c.APIKeySID} {
				if part != "" && strings.Contains(k, part) {
					t.Errorf("pool key %q contains %q", k, part)
				}
			}
		}
		if len(k) != 64 || strings.Trim(k, "0123456789abcdef") != "" {
			t.Errorf("pool key %q is not a hex SHA-256", k)
		}
	}
	// Moving characters between fields gives another key.
	x := Credentials{AccountSID: "ACx", APIKeySID: "", Secret: "SKy"}
	y := Credentials{AccountSID: "ACx", APIKeySID: "SKy", Secret: ""}
	if x.key() == y.key() {
		t.Error("different credentials share a key")
	}
}

// Many goroutines, mixed keys, evictions and forgets at once (run with
// -race): every lookup gets a client for exactly its own credentials.
func TestPoolConcurrentUse(t *testing.T) {
	p, reg := newTestPool(t, PoolSize, nil)
	const (
		workers  = 32
		lookups  = 400
		accounts = 300 // more than the pool holds: evictions happen
	)
	var wg sync.WaitGroup
	errs := make(chan string, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 42))
			for range lookups {
				i := r.IntN(accounts)
				if i%10 == 0 {
					// Some accounts use the rotated token or an API key.
					c := Credentials{AccountSID: twiliotest.AccountSID(i), APIKeySID: fmt.Sprintf("SK%032x", i), Secret: twiliotest.AuthToken(i + 1000)}
					check(p, c, c.APIKeySID, errs)
					continue
				}
				c := creds(i)
				check(p, c, c.AccountSID, errs)
				if r.IntN(50) == 0 {
					p.Forget(c)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	hits, misses := hitsMisses(t, reg)
	if hits+misses != workers*lookups {
		t.Errorf("hits %v + misses %v != %d lookups", hits, misses, workers*lookups)
	}
	if p.Len() > PoolSize {
		t.Errorf("Len %d > %d", p.Len(), PoolSize)
	}
}

func check(p *Pool, c Credentials, wantUser string, errs chan<- string) {
	rc := p.Client(c)
	base := rc.Client.(*client.Client)
	if base.Username != wantUser || base.Password != c.Secret || base.AccountSid() != c.AccountSID {
		select {
		case errs <- fmt.Sprintf("asked for %s/%s, got a client for %s/%s", wantUser, c.Secret, base.Username, base.Password):
		default:
		}
	}
}

func TestRewriteTransport(t *testing.T) {
	seen := make(chan string, 4)
	next := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		seen <- r.URL.String() + " host=" + r.Host
		return &http.Response{StatusCode: 200, Body: http.NoBody, Request: r}, nil
	})
	tests := []struct{ base, in, want string }{
		{"http://127.0.0.1:9999", "https://api.twilio.com/2010-04-01/Accounts/AC1/IncomingPhoneNumbers.json?PageSize=50&Page=1",
			"http://127.0.0.1:9999/2010-04-01/Accounts/AC1/IncomingPhoneNumbers.json?PageSize=50&Page=1 host=127.0.0.1:9999"},
		{"https://sandbox.example.com/twilio/", "https://api.twilio.com/2010-04-01/Accounts.json",
			"https://sandbox.example.com/twilio/2010-04-01/Accounts.json host=sandbox.example.com"},
		// Twilio's own address: untouched.
		{"https://api.twilio.com", "https://api.twilio.com/2010-04-01/Accounts.json", "https://api.twilio.com/2010-04-01/Accounts.json host=api.twilio.com"},
		// Other hosts (other Twilio products) are left alone.
		{"http://127.0.0.1:9999", "https://messaging.twilio.com/v1/Services", "https://messaging.twilio.com/v1/Services host=messaging.twilio.com"},
	}
	for _, tt := range tests {
		rt, err := NewRewriteTransport(next, tt.base)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodGet, tt.in, nil)
		orig := req.URL.String()
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if got := <-seen; got != tt.want {
			t.Errorf("base %s: %s\n got %s\nwant %s", tt.base, tt.in, got, tt.want)
		}
		if req.URL.String() != orig {
			t.Errorf("the transport modified the caller's request: %s", req.URL)
		}
	}
	if _, err := NewRewriteTransport(next, "http://[::1"); err == nil {
		t.Error("a malformed base URL was accepted")
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

package twilio

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ava/console/services"
	"github.com/ava/console/services/integrations"
	"github.com/ava/console/services/twilio/twiliotest"
	"github.com/ava/console/services/upstream"
)

// The traffic model: trafficAccounts Twilio accounts, of which the pool
// holds PoolSize, visited with a Zipf-skewed popularity (a few busy
// accounts, a long tail), every lookup followed by a real call through the
// guarded, shared transport to the fake over TCP.
const (
	trafficAccounts = 500
	trafficNumbers  = 3 // per account: one page
	// trafficSkew is the Zipf exponent the CI test holds the pool to; the
	// benchmark also reports gentler skews.
	trafficSkew = 1.5
	// trafficWarmup lookups fill the pool before measuring: a running
	// console's pool is warm.
	trafficWarmup = 20_000
)

// trafficRig is the production wiring (app/console/console.go) against the fake:
// guards.Client("twilio") + CheckRedirect + RewriteTransport + NewPool, and
// a count of the TCP connections the fake accepted.
type trafficRig struct {
	twilio *Integration
	pool   *Pool
	reg    *prometheus.Registry
	dials  atomic.Int64
}

func newTrafficRig(tb testing.TB) *trafficRig {
	tb.Helper()
	r := &trafficRig{reg: prometheus.NewRegistry()}
	fake := twiliotest.New()
	for i := range trafficAccounts {
		fake.AddAccount(twiliotest.AccountSID(i), twiliotest.AuthToken(i), trafficNumbers)
	}
	srv := httptest.NewUnstartedServer(fake)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			r.dials.Add(1)
		}
	}
	srv.Start()
	tb.Cleanup(srv.Close)

	guards, err := upstream.NewGuards(upstream.Settings{
		Timeout: 10 * time.Second, FailureThreshold: 3, RecoveryTimeout: 30 * time.Second, SuccessThreshold: 2,
	}, slog.New(slog.DiscardHandler), r.reg)
	if err != nil {
		tb.Fatal(err)
	}
	hc := guards.Client(Name)
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if hc.Transport, err = NewRewriteTransport(hc.Transport, srv.URL); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(hc.CloseIdleConnections)
	if r.pool, err = NewPool(PoolSize, hc, r.reg); err != nil {
		tb.Fatal(err)
	}
	if r.twilio, err = NewIntegration(r.pool, "", "", 10*time.Second); err != nil {
		tb.Fatal(err)
	}
	return r
}

// zipf returns a generator of account indexes, skewed by s.
func zipf(seed uint64, s float64) func() int {
	z := rand.NewZipf(rand.New(rand.NewPCG(seed, 0x7a1f)), s, 1, trafficAccounts-1)
	return func() int { return int(z.Uint64()) }
}

func (r *trafficRig) warm(next func() int) {
	for range trafficWarmup {
		r.pool.Client(creds(next()))
	}
}

func (r *trafficRig) counts(tb testing.TB) (hits, misses float64) {
	tb.Helper()
	return hitsMisses(tb, r.reg)
}

// call is one lookup and one real list call for account i.
func (r *trafficRig) call(ctx context.Context, i int) error {
	c := creds(i)
	numbers, err := r.twilio.list(ctx, integrations.Resolved{Source: integrations.SourceAccount, Values: integrations.Values{
		FieldAccountSID: c.AccountSID, FieldAuthToken: c.Secret,
	}})
	if err != nil {
		return err
	}
	if len(numbers) != trafficNumbers {
		return fmt.Errorf("account %d: %d numbers, want %d", i, len(numbers), trafficNumbers)
	}
	return nil
}

// BenchmarkPoolTraffic: hundreds of accounts, skewed, each lookup followed
// by a call to the fake from 8 goroutines per CPU. Reports the pool's hit
// rate after warm-up (hit%), the TCP connections the fake accepted in all
// (dials), and the clients built (misses).
func BenchmarkPoolTraffic(b *testing.B) {
	for _, s := range []float64{1.1, 1.3, trafficSkew} {
		b.Run(fmt.Sprintf("accounts=%d/zipf=%.1f", trafficAccounts, s), func(b *testing.B) {
			r := newTrafficRig(b)
			r.warm(zipf(1, s))
			hits0, misses0 := r.counts(b)
			var seed atomic.Uint64
			ctx := services.WithCorrelationID(context.Background(), "bench")
			b.SetParallelism(8)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				next := zipf(seed.Add(1)+100, s)
				for pb.Next() {
					if err := r.call(ctx, next()); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			hits, misses := r.counts(b)
			hits, misses = hits-hits0, misses-misses0
			b.ReportMetric(100*hits/(hits+misses), "hit%")
			b.ReportMetric(misses, "misses")
			b.ReportMetric(float64(r.dials.Load()), "dials")
		})
	}
}

// BenchmarkPoolLookup is the cost of the pool itself: a hit, and a miss
// (a new RestClient, and an eviction).
func BenchmarkPoolLookup(b *testing.B) {
	b.Run("hit", func(b *testing.B) {
		p, _ := newTestPool(b, PoolSize, &http.Client{})
		c := creds(0)
		p.Client(c)
		b.ReportAllocs()
		for b.Loop() {
			p.Client(c)
		}
	})
	b.Run("miss", func(b *testing.B) {
		p, _ := newTestPool(b, PoolSize, &http.Client{})
		i := 0
		b.ReportAllocs()
		for b.Loop() {
			p.Client(creds(i))
			i++
		}
	})
}

// TestPoolTrafficHitRateAndConnectionReuse holds the benchmark's claims in
// CI, on a fixed workload: with 500 accounts visited with Zipf skew 1.5,
// the warm pool answers more than 90% of lookups, and concurrent calls
// through the shared transport reuse a handful of TCP connections instead
// of dialing per account or per call.
func TestPoolTrafficHitRateAndConnectionReuse(t *testing.T) {
	const (
		workers = 8
		calls   = 1000
	)
	r := newTrafficRig(t)
	next := zipf(2026, trafficSkew)
	r.warm(next)
	hits0, misses0 := r.counts(t)
	work := make(chan int, calls)
	seen := map[int]bool{}
	for range calls {
		i := next()
		seen[i] = true
		work <- i
	}
	close(work)

	ctx := services.WithCorrelationID(context.Background(), "traffic")
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if err := r.call(ctx, i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	hits, misses := r.counts(t)
	hits, misses = hits-hits0, misses-misses0
	rate := hits / (hits + misses)
	dials := r.dials.Load()
	t.Logf("%d calls over %d accounts: hit rate %.1f%% (%v misses), %d TCP connections for %d workers",
		calls, len(seen), 100*rate, misses, dials, workers)
	if hits+misses != calls {
		t.Errorf("%v lookups counted for %d calls", hits+misses, calls)
	}
	if rate <= 0.90 {
		t.Errorf("hit rate %.1f%%, want above 90%%", 100*rate)
	}
	// One connection per worker; the transport may dial a spare when a
	// connection comes back just as a new dial started.
	if dials < 1 || dials > 2*workers {
		t.Errorf("the fake accepted %d connections for %d concurrent workers, want at most %d", dials, workers, 2*workers)
	}
	if len(seen) <= int(dials) {
		t.Errorf("only %d accounts called: the workload does not show connections shared across accounts", len(seen))
	}
}

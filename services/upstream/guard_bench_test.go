package upstream_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ava/console/services"
	"github.com/ava/console/services/upstream"
)

func benchGuards(b *testing.B) *upstream.Guards {
	b.Helper()
	g, err := upstream.NewGuards(upstream.Settings{
		Timeout: 10 * time.Second, FailureThreshold: 3, RecoveryTimeout: 30 * time.Second, SuccessThreshold: 2,
	}, services.NewLogger(io.Discard, slog.LevelInfo, "json"), prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	return g
}

// BenchmarkGuard is what the guard adds to an outside call: Do (the
// breaker, the timeout, the metrics) around a call that does nothing, and
// a guarded HTTP client (those, and the correlation header) beside a plain
// one, over loopback to the same server.
func BenchmarkGuard(b *testing.B) {
	ctx := services.WithCorrelationID(context.Background(), "0f8b2c1e-3a5d-4e7f-9b6c-1d2e3f4a5b6c")
	b.Run("do", func(b *testing.B) {
		g := benchGuards(b)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := g.Do(ctx, "smtp", func(context.Context) error { return nil }); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"id":"asst"}`))
	}))
	b.Cleanup(srv.Close)
	get := func(b *testing.B, c *http.Client) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				req, _ := upstream.NewJSONRequest(ctx, http.MethodGet, srv.URL, nil)
				resp, err := c.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
			}
		})
	}
	b.Run("http-plain", func(b *testing.B) {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 32
		get(b, &http.Client{Transport: t, Timeout: 10 * time.Second})
	})
	b.Run("http-guarded", func(b *testing.B) { get(b, benchGuards(b).Client("vapi")) })
}

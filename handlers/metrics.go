package handlers

import (
	"strconv"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/gofiber/fiber/v2/utils"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// httpMetrics are the HTTP layer's Prometheus metrics. Labels carry route
// patterns, never raw paths, so their number stays bounded.
type httpMetrics struct {
	requests   *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	rejections *prometheus.CounterVec
	// series holds each (route, method, status)'s counter and histogram
	// once looked up: finding them by label values hashes the labels each
	// time. Bounded as the labels are (route patterns).
	series sync.Map // seriesKey -> series
}

type seriesKey struct {
	route, method string
	status        int
}

type series struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

func newHTTPMetrics(reg prometheus.Registerer) (*httpMetrics, error) {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ava_http_requests_total", Help: "HTTP requests answered, by route pattern, method and status.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ava_http_request_duration_seconds", Help: "Time to answer HTTP requests, by route pattern and method.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route", "method"}),
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ava_rate_limit_rejections_total", Help: "Requests refused by a rate limit, by route pattern.",
		}, []string{"route"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.rejections} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *httpMetrics) observe(route, method string, status int, d time.Duration) {
	key := seriesKey{route, method, status}
	v, ok := m.series.Load(key)
	if !ok {
		v, _ = m.series.LoadOrStore(key, series{
			requests: m.requests.WithLabelValues(route, method, strconv.Itoa(status)),
			duration: m.duration.WithLabelValues(route, method),
		})
	}
	s := v.(series)
	s.requests.Inc()
	s.duration.Observe(d.Seconds())
}

func (m *httpMetrics) rateLimited(route string) { m.rejections.WithLabelValues(route).Inc() }

func (h *Handlers) metricsHandler() fiber.Handler {
	return adaptor.HTTPHandler(promhttp.HandlerFor(h.registry, promhttp.HandlerOpts{Registry: h.registry}))
}

// ownMethod is the request's method as a string of its own (the one Fiber
// gives aliases the request's buffer, reused once the request is answered):
// the standard methods without copying.
func ownMethod(m string) string {
	for _, known := range [...]string{
		fiber.MethodGet, fiber.MethodHead, fiber.MethodPost, fiber.MethodPut, fiber.MethodPatch,
		fiber.MethodDelete, fiber.MethodConnect, fiber.MethodOptions, fiber.MethodTrace,
	} {
		if m == known {
			return known
		}
	}
	return utils.CopyString(m)
}

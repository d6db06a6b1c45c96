package services_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/ava/console/services"
)

// BenchmarkAccessLogLine is the line the console writes for every request
// (handlers' observe): the JSON logger, the request's correlation id and
// account id from the context, the same attributes.
func BenchmarkAccessLogLine(b *testing.B) {
	log := services.NewLogger(io.Discard, slog.LevelInfo, "json")
	ctx := services.WithAccountID(services.WithCorrelationID(context.Background(), "0f8b2c1e-3a5d-4e7f-9b6c-1d2e3f4a5b6c"), 1)
	elapsed := 1234567 * time.Nanosecond
	b.ReportAllocs()
	for b.Loop() {
		log.LogAttrs(ctx, slog.LevelInfo, "request",
			slog.String("method", "GET"),
			slog.String("route", "GET /api/v1/vapi/settings"),
			slog.String("path", "/api/v1/vapi/settings"),
			slog.Int("status", 200),
			slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
		)
	}
}

package handlers_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"net"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/ava/console/app/console"
	"github.com/ava/console/services/vapi/vapitest"
)

// The fake Vapi's credentials in the benchmarks.
const (
	benchVapiKey       = "bench-vapi-key"
	benchVapiAssistant = "asst_bench"
)

// benchConsole is the real console in production mode (console.New: SQLite,
// the services, the breakers, the access log to io.Discard) with an owner
// and an API token, its Vapi answered by the wire fake.
func benchConsole(b *testing.B, env map[string]string) (*console.Console, string) {
	b.Helper()
	fake := vapitest.New()
	fake.AddKey(benchVapiKey)
	fake.PutAssistant(vapitest.DefaultAssistant(benchVapiAssistant))
	srv := httptest.NewServer(fake)
	b.Cleanup(srv.Close)
	vars := map[string]string{
		"AVA_ENV":              "production",
		"AVA_SECRET_KEY":       base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)),
		"DATABASE_URL":         "sqlite:" + filepath.Join(b.TempDir(), "ava.db"),
		"LOG_LEVEL":            "info",
		"ENABLE_RATE_LIMITING": "false",
		"VAPI_BASE_URL":        srv.URL,
		"VAPI_API_KEY":         benchVapiKey,
		"VAPI_ASSISTANT_ID":    benchVapiAssistant,
	}
	for k, v := range env {
		vars[k] = v
	}
	cfg, err := console.LoadConfig(func(k string) string { return vars[k] })
	if err != nil {
		b.Fatal(err)
	}
	c, err := console.New(context.Background(), cfg, io.Discard, console.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	ctx := context.Background()
	u, err := c.Accounts.CreateOwner(ctx, "owner@example.com", "correct horse battery", true)
	if err != nil {
		b.Fatal(err)
	}
	token, _, err := c.Accounts.CreateToken(ctx, u.ID, "bench")
	if err != nil {
		b.Fatal(err)
	}
	return c, token
}

// serveInMemory runs GET path with the token through the whole app without a
// network (fasthttp's request context), b.N times, and fails on any answer
// but 200.
func serveInMemory(b *testing.B, c *console.Console, path, token string) {
	b.Helper()
	handler := c.App.Handler()
	var req fasthttp.Request
	req.Header.SetMethod(fasthttp.MethodGet)
	req.SetRequestURI(path)
	req.Header.Set("Authorization", "Bearer "+token)
	addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var ctx fasthttp.RequestCtx
		for pb.Next() {
			ctx.ResetUserValues() // as fasthttp does between requests
			ctx.Init(&req, addr, nil)
			handler(&ctx)
			if code := ctx.Response.StatusCode(); code != fasthttp.StatusOK {
				b.Errorf("GET %s answered %d: %s", path, code, ctx.Response.Body())
				return
			}
		}
	})
}

// BenchmarkStackMe is the request path without an upstream: Bearer
// authentication, correlation id, access log line, metrics, the route,
// GET /api/v1/me. Rate limiting off, then on with a budget never reached.
func BenchmarkStackMe(b *testing.B) {
	for _, limits := range []bool{false, true} {
		b.Run("rate_limiting="+strconv.FormatBool(limits), func(b *testing.B) {
			c, token := benchConsole(b, map[string]string{
				"ENABLE_RATE_LIMITING": strconv.FormatBool(limits), "RATE_LIMIT_DEFAULT": "1000000000",
			})
			serveInMemory(b, c, "/api/v1/me", token)
		})
	}
}

// BenchmarkStackVapiSettings is GET /api/v1/vapi/settings through the whole
// app, Vapi answered by the wire fake over loopback (concurrent reads share
// one call, as in production).
func BenchmarkStackVapiSettings(b *testing.B) {
	c, token := benchConsole(b, nil)
	serveInMemory(b, c, "/api/v1/vapi/settings", token)
}

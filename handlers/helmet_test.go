package handlers

import (
	"net/http/httptest"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/helmet"
)

// precomputedHelmet answers exactly the headers helmet does, over HTTP and
// over HTTPS (Strict-Transport-Security), and only trusts X-Forwarded-Proto
// from a trusted proxy, as helmet does.
func TestPrecomputedHelmetSetsHelmetsHeaders(t *testing.T) {
	configs := map[string]helmet.Config{
		"the console's": {
			ContentSecurityPolicy: contentSecurityPolicy, XFrameOptions: "DENY",
			ReferrerPolicy: "strict-origin-when-cross-origin", HSTSMaxAge: 31536000, CrossOriginEmbedderPolicy: "unsafe-none",
		},
		"defaults":             {},
		"report only, preload": {ContentSecurityPolicy: "default-src 'none'", CSPReportOnly: true, HSTSMaxAge: 60, HSTSPreloadEnabled: true, PermissionPolicy: "camera=()"},
	}
	for name, cfg := range configs {
		t.Run(name, func(t *testing.T) {
			// app.Test's requests come from 0.0.0.0: trusted, or not.
			answer := func(mw fiber.Handler, forwarded string, trusted bool) map[string]string {
				proxies := []string{"10.0.0.1"}
				if trusted {
					proxies = append(proxies, "0.0.0.0")
				}
				app := fiber.New(fiber.Config{EnableTrustedProxyCheck: true, TrustedProxies: proxies})
				app.Use(mw)
				app.Get("/", func(c *fiber.Ctx) error { return c.SendString("ok") })
				req := httptest.NewRequest(fiber.MethodGet, "/", nil)
				if forwarded != "" {
					req.Header.Set(fiber.HeaderXForwardedProto, forwarded)
				}
				resp, err := app.Test(req, -1)
				if err != nil {
					t.Fatal(err)
				}
				_ = resp.Body.Close()
				out := map[string]string{}
				for k := range resp.Header {
					if k != fiber.HeaderDate {
						out[k] = resp.Header.Get(k)
					}
				}
				return out
			}
			for _, tt := range []struct {
				forwarded string
				trusted   bool
			}{
				{"", true}, {"https", true}, {"https", false},
			} {
				want, got := answer(helmet.New(cfg), tt.forwarded, tt.trusted), answer(precomputedHelmet(cfg), tt.forwarded, tt.trusted)
				if _, hsts := want[fiber.HeaderStrictTransportSecurity]; hsts != (cfg.HSTSMaxAge != 0 && tt.forwarded == "https" && tt.trusted) {
					t.Fatalf("%+v: helmet's headers %v: Strict-Transport-Security only over HTTPS from a trusted proxy", tt, want)
				}
				if len(want) < 10 || len(got) != len(want) {
					t.Fatalf("%+v: headers %v, want helmet's %v", tt, got, want)
				}
				for k, v := range want {
					if got[k] != v {
						t.Errorf("%+v: %s is %q, want helmet's %q", tt, k, got[k], v)
					}
				}
			}
		})
	}
}

package handlers

import (
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/helmet"
	"github.com/valyala/fasthttp"
)

// precomputedHelmet sets on every answer the headers helmet.New(cfg) sets,
// worked out once by running helmet itself (over plain HTTP, and over
// HTTPS, which adds Strict-Transport-Security): helmet sets a dozen headers
// a request, each name normalised and looked up again, a visible share of
// a request under load. Whether a request came over HTTPS is decided as
// helmet does (c.Protocol: TLS, or X-Forwarded-Proto from a trusted proxy).
func precomputedHelmet(cfg helmet.Config) fiber.Handler {
	if cfg.Next != nil {
		return helmet.New(cfg) // depends on the request
	}
	plain, secure := helmetHeaders(cfg, "http"), helmetHeaders(cfg, "https")
	return func(c *fiber.Ctx) error {
		hs := plain
		if overHTTPS(c) {
			hs = secure
		}
		h := &c.Response().Header
		for _, kv := range hs {
			h.SetCanonical(kv[0], kv[1])
		}
		return c.Next()
	}
}

// helmetHeaders returns the headers helmet sets on an answer to a request
// over proto, names as fasthttp writes them.
func helmetHeaders(cfg helmet.Config, proto string) [][2][]byte {
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	var out [][2][]byte
	app.Use(helmet.New(cfg))
	app.Get("/", func(c *fiber.Ctx) error {
		c.Response().Header.VisitAll(func(k, v []byte) {
			switch string(k) {
			case fiber.HeaderContentType, fiber.HeaderContentLength, fiber.HeaderServer, fiber.HeaderDate:
			default:
				out = append(out, [2][]byte{append([]byte(nil), k...), append([]byte(nil), v...)})
			}
		})
		return nil
	})
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod(fiber.MethodGet)
	ctx.Request.SetRequestURI("/")
	ctx.Request.Header.Set(fiber.HeaderXForwardedProto, proto) // trusted: the default config
	app.Handler()(&ctx)
	return out
}

// overHTTPS is c.Protocol() == "https", without asking whether the peer is
// a trusted proxy when no header could say so (which costs an allocation).
func overHTTPS(c *fiber.Ctx) bool {
	if c.Context().IsTLS() {
		return true
	}
	h := &c.Request().Header
	for _, name := range [...]string{fiber.HeaderXForwardedProto, fiber.HeaderXForwardedProtocol, fiber.HeaderXForwardedSsl, fiber.HeaderXUrlScheme} {
		if h.Peek(name) != nil {
			return c.Protocol() == "https"
		}
	}
	return false
}

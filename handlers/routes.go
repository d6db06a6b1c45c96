package handlers

import (
	"net/http"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/filesystem"

	"github.com/ava/console/docs"
	"github.com/ava/console/static"
)

// routes registers every route. Each one goes through h.route, which gives it
// its route label (metrics, logs) and its own rate limiter.
func (h *Handlers) routes(app *fiber.App) {
	r := router{h: h, app: app}
	d := policy{max: h.cfg.DefaultLimit}

	// Operations.
	r.get("/healthz", d, h.healthz)
	r.get("/readyz", d, h.readyz)
	r.get("/metrics", d, h.metricsHandler())
	r.use("/static", policy{max: h.cfg.StaticLimit}, filesystem.New(filesystem.Config{
		Root: http.FS(static.FS), MaxAge: 3600,
	}))

	// Signing in and out. Sign-in and setup attempts are limited per client
	// IP whether or not ENABLE_RATE_LIMITING is on: they guard passwords.
	r.get("/setup", d, h.setupShow)
	r.post("/setup", d, h.signInLimiter("POST /setup"), h.setupSubmit)
	r.get("/login", d, h.loginShow)
	r.post("/login", d, h.signInLimiter("POST /login"), h.loginSubmit)
	r.post("/logout", d, h.logout)

	// Pages and their fragments.
	r.get("/", d, h.requirePage, h.home)
	r.get("/tokens", d, h.requirePage, h.tokensShow)
	r.post("/tokens", d, h.requirePage, h.tokenCreate)
	r.post("/tokens/:id/revoke", d, h.requirePage, h.tokenRevoke)
	r.get("/fragments/tokens", d, h.requirePage, h.tokenList)
	h.eventRoutes(r, d)
	h.integrationRoutes(r, d)
	h.auditRoutes(r, d)
	if h.vapi != nil {
		h.vapiRoutes(r, d)
	}
	if h.twilio != nil {
		h.twilioRoutes(r, d)
	}
	if h.email != nil {
		h.emailRoutes(r, d)
	}
	if h.calendar != nil {
		h.calendarRoutes(r, d)
	}

	// JSON API.
	r.get("/api/openapi.json", d, func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
		return c.Send(docs.OpenAPI)
	})
	r.get("/api/v1/me", d, h.requireAPI, h.apiMe)

	// Anything else: 405 with Allow on a known path, else 404, in the
	// caller's format, through the error handler. Rate limited like any
	// route, so probing unknown addresses is too.
	notFound := []any{}
	for _, h := range h.route(unmatchedRoute, d, []fiber.Handler{h.unmatched}) {
		notFound = append(notFound, h)
	}
	app.Use(notFound...)
}

// router registers routes with their label and rate limit, and remembers
// each method and pattern (Handlers.known, for 405 answers). The JSON API's
// PUT and POST routes take only application/json bodies (jsonAPI).
type router struct {
	h   *Handlers
	app *fiber.App
}

// policy is a rate limit: max requests a minute, counted per route unless
// name makes several routes share one budget.
type policy struct {
	name string
	max  int
}

func (r router) get(path string, p policy, hs ...fiber.Handler) {
	r.h.known = append(r.h.known, knownRoute{fiber.MethodGet, path})
	r.app.Get(path, r.h.route("GET "+path, p, hs)...)
}

func (r router) post(path string, p policy, hs ...fiber.Handler) {
	r.h.known = append(r.h.known, knownRoute{fiber.MethodPost, path})
	r.app.Post(path, r.h.route("POST "+path, p, jsonAPI(path, hs))...)
}

func (r router) put(path string, p policy, hs ...fiber.Handler) {
	r.h.known = append(r.h.known, knownRoute{fiber.MethodPut, path})
	r.app.Put(path, r.h.route("PUT "+path, p, jsonAPI(path, hs))...)
}

func (r router) delete(path string, p policy, hs ...fiber.Handler) {
	r.h.known = append(r.h.known, knownRoute{fiber.MethodDelete, path})
	r.app.Delete(path, r.h.route("DELETE "+path, p, hs)...)
}

func (r router) use(prefix string, limit policy, h fiber.Handler) {
	r.h.known = append(r.h.known, knownRoute{fiber.MethodGet, prefix + "/*"})
	args := []any{prefix}
	for _, h := range r.h.route("GET "+prefix+"/*", limit, []fiber.Handler{h}) {
		args = append(args, h)
	}
	r.app.Use(args...)
}

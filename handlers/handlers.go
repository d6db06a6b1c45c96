// Package handlers is the console's HTTP layer: routes, middleware, the error
// model's mapping to HTTP, and rendering of pages (views), fragments and
// JSON. Handlers parse, authorise, call one service method and render; the
// domain lives in services.
package handlers

import (
	"context"
	"log/slog"
	"net/netip"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/template/html/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/ava/console/components"
	"github.com/ava/console/services"
	"github.com/ava/console/services/events"
	"github.com/ava/console/services/ratelimit"
)

// Accounts is what the handlers need of the account service.
type Accounts interface {
	SetupNeeded(ctx context.Context) (bool, error)
	CreateOwner(ctx context.Context, email, password string, firstRun bool) (services.User, error)
	Authenticate(ctx context.Context, email, password string) (services.User, error)
	StartSession(ctx context.Context, userID int64) (string, time.Time, error)
	SessionUser(ctx context.Context, token string) (services.User, error)
	EndSession(ctx context.Context, token string) error
	CreateToken(ctx context.Context, userID int64, name string) (string, services.APIToken, error)
	Tokens(ctx context.Context, userID int64) ([]services.APIToken, error)
	RevokeToken(ctx context.Context, userID, tokenID int64) (services.APIToken, error)
	TokenUser(ctx context.Context, plain string) (services.User, error)
	// CSRFToken is the CSRF token of a signed-in browser, derived from its
	// session cookie value; NewFormToken and FormTokenIssued make and check
	// the signed tokens of signed-out forms (see services/account/csrf.go).
	CSRFToken(session string) string
	NewFormToken() (string, error)
	FormTokenIssued(token string) (time.Time, bool)
}

// Pinger reports whether the database answers (readiness).
type Pinger interface {
	Ping(ctx context.Context) error
}

// Section is one part of the console as the home page lists it.
type Section = components.Section

// Sections returns the home page's sections and their states for a user.
type Sections func(ctx context.Context, u services.User) ([]Section, error)

// Config is the part of the configuration the HTTP layer needs.
type Config struct {
	Production   bool
	RateLimiting bool
	// Limiter counts the rate limits: ratelimit.Redis shares them across
	// instances (REDIS_URL); nil keeps them in this process's memory.
	Limiter ratelimit.Limiter
	// LimiterKeyPrefix starts every rate-limit key ("ava:ratelimit:").
	LimiterKeyPrefix string
	// DefaultLimit is the per-route budget a minute (60); SignInLimit the
	// budget for sign-in and setup attempts a minute per client IP.
	DefaultLimit int
	SignInLimit  int
	// StaticLimit is the budget a minute for static files, which every page
	// load fetches several of.
	StaticLimit int
	// VapiListLimit is the budget a minute for listing Vapi settings (10).
	VapiListLimit int
	// MaxStreams is the most live-update streams (GET /events) one
	// account may hold open on this instance (20 when 0).
	MaxStreams int
	// Heartbeat is how often a quiet stream sends a comment and checks
	// its session (15 s when 0).
	Heartbeat time.Duration
	// TrustedProxies are the reverse proxies (TRUSTED_PROXIES) whose
	// X-Forwarded-For names the client (clientIP); none by default.
	TrustedProxies []netip.Prefix
}

// Deps are what the handlers are built from.
type Deps struct {
	Config   Config
	Logger   *slog.Logger
	Accounts Accounts
	DB       Pinger
	Sections Sections
	Registry *prometheus.Registry
	// Integrations is the registry: every integration's card, credentials
	// and status. The services below own their integration's page; each
	// one left nil has no routes.
	Integrations Integrations
	Vapi         VapiSettings
	Twilio       TwilioNumbers
	Email        EmailSender
	Calendar     CalendarEvents
	// Events is the events hub the live updates stream from (GET
	// /events); nil: one of this app's own that nothing publishes to.
	Events EventSource
}

// Handlers holds the dependencies every handler uses.
type Handlers struct {
	cfg      Config
	log      *slog.Logger
	accounts Accounts
	db       Pinger
	sections Sections
	registry *prometheus.Registry
	metrics  *httpMetrics
	engine   *html.Engine

	// rates counts the requests against every budget (limiter).
	rates ratelimit.Limiter

	nav []components.NavItem
	// known is every registered method and path pattern (the 405 answers).
	known []knownRoute

	integrations Integrations
	vapi         VapiSettings
	twilio       TwilioNumbers
	email        EmailSender
	calendar     CalendarEvents
	// flashes are the toasts a redirect may leave for the next page.
	flashes map[string]flash

	events    EventSource
	streams   *streams
	heartbeat time.Duration
}

// NewApp builds the console's Fiber application: middleware, routes, views.
func NewApp(d Deps) (*fiber.App, error) {
	if d.Config.DefaultLimit == 0 {
		d.Config.DefaultLimit = 60
	}
	if d.Config.SignInLimit == 0 {
		d.Config.SignInLimit = 10
	}
	if d.Config.LimiterKeyPrefix == "" {
		d.Config.LimiterKeyPrefix = "ava:ratelimit:"
	}
	if d.Config.VapiListLimit == 0 {
		d.Config.VapiListLimit = 10
	}
	if d.Config.StaticLimit == 0 {
		d.Config.StaticLimit = 600
	}
	if d.Config.Limiter == nil {
		d.Config.Limiter = ratelimit.NewMemory()
	}
	h := &Handlers{
		cfg: d.Config, log: d.Logger, accounts: d.Accounts, db: d.DB, sections: d.Sections,
		registry: d.Registry, integrations: d.Integrations, vapi: d.Vapi, twilio: d.Twilio, email: d.Email,
		calendar: d.Calendar, flashes: flashes(d.Integrations.Specs()),
	}
	h.rates = d.Config.Limiter
	if h.heartbeat = d.Config.Heartbeat; h.heartbeat <= 0 {
		h.heartbeat = defaultHeartbeat
	}
	if h.events = d.Events; h.events == nil {
		hub, err := events.New("app", nil, nil)
		if err != nil {
			return nil, err
		}
		h.events = hub
	}
	h.nav = navItems(d.Integrations.Specs())
	var err error
	if h.metrics, err = newHTTPMetrics(d.Registry); err != nil {
		return nil, err
	}
	if h.streams, err = newStreams(d.Config.MaxStreams, d.Registry); err != nil {
		return nil, err
	}
	if h.engine, err = newEngine(h.nav); err != nil {
		return nil, err
	}
	app := fiber.New(fiber.Config{
		AppName:               "Ava console",
		Views:                 h.engine,
		ErrorHandler:          h.handleError,
		DisableStartupMessage: true,
		ReadTimeout:           30 * time.Second,
		WriteTimeout:          30 * time.Second,
		IdleTimeout:           120 * time.Second,
		BodyLimit:             bodyLimit,
		ReadBufferSize:        readBufferSize,
		// X-Forwarded-Host and -Proto count only from trusted proxies;
		// the client address is clientIP's.
		EnableTrustedProxyCheck: true,
		TrustedProxies:          prefixStrings(d.Config.TrustedProxies),
	})
	app.Server().ErrorHandler = h.serverError(app)
	app.Server().SecureErrorLogMessage = true
	// Answers given while stopping close their connection, so that
	// browsers (an EventSource reconnecting, above all) take their next
	// request elsewhere instead of keeping this instance's connection busy.
	app.Server().CloseOnShutdown = true
	h.middleware(app)
	h.routes(app)
	warmRender(app)
	return app, nil
}

// warmRender renders once before any request is served: Fiber builds the
// list Render consults on the first render, without a lock, so the first
// concurrent renders would race to build it.
func warmRender(app *fiber.App) {
	c := app.AcquireCtx(&fasthttp.RequestCtx{})
	defer app.ReleaseCtx(c)
	_ = c.Render("error", page{Title: "Ava console", Data: errorPage{}})
}

func prefixStrings(ps []netip.Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

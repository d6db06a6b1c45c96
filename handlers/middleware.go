package handlers

import (
	"fmt"
	"log/slog"
	"regexp"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/helmet"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/gofiber/fiber/v2/utils"

	"github.com/ava/console/services"
	"github.com/ava/console/services/integrations"
	"github.com/ava/console/services/ratelimit"
)

const (
	localRoute = "ava.route"
	localUser  = "ava.user"
	localCSRF  = "ava.csrf"
	// localSession is the session cookie value when the caller was
	// identified by it (not by an API token).
	localSession = "ava.session"
	// unmatchedRoute labels requests no route matched, so that metrics never
	// carry raw paths.
	unmatchedRoute = "unmatched"
)

// contentSecurityPolicy allows scripts and styles from our own origin only:
// no inline scripts, no eval, no third-party hosts.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"

// cspOrigin is what pagePolicy accepts as a source: scheme, host, port.
var cspOrigin = regexp.MustCompile(`^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$`)

// pagePolicy is contentSecurityPolicy with the consent pages of the OAuth
// integrations allowed as form targets: a Connect button's POST is answered
// with a redirect to the provider, and browsers check form-action on the
// redirects of a form submission too.
func pagePolicy(specs []integrations.Spec) string {
	var origins []string
	for _, s := range specs {
		if s.OAuth != nil && cspOrigin.MatchString(s.OAuth.ConsentOrigin) && !slices.Contains(origins, s.OAuth.ConsentOrigin) {
			origins = append(origins, s.OAuth.ConsentOrigin)
		}
	}
	if len(origins) == 0 {
		return contentSecurityPolicy
	}
	return strings.Replace(contentSecurityPolicy, "form-action 'self'", "form-action 'self' "+strings.Join(origins, " "), 1)
}

func (h *Handlers) sessionCookieName() string {
	if h.cfg.Production {
		return "__Host-ava_session" // the browser enforces Secure, Path=/ and no Domain
	}
	return "ava_session"
}

func (h *Handlers) middleware(app *fiber.App) {
	app.Use(h.observe)
	app.Use(checkHeaders)
	app.Use(recover.New(recover.Config{
		EnableStackTrace: true,
		StackTraceHandler: func(c *fiber.Ctx, e any) {
			h.log.ErrorContext(c.UserContext(), "panic while serving request",
				slog.String("panic", fmt.Sprint(e)), slog.String("stack", string(debug.Stack())))
		},
	}))
	app.Use(precomputedHelmet(helmet.Config{
		ContentSecurityPolicy: pagePolicy(h.integrations.Specs()),
		XFrameOptions:         "DENY",
		ReferrerPolicy:        "strict-origin-when-cross-origin",
		HSTSMaxAge:            31536000,
		// Cross-Origin-Embedder-Policy would only get in the way of nothing
		// we embed; keep helmet's other defaults.
		CrossOriginEmbedderPolicy: "unsafe-none",
	}))
	app.Use(h.identify)
	// CSRF tokens need no server memory (csrf.go): derived from the
	// session when signed in, a signed double-submit cookie otherwise.
	app.Use(h.checkCSRF)
	// A region's fragment asked for without htmx is a page (pages.go).
	app.Use("/fragments", h.fragmentPage)
}

// observe gives the request its correlation id, answers errors through the
// error handler, then writes the access log line and the HTTP metrics.
func (h *Handlers) observe(c *fiber.Ctx) error {
	start := time.Now()
	id := services.CorrelationIDFrom(c.Get(services.CorrelationHeader))
	c.Set(services.CorrelationHeader, id)
	c.SetUserContext(services.WithCorrelationID(c.UserContext(), id))

	if err := c.Next(); err != nil {
		if herr := h.handleError(c, err); herr != nil {
			h.log.ErrorContext(c.UserContext(), "writing the error response failed", slog.Any("error", herr))
			_ = c.SendStatus(fiber.StatusInternalServerError)
		}
	}

	route, _ := c.Locals(localRoute).(string)
	if route == "" {
		route = unmatchedRoute
	}
	status := c.Response().StatusCode()
	elapsed := time.Since(start)
	method := ownMethod(c.Method())
	h.metrics.observe(route, method, status, elapsed)
	attrs := []slog.Attr{
		slog.String("method", method),
		slog.String("route", route),
		slog.String("path", utils.CopyString(c.Path())),
		slog.Int("status", status),
		slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
	}
	// account_id comes from the context (identify put it there), like
	// correlation_id: the logger adds both.
	h.log.LogAttrs(c.UserContext(), slog.LevelInfo, "request", attrs...)
	return nil
}

// route returns a route's handlers preceded by its label and rate limiter.
// Routes naming the same budget (policy.name) count against one budget:
// its key is the budget's name, not the route's.
func (h *Handlers) route(label string, p policy, hs []fiber.Handler) []fiber.Handler {
	var boxed any = label // boxed once, not on every request
	out := []fiber.Handler{func(c *fiber.Ctx) error {
		c.Locals(localRoute, boxed)
		return c.Next()
	}}
	if h.cfg.RateLimiting {
		budget := p.name
		if budget == "" {
			budget = label
		}
		out = append(out, h.limiter(budget, p.max, h.whoKey))
	}
	return append(out, hs...)
}

// signInLimiter limits sign-in and setup attempts per client IP, always.
func (h *Handlers) signInLimiter(label string) fiber.Handler {
	return h.limiter("signin:"+label, h.cfg.SignInLimit, func(c *fiber.Ctx) string { return "ip:" + h.clientIP(c) })
}

// whoKey is whom a request is counted against: the account when signed in,
// else the client IP.
func (h *Handlers) whoKey(c *fiber.Ctx) string {
	if u, ok := c.Locals(localUser).(services.User); ok {
		return "account:" + strconv.FormatInt(u.AccountID, 10)
	}
	return "ip:" + h.clientIP(c)
}

// limiter is one budget's rate limiter: limit requests a minute per who,
// counted by h.rates (in memory, or in Redis across instances). A refusal
// is a 429 with Retry-After, counted in the rejections metric under the
// route that was refused. The X-RateLimit-* headers are those of the
// tightest budget the request was counted against (noteBudget), refusals
// included.
func (h *Handlers) limiter(budget string, limit int, who func(*fiber.Ctx) string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		res := h.rates.Allow(c.UserContext(), h.cfg.LimiterKeyPrefix+budget+":"+who(c), ratelimit.PerMinute(limit))
		if !res.Allowed {
			route, _ := c.Locals(localRoute).(string)
			h.metrics.rateLimited(route)
			wait := ceilSeconds(res.RetryAfter)
			noteBudget(c, budgetState{limit: limit, remaining: 0, reset: wait, refused: true})
			return &services.Error{
				Code:       services.ERATELIMIT,
				Message:    fmt.Sprintf("Too many requests. Try again in %d second%s.", wait, plural(wait)),
				RetryAfter: time.Duration(wait) * time.Second,
			}
		}
		noteBudget(c, budgetState{limit: limit, remaining: res.Remaining, reset: ceilSeconds(res.ResetAfter)})
		return c.Next()
	}
}

// ceilSeconds is d in whole seconds, rounded up, at least 1: what the
// Retry-After and X-RateLimit-Reset headers say.
func ceilSeconds(d time.Duration) int {
	return max(int((d+time.Second-1)/time.Second), 1)
}

// bearerToken returns the token of an "Authorization: Bearer" header, or "".
func bearerToken(c *fiber.Ctx) string {
	auth := c.Get(fiber.HeaderAuthorization)
	if len(auth) > 7 && strings.EqualFold(auth[:7], "bearer ") {
		return strings.TrimSpace(auth[7:])
	}
	return ""
}

// apiBearer returns the API token of a request to the JSON API, or "". API
// tokens are for /api only: on browser routes the header is ignored. (Fiber
// routes ignore case, and no browser route starts with /api/ in any case.)
func apiBearer(c *fiber.Ctx) string {
	if p := c.Path(); len(p) < 5 || !strings.EqualFold(p[:5], "/api/") {
		return ""
	}
	return bearerToken(c)
}

// identify finds who is calling: on the JSON API an API token when the
// request carries one (cookies are then ignored), else the session cookie.
// It rejects nothing; requirePage and requireAPI do.
func (h *Handlers) identify(c *fiber.Ctx) error {
	ctx := c.UserContext()
	var (
		u       services.User
		err     error
		session string
	)
	if tok := apiBearer(c); tok != "" {
		u, err = h.accounts.TokenUser(ctx, tok)
	} else if cookie := c.Cookies(h.sessionCookieName()); cookie != "" {
		u, err = h.accounts.SessionUser(ctx, cookie)
		session = cookie
	} else {
		return c.Next()
	}
	switch services.ErrorCode(err) {
	case "":
		c.Locals(localUser, u)
		if session != "" {
			c.Locals(localSession, session)
		}
		c.SetUserContext(services.WithAccountID(ctx, u.AccountID))
	case services.EUNAUTHORIZED:
		// Anonymous: the route decides whether that is allowed.
	default:
		return err
	}
	return c.Next()
}

func currentUser(c *fiber.Ctx) (services.User, bool) {
	u, ok := c.Locals(localUser).(services.User)
	return u, ok
}

// requirePage lets signed-in owners through and sends others to sign in
// (or, on a fresh install, to create the owner account).
func (h *Handlers) requirePage(c *fiber.Ctx) error {
	if _, ok := currentUser(c); ok {
		return c.Next()
	}
	if c.Method() == fiber.MethodGet && !isHTMX(c) {
		setup, err := h.accounts.SetupNeeded(c.UserContext())
		if err != nil {
			return err
		}
		if setup {
			return c.Redirect("/setup", fiber.StatusSeeOther)
		}
	}
	return services.Errorf(services.EUNAUTHORIZED, "Sign in to continue.")
}

// requireAPI lets callers with a valid API token or session through and
// answers others 401 problem+json.
func (h *Handlers) requireAPI(c *fiber.Ctx) error {
	if _, ok := currentUser(c); ok {
		return c.Next()
	}
	if apiBearer(c) != "" {
		return services.Errorf(services.EUNAUTHORIZED, "The API token is invalid or revoked.")
	}
	return services.Errorf(services.EUNAUTHORIZED, "Send an API token in the Authorization header (Bearer) or sign in.")
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

package handlers

import (
	"errors"
	"log/slog"
	"mime"
	"net"
	"os"
	"slices"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"
	"github.com/valyala/fasthttp"

	"github.com/ava/console/services"
)

// Limits of one request (README, Operating it: 413 over 1 MiB, 431 over the header
// limit).
const (
	// bodyLimit is the largest request body read.
	bodyLimit = 1 << 20
	// headerLimit bounds the request line and headers together. checkHeaders
	// enforces it, so that the answer knows the path (problem+json on /api).
	headerLimit = 16 << 10
	// readBufferSize is fasthttp's read buffer, which bounds what it can
	// parse at all: headers over it are refused before any route is known
	// (serverError answers 431 with a page then).
	readBufferSize = 2 * headerLimit
)

func errTooLarge() *services.Error {
	return services.Errorf(services.ETOOLARGE, "The request body is over the limit of 1 MiB.")
}

func errHeaders() *services.Error {
	return services.Errorf(services.EHEADERS, "The request headers are over the limit of %d KiB.", headerLimit>>10)
}

func errClientTimeout() *services.Error {
	return services.Errorf(services.ETIMEOUTCLIENT, "The request did not arrive in time.")
}

// serverError answers what fasthttp refuses while reading a request, before
// any route runs: headers over its buffer (431), a body over the limit (413),
// a client too slow to send its request (408), anything else unreadable
// (400). These are the client's doing: handleError logs them at debug level,
// never as internal errors. It replaces fiber's own server error handler,
// which turns a client's dropped connection into a 502.
func (h *Handlers) serverError(app *fiber.App) func(*fasthttp.RequestCtx, error) {
	return func(fctx *fasthttp.RequestCtx, err error) {
		c := app.AcquireCtx(fctx)
		defer app.ReleaseCtx(c)
		securityHeaders(c)
		if herr := h.handleError(c, readError(err)); herr != nil {
			h.log.ErrorContext(c.UserContext(), "writing the error response failed", slog.Any("error", herr))
			_ = c.SendStatus(fiber.StatusInternalServerError)
		}
		h.metrics.observe(unmatchedRoute, utils.CopyString(c.Method()), c.Response().StatusCode(), 0)
	}
}

// readError classifies an error of fasthttp's request reading. The cause is
// kept out of the answer and the logs: its text may quote the request's
// headers.
func readError(err error) *services.Error {
	var small *fasthttp.ErrSmallBuffer
	var netErr net.Error
	switch {
	case errors.As(err, &small):
		return errHeaders()
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		return errTooLarge()
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &netErr) && netErr.Timeout():
		return errClientTimeout()
	case errors.Is(err, fasthttp.ErrGetOnly):
		return services.Errorf(services.EMETHOD, "This address does not accept that method.")
	default:
		return services.Errorf(services.EBADREQUEST, "The request could not be read as HTTP.")
	}
}

// securityHeaders are helmet's main headers, for the answers that never
// reach the middleware (serverError).
func securityHeaders(c *fiber.Ctx) {
	c.Set(fiber.HeaderContentSecurityPolicy, contentSecurityPolicy)
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Set(fiber.HeaderXFrameOptions, "DENY")
	c.Set(fiber.HeaderReferrerPolicy, "strict-origin-when-cross-origin")
}

// checkHeaders refuses a request line and headers over headerLimit (431).
func checkHeaders(c *fiber.Ctx) error {
	req := c.Request()
	if len(req.Header.RawHeaders())+len(req.RequestURI()) > headerLimit {
		return errHeaders()
	}
	return c.Next()
}

// requireJSON refuses a body that is not application/json (415). It guards
// the JSON API's PUT and POST routes, after their authentication: a request
// with neither a body nor a Content-Type passes, and its handler says what
// is missing.
func requireJSON(c *fiber.Ctx) error {
	ct := c.Get(fiber.HeaderContentType)
	if ct == "" && len(c.Body()) == 0 {
		return c.Next()
	}
	if mt, _, err := mime.ParseMediaType(ct); err == nil && mt == fiber.MIMEApplicationJSON {
		return c.Next()
	}
	return services.Errorf(services.EUNSUPPORTED, "Send the body as JSON, with Content-Type: application/json.")
}

// jsonAPI puts requireJSON in front of the last handler of a JSON API route
// (the one that reads the body); other routes keep their handlers.
func jsonAPI(path string, hs []fiber.Handler) []fiber.Handler {
	if !strings.HasPrefix(path, "/api/") || len(hs) == 0 {
		return hs
	}
	out := slices.Clone(hs[:len(hs)-1])
	return append(out, requireJSON, hs[len(hs)-1])
}

// knownRoute is one registered method and path pattern.
type knownRoute struct {
	method, pattern string
}

// methodOrder is the order of the methods in an Allow header.
var methodOrder = []string{
	fiber.MethodGet, fiber.MethodHead, fiber.MethodPost, fiber.MethodPut, fiber.MethodPatch, fiber.MethodDelete,
}

// allowedMethods returns the methods registered for the request's path, in
// methodOrder (HEAD with GET, as Fiber registers it); none for an unknown path.
func (h *Handlers) allowedMethods(c *fiber.Ctx) []string {
	cfg := c.App().Config()
	seen := map[string]bool{}
	for _, r := range h.known {
		if !seen[r.method] && fiber.RoutePatternMatch(c.Path(), r.pattern, cfg) {
			seen[r.method] = true
			if r.method == fiber.MethodGet {
				seen[fiber.MethodHead] = true
			}
		}
	}
	var out []string
	for _, m := range methodOrder {
		if seen[m] {
			out = append(out, m)
		}
	}
	return out
}

// unmatched answers what no route took: 405 with Allow when the path is
// known under other methods only, else 404 (a prefix route such as /static
// lets a missing file through to here under its own method).
func (h *Handlers) unmatched(c *fiber.Ctx) error {
	allow := h.allowedMethods(c)
	if len(allow) == 0 || slices.Contains(allow, c.Method()) {
		return fiber.ErrNotFound
	}
	list := strings.Join(allow, ", ")
	c.Set(fiber.HeaderAllow, list)
	return services.Errorf(services.EMETHOD, "This address does not accept %s; it accepts %s.", methodName(c.Method()), list)
}

// methodName is a request's method fit for a message: a known method, or
// "this method".
func methodName(m string) string {
	if slices.Contains(methodOrder, m) || m == fiber.MethodOptions || m == fiber.MethodTrace || m == fiber.MethodConnect {
		return m
	}
	return "this method"
}

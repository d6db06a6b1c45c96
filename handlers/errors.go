package handlers

import (
	"errors"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/ava/console/components"
	"github.com/ava/console/services"
)

// statusOf is the one place where error codes become HTTP statuses.
func statusOf(code services.Code) int {
	switch code {
	case services.EINVALID:
		return fiber.StatusUnprocessableEntity
	case services.ENOTFOUND:
		return fiber.StatusNotFound
	case services.EUNAUTHORIZED:
		return fiber.StatusUnauthorized
	case services.EFORBIDDEN:
		return fiber.StatusForbidden
	case services.ECONFLICT:
		return fiber.StatusConflict
	case services.ERATELIMIT:
		return fiber.StatusTooManyRequests
	case services.EUPSTREAM:
		return fiber.StatusBadGateway
	case services.EUNAVAILABLE:
		return fiber.StatusServiceUnavailable
	case services.ETIMEOUT:
		return fiber.StatusGatewayTimeout
	case services.EBADREQUEST:
		return fiber.StatusBadRequest
	case services.EMETHOD:
		return fiber.StatusMethodNotAllowed
	case services.ETIMEOUTCLIENT:
		return fiber.StatusRequestTimeout
	case services.ETOOLARGE:
		return fiber.StatusRequestEntityTooLarge
	case services.EUNSUPPORTED:
		return fiber.StatusUnsupportedMediaType
	case services.EHEADERS:
		return fiber.StatusRequestHeaderFieldsTooLarge
	default:
		return fiber.StatusInternalServerError
	}
}

// titles are the short, fixed summaries of each code (problem+json "title").
var titles = map[services.Code]string{
	services.EINVALID:      "Invalid value",
	services.ENOTFOUND:     "Not found",
	services.EUNAUTHORIZED: "Unauthorized",
	services.EFORBIDDEN:    "Forbidden",
	services.ECONFLICT:     "Conflict",
	services.ERATELIMIT:    "Too many requests",
	services.EUPSTREAM:     "Upstream error",
	services.EUNAVAILABLE:  "Service unavailable",
	services.ETIMEOUT:      "Upstream timeout",
	services.EINTERNAL:     "Internal error",

	services.EBADREQUEST:    "Bad request",
	services.EMETHOD:        "Method not allowed",
	services.ETIMEOUTCLIENT: "Request timeout",
	services.ETOOLARGE:      "Request too large",
	services.EUNSUPPORTED:   "Unsupported media type",
	services.EHEADERS:       "Request headers too large",
}

// errCSRF is what a refused CSRF check becomes (a fresh value each time:
// handlers may set fields on the errors they get).
func errCSRF() *services.Error {
	return services.Errorf(services.EFORBIDDEN,
		"This form has expired or came from another site. Reload the page and try again.")
}

// asAppError turns any error a handler or middleware returns into an
// *services.Error: ours pass through, Fiber's get a code, everything else
// is internal.
func asAppError(err error) *services.Error {
	var appErr *services.Error
	if errors.As(err, &appErr) {
		return appErr
	}
	var fe *fiber.Error
	if errors.As(err, &fe) {
		switch fe.Code {
		case fiber.StatusNotFound:
			return services.Errorf(services.ENOTFOUND, "There is nothing at this address.")
		case fiber.StatusMethodNotAllowed:
			return services.Errorf(services.EMETHOD, "This address does not accept that method.")
		case fiber.StatusRequestEntityTooLarge:
			return errTooLarge()
		case fiber.StatusRequestHeaderFieldsTooLarge:
			return errHeaders()
		case fiber.StatusRequestTimeout:
			return errClientTimeout()
		case fiber.StatusBadRequest, fiber.StatusUnprocessableEntity:
			return services.Errorf(services.EINVALID, "The request could not be read.")
		}
	}
	return services.Internal(err)
}

// problem is an RFC 9457 problem details document.
type problem struct {
	Type          string `json:"type"`
	Title         string `json:"title"`
	Status        int    `json:"status"`
	Detail        string `json:"detail"`
	Instance      string `json:"instance,omitempty"`
	CorrelationID string `json:"correlation_id"`
	// Field names the input a validation error is about.
	Field string `json:"field,omitempty"`
}

// handleError is Fiber's ErrorHandler: it answers every error in the form the
// caller asked for (problem+json for the API, a fragment for htmx, a page
// otherwise) and logs what the user does not see.
func (h *Handlers) handleError(c *fiber.Ctx, err error) error {
	appErr := asAppError(err)
	status := statusOf(appErr.Code)
	ctx := c.UserContext()
	corr := services.CorrelationID(ctx)
	if corr == "" {
		// fasthttp refused the request while reading it (serverError):
		// observe never ran, but the answer still carries an id.
		corr = services.CorrelationIDFrom(c.Get(services.CorrelationHeader))
		c.Set(services.CorrelationHeader, corr)
		ctx = services.WithCorrelationID(ctx, corr)
		c.SetUserContext(ctx)
	}
	if status >= 500 {
		h.log.ErrorContext(ctx, "request failed", slog.String("code", string(appErr.Code)), slog.Any("error", err))
	} else {
		h.log.DebugContext(ctx, "request refused", slog.String("code", string(appErr.Code)), slog.String("reason", appErr.Message))
	}
	if appErr.RetryAfter > 0 {
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(retrySeconds(appErr.RetryAfter)))
	}
	message := services.ErrorMessage(appErr)

	switch {
	case isAPI(c):
		c.Set(fiber.HeaderContentType, "application/problem+json")
		if status == fiber.StatusUnauthorized {
			c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="ava"`)
		}
		return c.Status(status).JSON(problem{
			Type: "urn:ava:problem:" + string(appErr.Code), Title: titles[appErr.Code], Status: status,
			Detail: message, Instance: c.Path(), CorrelationID: corr, Field: appErr.Field,
		}, "application/problem+json")
	case isHTMX(c):
		if status == fiber.StatusUnauthorized {
			c.Set("HX-Redirect", "/login")
			return c.SendStatus(status)
		}
		alert := components.Alert{Title: alertTitle(appErr), Message: message, Reference: corr}
		if c.Method() == fiber.MethodGet {
			alert.RetryURL = c.OriginalURL()
		}
		c.Status(status)
		return renderComponent(c, components.AlertWithRetry(alert))
	default:
		if status == fiber.StatusUnauthorized && c.Method() == fiber.MethodGet {
			return c.Redirect("/login", fiber.StatusSeeOther)
		}
		c.Status(status)
		return h.renderPage(c, "error", titles[appErr.Code], "", errorPage{
			Title: titles[appErr.Code],
			Alert: components.Alert{Title: message, Reference: corr},
		})
	}
}

type errorPage struct {
	Title string
	Alert components.Alert
}

// alertTitle is the first line of an error alert: what happened, in words.
func alertTitle(e *services.Error) string {
	switch e.Code {
	case services.ERATELIMIT:
		return "Too many requests"
	case services.EUNAVAILABLE, services.EUPSTREAM, services.ETIMEOUT:
		return "The service did not answer as expected"
	case services.EINTERNAL:
		return "Something went wrong on our side"
	case services.ENOTFOUND:
		return "Not found"
	case services.EFORBIDDEN:
		return "Not allowed"
	default:
		return "This could not be done"
	}
}

func retrySeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

// isAPI reports whether the caller wants JSON: the API and the probes.
func isAPI(c *fiber.Ctx) bool {
	p := c.Path()
	return strings.HasPrefix(p, "/api/") || p == "/healthz" || p == "/readyz" || p == eventsPath
}

func isHTMX(c *fiber.Ctx) bool { return c.Get("HX-Request") == "true" }

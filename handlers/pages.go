package handlers

import (
	"context"
	"encoding/json"
	"html/template"
	"net/http"
	"time"

	"github.com/a-h/templ"
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/template/html/v2"

	"github.com/ava/console/components"
	"github.com/ava/console/services"
	"github.com/ava/console/services/vapi"
	"github.com/ava/console/views"
)

// navItems are the console's sections in the main navigation. A section
// gets its entry when its page exists.
var navItems = []components.NavItem{
	{Label: "Home", Href: "/", Key: "home"},
	{Label: "Vapi settings", Href: "/vapi", Key: "vapi"},
	{Label: "Phone numbers", Href: "/numbers", Key: "numbers"},
	{Label: "Integrations", Href: "/integrations", Key: "integrations"},
	{Label: "API tokens", Href: "/tokens", Key: "tokens"},
}

// fieldLabels name credential fields for people.
var fieldLabels = map[string]string{
	"api_key": "API key", "assistant_id": "Assistant ID", "account_sid": "Account SID",
	"auth_token": "Auth token", "api_key_sid": "API key SID", "access_token": "Access token",
}

// page is what every page template receives.
type page struct {
	Title  string
	Active string
	User   *services.User
	CSRF   string
	Data   any
}

// newEngine loads the page templates with the template functions that bring
// the templ components (one per UI state) into them.
func newEngine() (*html.Engine, error) {
	engine := html.NewFileSystem(http.FS(views.FS), ".html")
	toHTML := func(c templ.Component) (template.HTML, error) {
		return templ.ToGoHTML(context.Background(), c)
	}
	engine.AddFuncMap(map[string]any{
		"nav": func(p page) (template.HTML, error) {
			email := ""
			if p.User != nil {
				email = p.User.Email
			}
			return toHTML(components.Nav(navItems, p.Active, email, p.CSRF))
		},
		"skeleton":    func(label string, rows int) (template.HTML, error) { return toHTML(components.Skeleton(label, rows)) },
		"emptyState":  func(title, msg string) (template.HTML, error) { return toHTML(components.EmptyState(title, msg)) },
		"alert":       func(a components.Alert) (template.HTML, error) { return toHTML(components.AlertWithRetry(a)) },
		"formError":   func(msg string) (template.HTML, error) { return toHTML(components.FormError(msg)) },
		"toastRegion": func() (template.HTML, error) { return toHTML(components.ToastRegion()) },
		// The alert static/app.js shows when the server cannot be reached;
		// it sets the retry button's request before showing it.
		"connectionAlert": func() (template.HTML, error) {
			return toHTML(components.AlertWithRetry(components.Alert{
				Title:    "Cannot reach the console",
				Message:  "Check your connection, then try again.",
				RetryURL: "/",
			}))
		},
		"testResult": func(ok bool, msg string) (template.HTML, error) { return toHTML(components.TestResult(ok, msg)) },
		"emptyStateLink": func(title, msg, href, label string) (template.HTML, error) {
			return toHTML(components.EmptyStateLink(title, msg, href, label))
		},
		"json": func(v any) string {
			b, _ := json.Marshal(v)
			return string(b)
		},
		"inputValue": func(v any) string {
			switch x := v.(type) {
			case nil:
				return ""
			case string:
				return x
			default:
				b, _ := json.Marshal(x)
				return string(b)
			}
		},
		"fieldLabel": func(field string) string {
			if l, ok := fieldLabels[field]; ok {
				return l
			}
			return field
		},
		"breakerLabel": func(state string) string {
			switch state {
			case "open":
				return "Open: calls are paused after repeated failures"
			case "half-open":
				return "Half-open: trying again"
			default:
				return "Closed: calls go through"
			}
		},
		// auditValue shows a JSON value of the audit trail: strings as
		// their text in quotes, numbers as they are.
		"auditValue": func(raw string) string {
			var v any
			if err := json.Unmarshal([]byte(raw), &v); err != nil {
				return raw
			}
			if s, ok := v.(string); ok {
				return "\u201c" + s + "\u201d"
			}
			return raw
		},
		"settingLabel": vapi.Label,
		"when":         func(t time.Time) string { return t.UTC().Format("2 Jan 2006, 15:04 UTC") },
		"iso":          func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	})
	if err := engine.Load(); err != nil {
		return nil, err
	}
	return engine, nil
}

func csrfToken(c *fiber.Ctx) string {
	t, _ := c.Locals(localCSRF).(string)
	return t
}

// renderPage renders a full page through the views.
func (h *Handlers) renderPage(c *fiber.Ctx, name, title, active string, data any) error {
	p := page{Title: title, Active: active, CSRF: csrfToken(c), Data: data}
	if u, ok := currentUser(c); ok {
		p.User = &u
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Render(name, p)
}

// renderFragment renders a view template as an htmx fragment.
func (h *Handlers) renderFragment(c *fiber.Ctx, name string, data any) error {
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Render(name, data)
}

// renderComponent writes a templ component as the (fragment) response body.
func renderComponent(c *fiber.Ctx, comps ...templ.Component) error {
	c.Type("html", "utf-8")
	c.Set(fiber.HeaderCacheControl, "no-store")
	for _, comp := range comps {
		if err := comp.Render(c.UserContext(), c.Response().BodyWriter()); err != nil {
			return err
		}
	}
	return nil
}

// toast appends an out-of-band toast to an htmx response that has been
// rendered already.
func toast(c *fiber.Ctx, kind, message string) error {
	return components.ToastOOB(kind, message).Render(c.UserContext(), c.Response().BodyWriter())
}

package handlers

import (
	"context"
	"encoding/json"
	"html/template"
	"net/http"
	"strings"

	"github.com/a-h/templ"
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/template/html/v2"

	"github.com/ava/console/components"
	"github.com/ava/console/services"
	"github.com/ava/console/services/integrations"
	"github.com/ava/console/services/vapi"
	"github.com/ava/console/views"
)

// navItems are the console's sections in the main navigation: home, each
// integration that has a page, then the Integrations and API tokens pages.
// An integration page's key is its integration's name.
func navItems(specs []integrations.Spec) []components.NavItem {
	items := []components.NavItem{{Label: "Home", Href: "/", Key: "home"}}
	for _, s := range specs {
		if s.Page != nil {
			items = append(items, components.NavItem{Label: s.Page.Title, Href: s.Page.Href, Key: s.Name})
		}
	}
	return append(items,
		components.NavItem{Label: "Integrations", Href: "/integrations", Key: "integrations"},
		components.NavItem{Label: "API tokens", Href: "/tokens", Key: "tokens"})
}

// page is what every page template receives.
type page struct {
	Title  string
	Active string
	User   *services.User
	CSRF   string
	Data   any
	// Flash is a toast a redirect left for this page.
	Flash *flash
	// Served is when the request for the page began (Unix milliseconds),
	// and Origin the instance that served it: its live-update stream says
	// both (GET /events?since=&from=), to get what changed before the
	// stream began.
	Served int64
	Origin string
}

// newEngine loads the page templates with the template functions that bring
// the templ components (one per UI state) into them.
func newEngine(nav []components.NavItem) (*html.Engine, error) {
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
			return toHTML(components.Nav(nav, p.Active, email, p.CSRF))
		},
		"skeleton":   func(label string, rows int) (template.HTML, error) { return toHTML(components.Skeleton(label, rows)) },
		"emptyState": func(title, msg string) (template.HTML, error) { return toHTML(components.EmptyState(title, msg)) },
		"alert":      func(a components.Alert) (template.HTML, error) { return toHTML(components.AlertWithRetry(a)) },
		"formError":  func(msg string) (template.HTML, error) { return toHTML(components.FormError(msg)) },
		"toastRegion": func(p page) (template.HTML, error) {
			if p.Flash != nil {
				return toHTML(components.ToastRegionWith(p.Flash.kind, p.Flash.message))
			}
			return toHTML(components.ToastRegion())
		},
		// loading is a live region's loading state: the skeleton and a
		// link to its content for when no script runs (fragmentPage).
		"loading": func(label string, rows int, href string) (template.HTML, error) {
			return toHTML(components.RegionLoading(label, rows, href))
		},
		// The alert static/app.js shows when the server cannot be reached;
		// it sets the retry button's request before showing it.
		"connectionAlert": func() (template.HTML, error) {
			return toHTML(components.AlertWithRetry(components.Alert{
				Title:    "Cannot reach the console",
				Message:  "Check your connection, then try again.",
				RetryURL: "/",
			}))
		},
		"homeSections": func(s []components.Section) (template.HTML, error) { return toHTML(components.HomeSections(s)) },
		"liveStatus":   func() (template.HTML, error) { return toHTML(components.LiveStatus()) },
		"emptyStateLink": func(title, msg, href, label string) (template.HTML, error) {
			return toHTML(components.EmptyStateLink(title, msg, href, label))
		},
		"emailConnection": func(conn integrations.Resolved) (template.HTML, error) {
			return toHTML(components.EmailConnection(conn))
		},
		"emailTestForm": func(f components.EmailForm) (template.HTML, error) { return toHTML(components.EmailTestForm(f)) },
		"integrationCard": func(c components.IntegrationCard) (template.HTML, error) {
			return toHTML(components.IntegrationCardView(c))
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
		"when":         components.When,
		"iso":          components.ISO,
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
	p := page{Title: title, Active: active, CSRF: csrfToken(c), Data: data, Served: c.Context().Time().UnixMilli(), Origin: h.events.Origin()}
	if u, ok := currentUser(c); ok {
		p.User = &u
	}
	if f, ok := h.takeFlash(c); ok {
		p.Flash = &f
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Render(name, p)
}

// fragmentPageData is what views/fragment_page.html shows: a region's
// fragment, rendered already, and the live page it belongs to.
type fragmentPageData struct {
	HTML      template.HTML
	Back      string
	BackLabel string
}

// fragmentPage answers a region's fragment (GET /fragments/...) asked for
// without htmx, as the region's fallback link does when no script runs, as
// a page: the fragment inside the layout, under the navigation. The
// section is the one whose nav key is the path's first segment
// (/fragments/vapi/settings: vapi). Errors go to the error handler, which
// answers a page to non-htmx requests already.
func (h *Handlers) fragmentPage(c *fiber.Ctx) error {
	if c.Method() != fiber.MethodGet {
		return c.Next()
	}
	c.Vary("HX-Request")
	if isHTMX(c) {
		return c.Next()
	}
	if err := c.Next(); err != nil {
		return err
	}
	resp := c.Response()
	status := resp.StatusCode()
	if status >= 300 && status < 400 || !strings.HasPrefix(string(resp.Header.ContentType()), fiber.MIMETextHTML) {
		return nil
	}
	fragment := string(resp.Body()) // a copy: the body is reset below
	section := components.NavItem{Label: "Ava console", Href: "/"}
	key, _, _ := strings.Cut(strings.TrimPrefix(c.Path(), "/fragments/"), "/")
	for _, it := range h.nav {
		if it.Key == key {
			section = it
		}
	}
	data := fragmentPageData{
		HTML: template.HTML(fragment), //nolint:gosec // our own rendered (escaped) fragment
		Back: section.Href, BackLabel: section.Label,
	}
	resp.ResetBody()
	return h.renderPage(c, "fragment_page", section.Label, section.Key, data)
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

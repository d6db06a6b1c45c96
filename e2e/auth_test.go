package e2e

import (
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/playwright-community/playwright-go"
)

const (
	ownerEmail    = "owner@example.com"
	ownerPassword = "correct horse battery staple"
)

var (
	uuidPattern  = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	homeSections = []string{"Vapi settings", "Phone numbers", "Email", "API tokens"}
)

func TestFirstRunSetupAndSignIn(t *testing.T) {
	c := startConsole(t)
	page := newPage(t)

	// No owner yet: the console sends everyone to first-run setup.
	open(t, page, c, "/")
	expectAt(t, page, c, "/setup")
	createOwner(t, page, c, ownerEmail, ownerPassword)
	expectHome(t, page)

	// Another browser, without a session.
	other := newPage(t)
	open(t, other, c, "/")
	expectAt(t, other, c, "/login")

	// A wrong password (and an unknown email) shows one error and stays on /login.
	for _, attempt := range []struct{ email, password string }{
		{ownerEmail, "not the password"},
		{"nobody@example.com", ownerPassword},
	} {
		submitLogin(t, other, c, attempt.email, attempt.password)
		check(t, expect.Locator(getRole(other, "alert", "")).ToContainText("Incorrect email or password"),
			"error after signing in as "+attempt.email)
		expectAt(t, other, c, "/login")
	}

	// The right password still works afterwards.
	signIn(t, other, c, ownerEmail, ownerPassword)
	expectHome(t, other)
}

func TestAPITokenLifecycle(t *testing.T) {
	c := startConsole(t)
	page := newPage(t)
	var dialogs atomic.Int32
	page.OnDialog(func(d playwright.Dialog) {
		dialogs.Add(1)
		_ = d.Dismiss()
	})
	createOwner(t, page, c, ownerEmail, ownerPassword)

	// The list loads via htmx: first a busy skeleton, then the empty state.
	release := holdHTMX(t, page)
	check(t, getRoleIn(getRole(page, "navigation", "Main"), "link", "API tokens").Click(), "nav link API tokens")
	expectAt(t, page, c, "/tokens")
	check(t, expect.Locator(page.GetByRole("heading", playwright.PageGetByRoleOptions{
		Name: "API tokens", Exact: playwright.Bool(true), Level: playwright.Int(1),
	})).ToBeVisible(), "h1 API tokens")
	skeleton := page.Locator(".skeleton")
	check(t, expect.Locator(page.Locator(`.skeleton[aria-busy="true"]`).First()).ToBeVisible(), "skeleton before the list loads")
	release()
	check(t, expect.Locator(page.GetByText("No API tokens yet")).ToBeVisible(), "empty state")
	check(t, expect.Locator(skeleton).ToHaveCount(0), "skeleton gone")

	// A blank name (spaces pass the browser's "required"): the error is
	// announced, focused, and tied to the field, which keeps what was typed.
	fill(t, page, "Token name", "   ")
	click(t, page, "button", "Create token")
	nameError := page.Locator("#token-error").GetByRole("alert")
	check(t, expect.Locator(nameError).ToContainText("Token name must be 1 to 64 characters"), "blank name refused")
	check(t, expect.Locator(nameError).ToBeFocused(), "focus on the name error")
	check(t, expect.Locator(getLabel(page, "Token name")).ToHaveAttribute("aria-invalid", "true"), "name field marked invalid")
	check(t, expect.Locator(page.GetByText("No API tokens yet")).ToBeVisible(), "no token created")

	// Create a token: shown once, toast, row with a Revoke button.
	fill(t, page, "Token name", "ci-bot")
	click(t, page, "button", "Create token")
	newToken := page.GetByTestId("new-token")
	check(t, expect.Locator(newToken).ToHaveText(regexp.MustCompile(`^\s*ava_\S+\s*$`)), "new token value")
	toasts := page.Locator("#toasts")
	check(t, expect.Locator(toasts).ToHaveAttribute("role", "status"), "toast live region")
	check(t, expect.Locator(toasts).ToContainText("Token created"), "toast after create")
	row := getRole(page, "row", "").Filter(playwright.LocatorFilterOptions{HasText: "ci-bot"})
	check(t, expect.Locator(row).ToBeVisible(), "token row")
	revoke := getRoleIn(row, "button", "Revoke ci-bot")
	check(t, expect.Locator(revoke).ToBeVisible(), "Revoke button")
	text, err := newToken.TextContent()
	check(t, err, "read new token")
	token := strings.TrimSpace(text)

	// The token works on the JSON API; the correlation ID we send comes back.
	res := c.api(t, "GET", "/api/v1/me", token, nil, "X-Correlation-ID", "e2e-me-1")
	if res.Status != http.StatusOK {
		t.Fatalf("GET /api/v1/me with the new token: status %d, body %s", res.Status, res.Body)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("GET /api/v1/me: Content-Type %q, want application/json", ct)
	}
	if got := res.Header.Get("X-Correlation-ID"); got != "e2e-me-1" {
		t.Errorf("GET /api/v1/me: X-Correlation-ID %q, want the one sent (e2e-me-1)", got)
	}
	me := res.JSON(t)
	if me["email"] != ownerEmail {
		t.Errorf("GET /api/v1/me: email %v, want %s", me["email"], ownerEmail)
	}
	for _, k := range []string{"id", "account_id"} {
		if v, ok := me[k]; !ok || v == nil || v == "" {
			t.Errorf("GET /api/v1/me: member %q missing or empty in %s", k, res.Body)
		}
	}
	if !strings.Contains(c.logs(), "e2e-me-1") {
		t.Errorf("no server log line carries the correlation ID e2e-me-1")
	}

	// Without a token: 401 problem details, with a generated correlation ID.
	expectProblem(t, c.api(t, "GET", "/api/v1/me", "", nil), http.StatusUnauthorized, "")

	// Revoke: no confirm dialog, a toast, and the row says so.
	check(t, revoke.Click(), "click Revoke ci-bot")
	check(t, expect.Locator(toasts).ToContainText("Token revoked"), "toast after revoke")
	check(t, expect.Locator(row).ToContainText("Revoked"), "row after revoke")
	if n := dialogs.Load(); n != 0 {
		t.Errorf("revoking opened %d dialog(s), want none", n)
	}

	// The revoked token no longer works.
	expectProblem(t, c.api(t, "GET", "/api/v1/me", token, nil, "X-Correlation-ID", "e2e-me-2"), http.StatusUnauthorized, "e2e-me-2")

	// Secrets never reach the logs.
	if strings.Contains(c.logs(), token) {
		t.Errorf("the API token appears in the server log")
	}

	// Sign out lands on /login, and the session is gone.
	click(t, page, "button", "Sign out")
	expectAt(t, page, c, "/login")
	open(t, page, c, "/")
	expectAt(t, page, c, "/login")
}

func TestPhoneWidthNavigationAndHome(t *testing.T) {
	c := startConsole(t)
	c.cli(t, ownerPassword+"\n", "user", "create", "--email", ownerEmail, "--password-stdin")

	page := newPhonePage(t)
	signIn(t, page, c, ownerEmail, ownerPassword)
	expectHome(t, page)

	overflow, err := page.Evaluate(`() => document.documentElement.scrollWidth - document.documentElement.clientWidth`)
	check(t, err, "measure page width")
	if n, ok := overflow.(int); !ok || n > 0 {
		t.Errorf("home scrolls sideways at 390px: scrollWidth exceeds clientWidth by %v", overflow)
	}
}

// expectHome checks the home page: h1, main navigation, and its sections.
func expectHome(t *testing.T, page playwright.Page) {
	t.Helper()
	check(t, expect.Locator(page.GetByRole("heading", playwright.PageGetByRoleOptions{
		Name: "Home", Exact: playwright.Bool(true), Level: playwright.Int(1),
	})).ToBeVisible(), "h1 Home")
	nav := getRole(page, "navigation", "Main")
	check(t, expect.Locator(nav).ToBeVisible(), "navigation Main")
	for _, name := range []string{"Home", "API tokens"} {
		check(t, expect.Locator(getRoleIn(nav, "link", name)).ToBeVisible(), "nav link "+name)
	}
	check(t, expect.Locator(getRole(page, "button", "Sign out")).ToBeVisible(), "Sign out button")
	for _, name := range homeSections {
		check(t, expect.Locator(getRole(page, "heading", name)).ToBeVisible(), "home section "+name)
	}
}

// expectProblem checks an RFC 9457 problem answer. wantID "" means "a generated UUID".
func expectProblem(t *testing.T, res apiResult, status int, wantID string) {
	t.Helper()
	if res.Status != status {
		t.Fatalf("status %d, want %d; body %s", res.Status, status, res.Body)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Errorf("Content-Type %q, want application/problem+json", ct)
	}
	id := res.Header.Get("X-Correlation-ID")
	switch {
	case wantID == "" && !uuidPattern.MatchString(id):
		t.Errorf("X-Correlation-ID %q, want a generated UUID", id)
	case wantID != "" && id != wantID:
		t.Errorf("X-Correlation-ID %q, want %q", id, wantID)
	}
	p := res.JSON(t)
	for _, k := range []string{"type", "title", "status", "detail", "correlation_id"} {
		if _, ok := p[k]; !ok {
			t.Errorf("problem member %q missing in %s", k, res.Body)
		}
	}
	if s, _ := p["status"].(float64); int(s) != status {
		t.Errorf("problem status %v, want %d", p["status"], status)
	}
	if p["correlation_id"] != id {
		t.Errorf("problem correlation_id %v, want the X-Correlation-ID header %q", p["correlation_id"], id)
	}
}

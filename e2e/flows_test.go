package e2e

// Small helpers for locating things the way a user (or a screen reader) finds them, and for
// the flows most tests start with. Assertions use Playwright's web-first expect (it retries
// until pageTimeout), never sleeps:
//
//	check(t, expect.Locator(getRole(page, "heading", "Home")).ToBeVisible())

import (
	"fmt"
	"regexp"
	"sync"
	"testing"

	"github.com/playwright-community/playwright-go"
)

// check fails the test now if err (usually from an expect assertion or an action) is not nil.
func check(t testing.TB, err error, context ...any) {
	t.Helper()
	if err != nil {
		if len(context) > 0 {
			t.Fatalf("%s: %v", fmt.Sprint(context...), err)
		}
		t.Fatal(err)
	}
}

// getRole finds elements by ARIA role and exact accessible name (name "" matches any name).
func getRole(page playwright.Page, role, name string) playwright.Locator {
	opts := playwright.PageGetByRoleOptions{}
	if name != "" {
		opts.Name, opts.Exact = name, playwright.Bool(true)
	}
	return page.GetByRole(playwright.AriaRole(role), opts)
}

// getRoleIn is getRole inside the element(s) of scope.
func getRoleIn(scope playwright.Locator, role, name string) playwright.Locator {
	opts := playwright.LocatorGetByRoleOptions{}
	if name != "" {
		opts.Name, opts.Exact = name, playwright.Bool(true)
	}
	return scope.GetByRole(playwright.AriaRole(role), opts)
}

// getLabel finds a form control by its exact label ("Password" does not match "Confirm password").
func getLabel(page playwright.Page, label string) playwright.Locator {
	return page.GetByLabel(label, playwright.PageGetByLabelOptions{Exact: playwright.Bool(true)})
}

// open navigates to the console's path (e.g. "/tokens") and waits for the load event.
func open(t testing.TB, page playwright.Page, c *console, path string) {
	t.Helper()
	if _, err := page.Goto(c.URL + path); err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
}

// atPath matches the page URL c.URL+path, with or without a query string.
func atPath(c *console, path string) *regexp.Regexp {
	return regexp.MustCompile("^" + regexp.QuoteMeta(c.URL+path) + `(\?.*)?$`)
}

// expectAt waits until the page is at c.URL+path (any query string).
func expectAt(t testing.TB, page playwright.Page, c *console, path string) {
	t.Helper()
	check(t, expect.Page(page).ToHaveURL(atPath(c, path)), "page URL")
}

// fill types value into the control labelled label.
func fill(t testing.TB, page playwright.Page, label, value string) {
	t.Helper()
	check(t, getLabel(page, label).Fill(value), "fill "+label)
}

// click clicks the element with that role and exact name ("button", "Sign in").
func click(t testing.TB, page playwright.Page, role, name string) {
	t.Helper()
	check(t, getRole(page, role, name).Click(), "click "+role+" "+name)
}

// createOwner runs first-run setup on /setup and waits for the home page, signed in.
func createOwner(t testing.TB, page playwright.Page, c *console, email, password string) {
	t.Helper()
	open(t, page, c, "/setup")
	fill(t, page, "Email", email)
	fill(t, page, "Password", password)
	fill(t, page, "Confirm password", password)
	click(t, page, "button", "Create owner account")
	expectAt(t, page, c, "/")
	check(t, expect.Locator(getRole(page, "heading", "Home")).ToBeVisible(), "home heading after setup")
}

// signIn signs in on /login and waits for the home page.
func signIn(t testing.TB, page playwright.Page, c *console, email, password string) {
	t.Helper()
	submitLogin(t, page, c, email, password)
	expectAt(t, page, c, "/")
	check(t, expect.Locator(getRole(page, "heading", "Home")).ToBeVisible(), "home heading after sign-in")
}

// submitLogin fills and submits the /login form without checking the outcome.
func submitLogin(t testing.TB, page playwright.Page, c *console, email, password string) {
	t.Helper()
	open(t, page, c, "/login")
	fill(t, page, "Email", email)
	fill(t, page, "Password", password)
	click(t, page, "button", "Sign in")
}

// holdHTMX makes every htmx request of the page (header HX-Request: true) wait until
// release is called, so a test can see loading states (skeletons) deterministically.
// Call it before navigating. release is idempotent and also runs at cleanup.
func holdHTMX(t testing.TB, page playwright.Page) (release func()) {
	t.Helper()
	gate := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(gate) }) }
	err := page.Route("**/*", func(r playwright.Route) {
		if r.Request().Headers()["hx-request"] == "true" {
			<-gate
		}
		_ = r.Continue() // fails only if the page has gone away meanwhile
	})
	check(t, err, "route htmx requests")
	t.Cleanup(release)
	return release
}

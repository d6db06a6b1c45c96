package e2e

// A page whose script never runs (JavaScript off, or htmx.min.js missing from the build)
// must not hang on its skeletons: each live region offers a plain link to its content.

import (
	"testing"

	"github.com/playwright-community/playwright-go"
)

const settingsFallback = "Show Vapi settings without live loading"

// expectFallbackPage follows the settings region's fallback link and sees the settings on
// a page of their own, under the navigation.
func expectFallbackPage(t *testing.T, page playwright.Page, c *console) {
	t.Helper()
	link := getRole(page, "link", settingsFallback)
	check(t, expect.Locator(link).ToBeVisible(), "the fallback link of the settings")
	check(t, link.Click(), "follow the fallback link")
	expectAt(t, page, c, "/fragments/vapi/settings")
	check(t, expect.Locator(getRole(page, "heading", "Vapi settings")).ToBeVisible(), "the page's heading")
	check(t, expect.Locator(getRole(page, "navigation", "Main")).ToBeVisible(), "the navigation")
	check(t, expect.Locator(settingValue(page, "greeting_message")).ToHaveText(exactly(defaultGreeting)), "greeting value")
	check(t, expect.Locator(settingValue(page, "max_call_duration")).ToHaveText(exactly("600 seconds")), "max call duration value")
	check(t, expect.Locator(settingValue(page, "voice_speed")).ToHaveText(exactly("1×")), "voice speed value")
	check(t, expect.Locator(page.Locator("li.setting-row")).ToHaveCount(3), "three setting rows")
	check(t, expect.Locator(page.Locator(".skeleton")).ToHaveCount(0), "no skeleton")
	check(t, getRole(page, "link", "Back to Vapi settings").Click(), "back to the live page")
	expectAt(t, page, c, "/vapi")
}

func TestNoScriptRegionsOfferAFallbackLink(t *testing.T) {
	c, _ := startVapiConsole(t, withVapiEnv())
	page := openPage(t, playwright.BrowserNewContextOptions{
		Viewport:          &playwright.Size{Width: 1280, Height: 800},
		JavaScriptEnabled: playwright.Bool(false),
	})
	createOwner(t, page, c, ownerEmail, ownerPassword) // plain forms: no script needed
	open(t, page, c, "/vapi")
	// Nothing loads the regions: their skeletons stay, each with its link.
	check(t, expect.Locator(settingsRegion(page).Locator(".skeleton")).ToBeVisible(), "the settings skeleton")
	check(t, expect.Locator(getRole(page, "link", "Show recent changes without live loading")).ToBeVisible(), "the changes' fallback link")
	expectFallbackPage(t, page, c)
}

func TestNoScriptFallbackWhenHTMXIsMissing(t *testing.T) {
	c, _ := startVapiConsole(t, withVapiEnv())
	page := newPage(t)
	// The build lacks htmx (plain go build): its file does not load.
	check(t, page.Route("**/static/vendor/htmx.min.js", func(r playwright.Route) {
		_ = r.Fulfill(playwright.RouteFulfillOptions{Status: playwright.Int(404), Body: "not found"})
	}), "route htmx.min.js")
	createOwner(t, page, c, ownerEmail, ownerPassword)
	open(t, page, c, "/vapi")
	expectFallbackPage(t, page, c)
}

func TestNoScriptFallbackLinksHiddenWithScript(t *testing.T) {
	c, _ := startVapiConsole(t, withVapiEnv())
	page := newPage(t)
	release := holdHTMX(t, page)
	createOwner(t, page, c, ownerEmail, ownerPassword)
	open(t, page, c, "/vapi")
	// Loading: the skeleton shows, the fallback link does not.
	check(t, expect.Locator(settingsRegion(page).Locator(".skeleton")).ToBeVisible(), "the settings skeleton")
	check(t, expect.Locator(page.Locator(".fallback-link").First()).ToBeAttached(), "the link is in the page")
	check(t, expect.Locator(getRole(page, "link", settingsFallback)).ToBeHidden(), "the fallback link with script")
	release()
	expectSettingsList(t, page)
	check(t, expect.Locator(page.Locator(".fallback-link")).ToHaveCount(0), "no fallback link once loaded")
}

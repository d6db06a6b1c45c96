package e2e

// Helpers of the Vapi browser tests (vapi_test.go): a fake Vapi with one valid key and one
// assistant, a console wired to it, and locators for the settings page.

import (
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/playwright-community/playwright-go"

	"github.com/ava/console/services/vapi/vapitest"
)

const (
	vapiKey         = "sk-e2e-vapi-private-7c1d9f2a"    // the one key the fake accepts
	vapiAssistantID = "asst-e2e-2f6c1b9e"               // the fake's assistant ("Front desk")
	vapiBadKey      = "sk-e2e-not-the-private-key-0000" // refused by the fake

	greetingLabel = "Greeting message"
	durationLabel = "Maximum call duration"
	speedLabel    = "Voice speed"

	defaultGreeting = "Hello, thanks for calling. How can I help you today?"
)

// vapiRefused is the fake's answer to an unknown key: the console must show Vapi's own words.
const vapiRefused = "Invalid Key. Hot tip, make sure you're using the private key."

// newFakeVapi returns a fake Vapi that accepts vapiKey and holds the default assistant
// (vapiAssistantID: 11labs voice at speed 1, 600 s calls, name "Front desk").
func newFakeVapi() *vapitest.Server {
	fake := vapitest.New()
	fake.AddKey(vapiKey)
	fake.PutAssistant(vapitest.DefaultAssistant(vapiAssistantID))
	return fake
}

// withVapiEnv gives the console Vapi credentials through its environment
// (VAPI_API_KEY, VAPI_ASSISTANT_ID).
func withVapiEnv() consoleOption {
	return func(t testing.TB, cfg *consoleConfig) {
		withEnv("VAPI_API_KEY", vapiKey)(t, cfg)
		withEnv("VAPI_ASSISTANT_ID", vapiAssistantID)(t, cfg)
	}
}

// startVapiConsole starts a console whose VAPI_BASE_URL is a fresh fake Vapi.
func startVapiConsole(t testing.TB, opts ...consoleOption) (*console, *vapitest.Server) {
	t.Helper()
	fake := newFakeVapi()
	c := startConsole(t, append([]consoleOption{withUpstream("VAPI_BASE_URL", fake)}, opts...)...)
	return c, fake
}

// vapiOwner starts a console with the fake Vapi configured through the environment,
// opens a desktop page and signs the first owner in.
func vapiOwner(t testing.TB, opts ...consoleOption) (*console, *vapitest.Server, playwright.Page) {
	t.Helper()
	c, fake := startVapiConsole(t, append([]consoleOption{withVapiEnv()}, opts...)...)
	page := newPage(t)
	createOwner(t, page, c, ownerEmail, ownerPassword)
	return c, fake, page
}

// settingsRegion is the "Settings" card of /vapi (the region htmx fills).
func settingsRegion(page playwright.Page) playwright.Locator {
	return getRole(page, "region", "Settings")
}

// changesRegion is the "Recent changes" card of /vapi.
func changesRegion(page playwright.Page) playwright.Locator {
	return getRole(page, "region", "Recent changes")
}

// settingRow is the list row of one setting (li.setting-row#setting-<key>).
func settingRow(page playwright.Page, key string) playwright.Locator {
	return page.Locator("li.setting-row#setting-" + key)
}

// settingValue is the current value shown in a setting's row.
func settingValue(page playwright.Page, key string) playwright.Locator {
	return page.GetByTestId("value-" + key)
}

// toasts is the live region toasts appear in.
func toasts(page playwright.Page) playwright.Locator {
	return page.Locator("#toasts")
}

// exactly matches the whole (whitespace-trimmed) text s.
func exactly(s string) *regexp.Regexp {
	return regexp.MustCompile(`^\s*` + regexp.QuoteMeta(s) + `\s*$`)
}

// expectSettingsList waits for the three settings with the fake's default values.
func expectSettingsList(t testing.TB, page playwright.Page) {
	t.Helper()
	check(t, expect.Locator(settingValue(page, "greeting_message")).ToHaveText(exactly(defaultGreeting)), "greeting value")
	check(t, expect.Locator(settingValue(page, "max_call_duration")).ToHaveText(exactly("600 seconds")), "max call duration value")
	check(t, expect.Locator(settingValue(page, "voice_speed")).ToHaveText(exactly("1×")), "voice speed value")
	check(t, expect.Locator(settingsRegion(page).Locator("li.setting-row")).ToHaveCount(3), "three setting rows")
}

// saveSetting types value into "New <label>" and clicks "Save <label>".
func saveSetting(t testing.TB, page playwright.Page, label, value string) {
	t.Helper()
	check(t, saveAction(page, label, value)(), "save "+label)
}

// saveAction is saveSetting as an action for expectResponse.
func saveAction(page playwright.Page, label, value string) func() error {
	return func() error {
		if err := getLabel(page, "New "+label).Fill(value); err != nil {
			return err
		}
		return getRole(page, "button", "Save "+label).Click()
	}
}

// labelIn finds a form control by its exact label inside scope (e.g. one integration card).
func labelIn(scope playwright.Locator, label string) playwright.Locator {
	return scope.GetByLabel(label, playwright.LocatorGetByLabelOptions{Exact: playwright.Bool(true)})
}

// fillIn types value into the control labelled label inside scope.
func fillIn(t testing.TB, scope playwright.Locator, label, value string) {
	t.Helper()
	check(t, labelIn(scope, label).Fill(value), "fill "+label)
}

// clickIn clicks the element with that role and exact name inside scope.
func clickIn(t testing.TB, scope playwright.Locator, role, name string) {
	t.Helper()
	check(t, getRoleIn(scope, role, name).Click(), "click "+role+" "+name)
}

// regionAlert is the role=alert inside a region.
func regionAlert(region playwright.Locator) playwright.Locator {
	return getRoleIn(region, "alert", "")
}

// expectResponse runs action and returns the first response whose URL matches glob.
func expectResponse(t testing.TB, page playwright.Page, glob string, action func() error) playwright.Response {
	t.Helper()
	res, err := page.ExpectResponse(glob, action)
	check(t, err, "wait for a response of "+glob)
	return res
}

// correlationID returns the X-Correlation-ID header of a response (it must have one).
func correlationID(t testing.TB, res playwright.Response) string {
	t.Helper()
	id := res.Headers()["x-correlation-id"]
	if id == "" {
		t.Fatalf("%s %s: no X-Correlation-ID header", res.Request().Method(), res.URL())
	}
	return id
}

// alertReference reads the id after "Reference:" in an alert.
func alertReference(t testing.TB, alert playwright.Locator) string {
	t.Helper()
	ref := alert.GetByText("Reference:").Locator("code")
	check(t, expect.Locator(ref).ToHaveCount(1), "one reference in the alert")
	text, err := ref.TextContent()
	check(t, err, "read the reference")
	return strings.TrimSpace(text)
}

// Short timeouts for assertions made once the page has settled (a failure then needs no
// 10 s wait), used with soft.
var (
	quick     = playwright.LocatorAssertionsToBeFocusedOptions{Timeout: playwright.Float(2000)}
	quickText = playwright.LocatorAssertionsToContainTextOptions{Timeout: playwright.Float(2000)}
)

// soft records a failed assertion (a known UI problem) and lets the test go on.
func soft(t testing.TB, err error, context string) {
	t.Helper()
	if err != nil {
		t.Errorf("%s: %v", context, err)
	}
}

// expectCorrelated checks that the fake's requests carried a correlation id, and (when
// want is not "") that it is want.
func expectCorrelated(t testing.TB, reqs []vapitest.Request, want string) {
	t.Helper()
	for i, r := range reqs {
		switch {
		case r.CorrelationID == "":
			t.Errorf("fake Vapi request %d (%s %s) had no X-Correlation-ID", i, r.Method, r.Path)
		case want != "" && r.CorrelationID != want:
			t.Errorf("fake Vapi request %d (%s %s): X-Correlation-ID %q, want %q", i, r.Method, r.Path, r.CorrelationID, want)
		}
	}
}

// logLineWith returns the first server log line that contains every one of parts, or "".
func logLineWith(c *console, parts ...string) string {
	for _, line := range strings.Split(c.logs(), "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return line
		}
	}
	return ""
}

// failOnDialog makes the test fail (at its end) if the page opens any dialog
// (alert, confirm, prompt): the marker of script injection.
func failOnDialog(t testing.TB, page playwright.Page) {
	t.Helper()
	var mu sync.Mutex
	var seen []string
	page.OnDialog(func(d playwright.Dialog) {
		mu.Lock()
		seen = append(seen, d.Type()+": "+d.Message())
		mu.Unlock()
		_ = d.Dismiss()
	})
	t.Cleanup(func() { // runs before the page's own cleanup closes it
		mu.Lock()
		defer mu.Unlock()
		if len(seen) > 0 {
			t.Errorf("the page opened %d dialog(s), want none: %q", len(seen), seen)
		}
	})
}

// vapiRequests returns the fake's requests with that method.
func vapiRequests(fake *vapitest.Server, method string) []vapitest.Request {
	var out []vapitest.Request
	for _, r := range fake.Requests() {
		if r.Method == method {
			out = append(out, r)
		}
	}
	return out
}

// noSidewaysScroll fails the test if the page is wider than its viewport.
func noSidewaysScroll(t testing.TB, page playwright.Page) {
	t.Helper()
	overflow, err := page.Evaluate(`() => document.documentElement.scrollWidth - document.documentElement.clientWidth`)
	check(t, err, "measure page width")
	if n, ok := overflow.(int); !ok || n > 0 {
		t.Errorf("%s scrolls sideways: scrollWidth exceeds clientWidth by %v", page.URL(), overflow)
	}
}

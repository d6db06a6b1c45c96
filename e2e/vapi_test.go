package e2e

// Browser tests of the Vapi feature: the /vapi settings page in each of its states
// (loading, list, empty, error with retry, breaker open, rate limited, connection lost),
// saving a setting (success and refusal), the audit trail, escaping, and connecting
// credentials on /integrations. Each test runs its own console against its own fake Vapi
// (services/vapi/vapitest); helpers are in vapi_helpers_test.go.

import (
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/playwright-community/playwright-go"

	"github.com/ava/console/services/vapi/vapitest"
)

// Loading skeleton, the list, a save with its toast and new value, the change at Vapi with
// the correlation id, and the audit trail naming the owner.
func TestVapiSettingsLoadSaveAndRecentChanges(t *testing.T) {
	t.Parallel()
	c, fake, page := vapiOwner(t)

	release := holdHTMX(t, page)
	open(t, page, c, "/vapi")
	check(t, expect.Locator(page.GetByRole("heading", playwright.PageGetByRoleOptions{
		Name: "Vapi settings", Exact: playwright.Bool(true), Level: playwright.Int(1),
	})).ToBeVisible(), "h1 Vapi settings")
	region := settingsRegion(page)
	skeleton := region.Locator(".skeleton")
	check(t, expect.Locator(skeleton).ToBeVisible(), "settings skeleton while loading")
	check(t, expect.Locator(skeleton).ToHaveAttribute("aria-busy", "true"), "skeleton is aria-busy")
	if n := len(fake.Requests()); n != 0 {
		t.Errorf("fake Vapi got %d request(s) while the page held its htmx requests, want 0", n)
	}
	release()

	expectSettingsList(t, page)
	check(t, expect.Locator(skeleton).ToHaveCount(0), "skeleton gone")
	changes := changesRegion(page)
	check(t, expect.Locator(changes).ToContainText("No changes yet"), "empty audit trail")

	fake.ResetRequests()
	saved := expectResponse(t, page, "**/vapi/settings/max_call_duration", saveAction(page, durationLabel, "900"))
	check(t, expect.Locator(toasts(page)).ToContainText(durationLabel+" saved"), "toast after save")
	check(t, expect.Locator(settingValue(page, "max_call_duration")).ToHaveText(exactly("900 seconds")), "new value in the row")
	check(t, expect.Locator(regionAlert(settingRow(page, "max_call_duration"))).ToHaveCount(0), "no alert in the saved row")

	if got := fake.Assistant(vapiAssistantID)["maxDurationSeconds"]; got != 900.0 {
		t.Errorf("fake assistant maxDurationSeconds = %v, want 900", got)
	}
	patches := vapiRequests(fake, http.MethodPatch)
	if len(patches) != 1 {
		t.Fatalf("fake Vapi got %d PATCH(es), want 1: %+v", len(patches), patches)
	}
	if len(patches[0].Body) != 1 || patches[0].Body["maxDurationSeconds"] != 900.0 {
		t.Errorf("PATCH body %v, want only {maxDurationSeconds: 900}", patches[0].Body)
	}
	if want := "Bearer " + vapiKey; patches[0].Authorization != want {
		t.Errorf("PATCH Authorization %q, want the environment's key", patches[0].Authorization)
	}
	// The save read the assistant, then patched it, both under the save's correlation id.
	expectCorrelated(t, fake.Requests(), correlationID(t, saved))

	// The audit trail refreshes by itself: who, which setting, from what, to what.
	change := getRoleIn(changes, "listitem", "").Filter(playwright.LocatorFilterOptions{HasText: "Maximum call duration"})
	check(t, expect.Locator(change).ToHaveText(regexp.MustCompile(
		`^\s*`+regexp.QuoteMeta(ownerEmail)+`\s+changed\s+Maximum call duration\s+from\s+600\s+to\s+900\b`)), "recent change")
	check(t, expect.Locator(change.Locator("time")).ToHaveAttribute("datetime", regexp.MustCompile(`^\d{4}-\d\d-\d\dT`)), "change time")

	// A reload reads the value back from Vapi.
	_, err := page.Reload()
	check(t, err, "reload /vapi")
	check(t, expect.Locator(settingValue(page, "max_call_duration")).ToHaveText(exactly("900 seconds")), "value after reload")
	check(t, expect.Locator(change).ToBeVisible(), "change after reload")
}

// A value outside the product's bounds is refused before any call to Vapi; the row keeps
// the old value, shows why, and keeps what was typed.
func TestVapiSettingsRefusedValueKeepsOldValue(t *testing.T) {
	t.Parallel()
	c, fake, page := vapiOwner(t)
	open(t, page, c, "/vapi")
	expectSettingsList(t, page)

	row := settingRow(page, "max_call_duration")
	saveSetting(t, page, durationLabel, "5000")
	alert := regionAlert(row)
	check(t, expect.Locator(alert).ToHaveText(regexp.MustCompile(`^\s*Not saved: .*\b60 to 3600\b.*\(got 5000\)`)), "refusal in the row")
	check(t, expect.Locator(settingValue(page, "max_call_duration")).ToHaveText(exactly("600 seconds")), "old value kept")
	input := getLabel(page, "New "+durationLabel)
	check(t, expect.Locator(input).ToHaveValue("5000"), "typed value kept in the field")
	check(t, expect.Locator(input).ToHaveAttribute("aria-invalid", "true"), "field marked invalid")
	// static/app.js moves focus to an error alert swapped into the page.
	soft(t, expect.Locator(alert).ToBeFocused(quick), "focus on the refusal in the row")

	// Within the product's bounds but outside the 11labs voice's range (0.7 to 1.2).
	saveSetting(t, page, speedLabel, "0.6")
	check(t, expect.Locator(regionAlert(settingRow(page, "voice_speed"))).ToContainText(
		"Not saved: voice_speed must be from 0.7 to 1.2 for the assistant's 11labs voice (got 0.6)."), "voice speed refusal")
	check(t, expect.Locator(settingValue(page, "voice_speed")).ToHaveText(exactly("1×")), "old voice speed kept")

	a := fake.Assistant(vapiAssistantID)
	if a["maxDurationSeconds"] != 600.0 {
		t.Errorf("fake assistant maxDurationSeconds = %v after refused saves, want 600", a["maxDurationSeconds"])
	}
	if voice, _ := a["voice"].(map[string]any); voice["speed"] != 1.0 {
		t.Errorf("fake assistant voice = %v after refused saves, want speed 1", a["voice"])
	}
	if p := vapiRequests(fake, http.MethodPatch); len(p) != 0 {
		t.Errorf("refused saves sent %d PATCH(es) to Vapi, want none: %+v", len(p), p)
	}
	check(t, expect.Locator(changesRegion(page)).ToContainText("No changes yet"), "nothing in the audit trail")
	check(t, expect.Locator(toasts(page)).Not().ToContainText("saved"), "no success toast")

	// Correcting the value saves it and clears the error.
	saveSetting(t, page, durationLabel, "1200")
	check(t, expect.Locator(settingValue(page, "max_call_duration")).ToHaveText(exactly("1200 seconds")), "corrected value saved")
	check(t, expect.Locator(regionAlert(row)).ToHaveCount(0), "error cleared")
	check(t, expect.Locator(getLabel(page, "New "+durationLabel)).Not().ToHaveAttribute("aria-invalid", "true"), "field no longer invalid")
}

// Markup typed into the greeting is text everywhere: in the row, after a reload from Vapi,
// and in the audit trail. No script runs.
func TestVapiGreetingIsShownAsText(t *testing.T) {
	t.Parallel()
	c, fake, page := vapiOwner(t)
	failOnDialog(t, page)
	open(t, page, c, "/vapi")
	expectSettingsList(t, page)

	const greeting = `Hi <script>alert(1)</script><img src=x onerror="alert(2)"> there`
	saveSetting(t, page, greetingLabel, greeting)
	check(t, expect.Locator(toasts(page)).ToContainText(greetingLabel+" saved"), "toast after save")
	value := settingValue(page, "greeting_message")
	check(t, expect.Locator(value).ToHaveText(exactly(greeting)), "greeting shown literally")
	if got := fake.Assistant(vapiAssistantID)["firstMessage"]; got != greeting {
		t.Errorf("fake assistant firstMessage = %q, want %q", got, greeting)
	}
	change := getRoleIn(changesRegion(page), "listitem", "").Filter(playwright.LocatorFilterOptions{HasText: "changed Greeting message"})
	check(t, expect.Locator(change).ToContainText("from"), "greeting change in the audit trail")
	soft(t, expect.Locator(change).ToContainText(`<script>alert(1)</script>`, quickText), "audit trail shows the greeting as typed")

	_, err := page.Reload()
	check(t, err, "reload /vapi")
	check(t, expect.Locator(value).ToHaveText(exactly(greeting)), "greeting from Vapi shown literally")
	check(t, expect.Locator(change).ToContainText("from"), "greeting change after reload")
	for _, sel := range []string{"script", "img"} {
		check(t, expect.Locator(page.Locator("main").Locator(sel)).ToHaveCount(0), "no "+sel+" element made from the greeting")
	}
}

// Without credentials (account or environment) the page says so and links to Integrations.
func TestVapiNotConnectedEmptyState(t *testing.T) {
	t.Parallel()
	c, fake := startVapiConsole(t)
	page := newPage(t)
	createOwner(t, page, c, ownerEmail, ownerPassword)
	open(t, page, c, "/vapi")

	region := settingsRegion(page)
	check(t, expect.Locator(region.GetByText("Vapi is not connected", playwright.LocatorGetByTextOptions{Exact: playwright.Bool(true)})).ToBeVisible(), "empty state")
	connect := getRoleIn(region, "link", "Connect Vapi")
	check(t, expect.Locator(connect).ToHaveAttribute("href", "/integrations"), "Connect Vapi link")
	check(t, expect.Locator(region.GetByRole("alert")).ToHaveCount(0), "no alert")
	check(t, connect.Click(), "click Connect Vapi")
	expectAt(t, page, c, "/integrations")
	check(t, expect.Locator(labelIn(getRole(page, "region", "Vapi"), "Vapi private API key")).ToBeVisible(), "connect form")
	if n := len(fake.Requests()); n != 0 {
		t.Errorf("fake Vapi got %d request(s) with nothing configured, want 0", n)
	}
}

// Vapi answers 500 once: an alert with the reason, a reference that is the request's
// correlation id (also sent to Vapi and logged), and "Try again" that loads the list.
func TestVapiUpstreamErrorThenTryAgain(t *testing.T) {
	t.Parallel()
	c, fake, page := vapiOwner(t)
	fake.FailNext(1, vapitest.Failure{Status: http.StatusInternalServerError, Message: "Upstream exploded"})

	res := expectResponse(t, page, "**/fragments/vapi/settings", func() error {
		_, err := page.Goto(c.URL + "/vapi")
		return err
	})
	if res.Status() != http.StatusBadGateway {
		t.Errorf("settings fragment status %d, want 502", res.Status())
	}
	id := correlationID(t, res)

	region := settingsRegion(page)
	alert := regionAlert(region)
	check(t, expect.Locator(alert).ToContainText("Vapi is having trouble (Upstream exploded)"), "reason in the alert")
	check(t, expect.Locator(alert).ToContainText(regexp.MustCompile(`Reference:\s*[0-9a-f]{8}`)), "reference in the alert")
	check(t, expect.Locator(alert).ToBeFocused(), "focus on the alert")
	ref := alertReference(t, alert)
	if len(ref) != 8 || !strings.HasPrefix(id, ref) {
		t.Errorf("alert reference %q is not the first 8 characters of the correlation id %q", ref, id)
	}
	reqs := fake.Requests()
	if len(reqs) != 1 {
		t.Fatalf("fake Vapi got %d request(s), want 1", len(reqs))
	}
	expectCorrelated(t, reqs, id)
	if logLineWith(c, id, "request failed") == "" {
		t.Errorf("no server log line says %q with the correlation id %s", "request failed", id)
	}
	// Support finds the full id in the logs from the reference alone.
	if m := regexp.MustCompile(`"correlation_id":"(` + regexp.QuoteMeta(ref) + `[^"]*)"`).FindStringSubmatch(c.logs()); m == nil {
		t.Errorf("no server log line has a correlation id starting with the reference %q", ref)
	} else if m[1] != reqs[0].CorrelationID {
		t.Errorf("the logs' correlation id for reference %s is %q, but Vapi received %q", ref, m[1], reqs[0].CorrelationID)
	}
	if strings.Contains(c.logs(), vapiKey) {
		t.Errorf("the Vapi API key appears in the server log")
	}

	retry := expectResponse(t, page, "**/fragments/vapi/settings", func() error {
		return getRoleIn(alert, "button", "Try again").Click()
	})
	if retry.Status() != http.StatusOK {
		t.Errorf("retry status %d, want 200", retry.Status())
	}
	expectSettingsList(t, page)
	check(t, expect.Locator(alert).ToHaveCount(0), "alert gone after retry")
	reqs = fake.Requests()
	if len(reqs) != 2 {
		t.Fatalf("fake Vapi got %d request(s) after the retry, want 2", len(reqs))
	}
	expectCorrelated(t, reqs[1:], correlationID(t, retry))
	if reqs[1].CorrelationID == id {
		t.Errorf("the retry reused the first request's correlation id %s", id)
	}
}

// After BREAKER_FAILURE_THRESHOLD failures in a row the breaker opens: the alert says calls
// are paused and when to try again, and Vapi is not called.
func TestVapiBreakerOpenPausesCalls(t *testing.T) {
	t.Parallel()
	c, fake, page := vapiOwner(t,
		withEnv("BREAKER_FAILURE_THRESHOLD", "2"),
		withEnv("BREAKER_RECOVERY_TIMEOUT", "10m"))
	fake.FailAlways(vapitest.Failure{Status: http.StatusServiceUnavailable, Message: "Service Unavailable"})

	open(t, page, c, "/vapi")
	region := settingsRegion(page)
	alert := regionAlert(region)
	check(t, expect.Locator(alert).ToContainText("Vapi is having trouble (Service Unavailable)"), "first failure")
	tryAgain := func() error { return getRoleIn(region, "button", "Try again").Click() }

	second := expectResponse(t, page, "**/fragments/vapi/settings", tryAgain)
	if second.Status() != http.StatusBadGateway {
		t.Errorf("second failure: status %d, want 502", second.Status())
	}
	check(t, expect.Locator(alert).ToContainText("Vapi is having trouble"), "second failure")

	third := expectResponse(t, page, "**/fragments/vapi/settings", tryAgain)
	if third.Status() != http.StatusServiceUnavailable {
		t.Errorf("breaker open: status %d, want 503", third.Status())
	}
	if ra, err := strconv.Atoi(third.Headers()["retry-after"]); err != nil || ra < 500 || ra > 600 {
		t.Errorf("breaker open: Retry-After %q, want about 600 seconds", third.Headers()["retry-after"])
	}
	check(t, expect.Locator(alert).ToContainText(regexp.MustCompile(
		`Vapi has been failing, so calls to it are paused\. Try again in (5\d\d|600) seconds\.`)), "breaker-open message")
	check(t, expect.Locator(getRoleIn(region, "button", "Try again")).ToBeVisible(), "Try again still offered")
	if n := len(fake.Requests()); n != 2 {
		t.Errorf("fake Vapi got %d request(s), want 2 (none while the breaker is open)", n)
	}
	expectCorrelated(t, fake.Requests(), "")

	// The Integrations page shows the open breaker and the last error.
	open(t, page, c, "/integrations")
	card := getRole(page, "region", "Vapi")
	check(t, expect.Locator(card).ToContainText(regexp.MustCompile(`(?i)Circuit breaker\s*open`)), "breaker state on the card")
	// The last error is what opened the breaker, not the refusals since.
	check(t, expect.Locator(card.GetByTestId("last-error")).ToContainText("Vapi is having trouble"), "last error on the card")
}

// Listing is limited to 10 a minute per account: the 11th listing on the page shows when to
// try again and does not reach Vapi. The JSON API shares that budget.
func TestVapiSettingsListRateLimited(t *testing.T) {
	t.Parallel()
	c, fake, page := vapiOwner(t)

	// Nine listings with the page's session, as htmx makes them.
	for i := 1; i <= 9; i++ {
		res, err := page.Request().Get(c.URL+"/fragments/vapi/settings", playwright.APIRequestContextGetOptions{
			Headers: map[string]string{"HX-Request": "true"},
		})
		check(t, err, fmt.Sprintf("listing %d", i))
		if res.Status() != http.StatusOK {
			t.Fatalf("listing %d: status %d", i, res.Status())
		}
		h := res.Headers()
		if got, want := h["x-ratelimit-limit"], "10"; got != want {
			t.Errorf("listing %d: X-RateLimit-Limit %q, want %q", i, got, want)
		}
		if got, want := h["x-ratelimit-remaining"], strconv.Itoa(10-i); got != want {
			t.Errorf("listing %d: X-RateLimit-Remaining %q, want %q", i, got, want)
		}
	}

	// The 10th, on the page, still lists.
	open(t, page, c, "/vapi")
	expectSettingsList(t, page)

	// The 11th does not, and does not reach Vapi.
	res := expectResponse(t, page, "**/fragments/vapi/settings", func() error {
		_, err := page.Reload()
		return err
	})
	if res.Status() != http.StatusTooManyRequests {
		t.Errorf("11th listing: status %d, want 429", res.Status())
	}
	if ra, err := strconv.Atoi(res.Headers()["retry-after"]); err != nil || ra < 1 || ra > 60 {
		t.Errorf("11th listing: Retry-After %q, want 1..60 seconds", res.Headers()["retry-after"])
	}
	alert := regionAlert(settingsRegion(page))
	check(t, expect.Locator(alert).ToContainText(regexp.MustCompile(`Too many requests\. Try again in \d+ seconds\.`)), "rate-limited message")
	check(t, expect.Locator(getRoleIn(alert, "button", "Try again")).ToBeVisible(), "Try again offered")
	check(t, expect.Locator(settingValue(page, "max_call_duration")).ToHaveCount(0), "no list while limited")
	if n := len(fake.Requests()); n != 10 {
		t.Errorf("fake Vapi got %d request(s), want 10 (the 11th listing must not reach it)", n)
	}

	// GET /api/v1/vapi/settings counts against the same budget (README, rate limits:
	// "listing Vapi settings: 10, JSON and page together", per account).
	out := c.cli(t, "", "token", "create", "--email", ownerEmail, "--name", "e2e-rate")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	token := strings.TrimSpace(lines[len(lines)-1])
	api := c.api(t, http.MethodGet, "/api/v1/vapi/settings", token, nil, "X-Correlation-ID", "e2e-rate-12")
	if api.Status != http.StatusTooManyRequests {
		t.Errorf("GET /api/v1/vapi/settings after 11 listings of the account on the page: status %d "+
			"(X-RateLimit-Remaining %q), want 429: the page and the JSON API do not share one budget",
			api.Status, api.Header.Get("X-RateLimit-Remaining"))
		return
	}
	expectProblem(t, api, http.StatusTooManyRequests, "e2e-rate-12")
	if n := len(fake.Requests()); n != 10 {
		t.Errorf("fake Vapi got %d request(s) in all, want 10", n)
	}
}

// The server cannot be reached (network error): static/app.js shows "Cannot reach the
// console" with "Try again", which re-fetches the region.
func TestVapiConnectionErrorThenRetry(t *testing.T) {
	t.Parallel()
	c, fake, page := vapiOwner(t)
	var calls atomic.Int32
	check(t, page.Route("**/fragments/vapi/settings", func(r playwright.Route) {
		if calls.Add(1) == 1 {
			_ = r.Abort()
			return
		}
		_ = r.Continue()
	}), "route the settings fragment")

	open(t, page, c, "/vapi")
	region := settingsRegion(page)
	alert := regionAlert(region)
	check(t, expect.Locator(alert).ToContainText("Cannot reach the console"), "connection-error alert")
	check(t, expect.Locator(alert).ToContainText("Check your connection"), "what to do")
	check(t, expect.Locator(region.Locator(".skeleton")).ToHaveCount(0), "skeleton replaced")
	if n := len(fake.Requests()); n != 0 {
		t.Errorf("fake Vapi got %d request(s) before the retry, want 0", n)
	}

	check(t, getRoleIn(alert, "button", "Try again").Click(), "click Try again")
	expectSettingsList(t, page)
	check(t, expect.Locator(alert).ToHaveCount(0), "alert gone after retry")
	if n := calls.Load(); n != 2 {
		t.Errorf("the settings fragment was requested %d time(s), want 2", n)
	}
	if n := len(fake.Requests()); n != 1 {
		t.Errorf("fake Vapi got %d request(s), want 1", n)
	}
}

// Connecting on /integrations: a refused key shows Vapi's words and stores nothing; a good
// key is stored (masked), "Test connection" works, and /vapi then lists the settings.
func TestVapiConnectThroughIntegrations(t *testing.T) {
	t.Parallel()
	c, fake := startVapiConsole(t)
	page := newPage(t)
	createOwner(t, page, c, ownerEmail, ownerPassword)
	open(t, page, c, "/integrations")

	card := getRole(page, "region", "Vapi")
	source := card.GetByTestId("credential-source")
	check(t, expect.Locator(source).ToHaveText(exactly("None")), "no credentials yet")
	check(t, expect.Locator(card.GetByText("Not connected", playwright.LocatorGetByTextOptions{Exact: playwright.Bool(true)})).ToBeVisible(), "Not connected badge")
	check(t, expect.Locator(labelIn(card, "Vapi private API key")).ToHaveAttribute("type", "password"), "key is a password field")
	check(t, expect.Locator(getRoleIn(card, "button", "Test connection")).ToHaveCount(0), "no test before connecting")

	// A key Vapi refuses.
	fillIn(t, card, "Vapi private API key", vapiBadKey)
	fillIn(t, card, "Assistant ID", vapiAssistantID)
	clickIn(t, card, "button", "Check and save")
	check(t, expect.Locator(regionAlert(card)).ToContainText(vapiRefused), "Vapi's own reason")
	if reqs := fake.Requests(); len(reqs) != 1 || reqs[0].Authorization != "Bearer "+vapiBadKey {
		t.Errorf("the check sent %d request(s) to Vapi, want one with the typed key", len(reqs))
	}
	expectCorrelated(t, fake.Requests(), "")
	check(t, expect.Locator(source).ToHaveText(exactly("None")), "nothing stored after a refusal")
	check(t, expect.Locator(labelIn(card, "Vapi private API key")).ToHaveAttribute("aria-invalid", "true"), "key field marked invalid")
	check(t, expect.Locator(labelIn(card, "Assistant ID")).ToHaveValue(vapiAssistantID), "assistant id kept")
	check(t, expect.Locator(toasts(page)).Not().ToContainText("Vapi connected"), "no success toast")
	open(t, page, c, "/integrations")
	check(t, expect.Locator(source).ToHaveText(exactly("None")), "nothing stored (after reload)")

	// The right key.
	fillIn(t, card, "Vapi private API key", vapiKey)
	fillIn(t, card, "Assistant ID", vapiAssistantID)
	clickIn(t, card, "button", "Check and save")
	check(t, expect.Locator(toasts(page)).ToContainText("Vapi connected"), "toast after connecting")
	check(t, expect.Locator(toasts(page)).ToHaveAttribute("role", "status"), "toasts are a live region")
	check(t, expect.Locator(source).ToHaveText(exactly("This account's own")), "credential source")
	check(t, expect.Locator(card.GetByText("Connected", playwright.LocatorGetByTextOptions{Exact: playwright.Bool(true)})).ToBeVisible(), "Connected badge")
	last4 := vapiKey[len(vapiKey)-4:]
	check(t, expect.Locator(card.GetByText(regexp.MustCompile(`^\W*`+regexp.QuoteMeta(last4)+`$`))).ToBeVisible(), "masked key ending in "+last4)
	check(t, expect.Locator(card).ToContainText(vapiAssistantID), "assistant id shown")
	check(t, expect.Locator(getRoleIn(card, "heading", "Replace the Vapi credentials")).ToBeVisible(), "form now replaces credentials")
	html, err := page.Content()
	check(t, err, "read the page")
	if strings.Contains(html, vapiKey) {
		t.Errorf("the full Vapi key is on the page after connecting")
	}

	// Test connection uses the stored credentials.
	fake.ResetRequests()
	clickIn(t, card, "button", "Test connection")
	check(t, expect.Locator(card.GetByText("Connected: Vapi answered with assistant Front desk.")).ToBeVisible(), "test result")
	reqs := fake.Requests()
	if len(reqs) != 1 || reqs[0].Authorization != "Bearer "+vapiKey || reqs[0].Path != "/assistant/"+vapiAssistantID {
		t.Errorf("Test connection sent %+v, want one GET /assistant/%s with the stored key", reqs, vapiAssistantID)
	}
	expectCorrelated(t, reqs, "")

	// After a reload, the page still never holds the key.
	open(t, page, c, "/integrations")
	check(t, expect.Locator(source).ToHaveText(exactly("This account's own")), "source after reload")
	html, err = page.Content()
	check(t, err, "read the page")
	if strings.Contains(html, vapiKey) {
		t.Errorf("the full Vapi key is on /integrations after a reload")
	}
	for _, k := range []string{vapiKey, vapiBadKey} {
		if strings.Contains(c.logs(), k) {
			t.Errorf("a Vapi key (…%s) appears in the server log", k[len(k)-4:])
		}
	}

	// The settings page uses the account's credentials.
	open(t, page, c, "/vapi")
	check(t, expect.Locator(page.GetByText("Using this account's credentials")).ToBeVisible(), "source on /vapi")
	expectSettingsList(t, page)
}

// Credentials from VAPI_API_KEY / VAPI_ASSISTANT_ID: the card says so, masked; a failing
// test shows an alert, the next one succeeds.
func TestVapiEnvironmentCredentials(t *testing.T) {
	t.Parallel()
	c, fake, page := vapiOwner(t)
	open(t, page, c, "/integrations")
	card := getRole(page, "region", "Vapi")
	check(t, expect.Locator(card.GetByTestId("credential-source")).ToHaveText(exactly("From the server's environment, which serves only the first account: this one")), "credential source")
	check(t, expect.Locator(card.GetByText("Connected", playwright.LocatorGetByTextOptions{Exact: playwright.Bool(true)})).ToBeVisible(), "Connected badge")
	last4 := vapiKey[len(vapiKey)-4:]
	check(t, expect.Locator(card.GetByText(regexp.MustCompile(`^\W*`+regexp.QuoteMeta(last4)+`$`))).ToBeVisible(), "masked key")
	check(t, expect.Locator(getRoleIn(card, "heading", "Connect your Vapi assistant")).ToBeVisible(), "form offers the account's own credentials")
	html, err := page.Content()
	check(t, err, "read the page")
	if strings.Contains(html, vapiKey) {
		t.Errorf("the environment's Vapi key is on the page")
	}

	fake.FailNext(1, vapitest.Failure{Status: http.StatusInternalServerError, Message: "Upstream exploded"})
	clickIn(t, card, "button", "Test connection")
	failed := regionAlert(card)
	check(t, expect.Locator(failed).ToContainText("Connection failed: Vapi is having trouble (Upstream exploded)"), "failed test")

	clickIn(t, card, "button", "Test connection")
	check(t, expect.Locator(card.GetByText("Connected: Vapi answered with assistant Front desk.")).ToBeVisible(), "test result")
	check(t, expect.Locator(failed).ToHaveCount(0), "failure replaced by the result")
	expectCorrelated(t, fake.Requests(), "")

	open(t, page, c, "/vapi")
	check(t, expect.Locator(page.GetByText("Using the server's environment credentials")).ToBeVisible(), "source on /vapi")
}

// At phone width the settings list fits the screen.
func TestVapiPhoneWidthSettings(t *testing.T) {
	t.Parallel()
	c, _ := startVapiConsole(t, withVapiEnv())
	page := newPhonePage(t)
	createOwner(t, page, c, ownerEmail, ownerPassword)
	open(t, page, c, "/vapi")
	expectSettingsList(t, page)
	for _, label := range []string{greetingLabel, durationLabel, speedLabel} {
		save := getRole(page, "button", "Save "+label)
		check(t, save.ScrollIntoViewIfNeeded(), fmt.Sprintf("scroll to Save %s", label))
		check(t, expect.Locator(save).ToBeInViewport(), "Save "+label+" on screen")
	}
	noSidewaysScroll(t, page)
}

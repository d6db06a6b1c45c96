package e2e

import (
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/playwright-community/playwright-go"

	"github.com/ava/console/services/vapi/vapitest"
)

// liveWithin is how soon a change made elsewhere must show on an open page.
const liveWithin = 2 * time.Second

// within is an assertion option waiting at most liveWithin.
func within() playwright.LocatorAssertionsToHaveTextOptions {
	return playwright.LocatorAssertionsToHaveTextOptions{Timeout: playwright.Float(float64(liveWithin.Milliseconds()))}
}

// markPage leaves a mark in the page's window: it is gone if the page navigates
// or reloads (stillSamePage).
func markPage(t testing.TB, page playwright.Page) {
	t.Helper()
	_, err := page.Evaluate(`() => { window.__avaMark = "unchanged"; }`)
	check(t, err, "mark the page")
}

func stillSamePage(t testing.TB, page playwright.Page) {
	t.Helper()
	v, err := page.Evaluate(`() => window.__avaMark`)
	check(t, err, "read the page's mark")
	if v != "unchanged" {
		t.Errorf("the page navigated or reloaded (its mark is %v)", v)
	}
}

// liveOpen waits until the page says its live-update stream is open.
func liveOpen(t testing.TB, page playwright.Page) {
	t.Helper()
	check(t, expect.Locator(page.Locator(`#live-status[data-live="open"]`)).ToHaveCount(1), "the page's live-update stream open")
}

// openLiveVapi opens /vapi and waits for its settings and its live-update stream.
func openLiveVapi(t testing.TB, page playwright.Page, c *console) {
	t.Helper()
	open(t, page, c, "/vapi")
	expectSettingsList(t, page)
	liveOpen(t, page)
}

// sectionState is a home section's state badge.
func sectionState(page playwright.Page, name string) playwright.Locator {
	return page.Locator(".section-card").Filter(playwright.LocatorFilterOptions{
		Has: page.GetByRole("heading", playwright.PageGetByRoleOptions{Name: name}),
	}).Locator(".badge")
}

// breakerState is the breaker line of an integration's card on /integrations.
func breakerState(page playwright.Page, name string) playwright.Locator {
	return page.Locator("#integration-" + name + " [data-testid=breaker-state]")
}

// TestLiveSettingChangeShowsOnOpenPages: while /vapi and home stay open, a setting
// changed through the JSON API appears in its row and in Recent changes, without a
// reload or a navigation, within two seconds.
func TestLiveSettingChangeShowsOnOpenPages(t *testing.T) {
	t.Parallel()
	c, _, page := vapiOwner(t)
	token := newToken(t, c, ownerEmail, "script")
	open(t, page, c, "/vapi")
	expectSettingsList(t, page)
	check(t, expect.Locator(changesRegion(page)).ToContainText("No changes yet"), "no changes yet")
	liveOpen(t, page)
	markPage(t, page)

	res := c.api(t, http.MethodPut, "/api/v1/vapi/settings/max_call_duration", token, map[string]any{"value": 840})
	if res.Status != http.StatusOK {
		t.Fatalf("PUT max_call_duration: %d %s", res.Status, res.Body)
	}
	check(t, expect.Locator(settingValue(page, "max_call_duration")).ToHaveText(exactly("840 seconds"), within()), "the new value in its row")
	check(t, expect.Locator(changesRegion(page)).ToContainText("840", playwright.LocatorAssertionsToContainTextOptions{Timeout: playwright.Float(float64(liveWithin.Milliseconds()))}),
		"the change in Recent changes")
	check(t, expect.Locator(getLabel(page, "New Maximum call duration")).ToHaveValue("840"), "the row's field holds the new value")
	stillSamePage(t, page)

	// What the owner is typing is never replaced: the row shows the new value, its field
	// keeps the typing.
	fill(t, page, "New Greeting message", "Still typing this")
	res = c.api(t, http.MethodPut, "/api/v1/vapi/settings/greeting_message", token, map[string]any{"value": "Changed by a script"})
	if res.Status != http.StatusOK {
		t.Fatalf("PUT greeting_message: %d %s", res.Status, res.Body)
	}
	check(t, expect.Locator(settingValue(page, "greeting_message")).ToHaveText(exactly("Changed by a script"), within()), "the new greeting shown")
	check(t, expect.Locator(getLabel(page, "New Greeting message")).ToHaveValue("Still typing this"), "the typing kept")

	// The row that came live still saves from the page (its form and CSRF token work).
	saveSetting(t, page, "Maximum call duration", "900")
	check(t, expect.Locator(settingValue(page, "max_call_duration")).ToHaveText(exactly("900 seconds")), "saved from the live row")
	check(t, expect.Locator(toasts(page)).ToContainText("Maximum call duration saved"), "toast after the save")
}

// TestLiveBreakerShowsOnIntegrationsAndHome: the Vapi breaker opening and closing shows on
// an open Integrations page and an open home page, with a toast when Vapi starts failing
// and when it recovers.
func TestLiveBreakerShowsOnIntegrationsAndHome(t *testing.T) {
	t.Parallel()
	c, fake, integrationsPage := vapiOwner(t,
		withEnv("BREAKER_FAILURE_THRESHOLD", "2"), withEnv("BREAKER_RECOVERY_TIMEOUT", "2s"), withEnv("BREAKER_SUCCESS_THRESHOLD", "1"))
	token := newToken(t, c, ownerEmail, "script")
	home := newPage(t)
	signIn(t, home, c, ownerEmail, ownerPassword)
	open(t, integrationsPage, c, "/integrations")
	check(t, expect.Locator(breakerState(integrationsPage, "vapi")).ToHaveText(exactly("Closed: calls go through")), "breaker closed at first")
	check(t, expect.Locator(sectionState(home, "Vapi settings")).ToContainText("Connected"), "home: Vapi connected")
	markPage(t, integrationsPage)
	markPage(t, home)

	fake.FailMethod(http.MethodGet, 2, vapitest.Failure{Status: http.StatusInternalServerError, Message: "upstream exploded"})
	for range 2 {
		c.api(t, http.MethodGet, "/api/v1/vapi/settings", token, nil)
	}
	check(t, expect.Locator(breakerState(integrationsPage, "vapi")).ToHaveText(exactly("Open: calls are paused after repeated failures"), within()),
		"Integrations: the breaker open")
	check(t, expect.Locator(integrationsPage.GetByTestId("last-error")).ToContainText("upstream exploded"), "Integrations: the last error")
	check(t, expect.Locator(sectionState(home, "Vapi settings")).ToContainText("Failing: calls paused", playwright.LocatorAssertionsToContainTextOptions{
		Timeout: playwright.Float(float64(liveWithin.Milliseconds())),
	}), "home: Vapi failing")
	check(t, expect.Locator(toasts(home)).ToContainText("Vapi is failing"), "a toast says Vapi is failing")

	// After the recovery timeout the breaker half-opens by itself; one good call closes it.
	check(t, expect.Locator(breakerState(integrationsPage, "vapi")).ToHaveText(exactly("Half-open: trying again")), "Integrations: half-open")
	if res := c.api(t, http.MethodGet, "/api/v1/vapi/settings", token, nil); res.Status != http.StatusOK {
		t.Fatalf("the probe: %d %s", res.Status, res.Body)
	}
	check(t, expect.Locator(breakerState(integrationsPage, "vapi")).ToHaveText(exactly("Closed: calls go through"), within()), "Integrations: closed again")
	check(t, expect.Locator(sectionState(home, "Vapi settings")).ToHaveText(regexp.MustCompile(`Connected`), within()), "home: connected again")
	check(t, expect.Locator(toasts(integrationsPage)).ToContainText("Vapi has recovered"), "a toast says Vapi recovered")
	stillSamePage(t, integrationsPage)
	stillSamePage(t, home)
}

// TestLiveEventsStayInTheirAccount: a change another account makes never reaches this
// account's open page.
func TestLiveEventsStayInTheirAccount(t *testing.T) {
	t.Parallel()
	c, fake, page := vapiOwner(t)
	c.cli(t, "second password 1\n", "user", "create", "--email", "other@example.com", "--password-stdin")
	otherToken := newToken(t, c, "other@example.com", "other")
	ownToken := newToken(t, c, ownerEmail, "own")
	// The other account's own Vapi assistant, at the same fake.
	other := vapitest.DefaultAssistant("asst-other")
	fake.PutAssistant(other)
	res := c.api(t, http.MethodPut, "/api/v1/integrations/vapi/credentials", otherToken, map[string]any{"api_key": vapiKey, "assistant_id": "asst-other"})
	if res.Status != http.StatusOK {
		t.Fatalf("connect the other account: %d %s", res.Status, res.Body)
	}

	openLiveVapi(t, page, c)
	_, err := page.Evaluate(`() => {
		window.__avaLive = [];
		document.body.addEventListener("htmx:sseBeforeMessage", (e) => window.__avaLive.push(e.detail.type));
	}`)
	check(t, err, "listen to the live updates")

	if res := c.api(t, http.MethodPut, "/api/v1/vapi/settings/max_call_duration", otherToken, map[string]any{"value": 1800}); res.Status != http.StatusOK {
		t.Fatalf("the other account's change: %d %s", res.Status, res.Body)
	}
	// Then one of this account's own, which must arrive (and shows the listener hears).
	if res := c.api(t, http.MethodPut, "/api/v1/vapi/settings/greeting_message", ownToken, map[string]any{"value": "Hi from the owner"}); res.Status != http.StatusOK {
		t.Fatalf("own change: %d %s", res.Status, res.Body)
	}
	check(t, expect.Locator(settingValue(page, "greeting_message")).ToHaveText(exactly("Hi from the owner"), within()), "own change live")
	check(t, expect.Locator(settingValue(page, "max_call_duration")).ToHaveText(exactly("600 seconds")), "the other account's value never shows")
	heard, err := page.Evaluate(`() => window.__avaLive.join(",")`)
	check(t, err, "read what the page heard")
	if s, _ := heard.(string); strings.Contains(s, "max_call_duration") || !strings.Contains(s, "vapi-setting-greeting_message") {
		t.Errorf("the page heard %q: want its own greeting change and nothing of the other account", s)
	}
}

// TestLiveSwapsKeepTheFocus: what arrives live never takes the focus, and never drops it
// either. A button the owner has focused stays focused when its row is replaced by a
// live update (the row's own event) and when its whole region fetches itself again (the
// integration's connection changed).
func TestLiveSwapsKeepTheFocus(t *testing.T) {
	t.Parallel()
	c, _, page := vapiOwner(t)
	token := newToken(t, c, ownerEmail, "script")
	openLiveVapi(t, page, c)
	save := getRoleIn(settingRow(page, "max_call_duration"), "button", "Save Maximum call duration")
	check(t, save.Focus(), "focus the row's Save button")
	markOld := func() {
		t.Helper()
		_, err := page.Evaluate(`() => { document.querySelector("#setting-max_call_duration button").__avaOld = true; }`)
		check(t, err, "mark the button before the swap")
	}
	replaced := func(what string) {
		t.Helper()
		for deadline := time.Now().Add(liveWithin); ; time.Sleep(20 * time.Millisecond) {
			old, err := page.Evaluate(`() => !!document.querySelector("#setting-max_call_duration button").__avaOld`)
			check(t, err, what)
			if old == false {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within %s", what, liveWithin)
			}
		}
	}

	// The row's own event replaces the row.
	markOld()
	if res := c.api(t, http.MethodPut, "/api/v1/vapi/settings/max_call_duration", token, map[string]any{"value": 840}); res.Status != http.StatusOK {
		t.Fatalf("PUT max_call_duration: %d %s", res.Status, res.Body)
	}
	check(t, expect.Locator(settingValue(page, "max_call_duration")).ToHaveText(exactly("840 seconds"), within()), "the row swapped live")
	replaced("the row's button is a new element")
	check(t, expect.Locator(save).ToBeFocused(), "the focus on the new row's Save button")

	// Credentials saved elsewhere: the settings region fetches itself again.
	markOld()
	res := c.api(t, http.MethodPut, "/api/v1/integrations/vapi/credentials", token, map[string]any{"api_key": vapiKey, "assistant_id": vapiAssistantID})
	if res.Status != http.StatusOK {
		t.Fatalf("PUT credentials: %d %s", res.Status, res.Body)
	}
	replaced("the region fetched itself again")
	check(t, expect.Locator(save).ToBeFocused(), "the focus on the refetched row's Save button")
	check(t, expect.Locator(page.Locator("#setting-greeting_message button")).Not().ToBeFocused(), "not on another row's button")
}

// TestLiveChangeBeforeTheStreamOpens: a change made after the page was served but
// before its stream opened (the stream is held back here) reached no stream of the
// page; the stream begins with it.
func TestLiveChangeBeforeTheStreamOpens(t *testing.T) {
	t.Parallel()
	c, _, page := vapiOwner(t)
	token := newToken(t, c, ownerEmail, "script")
	hold := make(chan struct{})
	check(t, page.Route(regexp.MustCompile(`/events\?since=\d+&from=[0-9a-f]+$`), func(r playwright.Route) {
		go func() {
			<-hold
			_ = r.Continue()
		}()
	}), "hold the stream back")
	open(t, page, c, "/vapi")
	expectSettingsList(t, page)
	check(t, expect.Locator(settingValue(page, "max_call_duration")).ToHaveText(exactly("600 seconds")), "the value as served")
	markPage(t, page)

	if res := c.api(t, http.MethodPut, "/api/v1/vapi/settings/max_call_duration", token, map[string]any{"value": 840}); res.Status != http.StatusOK {
		t.Fatalf("PUT max_call_duration: %d %s", res.Status, res.Body)
	}
	close(hold)
	liveOpen(t, page)
	check(t, expect.Locator(settingValue(page, "max_call_duration")).ToHaveText(exactly("840 seconds"), within()), "the page caught up")
	check(t, expect.Locator(changesRegion(page)).ToContainText("840"), "Recent changes too")
	stillSamePage(t, page)
}

// TestLiveStreamComesBackAfterRestart: the server restarts while a page is open; the page
// says its live updates are paused, reconnects by itself, and fetches its regions again,
// so what changed meanwhile shows without a reload.
func TestLiveStreamComesBackAfterRestart(t *testing.T) {
	t.Parallel()
	c, fake, page := vapiOwner(t)
	openLiveVapi(t, page, c)
	markPage(t, page)
	paused := page.GetByText("Live updates paused, reconnecting")
	check(t, expect.Locator(paused).ToBeHidden(), "no pause notice while connected")

	c.restart(t, func() {
		check(t, expect.Locator(paused).ToBeVisible(), "the pause notice while the server is down")
		// Changed at Vapi meanwhile (by someone else, in Vapi's dashboard).
		a := fake.Assistant(vapiAssistantID)
		a["maxDurationSeconds"] = 1200
		fake.PutAssistant(a)
	})
	check(t, expect.Locator(paused).ToBeHidden(), "the notice gone once reconnected")
	check(t, expect.Locator(settingValue(page, "max_call_duration")).ToHaveText(exactly("1200 seconds")), "the page caught up")
	stillSamePage(t, page)
}

// TestSignOutClosesTheStream: signing out in one tab ends the other tabs' streams; they say
// so, and the server holds no stream open.
func TestSignOutClosesTheStream(t *testing.T) {
	t.Parallel()
	c, _, page := vapiOwner(t)
	other, err := page.Context().NewPage()
	check(t, err, "second tab")
	open(t, other, c, "/integrations")
	openLiveVapi(t, page, c)

	click(t, page, "button", "Sign out")
	expectAt(t, page, c, "/login")
	check(t, expect.Locator(other.GetByText("You are signed out: this page no longer updates.")).ToBeVisible(), "the other tab says it is signed out")
	check(t, expect.Locator(getRoleIn(other.Locator("#live-status"), "link", "Sign in again")).ToBeVisible(), "with a link to sign in")
	check(t, expect.Locator(other.Locator(`#live-status[data-live="closed"]`)).ToHaveCount(1), "its stream closed, not reconnecting")
	deadline := time.Now().Add(pageTimeout)
	for {
		res, err := http.Get(c.URL + "/metrics")
		check(t, err, "GET /metrics")
		body := readAll(t, res)
		if strings.Contains(body, "\nava_sse_connections 0\n") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("streams still open after sign-out:\n%s", grepLines(body, "ava_sse_connections"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(c.logs(), `"reason":"signed out"`) {
		t.Error("no log line says a stream ended because its session was signed out")
	}
}

// restart stops the console (SIGTERM; it must exit 0), runs down while it is stopped, and
// starts it again on the same port, folder and environment.
func (c *console) restart(t *testing.T, down func()) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.exited:
		if c.waitErr != nil {
			t.Fatalf("did not shut down cleanly: %v\n%s", c.waitErr, tail(c.logs(), failureLogLines))
		}
	case <-time.After(shutdownTimeout):
		t.Fatalf("did not exit within %s of SIGTERM. Its goroutines:\n%s", shutdownTimeout, c.hung())
	}
	down()
	env := map[string]string{}
	for _, kv := range c.env {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "PATH" && k != "HOME" && k != "TMPDIR" && k != "PORT" {
			env[k] = v
		}
	}
	port, err := strconv.Atoi(c.URL[strings.LastIndex(c.URL, ":")+1:])
	if err != nil {
		t.Fatal(err)
	}
	again, err := launch(c.Dir, env, port)
	if err != nil {
		t.Fatal(err)
	}
	if err := again.waitReady(); err != nil {
		again.kill()
		t.Fatalf("not ready again: %v\n%s", err, tail(again.logs(), failureLogLines))
	}
	*c = *again // the cleanup stops the new process
}

func readAll(t testing.TB, res *http.Response) string {
	t.Helper()
	defer func() { _ = res.Body.Close() }()
	b, err := io.ReadAll(res.Body)
	check(t, err, "read the body")
	return string(b)
}

// grepLines are the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for line := range strings.SplitSeq(s, "\n") {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

package e2e

// Browser tests of the Twilio feature: the /numbers page in each of its states (loading,
// the list across Twilio's pages, not connected, no numbers, connection lost, error with
// retry, timeout, bad credentials, breaker open, phone width), and the Twilio card of
// /integrations (connecting with refusals first, replacing credentials, an API key, the
// environment's credentials, Test connection). Each test runs its own console against its
// own fake Twilio (services/twilio/twiliotest); helpers are in twilio_helpers_test.go.

import (
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/playwright-community/playwright-go"

	"github.com/ava/console/services/twilio/twiliotest"
)

// The skeleton paints first; then one fragment request follows Twilio's next_page_uri over
// three pages (120 numbers, 50 a page) under one correlation id, and every row shows its
// number, friendly name (as text) and badges.
func TestTwilioNumbersSkeletonThenEveryPage(t *testing.T) {
	t.Parallel()
	c, fake, acct, page := twilioOwner(t, 120)
	failOnDialog(t, page)
	acct.Numbers[0].FriendlyName = `Front <img src=x onerror="alert(1)"> & back`
	fake.SetNumbers(acct.SID, acct.Numbers)

	release := holdHTMX(t, page)
	open(t, page, c, "/numbers")
	check(t, expect.Locator(page.GetByRole("heading", playwright.PageGetByRoleOptions{
		Name: "Phone numbers", Exact: playwright.Bool(true), Level: playwright.Int(1),
	})).ToBeVisible(), "h1 Phone numbers")
	check(t, expect.Locator(page.Locator("main")).ToContainText("Using the server's environment credentials (account "+acct.SID+")"), "credential source")
	region := numbersRegion(page)
	skeleton := region.Locator(".skeleton")
	check(t, expect.Locator(skeleton).ToBeVisible(), "skeleton while loading")
	check(t, expect.Locator(skeleton).ToHaveAttribute("aria-busy", "true"), "skeleton is aria-busy")
	check(t, expect.Locator(skeleton).ToContainText("Loading phone numbers"), "skeleton names what loads")
	if n := len(fake.Requests()); n != 0 {
		t.Errorf("fake Twilio got %d request(s) while the page held its htmx requests, want 0", n)
	}

	start := time.Now()
	res := expectResponse(t, page, "**/fragments/twilio/numbers", func() error { release(); return nil })
	if res.Status() != http.StatusOK {
		t.Errorf("numbers fragment status %d, want 200", res.Status())
	}
	expectNumbers(t, page, acct.Numbers)
	t.Logf("120 numbers over 3 Twilio pages listed in %s", time.Since(start).Round(time.Millisecond))
	check(t, expect.Locator(skeleton).ToHaveCount(0), "skeleton gone")
	check(t, expect.Locator(regionAlert(region)).ToHaveCount(0), "no alert")
	for _, sel := range []string{"img", "script"} {
		check(t, expect.Locator(region.Locator(sel)).ToHaveCount(0), "no "+sel+" made from a friendly name")
	}

	// A row a user can see: number 0 has Voice, SMS and MMS; number 1 only Voice; number 3
	// (Fax only) none of them.
	row0 := region.Locator(fmt.Sprintf("tr[data-sid=%q]", acct.Numbers[0].SID))
	check(t, expect.Locator(row0.Locator(".badge")).ToHaveText([]string{"Voice", "SMS", "MMS"}), "badges of number 0")
	check(t, expect.Locator(row0.GetByText("MMS", playwright.LocatorGetByTextOptions{Exact: playwright.Bool(true)})).ToBeVisible(), "MMS badge visible")
	check(t, expect.Locator(region.Locator(fmt.Sprintf("tr[data-sid=%q] td.capabilities", acct.Numbers[3].SID))).ToHaveText(exactly("None")), "number 3 has no badge")
	last := region.Locator(fmt.Sprintf("tr[data-sid=%q]", acct.Numbers[119].SID))
	check(t, last.ScrollIntoViewIfNeeded(), "scroll to the last number")
	check(t, expect.Locator(last).ToContainText(acct.Numbers[119].PhoneNumber), "the 120th number")

	reqs := fake.Requests()
	if len(reqs) != 3 {
		t.Fatalf("fake Twilio got %d request(s), want 3 (pages of 50, 50 and 20): %+v", len(reqs), reqs)
	}
	id := correlationID(t, res)
	expectTwilioCorrelated(t, reqs, id)
	expectTwilioUser(t, reqs, acct.SID, acct.SID)
	for i, r := range reqs {
		if !strings.Contains(r.Query, "PageSize=50") || (i > 0 && !strings.Contains(r.Query, "Page="+strconv.Itoa(i))) {
			t.Errorf("fake Twilio request %d asked for %q, want page %d of 50", i, r.Query, i)
		}
	}
	expectNoSecrets(t, page, c, acct.Token)

	// The list says when Twilio was read; Refresh reads it again, in place, rather than
	// anything polling Twilio.
	readAt := region.Locator(".read-at")
	check(t, expect.Locator(readAt).ToContainText("Read from Twilio at"), "the read time")
	first, err := readAt.Locator("time").GetAttribute("datetime")
	check(t, err, "read time's datetime")
	time.Sleep(1100 * time.Millisecond) // the next read is a second later at least
	fake.ResetRequests()
	markPage(t, page)
	res = expectResponse(t, page, "**/fragments/twilio/numbers", func() error { return getRole(page, "button", "Refresh").Click() })
	if res.Status() != http.StatusOK {
		t.Errorf("Refresh: status %d, want 200", res.Status())
	}
	check(t, expect.Locator(readAt.Locator("time")).Not().ToHaveAttribute("datetime", first), "a new read time after Refresh")
	expectNumbers(t, page, acct.Numbers)
	if n := len(fake.Requests()); n != 3 {
		t.Errorf("Refresh made %d Twilio request(s), want the 3 pages again", n)
	}
	stillSamePage(t, page)
}

// A slow Twilio keeps the skeleton on screen while the call is in flight; one slower than
// UPSTREAM_TIMEOUT ends in a timeout alert whose "Try again" lists the numbers.
func TestTwilioSlowAnswerThenTimeout(t *testing.T) {
	t.Parallel()
	c, fake, acct, page := twilioOwner(t, 2, withEnv("UPSTREAM_TIMEOUT", "3s"))
	fake.SetDelay(1500 * time.Millisecond)

	open(t, page, c, "/numbers")
	waitForFake(t, "the fake Twilio to get the listing", func() bool { return len(fake.Requests()) == 1 })
	region := numbersRegion(page)
	check(t, expect.Locator(region.Locator(".skeleton")).ToBeVisible(quickVisibleTwilio), "skeleton while Twilio is answering")
	expectNumbers(t, page, acct.Numbers)

	fake.SetDelay(0)
	fake.FailNext(1, twiliotest.Failure{Delay: 10 * time.Second})
	start := time.Now()
	res := expectResponse(t, page, "**/fragments/twilio/numbers", func() error {
		_, err := page.Reload()
		return err
	})
	if res.Status() != http.StatusGatewayTimeout {
		t.Errorf("numbers fragment status %d after a timeout, want 504", res.Status())
	}
	if d := time.Since(start); d < 3*time.Second || d > 8*time.Second {
		t.Errorf("the timeout alert came after %s, want about UPSTREAM_TIMEOUT (3s)", d.Round(time.Millisecond))
	}
	alert := regionAlert(region)
	check(t, expect.Locator(alert).ToContainText("Twilio did not answer within 3s. Try again in a moment."), "timeout alert")
	check(t, expect.Locator(alert).ToContainText(regexp.MustCompile(`Reference:\s*[0-9a-f]{8}`)), "reference in the alert")

	check(t, getRoleIn(alert, "button", "Try again").Click(), "click Try again")
	expectNumbers(t, page, acct.Numbers)
	check(t, expect.Locator(alert).ToHaveCount(0), "alert gone after retry")
}

// Without credentials the page says Twilio is not connected and links to Integrations; once
// an account without numbers is connected, it says that instead: two different states.
func TestTwilioNotConnectedThenNoNumbers(t *testing.T) {
	t.Parallel()
	fake := twiliotest.New()
	acct := addTwilioAccount(fake, 0, 0)
	c := startTwilioConsole(t, fake)
	page := newPage(t)
	createOwner(t, page, c, ownerEmail, ownerPassword)

	open(t, page, c, "/numbers")
	region := numbersRegion(page)
	notConnected := region.GetByText("Twilio is not connected", playwright.LocatorGetByTextOptions{Exact: playwright.Bool(true)})
	noNumbers := region.GetByText("No numbers on this Twilio account", playwright.LocatorGetByTextOptions{Exact: playwright.Bool(true)})
	check(t, expect.Locator(notConnected).ToBeVisible(), "not-connected empty state")
	check(t, expect.Locator(noNumbers).ToHaveCount(0), "not the no-numbers state")
	check(t, expect.Locator(region.Locator("table")).ToHaveCount(0), "no table")
	check(t, expect.Locator(regionAlert(region)).ToHaveCount(0), "no alert")
	connect := getRoleIn(region, "link", "Connect Twilio")
	check(t, expect.Locator(connect).ToHaveAttribute("href", "/integrations"), "Connect Twilio link")
	if n := len(fake.Requests()); n != 0 {
		t.Errorf("fake Twilio got %d request(s) with nothing configured, want 0", n)
	}

	check(t, connect.Click(), "click Connect Twilio")
	expectAt(t, page, c, "/integrations")
	connectTwilio(t, page, acct.SID, acct.Token, "")
	check(t, expect.Locator(toasts(page)).ToContainText("Twilio connected"), "toast after connecting")

	open(t, page, c, "/numbers")
	check(t, expect.Locator(noNumbers).ToBeVisible(), "no-numbers empty state")
	check(t, expect.Locator(region).ToContainText("Buy or port a number in the Twilio console"), "what to do about it")
	check(t, expect.Locator(notConnected).ToHaveCount(0), "not the not-connected state")
	check(t, expect.Locator(getRoleIn(region, "link", "Connect Twilio")).ToHaveCount(0), "no Connect Twilio link")
	check(t, expect.Locator(region.Locator("table")).ToHaveCount(0), "no table")
	check(t, expect.Locator(regionAlert(region)).ToHaveCount(0), "no alert")
}

// The console cannot be reached once (network error), then Twilio answers 500 once: each
// state shows its alert with "Try again" (the first from static/app.js, the second with
// Twilio's code and message and a reference that is the request's correlation id, also sent
// to Twilio), and the last "Try again" lists the numbers.
func TestTwilioErrorsThenTryAgain(t *testing.T) {
	t.Parallel()
	c, fake, acct, page := twilioOwner(t, 3)
	var calls atomic.Int32
	check(t, page.Route("**/fragments/twilio/numbers", func(r playwright.Route) {
		if calls.Add(1) == 1 {
			_ = r.Abort()
			return
		}
		_ = r.Continue()
	}), "route the numbers fragment")
	fake.FailNext(1, twiliotest.Failure{Status: http.StatusInternalServerError, Code: 20500, Message: "Internal Server Error"})

	// The console cannot be reached.
	open(t, page, c, "/numbers")
	region := numbersRegion(page)
	alert := regionAlert(region)
	check(t, expect.Locator(alert).ToContainText("Cannot reach the console"), "connection-error alert")
	check(t, expect.Locator(alert).ToContainText("Check your connection"), "what to do")
	check(t, expect.Locator(alert).ToBeFocused(), "focus on the connection-error alert")
	check(t, expect.Locator(region.Locator(".skeleton")).ToHaveCount(0), "skeleton replaced")
	if n := len(fake.Requests()); n != 0 {
		t.Errorf("fake Twilio got %d request(s) before the first retry, want 0", n)
	}

	// Twilio answers 500.
	res := expectResponse(t, page, "**/fragments/twilio/numbers", func() error {
		return getRoleIn(alert, "button", "Try again").Click()
	})
	if res.Status() != http.StatusBadGateway {
		t.Errorf("numbers fragment status %d, want 502", res.Status())
	}
	id := correlationID(t, res)
	check(t, expect.Locator(alert).ToContainText(
		"Twilio is having trouble (20500: Internal Server Error (https://www.twilio.com/docs/errors/20500)). Try again in a moment."), "reason in the alert")
	check(t, expect.Locator(alert).Not().ToContainText("Cannot reach the console"), "connection error replaced")
	check(t, expect.Locator(alert).ToContainText(regexp.MustCompile(`Reference:\s*[0-9a-f]{8}`)), "reference in the alert")
	check(t, expect.Locator(alert).ToBeFocused(), "focus on the alert")
	ref := alertReference(t, alert)
	if len(ref) != 8 || !strings.HasPrefix(id, ref) {
		t.Errorf("alert reference %q is not the first 8 characters of the correlation id %q", ref, id)
	}
	reqs := fake.Requests()
	if len(reqs) != 1 {
		t.Fatalf("fake Twilio got %d request(s), want 1", len(reqs))
	}
	expectTwilioCorrelated(t, reqs, id)
	if logLineWith(c, id, "request failed") == "" {
		t.Errorf("no server log line says %q with the correlation id %s", "request failed", id)
	}

	// The list.
	retry := expectResponse(t, page, "**/fragments/twilio/numbers", func() error {
		return getRoleIn(alert, "button", "Try again").Click()
	})
	if retry.Status() != http.StatusOK {
		t.Errorf("retry status %d, want 200", retry.Status())
	}
	expectNumbers(t, page, acct.Numbers)
	check(t, expect.Locator(alert).ToHaveCount(0), "alert gone after retry")
	reqs = fake.Requests()
	if len(reqs) != 2 {
		t.Fatalf("fake Twilio got %d request(s) after the retry, want 2", len(reqs))
	}
	expectTwilioCorrelated(t, reqs[1:], correlationID(t, retry))
	if reqs[1].CorrelationID == id {
		t.Errorf("the retry reused the first request's correlation id %s", id)
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("the numbers fragment was requested %d time(s), want 3", n)
	}
	expectNoSecrets(t, page, c, acct.Token)
}

// Credentials Twilio refuses (401/20003) are the user's to fix, not an outage: the alert
// says so, retries keep reaching Twilio (the breaker does not open), the card records the
// error, and connecting good credentials fixes the page.
func TestTwilioBadCredentialsAskToFixThem(t *testing.T) {
	t.Parallel()
	fake := twiliotest.New()
	acct := addTwilioAccount(fake, 0, 2)
	wrongToken := twiliotest.AuthToken(9)
	c := startTwilioConsole(t, fake, withTwilioEnv(acct.SID, wrongToken), withEnv("BREAKER_RECOVERY_TIMEOUT", "10m"))
	page := newPage(t)
	createOwner(t, page, c, ownerEmail, ownerPassword)

	const refused = "Twilio refused the credentials (20003: Authenticate (https://www.twilio.com/docs/errors/20003)). Fix them on the Integrations page."
	open(t, page, c, "/numbers")
	region := numbersRegion(page)
	alert := regionAlert(region)
	check(t, expect.Locator(alert).ToContainText(refused), "bad-credentials message")
	check(t, expect.Locator(alert).ToContainText(regexp.MustCompile(`Reference:\s*[0-9a-f]{8}`)), "reference in the alert")

	// More than BREAKER_FAILURE_THRESHOLD (3) refusals in a row: each still reaches Twilio.
	for i := 2; i <= 4; i++ {
		res := expectResponse(t, page, "**/fragments/twilio/numbers", func() error {
			return getRoleIn(alert, "button", "Try again").Click()
		})
		if res.Status() != http.StatusBadGateway {
			t.Errorf("refusal %d: status %d, want 502", i, res.Status())
		}
		check(t, expect.Locator(alert).ToContainText(refused), fmt.Sprintf("refusal %d", i))
		check(t, expect.Locator(alert).Not().ToContainText("paused"), fmt.Sprintf("refusal %d does not open the breaker", i))
	}
	if n := len(fake.Requests()); n != 4 {
		t.Errorf("fake Twilio got %d request(s), want 4 (refused credentials must not open the breaker)", n)
	}
	expectTwilioUser(t, fake.Requests(), acct.SID, acct.SID)

	open(t, page, c, "/integrations")
	card := twilioCard(page)
	check(t, expect.Locator(card.GetByTestId("breaker-state")).ToHaveText(exactly("Closed: calls go through")), "breaker closed on the card")
	check(t, expect.Locator(card.GetByTestId("last-error")).ToContainText("Twilio refused the credentials"), "last error on the card")
	check(t, expect.Locator(card.GetByTestId("credential-source")).ToHaveText(exactly("From the server's environment, which serves only the first account: this one")), "environment credentials in use")

	// Fixing them: the account's own, good credentials.
	connectTwilio(t, page, acct.SID, acct.Token, "")
	check(t, expect.Locator(toasts(page)).ToContainText("Twilio connected"), "toast after connecting")
	open(t, page, c, "/numbers")
	expectNumbers(t, page, acct.Numbers)
	check(t, expect.Locator(page.Locator("main")).ToContainText("Using this account's credentials"), "source on /numbers")
	expectNoSecrets(t, page, c, acct.Token, wrongToken)
}

// 5xx answers, three in a row, open the "twilio" breaker: the alert says calls are paused and
// when to try again, and later calls do not reach Twilio. A 429/20429 before them is this
// account's rate limit, not an outage: it does not count.
func TestTwilioBreakerOpensAfterThreeFailures(t *testing.T) {
	t.Parallel()
	c, fake, _, page := twilioOwner(t, 2, withEnv("BREAKER_RECOVERY_TIMEOUT", "10m"))
	fake.FailNext(1, twiliotest.Failure{Status: http.StatusTooManyRequests, Code: 20429, Message: "Too Many Requests"})
	fake.FailNext(1, twiliotest.Failure{Status: http.StatusInternalServerError, Code: 20500, Message: "An internal server error has occurred"})
	fake.FailNext(1, twiliotest.Failure{Status: http.StatusBadGateway}) // plain text, as a proxy answers
	fake.FailNext(1, twiliotest.Failure{Status: http.StatusServiceUnavailable, Code: 20503, Message: "Service Unavailable"})

	open(t, page, c, "/numbers")
	region := numbersRegion(page)
	alert := regionAlert(region)
	check(t, expect.Locator(alert).ToContainText(
		"Twilio is rate limiting us (20429: Too Many Requests (https://www.twilio.com/docs/errors/20429)). Try again in a moment."), "rate limited")
	tryAgain := func() error { return getRoleIn(region, "button", "Try again").Click() }

	first := expectResponse(t, page, "**/fragments/twilio/numbers", tryAgain)
	if first.Status() != http.StatusBadGateway {
		t.Errorf("first failure: status %d, want 502", first.Status())
	}
	check(t, expect.Locator(alert).ToContainText("Twilio is having trouble (20500: An internal server error has occurred"), "500 with Twilio's code")

	second := expectResponse(t, page, "**/fragments/twilio/numbers", tryAgain)
	if second.Status() != http.StatusBadGateway {
		t.Errorf("second failure: status %d, want 502", second.Status())
	}
	check(t, expect.Locator(alert).ToContainText("Twilio is having trouble (it answered with an error). Try again in a moment."), "plain 502")

	third := expectResponse(t, page, "**/fragments/twilio/numbers", tryAgain)
	if third.Status() != http.StatusBadGateway {
		t.Errorf("third failure: status %d, want 502", third.Status())
	}
	check(t, expect.Locator(alert).ToContainText("Twilio is having trouble (20503: Service Unavailable"), "503 with Twilio's code")

	paused := regexp.MustCompile(`Twilio has been failing, so calls to it are paused\. Try again in (5\d\d|600) seconds\.`)
	for i := 5; i <= 6; i++ {
		res := expectResponse(t, page, "**/fragments/twilio/numbers", tryAgain)
		if res.Status() != http.StatusServiceUnavailable {
			t.Errorf("listing %d with the breaker open: status %d, want 503", i, res.Status())
		}
		if ra, err := strconv.Atoi(res.Headers()["retry-after"]); err != nil || ra < 500 || ra > 600 {
			t.Errorf("listing %d with the breaker open: Retry-After %q, want about 600 seconds", i, res.Headers()["retry-after"])
		}
		check(t, expect.Locator(alert).ToContainText(paused), fmt.Sprintf("breaker-open message (listing %d)", i))
		check(t, expect.Locator(getRoleIn(region, "button", "Try again")).ToBeVisible(), "Try again still offered")
	}
	if n := len(fake.Requests()); n != 4 {
		t.Errorf("fake Twilio got %d request(s), want 4 (none while the breaker is open)", n)
	}
	expectTwilioCorrelated(t, fake.Requests(), "")

	open(t, page, c, "/integrations")
	card := twilioCard(page)
	check(t, expect.Locator(card.GetByTestId("breaker-state")).ToHaveText(exactly("Open: calls are paused after repeated failures")), "breaker open on the card")
	// The last error is what opened the breaker, not the refusals since.
	check(t, expect.Locator(card.GetByTestId("last-error")).ToContainText("Twilio is having trouble"), "last error on the card")
}

// Connecting on /integrations: a malformed SID is refused before any call; credentials
// Twilio refuses show Twilio's words and store nothing; good ones are stored, masked, and
// "Test connection" uses them.
func TestTwilioConnectRefusedThenAccepted(t *testing.T) {
	t.Parallel()
	fake := twiliotest.New()
	acct := addTwilioAccount(fake, 0, 2)
	wrongToken := twiliotest.AuthToken(7)
	c := startTwilioConsole(t, fake)
	page := newPage(t)
	createOwner(t, page, c, ownerEmail, ownerPassword)
	open(t, page, c, "/integrations")

	card := twilioCard(page)
	source := card.GetByTestId("credential-source")
	check(t, expect.Locator(getRole(page, "region", "Twilio")).ToHaveCount(1), "the card is a region named Twilio")
	check(t, expect.Locator(source).ToHaveText(exactly("None")), "no credentials yet")
	check(t, expect.Locator(card.GetByText("Not connected", playwright.LocatorGetByTextOptions{Exact: playwright.Bool(true)})).ToBeVisible(), "Not connected badge")
	check(t, expect.Locator(getRoleIn(card, "heading", "Connect your Twilio account")).ToBeVisible(), "connect heading")
	check(t, expect.Locator(labelIn(card, twilioSecretLabel)).ToHaveAttribute("type", "password"), "secret is a password field")
	check(t, expect.Locator(getRoleIn(card, "button", "Test connection")).ToHaveCount(0), "no test before connecting")

	// A malformed Account SID: refused by the console, Twilio not called.
	connectTwilio(t, page, "AC123", acct.Token, "")
	check(t, expect.Locator(regionAlert(card)).ToContainText("account_sid must be your Account SID: AC followed by 32 hexadecimal characters."), "malformed SID")
	check(t, expect.Locator(labelIn(card, twilioSIDLabel)).ToHaveAttribute("aria-invalid", "true"), "SID field marked invalid")
	check(t, expect.Locator(labelIn(card, twilioSIDLabel)).ToHaveValue("AC123"), "typed SID kept")
	if n := len(fake.Requests()); n != 0 {
		t.Errorf("a malformed SID sent %d request(s) to Twilio, want 0", n)
	}

	// Credentials Twilio refuses.
	connectTwilio(t, page, acct.SID, wrongToken, "")
	check(t, expect.Locator(regionAlert(card)).ToContainText(twilioRefused), "Twilio's own reason")
	check(t, expect.Locator(labelIn(card, twilioSecretLabel)).ToHaveAttribute("aria-invalid", "true"), "secret field marked invalid")
	check(t, expect.Locator(labelIn(card, twilioSIDLabel)).Not().ToHaveAttribute("aria-invalid", "true"), "SID field no longer invalid")
	check(t, expect.Locator(labelIn(card, twilioSIDLabel)).ToHaveValue(acct.SID), "SID kept")
	check(t, expect.Locator(labelIn(card, twilioSecretLabel)).ToHaveValue(""), "secret not sent back")
	check(t, expect.Locator(source).ToHaveText(exactly("None")), "nothing stored after a refusal")
	check(t, expect.Locator(toasts(page)).Not().ToContainText("Twilio connected"), "no success toast")
	reqs := fake.Requests()
	if len(reqs) != 1 {
		t.Fatalf("the check sent %d request(s) to Twilio, want 1", len(reqs))
	}
	expectTwilioUser(t, reqs, acct.SID, acct.SID)
	expectTwilioCorrelated(t, reqs, "")
	open(t, page, c, "/integrations")
	check(t, expect.Locator(source).ToHaveText(exactly("None")), "nothing stored (after reload)")

	// The right credentials.
	connectTwilio(t, page, acct.SID, acct.Token, "")
	check(t, expect.Locator(toasts(page)).ToContainText("Twilio connected"), "toast after connecting")
	check(t, expect.Locator(source).ToHaveText(exactly("This account's own")), "credential source")
	check(t, expect.Locator(card.GetByText("Connected", playwright.LocatorGetByTextOptions{Exact: playwright.Bool(true)})).ToBeVisible(), "Connected badge")
	check(t, expect.Locator(cardFact(card, "Account SID")).ToHaveText(exactly(acct.SID)), "account SID shown")
	check(t, expect.Locator(cardFact(card, "Auth token")).ToHaveText(exactly("••••"+acct.Token[len(acct.Token)-4:])), "auth token masked")
	check(t, expect.Locator(regionAlert(card)).ToHaveCount(0), "no alert after success")
	check(t, expect.Locator(getRoleIn(card, "heading", "Replace the Twilio credentials")).ToBeVisible(), "form now replaces credentials")
	expectNoSecrets(t, page, c, acct.Token, wrongToken)

	fake.ResetRequests()
	clickIn(t, card, "button", "Test connection")
	check(t, expect.Locator(card.GetByText("Connected: Twilio lists 2 phone number(s) on this account.")).ToBeVisible(), "test result")
	check(t, expect.Locator(toasts(page)).ToContainText("Twilio connection works"), "test toast")
	reqs = fake.Requests()
	expectTwilioUser(t, reqs, acct.SID, acct.SID)
	expectTwilioCorrelated(t, reqs, "")

	open(t, page, c, "/integrations")
	check(t, expect.Locator(source).ToHaveText(exactly("This account's own")), "source after reload")
	expectNoSecrets(t, page, c, acct.Token, wrongToken)
	open(t, page, c, "/numbers")
	check(t, expect.Locator(page.Locator("main")).ToContainText("Using this account's credentials (account "+acct.SID+")"), "source on /numbers")
	expectNumbers(t, page, acct.Numbers)
}

// Replacing account A's credentials with account B's: the card shows B, /numbers lists B's
// numbers only, Twilio sees B's SID as the Basic auth user. Then B's API key (SK... and its
// secret) replaces B's Auth Token: Twilio sees the key SID as the user. No token or secret
// is ever on the page or in the log.
func TestTwilioReplaceCredentialsThenAPIKey(t *testing.T) {
	t.Parallel()
	fake := twiliotest.New()
	a := addTwilioAccount(fake, 0, 2)
	b := addTwilioAccount(fake, 1, 3)
	keySID := fmt.Sprintf("SK%032x", 0x5eed)
	const keySecret = "e2eApiKeySecret0123456789abcdefZ"
	fake.AddAPIKey(b.SID, keySID, keySecret)
	secrets := []string{a.Token, b.Token, keySecret}
	c := startTwilioConsole(t, fake)
	page := newPage(t)
	createOwner(t, page, c, ownerEmail, ownerPassword)

	// Account A.
	connectTwilioOK(t, page, c, a.SID, a.Token, "")
	open(t, page, c, "/numbers")
	expectNumbers(t, page, a.Numbers)
	expectNoSecrets(t, page, c, secrets...)

	// Account B replaces A.
	open(t, page, c, "/integrations")
	card := twilioCard(page)
	check(t, expect.Locator(getRoleIn(card, "heading", "Replace the Twilio credentials")).ToBeVisible(), "replace heading")
	connectTwilio(t, page, b.SID, b.Token, "")
	check(t, expect.Locator(toasts(page)).ToContainText("Twilio connected"), "toast after replacing")
	check(t, expect.Locator(cardFact(card, "Account SID")).ToHaveText(exactly(b.SID)), "B's SID on the card")
	check(t, expect.Locator(cardFact(card, "Auth token")).ToHaveText(exactly("••••"+b.Token[len(b.Token)-4:])), "B's token masked")
	expectNoSecrets(t, page, c, secrets...)

	fake.ResetRequests()
	open(t, page, c, "/numbers")
	check(t, expect.Locator(page.Locator("main")).ToContainText("(account "+b.SID+")"), "B's account on /numbers")
	expectNumbers(t, page, b.Numbers)
	for _, n := range a.Numbers {
		check(t, expect.Locator(numbersRegion(page)).Not().ToContainText(n.PhoneNumber), "no number of A")
	}
	expectTwilioUser(t, fake.Requests(), b.SID, b.SID)
	expectNoSecrets(t, page, c, secrets...)

	fake.ResetRequests()
	open(t, page, c, "/integrations")
	clickIn(t, card, "button", "Test connection")
	check(t, expect.Locator(card.GetByText("Connected: Twilio lists 3 phone number(s) on this account.")).ToBeVisible(), "test with B")
	expectTwilioUser(t, fake.Requests(), b.SID, b.SID)

	// A malformed API key SID is refused before any call.
	fake.ResetRequests()
	connectTwilio(t, page, b.SID, keySecret, "SK-not-a-key")
	check(t, expect.Locator(regionAlert(card)).ToContainText("api_key_sid must be an API key SID"), "malformed key SID")
	check(t, expect.Locator(labelIn(card, twilioKeyLabel)).ToHaveAttribute("aria-invalid", "true"), "key SID field marked invalid")
	if n := len(fake.Requests()); n != 0 {
		t.Errorf("a malformed key SID sent %d request(s) to Twilio, want 0", n)
	}

	// B's API key replaces B's Auth Token.
	connectTwilioOK(t, page, c, b.SID, keySecret, keySID)
	check(t, expect.Locator(cardFact(card, "API key SID")).ToHaveText(exactly(keySID)), "key SID on the card")
	check(t, expect.Locator(cardFact(card, "Auth token")).ToHaveText(exactly("••••"+keySecret[len(keySecret)-4:])), "key secret masked")
	reqs := fake.Requests()
	if len(reqs) != 1 {
		t.Errorf("connecting the API key sent %d request(s) to Twilio, want 1", len(reqs))
	}
	expectTwilioUser(t, reqs, keySID, b.SID)
	expectNoSecrets(t, page, c, secrets...)

	fake.ResetRequests()
	open(t, page, c, "/numbers")
	expectNumbers(t, page, b.Numbers)
	expectTwilioUser(t, fake.Requests(), keySID, b.SID)
	expectNoSecrets(t, page, c, secrets...)
}

// Credentials from TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN: the card says so, masked; a
// failing "Test connection" shows Twilio's error, the next one succeeds.
func TestTwilioEnvironmentCredentialsAndTestConnection(t *testing.T) {
	t.Parallel()
	c, fake, acct, page := twilioOwner(t, 4)
	open(t, page, c, "/integrations")
	card := twilioCard(page)
	check(t, expect.Locator(card.GetByTestId("credential-source")).ToHaveText(exactly("From the server's environment, which serves only the first account: this one")), "credential source")
	check(t, expect.Locator(card.GetByText("Connected", playwright.LocatorGetByTextOptions{Exact: playwright.Bool(true)})).ToBeVisible(), "Connected badge")
	check(t, expect.Locator(cardFact(card, "Account SID")).ToHaveText(exactly(acct.SID)), "account SID")
	check(t, expect.Locator(cardFact(card, "Auth token")).ToHaveText(exactly("••••"+acct.Token[len(acct.Token)-4:])), "auth token masked")
	check(t, expect.Locator(getRoleIn(card, "heading", "Connect your Twilio account")).ToBeVisible(), "form offers the account's own credentials")
	expectNoSecrets(t, page, c, acct.Token)

	fake.FailNext(1, twiliotest.Failure{Status: http.StatusInternalServerError, Code: 20500, Message: "Internal Server Error"})
	clickIn(t, card, "button", "Test connection")
	failed := regionAlert(card)
	check(t, expect.Locator(failed).ToContainText(
		"Connection failed: Twilio is having trouble (20500: Internal Server Error (https://www.twilio.com/docs/errors/20500))."), "failed test")

	clickIn(t, card, "button", "Test connection")
	check(t, expect.Locator(card.GetByText("Connected: Twilio lists 4 phone number(s) on this account.")).ToBeVisible(), "test result")
	check(t, expect.Locator(failed).ToHaveCount(0), "failure replaced by the result")
	reqs := fake.Requests()
	if len(reqs) != 2 {
		t.Errorf("two tests sent %d request(s) to Twilio, want 2", len(reqs))
	}
	expectTwilioUser(t, reqs, acct.SID, acct.SID)
	expectTwilioCorrelated(t, reqs, "")
	if len(reqs) == 2 && reqs[0].CorrelationID == reqs[1].CorrelationID {
		t.Errorf("two tests shared the correlation id %s", reqs[0].CorrelationID)
	}

	open(t, page, c, "/numbers")
	check(t, expect.Locator(page.Locator("main")).ToContainText("Using the server's environment credentials"), "source on /numbers")
	expectNumbers(t, page, acct.Numbers)
}

// At phone width the numbers table becomes stacked cards: each cell on its own line, within
// the screen, no sideways scroll.
func TestTwilioPhoneWidthNumbers(t *testing.T) {
	t.Parallel()
	fake := twiliotest.New()
	acct := addTwilioAccount(fake, 0, 6)
	c := startTwilioConsole(t, fake, withTwilioEnv(acct.SID, acct.Token))
	page := newPhonePage(t)
	createOwner(t, page, c, ownerEmail, ownerPassword)
	open(t, page, c, "/numbers")
	expectNumbers(t, page, acct.Numbers)

	header, err := numbersRegion(page).Locator("thead").BoundingBox()
	check(t, err, "measure the table header")
	if header != nil && (header.Width > 1 || header.Height > 1) {
		t.Errorf("the table header takes %gx%g px at phone width, want it visually hidden", header.Width, header.Height)
	}
	const viewport = 390
	for i := range acct.Numbers {
		row := numberRows(page).Nth(i)
		check(t, row.ScrollIntoViewIfNeeded(), fmt.Sprintf("scroll to row %d", i))
		box, err := row.BoundingBox()
		check(t, err, fmt.Sprintf("measure row %d", i))
		if box == nil {
			t.Fatalf("row %d has no box", i)
		}
		if box.X < 0 || box.X+box.Width > viewport+0.5 {
			t.Errorf("row %d spans x %g..%g, want within 0..%d", i, box.X, box.X+box.Width, viewport)
		}
		var prev *playwright.Rect
		for j := 0; j < 3; j++ {
			cell, err := row.Locator("td").Nth(j).BoundingBox()
			check(t, err, fmt.Sprintf("measure row %d cell %d", i, j))
			if cell == nil {
				t.Fatalf("row %d cell %d has no box", i, j)
			}
			if cell.Width < box.Width*0.8 {
				t.Errorf("row %d cell %d is %g px wide in a %g px row: cells do not stack", i, j, cell.Width, box.Width)
			}
			if prev != nil && cell.Y < prev.Y+prev.Height-0.5 {
				t.Errorf("row %d cell %d starts at y %g, above the end of cell %d (%g): cells do not stack", i, j, cell.Y, j-1, prev.Y+prev.Height)
			}
			prev = cell
		}
	}
	// Each stacked cell names its column (data-label, shown by CSS).
	label, err := numberRows(page).First().Locator("td").First().Evaluate(`td => getComputedStyle(td, "::before").content`, nil)
	check(t, err, "read the cell label")
	if label != `"Number"` {
		t.Errorf("the first cell's label is %v, want \"Number\"", label)
	}
	noSidewaysScroll(t, page)
}

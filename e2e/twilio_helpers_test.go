package e2e

// Helpers of the Twilio browser tests (twilio_test.go): a fake Twilio
// (services/twilio/twiliotest) with accounts whose numbers the tests know, a console wired
// to it, and locators for /numbers and the Twilio card of /integrations.

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/playwright-community/playwright-go"

	"github.com/ava/console/services/twilio/twiliotest"
)

// Labels of the Twilio connect form.
const (
	twilioSIDLabel    = "Account SID"
	twilioSecretLabel = "Auth token or API key secret"
	twilioKeyLabel    = "API key SID (optional)"
)

// twilioRefused is what the card shows when Twilio answers 401/20003 to the check before
// saving: Twilio's own code, message and more_info link.
const twilioRefused = "Twilio refused the credentials: 20003: Authenticate (https://www.twilio.com/docs/errors/20003)"

// twilioAccount is one account of the fake Twilio.
type twilioAccount struct {
	SID, Token string
	Numbers    []twiliotest.Number
}

// addTwilioAccount creates fake account i (twiliotest.AccountSID(i), AuthToken(i)) holding
// n numbers of its own (see twilioNumbers).
func addTwilioAccount(fake *twiliotest.Server, i, n int) twilioAccount {
	a := twilioAccount{SID: twiliotest.AccountSID(i), Token: twiliotest.AuthToken(i), Numbers: twilioNumbers(i, n)}
	fake.AddAccount(a.SID, a.Token, 0)
	fake.SetNumbers(a.SID, a.Numbers)
	return a
}

// twilioNumbers returns n numbers of account i, distinct from every other account's, with
// mixed capabilities: number k has Voice unless k%4 == 3, SMS when k is even, MMS when
// k%3 == 0; numbers with k%7 == 3 (3, 10, 17...) have only Fax, which the console does
// not show.
func twilioNumbers(i, n int) []twiliotest.Number {
	out := make([]twiliotest.Number, n)
	for k := range out {
		out[k] = twiliotest.Number{
			SID:          fmt.Sprintf("PN%08x%024x", i+1, k+1),
			PhoneNumber:  fmt.Sprintf("+1%03d555%04d", 200+i, k),
			FriendlyName: fmt.Sprintf("Account %d line %d", i, k),
			Voice:        k%4 != 3, SMS: k%2 == 0, MMS: k%3 == 0,
		}
		if k%7 == 3 {
			out[k].Voice, out[k].SMS, out[k].MMS, out[k].Fax = false, false, false, true
		}
	}
	return out
}

// twilioBadges are the capability badges the console should show for n.
func twilioBadges(n twiliotest.Number) []string {
	var out []string
	for _, b := range []struct {
		on   bool
		name string
	}{{n.Voice, "Voice"}, {n.SMS, "SMS"}, {n.MMS, "MMS"}} {
		if b.on {
			out = append(out, b.name)
		}
	}
	return out
}

// withTwilioEnv gives the console Twilio credentials through its environment
// (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN).
func withTwilioEnv(sid, token string) consoleOption {
	return func(t testing.TB, cfg *consoleConfig) {
		withEnv("TWILIO_ACCOUNT_SID", sid)(t, cfg)
		withEnv("TWILIO_AUTH_TOKEN", token)(t, cfg)
	}
}

// startTwilioConsole starts a console whose TWILIO_BASE_URL is fake.
func startTwilioConsole(t testing.TB, fake *twiliotest.Server, opts ...consoleOption) *console {
	t.Helper()
	return startConsole(t, append([]consoleOption{withUpstream("TWILIO_BASE_URL", fake)}, opts...)...)
}

// twilioOwner starts a console with fake account 0 (n numbers) configured through the
// environment, opens a desktop page and signs the first owner in.
func twilioOwner(t testing.TB, n int, opts ...consoleOption) (*console, *twiliotest.Server, twilioAccount, playwright.Page) {
	t.Helper()
	fake := twiliotest.New()
	acct := addTwilioAccount(fake, 0, n)
	c := startTwilioConsole(t, fake, append([]consoleOption{withTwilioEnv(acct.SID, acct.Token)}, opts...)...)
	page := newPage(t)
	createOwner(t, page, c, ownerEmail, ownerPassword)
	return c, fake, acct, page
}

// numbersRegion is the "Numbers" card of /numbers (its #twilio-numbers region is what htmx fills).
func numbersRegion(page playwright.Page) playwright.Locator {
	return getRole(page, "region", "Numbers")
}

// numberRows are the rows of the numbers table.
func numberRows(page playwright.Page) playwright.Locator {
	return numbersRegion(page).Locator("tr[data-sid]")
}

// twilioCard is the Twilio card of /integrations (section#integration-twilio).
func twilioCard(page playwright.Page) playwright.Locator {
	return page.Locator("section#integration-twilio")
}

// cardFact is the value (dd) of the card's fact labelled term (dt), e.g. "Auth token".
func cardFact(card playwright.Locator, term string) playwright.Locator {
	return card.Locator(fmt.Sprintf("dt:text-is(%q) + dd", term))
}

// connectTwilio fills the Twilio card's form and clicks "Check and save" (keySID may be "").
func connectTwilio(t testing.TB, page playwright.Page, sid, secret, keySID string) {
	t.Helper()
	card := twilioCard(page)
	fillIn(t, card, twilioSIDLabel, sid)
	fillIn(t, card, twilioSecretLabel, secret)
	fillIn(t, card, twilioKeyLabel, keySID)
	clickIn(t, card, "button", "Check and save")
}

// connectTwilioOK connects on /integrations and waits for the success toast and the
// account's own credentials on the card.
func connectTwilioOK(t testing.TB, page playwright.Page, c *console, sid, secret, keySID string) {
	t.Helper()
	open(t, page, c, "/integrations")
	connectTwilio(t, page, sid, secret, keySID)
	card := twilioCard(page)
	check(t, expect.Locator(toasts(page)).ToContainText("Twilio connected"), "toast after connecting")
	check(t, expect.Locator(card.GetByTestId("credential-source")).ToHaveText(exactly("This account's own")), "credential source")
	check(t, expect.Locator(cardFact(card, "Account SID")).ToHaveText(exactly(sid)), "account SID on the card")
}

// renderedNumber is one row of the numbers table as the page shows it.
type renderedNumber struct {
	SID, Number, Name string
	Badges            []string
	Muted             string
}

// readNumberRows reads every row of the numbers table in one round trip.
func readNumberRows(t testing.TB, page playwright.Page) []renderedNumber {
	t.Helper()
	v, err := numberRows(page).EvaluateAll(`rows => rows.map(r => {
		const cells = r.querySelectorAll("td");
		const caps = r.querySelector("td.capabilities");
		return {
			sid: r.dataset.sid,
			number: cells[0] ? cells[0].textContent.trim() : "",
			name: cells[1] ? cells[1].textContent.trim() : "",
			badges: caps ? Array.from(caps.querySelectorAll(".badge")).map(b => b.textContent.trim()) : [],
			muted: caps && caps.querySelector(".muted") ? caps.querySelector(".muted").textContent.trim() : "",
		};
	})`)
	check(t, err, "read the number rows")
	list, _ := v.([]any)
	out := make([]renderedNumber, 0, len(list))
	for _, item := range list {
		m, _ := item.(map[string]any)
		str := func(k string) string { s, _ := m[k].(string); return s }
		r := renderedNumber{SID: str("sid"), Number: str("number"), Name: str("name"), Muted: str("muted")}
		bs, _ := m["badges"].([]any)
		for _, b := range bs {
			s, _ := b.(string)
			r.Badges = append(r.Badges, s)
		}
		out = append(out, r)
	}
	return out
}

// expectNumbers waits for the numbers table to hold exactly want, in order: number,
// friendly name and capability badges of each ("None" when it has no voice, SMS or MMS).
func expectNumbers(t testing.TB, page playwright.Page, want []twiliotest.Number) {
	t.Helper()
	check(t, expect.Locator(numberRows(page)).ToHaveCount(len(want)), fmt.Sprintf("%d number rows", len(want)))
	check(t, expect.Locator(numbersRegion(page).Locator("table caption")).ToHaveText(exactly(fmt.Sprintf("%d phone numbers", len(want)))), "table caption")
	got := readNumberRows(t, page)
	bad := 0
	for i, w := range want {
		if i >= len(got) {
			break
		}
		g := got[i]
		wantBadges := twilioBadges(w)
		wantMuted := ""
		if len(wantBadges) == 0 {
			wantMuted = "None"
		}
		if g.SID != w.SID || g.Number != w.PhoneNumber || g.Name != w.FriendlyName ||
			strings.Join(g.Badges, ",") != strings.Join(wantBadges, ",") || g.Muted != wantMuted {
			if bad++; bad <= 5 {
				t.Errorf("number row %d: got %+v, want sid %s, %s, %q, badges %v%s", i, g, w.SID, w.PhoneNumber, w.FriendlyName, wantBadges,
					map[bool]string{true: ", muted None", false: ""}[wantMuted != ""])
			}
		}
	}
	if bad > 5 {
		t.Errorf("... and %d more wrong number rows", bad-5)
	}
}

// expectTwilioCorrelated checks that each of the fake's requests carried a correlation id
// and, when want is not "", that it is want.
func expectTwilioCorrelated(t testing.TB, reqs []twiliotest.Request, want string) {
	t.Helper()
	for i, r := range reqs {
		switch {
		case r.CorrelationID == "":
			t.Errorf("fake Twilio request %d (%s?%s) had no X-Correlation-ID", i, r.Path, r.Query)
		case want != "" && r.CorrelationID != want:
			t.Errorf("fake Twilio request %d (%s?%s): X-Correlation-ID %q, want %q", i, r.Path, r.Query, r.CorrelationID, want)
		}
	}
}

// expectTwilioUser checks that every request of the fake authenticated as username and
// asked for account sid's numbers.
func expectTwilioUser(t testing.TB, reqs []twiliotest.Request, username, sid string) {
	t.Helper()
	if len(reqs) == 0 {
		t.Errorf("fake Twilio got no request, want some as %s", username)
	}
	path := "/2010-04-01/Accounts/" + sid + "/IncomingPhoneNumbers.json"
	for i, r := range reqs {
		if r.Username != username || r.Path != path {
			t.Errorf("fake Twilio request %d: Basic auth user %q, path %s; want %q and %s", i, r.Username, r.Path, username, path)
		}
	}
}

// expectNoSecrets fails the test if the page's HTML or the server log holds any of secrets.
func expectNoSecrets(t testing.TB, page playwright.Page, c *console, secrets ...string) {
	t.Helper()
	html, err := page.Content()
	check(t, err, "read the page")
	logs := c.logs()
	for _, s := range secrets {
		if strings.Contains(html, s) {
			t.Errorf("%s holds a full Twilio secret (…%s)", page.URL(), s[len(s)-4:])
		}
		if strings.Contains(logs, s) {
			t.Errorf("the server log holds a full Twilio secret (…%s)", s[len(s)-4:])
		}
	}
}

// quickVisibleTwilio is a short timeout for a visibility check made while a state is
// known to be on screen.
var quickVisibleTwilio = playwright.LocatorAssertionsToBeVisibleOptions{Timeout: playwright.Float(500)}

// waitForFake polls cond (every 20 ms, up to pageTimeout) for something outside the page, such
// as the fake upstream receiving a request.
func waitForFake(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(pageTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

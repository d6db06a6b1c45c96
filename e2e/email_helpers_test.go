package e2e

// Helpers of the Email browser tests (email_test.go): a fake Resend
// (services/email/resendtest) that knows one sending-only key, a console wired to it, the
// two widths every Email state is checked at, and locators for /email and the Email card
// of /integrations.

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/playwright-community/playwright-go"

	"github.com/ava/console/services/email/resendtest"
)

const (
	// emailResendKey is the one key the fake Resend accepts: a sending-only key, as the
	// card's hint recommends ("A sending-only key is enough").
	emailResendKey = "re_e2eSend_7Hq2Lm9Xw4TzK8d1"
	// emailRevokedKey is a key the fake does not know (Resend: 403 invalid_api_key).
	emailRevokedKey = "re_e2eRevoked_0Kp3Vn8Rb2Qs"

	emailSender    = "Northside Dental <reception@northsidedental.test>"
	emailSenderTag = "reception@northsidedental.test"
	// emailTo is Resend's own test address that simulates a delivery.
	emailTo      = "delivered@resend.dev"
	emailSubject = "Your appointment on Tuesday"
	emailText    = "Hi Maria,\n\nThis is a reminder of your check-up on Tuesday at 10:30.\nReply to this email to reschedule.\n\nNorthside Dental"

	// Labels of the Email card's connect form and of the /email form.
	emailProviderLabel = "Provider"
	emailFromLabel     = "From address"
	emailKeyLabel      = "Resend API key"
	emailHostLabel     = "SMTP host"
	emailPortLabel     = "Port"
	emailUserLabel     = "Username (optional)"
	emailTLSLabel      = "Encryption"
	emailTLSNone       = "None (local relays only)"
)

// emailPaused is the message of a send refused by Resend's open breaker.
var emailPaused = regexp.MustCompile(`Resend has been failing, so calls to it are paused\. Try again in (5\d\d|600) seconds\.`)

// emailViewport is one of the widths every Email state is checked at.
type emailViewport struct {
	Name  string
	Open  func(testing.TB) playwright.Page
	Phone bool
}

var emailViewports = []emailViewport{
	{Name: "Desktop", Open: newPage},
	{Name: "Phone", Open: newPhonePage, Phone: true},
}

// eachWidth runs fn once at desktop width (1280 px) and once at phone width (390 px), as
// parallel subtests, each with its own console.
func eachWidth(t *testing.T, fn func(t *testing.T, vp emailViewport)) {
	t.Helper()
	for _, vp := range emailViewports {
		t.Run(vp.Name, func(t *testing.T) {
			t.Parallel()
			fn(t, vp)
		})
	}
}

// newFakeResend returns a fake Resend that accepts emailResendKey (sending only) and
// lists one verified domain.
func newFakeResend() *resendtest.Server {
	fake := resendtest.New()
	fake.AddKey(emailResendKey, true)
	fake.AddDomain("northsidedental.test")
	return fake
}

// withResendEnv gives the console Resend credentials through its environment
// (RESEND_API_KEY, EMAIL_FROM).
func withResendEnv() consoleOption {
	return func(t testing.TB, cfg *consoleConfig) {
		withEnv("RESEND_API_KEY", emailResendKey)(t, cfg)
		withEnv("EMAIL_FROM", emailSender)(t, cfg)
	}
}

// startEmailConsole starts a console whose RESEND_BASE_URL is fake.
func startEmailConsole(t testing.TB, fake *resendtest.Server, opts ...consoleOption) *console {
	t.Helper()
	return startConsole(t, append([]consoleOption{withUpstream("RESEND_BASE_URL", fake)}, opts...)...)
}

// emailOwner starts a console with a fresh fake Resend and opts, opens a page of vp and
// signs the first owner in.
func emailOwner(t testing.TB, vp emailViewport, opts ...consoleOption) (*console, *resendtest.Server, playwright.Page) {
	t.Helper()
	fake := newFakeResend()
	c := startEmailConsole(t, fake, opts...)
	page := vp.Open(t)
	createOwner(t, page, c, ownerEmail, ownerPassword)
	return c, fake, page
}

// emailCard is the Email card of /integrations (section#integration-email).
func emailCard(page playwright.Page) playwright.Locator {
	return page.Locator("section#integration-email")
}

// emailGroup is the card's fieldset of one provider ("resend" or "smtp").
func emailGroup(page playwright.Page, provider string) playwright.Locator {
	return emailCard(page).Locator(fmt.Sprintf("fieldset[data-when=%q]", provider))
}

// chooseProvider picks a provider ("Resend", "SMTP server") in the card's select.
func chooseProvider(t testing.TB, page playwright.Page, label string) {
	t.Helper()
	_, err := labelIn(emailCard(page), emailProviderLabel).SelectOption(playwright.SelectOptionValues{Labels: &[]string{label}})
	check(t, err, "choose provider "+label)
}

// connectResend fills the Email card for Resend and clicks "Check and save".
func connectResend(t testing.TB, page playwright.Page, from, key string) {
	t.Helper()
	card := emailCard(page)
	chooseProvider(t, page, "Resend")
	fillIn(t, card, emailFromLabel, from)
	fillIn(t, card, emailKeyLabel, key)
	clickIn(t, card, "button", "Check and save")
}

// connectSMTP fills the Email card for an SMTP server without sign-in and clicks
// "Check and save".
func connectSMTP(t testing.TB, page playwright.Page, host string, port int, tlsLabel, from string) {
	t.Helper()
	card := emailCard(page)
	chooseProvider(t, page, "SMTP server")
	fillIn(t, card, emailFromLabel, from)
	fillIn(t, card, emailHostLabel, host)
	fillIn(t, card, emailPortLabel, fmt.Sprint(port))
	fillIn(t, card, emailUserLabel, "")
	_, err := labelIn(card, emailTLSLabel).SelectOption(playwright.SelectOptionValues{Labels: &[]string{tlsLabel}})
	check(t, err, "choose encryption "+tlsLabel)
	clickIn(t, card, "button", "Check and save")
}

// emailForm is the "Send a test email" form of /email.
func emailForm(page playwright.Page) playwright.Locator {
	return page.Locator("form#email-test")
}

// sendButton is the form's own submit button (not the alert's "Try again").
func sendButton(page playwright.Page) playwright.Locator {
	return page.Locator("form#email-test > button[type=submit]")
}

// fillTestEmail types the test email into the /email form.
func fillTestEmail(t testing.TB, page playwright.Page, to, subject, text string) {
	t.Helper()
	fill(t, page, "To", to)
	fill(t, page, "Subject", subject)
	fill(t, page, "Text", text)
}

// sendTestEmail submits the /email form and returns the answer of POST /email/test.
func sendTestEmail(t testing.TB, page playwright.Page) playwright.Response {
	t.Helper()
	return expectResponse(t, page, "**/email/test", func() error { return sendButton(page).Click() })
}

// tryAgain clicks the alert's "Try again" in the /email form and returns the answer.
func tryAgain(t testing.TB, page playwright.Page) playwright.Response {
	t.Helper()
	return expectResponse(t, page, "**/email/test", func() error {
		return getRoleIn(regionAlert(emailForm(page)), "button", "Try again").Click()
	})
}

// expectStatus fails the test now if res does not have status want.
func expectStatus(t testing.TB, res playwright.Response, want int, what string) {
	t.Helper()
	if res.Status() != want {
		body, _ := res.Text()
		t.Fatalf("%s: POST %s answered %d, want %d\n%s", what, res.URL(), res.Status(), want, tail(body, 15))
	}
}

// expectEmailConnection checks the Connection summary of /email: provider (a regexp of
// its whole text), sender and where the credentials come from.
func expectEmailConnection(t testing.TB, page playwright.Page, provider *regexp.Regexp, from, source string) {
	t.Helper()
	summary := page.GetByTestId("email-connection")
	check(t, expect.Locator(getRole(page, "region", "Connection")).ToBeVisible(), "Connection card")
	check(t, expect.Locator(summary.GetByTestId("email-provider")).ToHaveText(provider), "provider in the summary")
	check(t, expect.Locator(summary.Locator("dt:text-is('From') + dd")).ToHaveText(exactly(from)), "sender in the summary")
	creds := summary.Locator("dt:text-is('Credentials') + dd")
	check(t, expect.Locator(creds).ToHaveText(regexp.MustCompile(`^\s*`+regexp.QuoteMeta(source)+`\s+Change\s*$`)), "credential source in the summary")
	check(t, expect.Locator(getRoleIn(creds, "link", "Change")).ToHaveAttribute("href", "/integrations"), "Change link")
}

// homeEmailState is the state badge of the Email section on the home page.
func homeEmailState(page playwright.Page) playwright.Locator {
	section := page.Locator("li.section-card").Filter(playwright.LocatorFilterOptions{Has: getRole(page, "heading", "Email")})
	return section.Locator(".badge")
}

// resendSends are the fake's POST /emails requests.
func resendSends(fake *resendtest.Server) []resendtest.Request {
	var out []resendtest.Request
	for _, r := range fake.Requests() {
		if r.Method == http.MethodPost && r.Path == "/emails" {
			out = append(out, r)
		}
	}
	return out
}

// expectResendSend checks one POST /emails the fake received: the console's User-Agent,
// the Bearer key, an Idempotency-Key, the correlation id (when want is not "") and the
// email as typed.
func expectResendSend(t testing.TB, r resendtest.Request, correlation, to, subject, text string) {
	t.Helper()
	if r.UserAgent != "ava-console/1" {
		t.Errorf("POST /emails User-Agent %q, want ava-console/1", r.UserAgent)
	}
	if want := "Bearer " + emailResendKey; r.Authorization != want {
		t.Errorf("POST /emails Authorization %q, want the Bearer key", r.Authorization)
	}
	if !uuidPattern.MatchString(r.IdempotencyKey) {
		t.Errorf("POST /emails Idempotency-Key %q, want a UUID", r.IdempotencyKey)
	}
	switch {
	case r.CorrelationID == "":
		t.Errorf("POST /emails had no X-Correlation-ID")
	case correlation != "" && r.CorrelationID != correlation:
		t.Errorf("POST /emails X-Correlation-ID %q, want the page request's %q", r.CorrelationID, correlation)
	}
	want := map[string]any{"from": emailSender, "to": []any{to}, "subject": subject, "text": text}
	if fmt.Sprint(r.Body) != fmt.Sprint(want) {
		t.Errorf("POST /emails body %v, want %v", r.Body, want)
	}
}

// expectEmailNoSecrets fails the test if the page's HTML or the server log holds any of keys.
func expectEmailNoSecrets(t testing.TB, page playwright.Page, c *console, keys ...string) {
	t.Helper()
	html, err := page.Content()
	check(t, err, "read the page")
	logs := c.logs()
	for _, k := range keys {
		if strings.Contains(html, k) {
			t.Errorf("%s holds a full Resend API key (…%s)", page.URL(), k[len(k)-4:])
		}
		if strings.Contains(logs, k) {
			t.Errorf("the server log holds a full Resend API key (…%s)", k[len(k)-4:])
		}
	}
}

// fits checks that the page does not scroll sideways (at phone width above all: 390 px).
func fits(t testing.TB, page playwright.Page, vp emailViewport) {
	t.Helper()
	noSidewaysScroll(t, page)
	keepShot(t, page, vp)
}

// keepShot saves a full-page screenshot to e2e/artifacts/<Test>-<n>.png when
// AVA_E2E_SHOTS=1, to look at the layout of a passing test.
func keepShot(t testing.TB, page playwright.Page, vp emailViewport) {
	t.Helper()
	if os.Getenv("AVA_E2E_SHOTS") != "1" {
		return
	}
	shotsMu.Lock()
	name := unsafeName.ReplaceAllString(t.Name(), "_")
	shotsTaken["keep-"+name]++
	path := filepath.Join(repoRoot, "e2e", "artifacts", fmt.Sprintf("%s-%d.png", name, shotsTaken["keep-"+name]))
	shotsMu.Unlock()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Logf("screenshot: %v", err)
		return
	}
	if _, err := page.Screenshot(playwright.PageScreenshotOptions{Path: playwright.String(path), FullPage: playwright.Bool(true)}); err != nil {
		t.Logf("screenshot of %s failed: %v", page.URL(), err)
		return
	}
	t.Logf("%s screenshot of %s: %s", vp.Name, page.URL(), path)
}

// homeEmailStateAt opens the home page and returns the Email section's state badge.
func homeEmailStateAt(t testing.TB, page playwright.Page, c *console) playwright.Locator {
	t.Helper()
	open(t, page, c, "/")
	return homeEmailState(page)
}

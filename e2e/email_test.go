package e2e

// Browser tests of the Email feature: the /email page in each of its states (not
// connected, the connection summary, sending, sent, a refused value, a provider's
// refusal with Try again, the breaker open, the development stub's outbox) and the Email
// card of /integrations (Resend refused then accepted, an SMTP server). Every test runs
// at desktop width and at phone width (390 px, no sideways scroll), each run with its
// own console against its own fake Resend (services/email/resendtest) or SMTP server
// (services/email/smtptest); helpers are in email_helpers_test.go.

import (
	"fmt"
	"mime"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/playwright-community/playwright-go"

	"github.com/ava/console/services/email/resendtest"
	"github.com/ava/console/services/email/smtptest"
)

// Without credentials, /email says Email is not connected and links to Integrations;
// Email is in the main navigation and the home page says "Not connected".
func TestEmailNotConnected(t *testing.T) {
	t.Parallel()
	eachWidth(t, func(t *testing.T, vp emailViewport) {
		c, fake, page := emailOwner(t, vp)

		check(t, expect.Locator(homeEmailState(page)).ToHaveText(regexp.MustCompile(`^\s*State:\s*Not connected\s*$`)), "home: Email not connected")
		check(t, expect.Locator(getRoleIn(page.Locator("li.section-card"), "link", "Email")).ToHaveAttribute("href", "/email"), "home: link to /email")
		nav := getRole(page, "navigation", "Main")
		link := getRoleIn(nav, "link", "Email")
		check(t, expect.Locator(link).ToHaveAttribute("href", "/email"), "Email in the main navigation")
		fits(t, page, vp)

		check(t, link.Click(), "click Email in the navigation")
		expectAt(t, page, c, "/email")
		check(t, expect.Locator(page.GetByRole("heading", playwright.PageGetByRoleOptions{
			Name: "Email", Exact: playwright.Bool(true), Level: playwright.Int(1),
		})).ToBeVisible(), "h1 Email")
		check(t, expect.Locator(link).ToHaveAttribute("aria-current", "page"), "Email is the current page")
		main := page.Locator("main")
		check(t, expect.Locator(main.GetByText("Email is not connected", playwright.LocatorGetByTextOptions{Exact: playwright.Bool(true)})).ToBeVisible(), "empty state")
		check(t, expect.Locator(main).ToContainText("Connect Resend or your SMTP server on the Integrations page to send email."), "what to do")
		connect := getRoleIn(main, "link", "Connect Email")
		check(t, expect.Locator(connect).ToHaveAttribute("href", "/integrations"), "Connect Email link")
		check(t, expect.Locator(emailForm(page)).ToHaveCount(0), "no test form")
		check(t, expect.Locator(page.GetByTestId("email-connection")).ToHaveCount(0), "no connection summary")
		check(t, expect.Locator(main.GetByRole("alert")).ToHaveCount(0), "no alert")
		fits(t, page, vp)

		check(t, connect.Click(), "click Connect Email")
		expectAt(t, page, c, "/integrations")
		card := emailCard(page)
		check(t, expect.Locator(card.GetByText("Not connected", playwright.LocatorGetByTextOptions{Exact: playwright.Bool(true)})).ToBeVisible(), "card: Not connected")
		check(t, expect.Locator(card.GetByTestId("credential-source")).ToHaveText(exactly("None")), "card: no credentials")
		check(t, expect.Locator(getRoleIn(card, "heading", "Connect your email provider")).ToBeVisible(), "card: connect form")
		check(t, expect.Locator(getRoleIn(card, "button", "Test connection")).ToHaveCount(0), "card: nothing to test")
		fits(t, page, vp)
		if n := len(fake.Requests()); n != 0 {
			t.Errorf("fake Resend got %d request(s) with nothing configured, want 0", n)
		}
	})
}

// Connecting Resend on the Email card: a key Resend refuses shows Resend's words on the
// key field and stores nothing, keeping the sender; the right key is stored, masked,
// tested, and summarised on /email. No key is ever on a page or in the log.
func TestEmailConnectResendRefusedThenAccepted(t *testing.T) {
	t.Parallel()
	eachWidth(t, func(t *testing.T, vp emailViewport) {
		c, fake, page := emailOwner(t, vp)
		open(t, page, c, "/integrations")
		card := emailCard(page)
		source := card.GetByTestId("credential-source")
		check(t, expect.Locator(getRole(page, "region", "Email")).ToHaveCount(1), "the card is a region named Email")
		check(t, expect.Locator(source).ToHaveText(exactly("None")), "no credentials yet")
		check(t, expect.Locator(labelIn(card, emailProviderLabel)).ToHaveValue("resend"), "Resend is the default provider")
		check(t, expect.Locator(labelIn(card, emailKeyLabel)).ToHaveAttribute("type", "password"), "the key is a password field")
		check(t, expect.Locator(emailGroup(page, "resend")).ToBeVisible(), "Resend fields shown")
		check(t, expect.Locator(emailGroup(page, "smtp")).ToBeHidden(), "SMTP fields hidden")

		// A key Resend does not know.
		connectResend(t, page, emailSender, emailRevokedKey)
		alert := regionAlert(card)
		check(t, expect.Locator(alert).ToContainText("Resend refused the API key"), "what was refused")
		check(t, expect.Locator(alert).ToContainText("API key is invalid"), "Resend's own words")
		check(t, expect.Locator(labelIn(card, emailKeyLabel)).ToHaveAttribute("aria-invalid", "true"), "key field marked invalid")
		check(t, expect.Locator(labelIn(card, emailFromLabel)).Not().ToHaveAttribute("aria-invalid", "true"), "sender not marked invalid")
		check(t, expect.Locator(labelIn(card, emailFromLabel)).ToHaveValue(emailSender), "sender kept")
		check(t, expect.Locator(labelIn(card, emailProviderLabel)).ToHaveValue("resend"), "provider kept")
		check(t, expect.Locator(labelIn(card, emailKeyLabel)).ToHaveValue(""), "key not sent back")
		check(t, expect.Locator(emailGroup(page, "smtp")).ToBeHidden(), "SMTP fields still hidden")
		check(t, expect.Locator(source).ToHaveText(exactly("None")), "nothing stored after a refusal")
		check(t, expect.Locator(toasts(page)).Not().ToContainText("Email connected"), "no success toast")
		fits(t, page, vp)
		reqs := fake.Requests()
		if len(reqs) != 1 || reqs[0].Method != http.MethodGet || reqs[0].Path != "/domains" || reqs[0].Authorization != "Bearer "+emailRevokedKey {
			t.Fatalf("the check sent %+v to Resend, want one GET /domains with the typed key", reqs)
		}
		if reqs[0].UserAgent != "ava-console/1" || reqs[0].CorrelationID == "" {
			t.Errorf("the check had User-Agent %q and X-Correlation-ID %q, want ava-console/1 and an id", reqs[0].UserAgent, reqs[0].CorrelationID)
		}
		if len(fake.Sent()) != 0 {
			t.Errorf("checking a key sent an email")
		}
		open(t, page, c, "/integrations")
		check(t, expect.Locator(source).ToHaveText(exactly("None")), "nothing stored (after reload)")

		// The right key.
		connectResend(t, page, emailSender, emailResendKey)
		check(t, expect.Locator(toasts(page)).ToContainText("Email connected"), "toast after connecting")
		check(t, expect.Locator(source).ToHaveText(exactly("This account's own")), "credential source")
		check(t, expect.Locator(card.GetByText("Connected", playwright.LocatorGetByTextOptions{Exact: playwright.Bool(true)})).ToBeVisible(), "Connected badge")
		check(t, expect.Locator(cardFact(card, "Provider")).ToHaveText(exactly("Resend")), "provider on the card")
		check(t, expect.Locator(cardFact(card, emailFromLabel)).ToHaveText(exactly(emailSender)), "sender on the card")
		check(t, expect.Locator(cardFact(card, "API key")).ToHaveText(exactly("••••"+emailResendKey[len(emailResendKey)-4:])), "key masked")
		check(t, expect.Locator(regionAlert(card)).ToHaveCount(0), "no alert after success")
		check(t, expect.Locator(getRoleIn(card, "heading", "Replace the Email credentials")).ToBeVisible(), "form now replaces credentials")
		expectEmailNoSecrets(t, page, c, emailResendKey, emailRevokedKey)

		fake.ResetRequests()
		clickIn(t, card, "button", "Test connection")
		check(t, expect.Locator(card.GetByText("Connected: Resend accepts this API key.")).ToBeVisible(), "test result")
		check(t, expect.Locator(toasts(page)).ToContainText("Email connection works"), "test toast")
		if reqs := fake.Requests(); len(reqs) != 1 || reqs[0].Path != "/domains" || reqs[0].Authorization != "Bearer "+emailResendKey {
			t.Errorf("Test connection sent %+v, want one GET /domains with the stored key", reqs)
		}
		fits(t, page, vp)

		open(t, page, c, "/integrations")
		check(t, expect.Locator(source).ToHaveText(exactly("This account's own")), "source after reload")
		expectEmailNoSecrets(t, page, c, emailResendKey, emailRevokedKey)

		open(t, page, c, "/email")
		expectEmailConnection(t, page, exactly("Resend"), emailSender, "This account's own")
		check(t, expect.Locator(getLabel(page, "Subject")).ToHaveValue("Test email from Ava console"), "default subject")
		check(t, expect.Locator(getLabel(page, "Text")).ToHaveValue("This is a test email sent from Ava console."), "default text")
		check(t, expect.Locator(getLabel(page, "To")).ToHaveValue(""), "no recipient yet")
		check(t, expect.Locator(getRoleIn(emailForm(page), "button", "Send test email")).ToBeVisible(), "send button")
		fits(t, page, vp)
		expectEmailNoSecrets(t, page, c, emailResendKey, emailRevokedKey)
		check(t, expect.Locator(homeEmailStateAt(t, page, c)).ToContainText("Connected"), "home: Email connected")
	})
}

// Connecting an SMTP server (no sign-in, no encryption): choosing "SMTP server" swaps the
// card's fields, the check talks to the server, the card and /email show host, port and
// encryption, and the test email arrives at the server as typed, with the page
// request's correlation id in X-Correlation-ID.
func TestEmailConnectSMTPThenSendTest(t *testing.T) {
	t.Parallel()
	eachWidth(t, func(t *testing.T, vp emailViewport) {
		srv := smtptest.Start(t, smtptest.Options{TLS: "none"})
		c, fake, page := emailOwner(t, vp)
		open(t, page, c, "/integrations")
		card := emailCard(page)
		resendGroup, smtpGroup := emailGroup(page, "resend"), emailGroup(page, "smtp")
		check(t, expect.Locator(resendGroup).ToBeVisible(), "Resend fields shown first")
		check(t, expect.Locator(smtpGroup).ToBeHidden(), "SMTP fields hidden first")
		check(t, expect.Locator(labelIn(card, emailHostLabel)).ToBeHidden(), "SMTP host hidden first")

		chooseProvider(t, page, "SMTP server")
		check(t, expect.Locator(resendGroup).ToBeHidden(), "Resend fields hidden")
		check(t, expect.Locator(labelIn(card, emailKeyLabel)).ToBeHidden(), "Resend key hidden")
		check(t, expect.Locator(labelIn(card, emailKeyLabel)).ToBeDisabled(), "Resend key not submitted")
		check(t, expect.Locator(smtpGroup).ToBeVisible(), "SMTP fields shown")
		check(t, expect.Locator(getRoleIn(card, "group", "SMTP server")).ToBeVisible(), "SMTP fields are a group named SMTP server")
		for _, label := range []string{emailHostLabel, emailPortLabel, emailUserLabel, "Password", emailTLSLabel} {
			check(t, expect.Locator(labelIn(card, label)).ToBeVisible(), label+" shown")
			check(t, expect.Locator(labelIn(card, label)).ToBeEnabled(), label+" enabled")
		}
		check(t, expect.Locator(labelIn(card, emailFromLabel)).ToBeVisible(), "sender shown for both providers")
		fits(t, page, vp)
		chooseProvider(t, page, "Resend")
		check(t, expect.Locator(smtpGroup).ToBeHidden(), "SMTP fields hidden again")
		check(t, expect.Locator(resendGroup).ToBeVisible(), "Resend fields shown again")

		connectSMTP(t, page, srv.Host(), srv.Port(), emailTLSNone, emailSender)
		check(t, expect.Locator(toasts(page)).ToContainText("Email connected"), "toast after connecting")
		check(t, expect.Locator(card.GetByTestId("credential-source")).ToHaveText(exactly("This account's own")), "credential source")
		check(t, expect.Locator(cardFact(card, "Provider")).ToHaveText(exactly("SMTP server")), "provider on the card")
		check(t, expect.Locator(cardFact(card, "Host")).ToHaveText(exactly("127.0.0.1")), "host on the card")
		check(t, expect.Locator(cardFact(card, "Port")).ToHaveText(exactly(strconv.Itoa(srv.Port()))), "port on the card")
		check(t, expect.Locator(cardFact(card, "Encryption")).ToHaveText(exactly(emailTLSNone)), "encryption on the card")
		check(t, expect.Locator(cardFact(card, emailFromLabel)).ToHaveText(exactly(emailSender)), "sender on the card")
		check(t, expect.Locator(cardFact(card, "Username")).ToHaveCount(0), "no username on the card")
		check(t, expect.Locator(cardFact(card, "API key")).ToHaveCount(0), "no Resend key on the card")
		// The form that comes back offers the connected provider's fields.
		check(t, expect.Locator(labelIn(card, emailProviderLabel)).ToHaveValue("smtp"), "SMTP chosen in the form")
		check(t, expect.Locator(smtpGroup).ToBeVisible(), "SMTP fields shown after connecting")
		check(t, expect.Locator(resendGroup).ToBeHidden(), "Resend fields hidden after connecting")
		if n := len(srv.Sessions()); n != 1 {
			t.Errorf("the check made %d SMTP session(s), want 1", n)
		}

		clickIn(t, card, "button", "Test connection")
		check(t, expect.Locator(card.GetByText(fmt.Sprintf("Connected: the SMTP server at 127.0.0.1:%d answered (none).", srv.Port()))).ToBeVisible(), "test result")
		for i, s := range srv.Sessions() {
			if s.Mail || s.AuthUser != "" || s.TLS {
				t.Errorf("SMTP session %d of a check: %+v, want no mail, no sign-in, no TLS", i, s)
			}
		}
		fits(t, page, vp)

		open(t, page, c, "/email")
		expectEmailConnection(t, page, regexp.MustCompile(fmt.Sprintf(`^\s*SMTP server\s+127\.0\.0\.1:%d\s+\(none\)\s*$`, srv.Port())), emailSender, "This account's own")
		const to = "maria.lopez@patients.test"
		fillTestEmail(t, page, to, emailSubject, emailText)
		res := sendTestEmail(t, page)
		expectStatus(t, res, http.StatusOK, "send through SMTP")
		id := correlationID(t, res)

		msgs := srv.Messages()
		if len(msgs) != 1 {
			t.Fatalf("the SMTP server received %d message(s), want 1", len(msgs))
		}
		m := msgs[0]
		subject, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
		check(t, err, "decode the Subject header")
		if m.From != emailSenderTag || len(m.To) != 1 || m.To[0] != to {
			t.Errorf("SMTP envelope from %q to %v, want %q to [%s]", m.From, m.To, emailSenderTag, to)
		}
		if subject != emailSubject {
			t.Errorf("Subject %q, want %q", subject, emailSubject)
		}
		if got := strings.TrimRight(m.Body, "\n"); got != emailText {
			t.Errorf("body %q, want %q", got, emailText)
		}
		if got := m.Header.Get("X-Correlation-ID"); got != id {
			t.Errorf("X-Correlation-ID header %q, want the page request's %q", got, id)
		}
		messageID := strings.Trim(m.Header.Get("Message-Id"), "<>")
		if !strings.HasSuffix(messageID, "@northsidedental.test") {
			t.Errorf("Message-Id %q, want <uuid@northsidedental.test>", m.Header.Get("Message-Id"))
		}
		check(t, expect.Locator(toasts(page)).ToContainText(fmt.Sprintf("Test email sent to %s (id %s)", to, messageID)), "toast with the Message-Id")
		check(t, expect.Locator(emailForm(page).GetByRole("status")).ToHaveText(exactly(
			fmt.Sprintf("Sent to %s through the SMTP server (id %s).", to, messageID))), "success line")
		if logLineWith(c, id, "test email sent", messageID) == "" {
			t.Errorf("no server log line says the test email was sent with correlation id %s and id %s", id, messageID)
		}
		fits(t, page, vp)
		if n := len(fake.Requests()); n != 0 {
			t.Errorf("fake Resend got %d request(s) while Email used SMTP, want 0", n)
		}
	})
}

// Credentials from the environment: /email summarises them; while the send is in flight
// the button is disabled and says "Sending…"; then the toast and the form give Resend's
// id, and Resend received the key, the console's User-Agent, an Idempotency-Key and the
// page request's correlation id (the one the server logged).
func TestEmailSendingStateThenSent(t *testing.T) {
	t.Parallel()
	eachWidth(t, func(t *testing.T, vp emailViewport) {
		c, fake, page := emailOwner(t, vp, withResendEnv())
		check(t, expect.Locator(homeEmailState(page)).ToContainText("Connected (environment credentials)"), "home: environment credentials")
		open(t, page, c, "/email")
		expectEmailConnection(t, page, exactly("Resend"), emailSender, "From the server's environment")
		fillTestEmail(t, page, emailTo, emailSubject, emailText)

		button := sendButton(page)
		release := holdHTMX(t, page)
		check(t, button.Click(), "click Send test email")
		check(t, expect.Locator(button).ToBeDisabled(), "button disabled while sending")
		check(t, expect.Locator(button.Locator(".when-busy")).ToBeVisible(), "busy label shown")
		check(t, expect.Locator(button.Locator(".when-busy")).ToHaveText("Sending…"), "busy label")
		check(t, expect.Locator(button.Locator(".when-idle")).ToBeHidden(), "idle label hidden")
		check(t, expect.Locator(emailForm(page)).ToHaveClass(regexp.MustCompile(`\bhtmx-request\b`)), "form marked busy")
		check(t, expect.Locator(toasts(page)).Not().ToContainText("Test email sent"), "no toast yet")
		if n := len(fake.Requests()); n != 0 {
			t.Errorf("fake Resend got %d request(s) while the page held its request, want 0", n)
		}
		fits(t, page, vp)

		res := expectResponse(t, page, "**/email/test", func() error { release(); return nil })
		expectStatus(t, res, http.StatusOK, "send")
		id := correlationID(t, res)
		sent := fake.Sent()
		if len(sent) != 1 {
			t.Fatalf("fake Resend accepted %d email(s), want 1", len(sent))
		}
		msgID := sent[0].ID
		check(t, expect.Locator(toasts(page)).ToContainText(fmt.Sprintf("Test email sent to %s (id %s)", emailTo, msgID)), "toast with Resend's id")
		check(t, expect.Locator(emailForm(page).GetByRole("status")).ToHaveText(exactly(
			fmt.Sprintf("Sent to %s through Resend (id %s).", emailTo, msgID))), "success line")
		check(t, expect.Locator(button).ToBeEnabled(), "button enabled again")
		check(t, expect.Locator(button.Locator(".when-idle")).ToBeVisible(), "idle label back")
		check(t, expect.Locator(button.Locator(".when-busy")).ToBeHidden(), "busy label gone")
		check(t, expect.Locator(getLabel(page, "To")).ToHaveValue(emailTo), "recipient kept for another send")
		check(t, expect.Locator(regionAlert(emailForm(page))).ToHaveCount(0), "no alert")

		reqs := resendSends(fake)
		if len(reqs) != 1 {
			t.Fatalf("fake Resend got %d POST /emails, want 1", len(reqs))
		}
		expectResendSend(t, reqs[0], id, emailTo, emailSubject, emailText)
		if sent[0].IdempotencyKey != reqs[0].IdempotencyKey || sent[0].From != emailSender || sent[0].Subject != emailSubject {
			t.Errorf("fake Resend recorded %+v", sent[0])
		}
		if logLineWith(c, `"correlation_id":"`+id+`"`, "test email sent", msgID) == "" {
			t.Errorf("no server log line says the test email %s was sent under correlation id %s", msgID, id)
		}
		expectEmailNoSecrets(t, page, c, emailResendKey)
		fits(t, page, vp)
	})
}

// Values the browser lets through but the console refuses are refused before any call
// to Resend: the form names the field, marks it invalid and keeps everything typed.
// The browser's own checks (type=email, required, maxlength) would stop the obvious
// ones, so the values are an address with two dots in a row (type=email accepts it), a
// 201-character subject (maxlength removed first, as a script or old browser could),
// and a text of blanks (required accepts it).
func TestEmailRefusedValuesKeepWhatWasTyped(t *testing.T) {
	t.Parallel()
	eachWidth(t, func(t *testing.T, vp emailViewport) {
		c, fake, page := emailOwner(t, vp, withResendEnv())
		open(t, page, c, "/email")
		form := emailForm(page)
		alert := regionAlert(form)
		to, subject, text := getLabel(page, "To"), getLabel(page, "Subject"), getLabel(page, "Text")

		const typo = "maria..lopez@patients.test"
		fillTestEmail(t, page, typo, emailSubject, emailText)
		valid, err := to.Evaluate(`el => el.checkValidity()`, nil)
		check(t, err, "ask the browser about the address")
		if valid != true {
			t.Fatalf("the browser refuses %q itself (checkValidity %v): the test needs a value only the server refuses", typo, valid)
		}
		res := sendTestEmail(t, page)
		expectStatus(t, res, http.StatusUnprocessableEntity, "address with two dots")
		check(t, expect.Locator(alert).ToHaveText(exactly("to must be one email address, like someone@example.com.")), "refusal naming to")
		check(t, expect.Locator(to).ToHaveAttribute("aria-invalid", "true"), "To marked invalid")
		check(t, expect.Locator(to).ToHaveValue(typo), "address kept")
		check(t, expect.Locator(subject).ToHaveValue(emailSubject), "subject kept")
		check(t, expect.Locator(text).ToHaveValue(emailText), "text kept")
		check(t, expect.Locator(subject).Not().ToHaveAttribute("aria-invalid", "true"), "subject not marked")
		check(t, expect.Locator(alert).ToBeFocused(), "focus on the refusal")
		check(t, expect.Locator(getRoleIn(alert, "button", "Try again")).ToHaveCount(0), "nothing to try again")
		check(t, expect.Locator(form.GetByRole("status")).ToHaveCount(0), "no success line")
		check(t, expect.Locator(toasts(page)).Not().ToContainText("Test email sent"), "no toast")
		fits(t, page, vp)

		// A subject one character too long.
		fill(t, page, "To", emailTo)
		_, err = subject.Evaluate(`el => el.removeAttribute("maxlength")`, nil)
		check(t, err, "remove the subject's maxlength")
		const long = "Reminder: your check-up with Dr. Okafor at Northside Dental is on Tuesday, 14 October, at 10:30; " +
			"please arrive ten minutes early and bring your insurance card, your list of medicines and recent X-rays."
		if n := len([]rune(long)); n != 201 {
			t.Fatalf("the long subject has %d characters, want 201", n)
		}
		fill(t, page, "Subject", long)
		res = sendTestEmail(t, page)
		expectStatus(t, res, http.StatusUnprocessableEntity, "long subject")
		check(t, expect.Locator(alert).ToHaveText(exactly("subject must be 1 to 200 characters (it has 201).")), "refusal naming subject")
		check(t, expect.Locator(subject).ToHaveAttribute("aria-invalid", "true"), "Subject marked invalid")
		check(t, expect.Locator(to).Not().ToHaveAttribute("aria-invalid", "true"), "To no longer marked")
		check(t, expect.Locator(subject).ToHaveValue(long), "long subject kept")
		check(t, expect.Locator(subject).ToHaveAttribute("maxlength", "200"), "maxlength back on the new form")

		// Only blanks in the text.
		fill(t, page, "Subject", emailSubject)
		fill(t, page, "Text", "   \n   ")
		res = sendTestEmail(t, page)
		expectStatus(t, res, http.StatusUnprocessableEntity, "blank text")
		check(t, expect.Locator(alert).ToHaveText(exactly("text is required: 1 to 10000 characters.")), "refusal naming text")
		check(t, expect.Locator(text).ToHaveAttribute("aria-invalid", "true"), "Text marked invalid")
		check(t, expect.Locator(to).ToHaveValue(emailTo), "address kept")
		if n := len(fake.Requests()); n != 0 {
			t.Errorf("refused values sent %d request(s) to Resend, want 0", n)
		}

		// Corrected, it goes.
		fill(t, page, "Text", emailText)
		res = sendTestEmail(t, page)
		expectStatus(t, res, http.StatusOK, "corrected email")
		check(t, expect.Locator(toasts(page)).ToContainText("Test email sent to "+emailTo), "toast after correcting")
		check(t, expect.Locator(alert).ToHaveCount(0), "refusal gone")
		check(t, expect.Locator(form.Locator("[aria-invalid]")).ToHaveCount(0), "no field marked")
		if reqs := resendSends(fake); len(reqs) != 1 {
			t.Errorf("fake Resend got %d POST /emails, want 1 (the corrected email)", len(reqs))
		}
		fits(t, page, vp)
	})
}

// Resend refuses the email (422 validation_error, 403 invalid_from_address, then 403
// validation_error for a sender domain it has not verified): an alert with Resend's
// words, never blaming the API key, a reference that is the request's correlation id, and
// Try again, everything typed kept. Once Resend accepts, Try again sends it.
func TestEmailProviderRefusalThenTryAgain(t *testing.T) {
	t.Parallel()
	eachWidth(t, func(t *testing.T, vp emailViewport) {
		c, fake, page := emailOwner(t, vp, withResendEnv())
		const invalidFrom = "Invalid `from` field. The email address needs to follow the `email@example.com` or `Name <email@example.com>` format."
		fake.FailNext(1, resendtest.Failure{Status: http.StatusUnprocessableEntity, Name: "validation_error", Message: invalidFrom})
		fake.FailNext(1, resendtest.Failure{Status: http.StatusForbidden, Name: "invalid_from_address", Message: "The from address is not valid."})
		const unverified = "The northsidedental.test domain is not verified. Please, add and verify your domain on https://resend.com/domains"
		fake.FailNext(1, resendtest.Failure{Status: http.StatusForbidden, Name: "validation_error", Message: unverified})

		open(t, page, c, "/email")
		fillTestEmail(t, page, emailTo, emailSubject, emailText)
		res := sendTestEmail(t, page)
		expectStatus(t, res, http.StatusBadGateway, "422 from Resend")
		first := correlationID(t, res)
		alert := regionAlert(emailForm(page))
		check(t, expect.Locator(alert.Locator(".alert-title")).ToHaveText(exactly("The test email was not sent")), "alert title")
		message := alert.Locator(".alert-message")
		check(t, expect.Locator(message).ToContainText("Resend refused the email"), "what was refused")
		check(t, expect.Locator(message).ToContainText(invalidFrom), "Resend's own words")
		check(t, expect.Locator(message).Not().ToContainText("API key"), "not blamed on the key")
		check(t, expect.Locator(alert).ToContainText(regexp.MustCompile(`Reference:\s*[0-9a-f]{8}`)), "reference")
		if ref := alertReference(t, alert); len(ref) != 8 || !strings.HasPrefix(first, ref) {
			t.Errorf("alert reference %q is not the start of the correlation id %q", ref, first)
		}
		check(t, expect.Locator(getRoleIn(alert, "button", "Try again")).ToBeVisible(), "Try again")
		check(t, expect.Locator(alert).ToBeFocused(), "focus on the alert")
		check(t, expect.Locator(getLabel(page, "To")).ToHaveValue(emailTo), "address kept")
		check(t, expect.Locator(getLabel(page, "Subject")).ToHaveValue(emailSubject), "subject kept")
		check(t, expect.Locator(getLabel(page, "Text")).ToHaveValue(emailText), "text kept")
		check(t, expect.Locator(emailForm(page).Locator("[aria-invalid]")).ToHaveCount(0), "no field blamed")
		check(t, expect.Locator(toasts(page)).Not().ToContainText("Test email sent"), "no toast")
		if logLineWith(c, first, "test email not sent") == "" {
			t.Errorf("no server log line says the test email was not sent under correlation id %s", first)
		}
		fits(t, page, vp)

		res = tryAgain(t, page)
		expectStatus(t, res, http.StatusBadGateway, "403 invalid_from_address from Resend")
		second := correlationID(t, res)
		check(t, expect.Locator(message).ToContainText("Resend refused the email"), "what was refused, again")
		check(t, expect.Locator(message).ToContainText("The from address is not valid"), "Resend's own words, again")
		check(t, expect.Locator(message).Not().ToContainText("API key"), "a sender refusal is not blamed on the key")
		if ref := alertReference(t, alert); !strings.HasPrefix(second, ref) || second == first {
			t.Errorf("after Try again the reference is %q for correlation id %q (first %q)", ref, second, first)
		}

		// Resend's answer when the sender's domain is not verified (its docs: 403 validation_error).
		res = tryAgain(t, page)
		expectStatus(t, res, http.StatusBadGateway, "403 validation_error from Resend")
		third := correlationID(t, res)
		check(t, expect.Locator(message).ToContainText(unverified), "Resend's own words about the domain")
		check(t, expect.Locator(message).ToContainText("Resend refused the email"), "what was refused: the email")
		check(t, expect.Locator(message).Not().ToContainText("API key"), "an unverified domain is not blamed on the key")

		res = tryAgain(t, page)
		expectStatus(t, res, http.StatusOK, "Try again once Resend accepts")
		sent := fake.Sent()
		if len(sent) != 1 {
			t.Fatalf("fake Resend accepted %d email(s), want 1", len(sent))
		}
		check(t, expect.Locator(toasts(page)).ToContainText(fmt.Sprintf("Test email sent to %s (id %s)", emailTo, sent[0].ID)), "toast after Try again")
		check(t, expect.Locator(alert).ToHaveCount(0), "alert gone")
		check(t, expect.Locator(emailForm(page).GetByRole("status")).ToContainText("through Resend (id "+sent[0].ID+")"), "success line")

		reqs := resendSends(fake)
		if len(reqs) != 4 {
			t.Fatalf("fake Resend got %d POST /emails, want 4", len(reqs))
		}
		for i, want := range []string{first, second, third, correlationID(t, res)} {
			expectResendSend(t, reqs[i], want, emailTo, emailSubject, emailText)
		}
		fits(t, page, vp)
	})
}

// Resend answers 500 three times in a row (BREAKER_FAILURE_THRESHOLD's default): the
// fourth send is refused by the console without reaching Resend, saying when to try
// again; the Integrations card and the home page show the open breaker.
func TestEmailBreakerOpensAfterThreeFailures(t *testing.T) {
	t.Parallel()
	eachWidth(t, func(t *testing.T, vp emailViewport) {
		c, fake, page := emailOwner(t, vp, withResendEnv(), withEnv("BREAKER_RECOVERY_TIMEOUT", "10m"))
		fake.FailNext(3, resendtest.Failure{Status: http.StatusInternalServerError, Name: "internal_server_error", Message: "An unexpected error occurred."})

		open(t, page, c, "/email")
		fillTestEmail(t, page, emailTo, emailSubject, emailText)
		alert := regionAlert(emailForm(page))
		res := sendTestEmail(t, page)
		for i := 1; i <= 3; i++ {
			expectStatus(t, res, http.StatusBadGateway, fmt.Sprintf("failure %d", i))
			message := alert.Locator(".alert-message")
			check(t, expect.Locator(message).ToContainText("Resend is having trouble"), fmt.Sprintf("failure %d", i))
			check(t, expect.Locator(message).ToContainText("An unexpected error occurred"), fmt.Sprintf("failure %d: Resend's words", i))
			check(t, expect.Locator(message).ToContainText("Try again in a moment."), fmt.Sprintf("failure %d: what to do", i))
			if i < 3 {
				res = tryAgain(t, page)
			}
		}

		res = tryAgain(t, page)
		expectStatus(t, res, http.StatusServiceUnavailable, "breaker open")
		if ra, err := strconv.Atoi(res.Headers()["retry-after"]); err != nil || ra < 500 || ra > 600 {
			t.Errorf("breaker open: Retry-After %q, want about 600 seconds", res.Headers()["retry-after"])
		}
		check(t, expect.Locator(alert.Locator(".alert-message")).ToHaveText(emailPaused), "breaker-open message")
		check(t, expect.Locator(getRoleIn(alert, "button", "Try again")).ToBeVisible(), "Try again still offered")
		check(t, expect.Locator(alert).ToContainText(regexp.MustCompile(`Reference:\s*[0-9a-f]{8}`)), "reference")
		check(t, expect.Locator(getLabel(page, "Subject")).ToHaveValue(emailSubject), "subject kept")
		fits(t, page, vp)
		if n := len(resendSends(fake)); n != 3 {
			t.Errorf("fake Resend got %d POST /emails, want 3 (none while the breaker is open)", n)
		}
		if n := len(fake.Sent()); n != 0 {
			t.Errorf("fake Resend accepted %d email(s), want 0", n)
		}

		open(t, page, c, "/integrations")
		card := emailCard(page)
		check(t, expect.Locator(card.GetByTestId("breaker-state")).ToHaveText(exactly("Open: calls are paused after repeated failures")), "breaker open on the card")
		check(t, expect.Locator(card.GetByTestId("last-error")).ToContainText("Resend is having trouble"), "last error on the card")
		fits(t, page, vp)
		check(t, expect.Locator(homeEmailStateAt(t, page, c)).ToContainText("Failing: calls paused"), "home: Email failing")
	})
}

// With INTEGRATIONS_STUB_MODE in development and nothing configured, Email uses the stub:
// /email says so, its outbox starts empty, and each test email appears there (newest
// first) without a reload. Nothing reaches Resend.
func TestEmailStubOutbox(t *testing.T) {
	t.Parallel()
	eachWidth(t, func(t *testing.T, vp emailViewport) {
		c, fake, page := emailOwner(t, vp, withEnv("INTEGRATIONS_STUB_MODE", "true"))
		check(t, expect.Locator(homeEmailState(page)).ToContainText("Stub (development only)"), "home: stub")
		open(t, page, c, "/email")
		const stubFrom = "Ava (stub) <stub@ava.invalid>"
		expectEmailConnection(t, page, regexp.MustCompile(
			`^\s*Stub\s+The built-in stand-in \(development only\): emails go to the outbox below, nothing is delivered\s*$`), stubFrom, "None (stub)")
		check(t, expect.Locator(page.GetByTestId("email-provider").Locator(".badge")).ToHaveText(exactly("Stub")), "Stub badge in the summary")

		outbox := page.GetByRole("region", playwright.PageGetByRoleOptions{Name: regexp.MustCompile(`^Stub outbox`)})
		check(t, expect.Locator(outbox.Locator("h2 .badge")).ToHaveText(exactly("Stub")), "Stub badge on the outbox")
		check(t, expect.Locator(outbox).ToContainText("The latest 20 emails the stub took. Nothing here was delivered."), "outbox hint")
		empty := outbox.GetByText("The stub outbox is empty", playwright.LocatorGetByTextOptions{Exact: playwright.Bool(true)})
		check(t, expect.Locator(empty).ToBeVisible(), "empty outbox")
		check(t, expect.Locator(outbox).ToContainText("Test emails sent while Email uses the stub appear here instead of being delivered."), "what the outbox is for")
		check(t, expect.Locator(outbox.Locator(".skeleton")).ToHaveCount(0), "skeleton replaced")
		fits(t, page, vp)
		_, err := page.Evaluate(`() => { window.__sameEmailPage = true }`, nil)
		check(t, err, "mark the page")

		items := outbox.Locator("li.outbox-item")
		var ids []string
		for i, subject := range []string{emailSubject, "Your appointment was moved to Wednesday"} {
			fillTestEmail(t, page, emailTo, subject, emailText)
			res := sendTestEmail(t, page)
			expectStatus(t, res, http.StatusOK, fmt.Sprintf("stub send %d", i+1))
			line := emailForm(page).GetByRole("status")
			check(t, expect.Locator(line).ToHaveText(regexp.MustCompile(`^\s*Sent to `+regexp.QuoteMeta(emailTo)+` through the stub \(id stub-[0-9a-f-]{36}\)\.\s*$`)), "success line")
			text, err := line.TextContent()
			check(t, err, "read the success line")
			id := regexp.MustCompile(`stub-[0-9a-f-]{36}`).FindString(text)
			ids = append([]string{id}, ids...)
			check(t, expect.Locator(toasts(page)).ToContainText(fmt.Sprintf("Test email sent to %s (id %s)", emailTo, id)), "toast")
			check(t, expect.Locator(items).ToHaveCount(i+1), fmt.Sprintf("%d email(s) in the outbox", i+1))
		}
		check(t, expect.Locator(empty).ToHaveCount(0), "empty state gone")
		check(t, expect.Locator(getRoleIn(outbox, "list", "Stub outbox")).ToBeVisible(), "the outbox is a list")
		newest := items.First()
		check(t, expect.Locator(newest).ToHaveAttribute("data-id", ids[0]), "newest first")
		check(t, expect.Locator(items.Nth(1)).ToHaveAttribute("data-id", ids[1]), "oldest last")
		check(t, expect.Locator(newest.Locator(".outbox-subject")).ToHaveText(exactly("Your appointment was moved to Wednesday")), "subject")
		check(t, expect.Locator(items.Nth(1).Locator(".outbox-subject")).ToHaveText(exactly(emailSubject)), "first subject")
		check(t, expect.Locator(newest).ToContainText("To "+emailTo+" from "+stubFrom), "to and from")
		check(t, expect.Locator(newest.Locator("time")).ToHaveAttribute("datetime", regexp.MustCompile(`^\d{4}-\d\d-\d\dT`)), "when")
		check(t, expect.Locator(newest.Locator(".outbox-text")).ToContainText("This is a reminder of your check-up on Tuesday at 10:30."), "text")
		same, err := page.Evaluate(`() => window.__sameEmailPage === true`, nil)
		check(t, err, "read the mark")
		if same != true {
			t.Errorf("the page reloaded to show the outbox")
		}
		fits(t, page, vp)

		_, err = page.Reload()
		check(t, err, "reload /email")
		check(t, expect.Locator(items).ToHaveCount(2), "outbox kept after reload")
		open(t, page, c, "/integrations")
		source := emailCard(page).GetByTestId("credential-source")
		check(t, expect.Locator(source).ToContainText("Stub"), "card: stub")
		check(t, expect.Locator(source).ToContainText("nothing reaches Email"), "card: nothing delivered")
		fits(t, page, vp)
		if n := len(fake.Requests()); n != 0 {
			t.Errorf("fake Resend got %d request(s) with the stub, want 0", n)
		}
	})
}

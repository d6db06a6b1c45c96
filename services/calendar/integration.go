// Package calendar is the Google Calendar integration: an account connects
// it through Google's OAuth 2.0 consent (code flow with PKCE, offline
// access), and the console reads the upcoming events of its primary
// calendar. Tokens are kept sealed like every credential; access tokens are
// refreshed before they expire and the refreshed token is stored; a grant
// Google no longer honours (revoked, expired) makes the integration "needs
// reconnect" until the owner gives consent again.
package calendar

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/ava/console/services"
	"github.com/ava/console/services/integrations"
)

// Name is the integration's name (URLs, storage).
const Name = services.IntegrationCalendar

// Upstream is the breaker every call to Google goes through: the token,
// revoke and Calendar endpoints alike.
const Upstream = "google"

// Scope is the only access the console asks for: reading events.
const Scope = "https://www.googleapis.com/auth/calendar.events.readonly"

// The console's addresses of the connect flow; the redirect URI is
// AVA_BASE_URL + CallbackPath.
const (
	ConnectPath  = "/integrations/calendar/google/connect"
	CallbackPath = "/integrations/calendar/google/callback"
)

// Stored values of the integration. Only FieldAccount is a field of the
// spec (shown on the card); the tokens are sealed with it and never shown.
//
//nolint:gosec // G101: value names, not secrets
const (
	FieldAccount   = "account"
	valueAccess    = "access_token"
	valueRefresh   = "refresh_token"
	valueExpiry    = "expiry"
	valueReconnect = "reconnect"
)

// Config is the console's Google OAuth client and Google's addresses.
type Config struct {
	ClientID, ClientSecret       string
	AuthURL, TokenURL, RevokeURL string
	// CalendarBaseURL is https://www.googleapis.com (GOOGLE_CALENDAR_BASE_URL).
	CalendarBaseURL string
	// RedirectURL is AVA_BASE_URL + CallbackPath.
	RedirectURL string
	// Timeout is UPSTREAM_TIMEOUT, for messages.
	Timeout time.Duration
}

// TokenSaver stores tokens Google just issued in place of the ones a call
// started with, unless those were replaced meanwhile (the registry's
// Refresh).
type TokenSaver interface {
	Refresh(ctx context.Context, accountID int64, name string, was integrations.Resolved, values integrations.Values) (integrations.Resolved, bool, error)
}

// Integration is Google Calendar as the registry knows it.
type Integration struct {
	cfg    Config
	oauth  *oauth2.Config
	google *client
	saver  TokenSaver
	now    func() time.Time
}

// NewIntegration returns the integration over hc, the guarded HTTP client
// of the "google" upstream. SaveTokensWith must be called before use.
func NewIntegration(cfg Config, hc *http.Client) *Integration {
	return &Integration{
		cfg: cfg,
		oauth: &oauth2.Config{
			ClientID:     cfg.ClientID,
			ClientSecret: cfg.ClientSecret,
			RedirectURL:  cfg.RedirectURL,
			Scopes:       []string{Scope},
			// Google takes the client's credentials in the form only.
			Endpoint: oauth2.Endpoint{AuthURL: cfg.AuthURL, TokenURL: cfg.TokenURL, AuthStyle: oauth2.AuthStyleInParams},
		},
		google: &client{baseURL: strings.TrimRight(cfg.CalendarBaseURL, "/"), revokeURL: cfg.RevokeURL, http: hc},
		now:    time.Now,
	}
}

// SaveTokensWith tells the integration where refreshed tokens are stored
// (the registry, which is built with the integration).
func (i *Integration) SaveTokensWith(s TokenSaver) { i.saver = s }

// Spec describes Google Calendar.
func (i *Integration) Spec() integrations.Spec {
	return integrations.Spec{
		Name:  Name,
		Label: "Google Calendar",
		Blurb: "Your receptionist sees your upcoming events, read from your primary Google calendar (read-only).",
		Fields: []integrations.Field{
			{Name: FieldAccount, Label: "Google calendar", Short: "Calendar"},
		},
		ConnectTitle: "Connect Google Calendar",
		Needs:        "access to your Google Calendar",
		Page: &integrations.Page{
			Href: "/calendar", Title: "Calendar",
			Description: "Upcoming events of your primary Google calendar.",
		},
		OAuth: &integrations.OAuthRoutes{Connect: ConnectPath, Callback: CallbackPath, ConsentOrigin: origin(i.cfg.AuthURL)},
	}
}

// origin is the scheme and host (with its port) of an absolute URL, "" otherwise.
func origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// Env returns nothing: the environment holds the console's OAuth client,
// never an account's grant.
func (i *Integration) Env() integrations.Values { return nil }

// Upstream is the breaker of every Calendar call.
func (i *Integration) Upstream(integrations.Resolved) string { return Upstream }

// Stub is the development stand-in's calendar (INTEGRATIONS_STUB_MODE).
func (i *Integration) Stub() integrations.Values {
	return integrations.Values{FieldAccount: "stub-calendar@example.com"}
}

// Check refuses typed credentials: Google Calendar is connected through
// Google's consent only.
func (i *Integration) Check(context.Context, integrations.Values) (integrations.Values, error) {
	return nil, services.Errorf(services.EINVALID,
		"Google Calendar is connected through Google's consent: use Connect Google Calendar on the Integrations page.")
}

// OAuthReady says whether the console has its Google OAuth client.
func (i *Integration) OAuthReady() error {
	if i.cfg.ClientID == "" || i.cfg.ClientSecret == "" {
		return services.Errorf(services.ENOTFOUND,
			"Google Calendar cannot be connected on this server yet: its Google OAuth client is not configured (GOOGLE_OAUTH_CLIENT_ID and GOOGLE_OAUTH_CLIENT_SECRET).")
	}
	return nil
}

// AuthCodeURL is Google's consent page for this connect: the code flow,
// offline access (a refresh token), consent asked every time (so a refresh
// token comes with every connect), and PKCE S256.
func (i *Integration) AuthCodeURL(state, verifier string) string {
	return i.oauth.AuthCodeURL(state, oauth2.AccessTypeOffline, oauth2.ApprovalForce, oauth2.S256ChallengeOption(verifier))
}

// Exchange turns the code into tokens (with the verifier and the client
// secret), then reads the primary calendar once to learn its name.
func (i *Integration) Exchange(ctx context.Context, code, verifier string) (integrations.Values, error) {
	tok, err := i.oauth.Exchange(i.clientContext(ctx), code, oauth2.VerifierOption(verifier))
	if err != nil {
		return nil, i.tokenError(err, "the authorization code")
	}
	if tok.RefreshToken == "" {
		return nil, services.Errorf(services.EUPSTREAM,
			"Google gave no refresh token, so the console could not keep access. Remove Ava console's access in your Google Account's security settings, then connect again.")
	}
	page, err := i.google.events(ctx, tok.AccessToken, eventsQuery{max: 1, from: i.now(), to: i.now().Add(24 * time.Hour)})
	if err != nil {
		return nil, i.callError(err)
	}
	return tokenValues(tok, page.Summary), nil
}

// Revoke revokes the grant at Google before the tokens are deleted. A
// grant Google no longer knows (revoked already) is done with.
func (i *Integration) Revoke(ctx context.Context, conn integrations.Resolved) error {
	token := conn.Values[valueRefresh]
	if token == "" {
		token = conn.Values[valueAccess]
	}
	if conn.IsStub() || token == "" {
		return nil
	}
	err := i.google.revoke(ctx, token)
	var ge *GoogleError
	if errors.As(err, &ge) && ge.Status == http.StatusBadRequest && ge.Reason == "invalid_token" {
		return nil
	}
	if err != nil {
		return i.callError(err)
	}
	return nil
}

// NeedsReconnect says why the stored grant no longer works.
func (i *Integration) NeedsReconnect(conn integrations.Resolved) string {
	return conn.Values[valueReconnect]
}

// Test reads the primary calendar with the credentials in use.
func (i *Integration) Test(ctx context.Context, conn integrations.Resolved) (string, error) {
	if conn.IsStub() {
		return "The stub calendar answered (development only: nothing reached Google).", nil
	}
	now := i.now()
	page, err := withToken(ctx, i, &conn, func(access string) (eventsPage, error) {
		return i.google.events(ctx, access, eventsQuery{max: 1, from: now, to: now.Add(24 * time.Hour)})
	})
	if err != nil {
		return "", err
	}
	return "Google Calendar answered: the calendar " + page.Summary + " can be read.", nil
}

// tokenValues are what is stored of a token.
func tokenValues(tok *oauth2.Token, account string) integrations.Values {
	v := integrations.Values{valueAccess: tok.AccessToken, valueRefresh: tok.RefreshToken, FieldAccount: account}
	if !tok.Expiry.IsZero() {
		v[valueExpiry] = tok.Expiry.UTC().Format(time.RFC3339Nano)
	}
	return v
}

// tokenOf is the stored token.
func tokenOf(v integrations.Values) *oauth2.Token {
	tok := &oauth2.Token{AccessToken: v[valueAccess], RefreshToken: v[valueRefresh], TokenType: "Bearer"}
	if t, err := time.Parse(time.RFC3339Nano, v[valueExpiry]); err == nil {
		tok.Expiry = t
	}
	return tok
}

// clientContext makes x/oauth2 call Google through the guarded client.
func (i *Integration) clientContext(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, i.google.http)
}

package integrations

import (
	"context"
	"errors"
	"fmt"

	"github.com/ava/console/services"
)

// Values are credential values by field name.
type Values map[string]string

// Field is one credential field of an integration, as the connect form,
// the JSON API and the masking know it.
type Field struct {
	// Name is the field's name in forms and JSON ("api_key").
	Name string
	// Label and Hint are what the connect form shows; Short names the
	// field in the card's facts ("Auth token"), Label when empty.
	Label string
	Short string
	Hint  string
	// Placeholder is shown in the empty input.
	Placeholder string
	// Secret fields are typed as passwords, stored sealed and shown masked
	// to their last four characters; other fields are shown in full.
	Secret bool
	// Optional fields may be empty.
	Optional bool
	// Number fields take an integer (a port).
	Number bool
	// MaxLen bounds the value's length (characters); 0 means 200.
	MaxLen int
	// Choices, when set, are the only values allowed (a select in the form).
	Choices []Choice
	// When, when set, makes the field apply only while the spec's Selector
	// field has this value (Email's SMTP host applies to provider "smtp").
	When string
	// EnvVar is the environment variable that supplies the field when an
	// account has stored none (documentation and the card say so).
	EnvVar string
}

// Choice is one allowed value of a field.
type Choice struct {
	Value string
	Label string
}

// Title is the field's short name for the card's facts.
func (f Field) Title() string {
	if f.Short != "" {
		return f.Short
	}
	return f.Label
}

// MaxLength is the field's bound on its value's length.
func (f Field) MaxLength() int {
	if f.MaxLen > 0 {
		return f.MaxLen
	}
	return 200
}

// Page is an integration's own page in the console, as the navigation and
// the home page list it.
type Page struct {
	Href        string
	Title       string
	Description string
}

// Spec is how an integration describes itself: everything generic (the
// Integrations card, connect/test/disconnect routes, the credentials API,
// masking, home sections) derives from it.
type Spec struct {
	// Name is the integration's name in URLs, JSON and storage ("vapi").
	Name string
	// Label is its name for people ("Vapi").
	Label string
	// Blurb says in one sentence what it does for the owner.
	Blurb string
	// Fields are its credentials, in form order.
	Fields []Field
	// Selector names the field whose value decides which fields apply
	// (fields with When); empty when every field always applies.
	Selector string
	// ConnectTitle heads the connect form ("Connect your Vapi assistant");
	// "Connect " + Label when empty.
	ConnectTitle string
	// Needs says what connecting takes, ending the "not connected" message
	// ("your Vapi API key and assistant id").
	Needs string
	// Page is the integration's own page, nil when it has none.
	Page *Page
	// OAuth, for an integration connected through a consent
	// (OAuthConnector) instead of a form, are the console's addresses of
	// the flow; nil for the others.
	OAuth *OAuthRoutes
}

// OAuthRoutes are the console's addresses of an OAuth connect.
type OAuthRoutes struct {
	// Connect is the POST that sends the owner to the provider's consent.
	Connect string
	// Callback is where the provider sends the owner back: the path of
	// the redirect URI.
	Callback string
	// ConsentOrigin is the scheme, host and port of the provider's consent
	// page (https://accounts.google.com). Connect is answered with a
	// redirect there, and browsers apply the pages' CSP form-action to a
	// form's redirects too: the pages allow this origin as a form target.
	ConsentOrigin string
}

// Applies reports whether a field is in use for the given values.
func (s Spec) Applies(f Field, values Values) bool {
	return f.When == "" || (s.Selector != "" && values[s.Selector] == f.When)
}

// Field returns the field of that name.
func (s Spec) Field(name string) (Field, bool) {
	for _, f := range s.Fields {
		if f.Name == name {
			return f, true
		}
	}
	return Field{}, false
}

// Integration is one outside service the console connects an account to.
// Each lives in its own package under services/ and is registered with one
// line in the composition root.
type Integration interface {
	// Spec describes the integration.
	Spec() Spec
	// Env returns the environment's credentials (nil or incomplete when
	// the environment configures none).
	Env() Values
	// Check verifies values with the provider before they are saved and
	// returns what to store. The values have passed the spec's generic
	// checks (required, length, choices). Returns EINVALID naming the field
	// the provider refused, in the provider's own words.
	Check(ctx context.Context, values Values) (Values, error)
	// Test checks the credentials in use ("Test connection") and returns a
	// sentence for the owner about what the provider answered. conn may be
	// the stub's (conn.Source == SourceStub).
	Test(ctx context.Context, conn Resolved) (string, error)
}

// Stubber is an integration with a built-in stand-in for development
// (INTEGRATIONS_STUB_MODE): Stub returns the stand-in's credentials, which
// the integration recognises by the connection's SourceStub.
type Stubber interface {
	Stub() Values
}

// Replacer is told when an account's own credentials are replaced (new is
// what replaced them) or removed (new is unconfigured), to drop what it
// kept for the old ones (pooled clients).
type Replacer interface {
	Replaced(old, new Resolved)
}

// Revoker revokes an account's grant at the provider when the owner
// disconnects (OAuth integrations).
type Revoker interface {
	Revoke(ctx context.Context, conn Resolved) error
}

// OAuthConnector is an integration connected through an OAuth consent
// instead of a form: the registry keeps its credentials like any other's,
// the HTTP layer runs the flow.
type OAuthConnector interface {
	// OAuthReady is nil when the console can run the flow (its OAuth
	// client is configured), else the reason it cannot, for the owner.
	OAuthReady() error
	// AuthCodeURL is where the owner gives consent; state and verifier
	// are the flow's single-use secrets (the verifier is PKCE's).
	AuthCodeURL(state, verifier string) string
	// Exchange turns the code into the credentials to store.
	Exchange(ctx context.Context, code, verifier string) (Values, error)
}

// Reconnecter is an integration whose stored grant can die at the
// provider (revoked, expired): the owner must give consent again.
type Reconnecter interface {
	// NeedsReconnect returns why the account's credentials no longer
	// work, "" while they do.
	NeedsReconnect(conn Resolved) string
}

// errNeedsReconnect is the cause of every "needs reconnect" error.
var errNeedsReconnect = errors.New("integration needs reconnect")

// IsNeedsReconnect reports whether err says the owner must connect again.
func IsNeedsReconnect(err error) bool { return errors.Is(err, errNeedsReconnect) }

// reconnectError is the cause of a needs-reconnect error, with its reason.
type reconnectError struct{ reason string }

func (e reconnectError) Error() string        { return "integration needs reconnect: " + e.reason }
func (e reconnectError) Is(target error) bool { return target == errNeedsReconnect }

// NeedsReconnect is the error of a call made with a grant the provider no
// longer honours: the provider answered (502), but it is the owner's to
// fix, by connecting again. reason is a sentence.
func NeedsReconnect(s Spec, reason string) error {
	return &services.Error{
		Code:    services.EUPSTREAM,
		Message: fmt.Sprintf("Reconnect %s: %s", s.Label, reason),
		Err:     reconnectError{reason},
	}
}

// ReconnectReason is the reason of a needs-reconnect error, "" for others.
func ReconnectReason(err error) string {
	var re reconnectError
	if errors.As(err, &re) {
		return re.reason
	}
	return ""
}

// errNotConnected is the cause of every "not connected" error.
var errNotConnected = errors.New("integration not connected")

// IsNotConnected reports whether err says an integration has no credentials.
func IsNotConnected(err error) bool { return errors.Is(err, errNotConnected) }

// NotConnected is the error of an integration with no credentials.
func NotConnected(s Spec) error {
	return &services.Error{
		Code:    services.ENOTFOUND,
		Message: fmt.Sprintf("%s is not connected. Add %s on the Integrations page.", s.Label, s.Needs),
		Err:     errNotConnected,
	}
}

// StubRefused is the error of an integration with no credentials when the
// flag asked for its stub in production.
func StubRefused(s Spec) error {
	return services.Errorf(services.EFORBIDDEN,
		"Stub integrations are disabled in production: connect %s on the Integrations page.", s.Label)
}

package twilio

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twilio/twilio-go/client"

	"github.com/ava/console/services"
	"github.com/ava/console/services/integrations"
	"github.com/ava/console/services/twilio/twiliotest"
	"github.com/ava/console/services/upstream/upstreamtest"
)

// Name is the integration's name (URLs, storage, the breaker).
const Name = "twilio"

// Credential fields of the Twilio integration (names, not values).
//
//nolint:gosec // G101: these are field names
const (
	FieldAccountSID = "account_sid"
	FieldAuthToken  = "auth_token"
	FieldAPIKeySID  = "api_key_sid"
)

// Integration is Twilio as the registry knows it.
type Integration struct {
	pool    *Pool
	stub    *Pool
	env     integrations.Values
	timeout time.Duration
}

// NewIntegration returns the Twilio integration over the pool of guarded
// clients, with the environment's credentials (TWILIO_ACCOUNT_SID,
// TWILIO_AUTH_TOKEN). timeout is UPSTREAM_TIMEOUT, for messages.
func NewIntegration(pool *Pool, envAccountSID, envAuthToken string, timeout time.Duration) (*Integration, error) {
	// The stub's clients get their own pool (and metrics nobody reads), so
	// the stand-in never counts in the real pool's hits and misses.
	stub, err := NewPool(4, &http.Client{Transport: services.CorrelationTransport{Base: upstreamtest.InProcess(twiliotest.NewStub())}}, prometheus.NewRegistry())
	if err != nil {
		return nil, err
	}
	return &Integration{
		pool: pool, stub: stub, timeout: timeout,
		env: integrations.Values{FieldAccountSID: envAccountSID, FieldAuthToken: envAuthToken},
	}, nil
}

// Spec describes Twilio.
func (i *Integration) Spec() integrations.Spec {
	return integrations.Spec{
		Name:         Name,
		Label:        "Twilio",
		Blurb:        "The phone numbers that ring your receptionist.",
		ConnectTitle: "Connect your Twilio account",
		Needs:        "your Account SID and Auth Token (or an API key)",
		Fields: []integrations.Field{
			{Name: FieldAccountSID, Label: "Account SID", Placeholder: "AC…", MaxLen: 34, EnvVar: "TWILIO_ACCOUNT_SID",
				Hint: "AC followed by 32 hexadecimal characters, under Account info in the Twilio console."},
			{Name: FieldAuthToken, Label: "Auth token or API key secret", Short: "Auth token", Secret: true, MaxLen: 64, EnvVar: "TWILIO_AUTH_TOKEN",
				Hint: "Under Account info in the Twilio console, or the secret of an API key."},
			{Name: FieldAPIKeySID, Label: "API key SID (optional)", Short: "API key SID", Placeholder: "SK…", MaxLen: 34, Optional: true,
				Hint: "Leave empty to use the Auth Token; fill it in when the secret above is an API key's."},
		},
		Page: &integrations.Page{Href: "/numbers", Title: "Phone numbers",
			Description: "The Twilio numbers that ring your receptionist."},
	}
}

// Env returns the environment's credentials.
func (i *Integration) Env() integrations.Values { return i.env }

// Stub returns the built-in stand-in's credentials.
func (i *Integration) Stub() integrations.Values {
	return integrations.Values{FieldAccountSID: twiliotest.StubAccountSID, FieldAuthToken: twiliotest.StubAuthToken}
}

func (i *Integration) poolFor(conn integrations.Resolved) *Pool {
	if conn.IsStub() {
		return i.stub
	}
	return i.pool
}

func credentialsOf(conn integrations.Resolved) Credentials {
	return Credentials{AccountSID: conn.Values[FieldAccountSID], APIKeySID: conn.Values[FieldAPIKeySID], Secret: conn.Values[FieldAuthToken]}
}

var (
	accountSIDPattern = regexp.MustCompile(`^AC[0-9a-fA-F]{32}$`)
	apiKeySIDPattern  = regexp.MustCompile(`^SK[0-9a-fA-F]{32}$`)
	secretPattern     = regexp.MustCompile(`^[A-Za-z0-9]{16,64}$`)
)

// Check asks Twilio (one page of one number) whether it takes the
// credentials.
func (i *Integration) Check(ctx context.Context, v integrations.Values) (integrations.Values, error) {
	switch {
	case !accountSIDPattern.MatchString(v[FieldAccountSID]):
		return nil, services.FieldError(FieldAccountSID, "account_sid must be your Account SID: AC followed by 32 hexadecimal characters.")
	case v[FieldAPIKeySID] != "" && !apiKeySIDPattern.MatchString(v[FieldAPIKeySID]):
		return nil, services.FieldError(FieldAPIKeySID, "api_key_sid must be an API key SID: SK followed by 32 hexadecimal characters, or empty.")
	case !secretPattern.MatchString(v[FieldAuthToken]):
		return nil, services.FieldError(FieldAuthToken, "auth_token must be your Auth Token (or the API key's secret): 16 to 64 letters and digits.")
	}
	c := credentialsOf(integrations.Resolved{Values: v})
	rc := i.pool.Client(c)
	probe := fmt.Sprintf("%s/2010-04-01/Accounts/%s/IncomingPhoneNumbers.json?PageSize=1", apiHost, url.PathEscape(c.AccountSID))
	resp, err := rc.Get(probe, nil, correlationHeaders(ctx), "")
	if err != nil {
		i.pool.Forget(c)
		var te *client.TwilioRestError
		if errors.As(err, &te) && (te.Status == http.StatusUnauthorized || te.Status == http.StatusNotFound || te.Code == 20003) {
			field := FieldAuthToken
			if te.Status == http.StatusNotFound {
				field = FieldAccountSID
			}
			return nil, services.FieldError(field, "Twilio refused the credentials: %s", restError(te))
		}
		return nil, i.translate(err)
	}
	drainClose(resp)
	return v, nil
}

// Replaced drops the pooled client of the account's previous credentials
// unless the same ones replaced them; environment credentials stay pooled
// for the accounts that still use them.
func (i *Integration) Replaced(old, replacement integrations.Resolved) {
	if prev := credentialsOf(old); !replacement.Configured() || prev != credentialsOf(replacement) {
		i.pool.Forget(prev)
	}
}

// Test lists the numbers and counts them.
func (i *Integration) Test(ctx context.Context, conn integrations.Resolved) (string, error) {
	numbers, err := i.list(ctx, conn)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("Connected: Twilio lists %d phone number(s) on this account.", len(numbers)), nil
}

package twilio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/twilio/twilio-go/client"
	openapi "github.com/twilio/twilio-go/rest/api/v2010"

	"github.com/ava/console/services"
	"github.com/ava/console/services/integrations"
	"github.com/ava/console/services/upstream"
)

// Credential fields of the Twilio integration (names, not values).
//
//nolint:gosec // G101: these are field names
const (
	FieldAccountSID = "account_sid"
	FieldAuthToken  = "auth_token"
	FieldAPIKeySID  = "api_key_sid"
)

// Paging bounds: at most MaxPages pages of PageSize numbers (1000 numbers).
const (
	PageSize = 50
	MaxPages = 20
)

// Kind describes Twilio's credentials, with the environment's fallback.
func Kind(envAccountSID, envAuthToken string) integrations.Kind {
	return integrations.Kind{
		Name: services.IntegrationTwilio,
		Fields: []integrations.Field{
			{Name: FieldAccountSID}, {Name: FieldAuthToken, Secret: true}, {Name: FieldAPIKeySID, Optional: true},
		},
		Env: map[string]string{FieldAccountSID: envAccountSID, FieldAuthToken: envAuthToken},
	}
}

// ErrNotConnected is returned when neither the account nor the environment has Twilio credentials.
var ErrNotConnected = &services.Error{
	Code:    services.ENOTFOUND,
	Message: "Twilio is not connected. Add your Account SID and Auth Token (or an API key) on the Integrations page.",
}

// Number is one of the account's phone numbers.
type Number struct {
	SID          string
	PhoneNumber  string
	FriendlyName string
	Voice        bool
	SMS          bool
	MMS          bool
}

// Service lists phone numbers and checks credentials.
type Service struct {
	pool    *Pool
	creds   *integrations.Credentials
	timeout time.Duration
}

// NewService returns the Twilio service; timeout is UPSTREAM_TIMEOUT, for messages.
func NewService(pool *Pool, creds *integrations.Credentials, timeout time.Duration) *Service {
	return &Service{pool: pool, creds: creds, timeout: timeout}
}

// Connection returns the account's resolved Twilio credentials (masked hints, source).
func (s *Service) Connection(ctx context.Context, accountID int64) (integrations.Resolved, error) {
	return s.creds.Resolve(ctx, accountID, services.IntegrationTwilio)
}

func (s *Service) credentials(ctx context.Context, accountID int64) (Credentials, error) {
	r, err := s.Connection(ctx, accountID)
	if err != nil {
		return Credentials{}, err
	}
	if !r.Configured() {
		return Credentials{}, ErrNotConnected
	}
	return Credentials{AccountSID: r.Values[FieldAccountSID], APIKeySID: r.Values[FieldAPIKeySID], Secret: r.Values[FieldAuthToken]}, nil
}

// Numbers lists every phone number of the account's Twilio account,
// following next_page_uri up to MaxPages pages.
func (s *Service) Numbers(ctx context.Context, accountID int64) ([]Number, error) {
	c, err := s.credentials(ctx, accountID)
	if err != nil {
		return nil, err
	}
	numbers, err := s.list(ctx, c)
	s.creds.RecordResult(ctx, accountID, services.IntegrationTwilio, err)
	return numbers, err
}

func (s *Service) list(ctx context.Context, c Credentials) ([]Number, error) {
	rc := s.pool.Client(c)
	next := fmt.Sprintf("%s/2010-04-01/Accounts/%s/IncomingPhoneNumbers.json?PageSize=%d", apiHost, url.PathEscape(c.AccountSID), PageSize)
	numbers := []Number{}
	for page := 0; next != ""; page++ {
		if page == MaxPages {
			return nil, &services.Error{Code: services.EUPSTREAM,
				Message: fmt.Sprintf("This Twilio account has more than %d phone numbers; the console lists at most that many.", MaxPages*PageSize)}
		}
		if err := ctx.Err(); err != nil {
			return nil, upstream.Error("Twilio", s.timeout, err)
		}
		// The SDK takes no context: the correlation id goes as a header,
		// the timeout is the shared http.Client's.
		resp, err := rc.Get(next, nil, correlationHeaders(ctx), "")
		if err != nil {
			return nil, s.translate(err)
		}
		var body openapi.ListIncomingPhoneNumberResponse
		err = json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(&body)
		drainClose(resp)
		if err != nil {
			return nil, &services.Error{Code: services.EUPSTREAM, Message: "Twilio answered with a page the console could not read.", Err: err}
		}
		for _, n := range body.IncomingPhoneNumbers {
			numbers = append(numbers, toNumber(n))
		}
		next = ""
		if body.NextPageUri != nil && *body.NextPageUri != "" {
			next = apiHost + *body.NextPageUri
		}
	}
	return numbers, nil
}

// drainClose reads what is left of a body (a little) before closing it:
// net/http puts a connection back in the shared pool only when its body was
// read to the end, and closes it otherwise.
func drainClose(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
}

func toNumber(n openapi.ApiV2010IncomingPhoneNumber) Number {
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	out := Number{SID: str(n.Sid), PhoneNumber: str(n.PhoneNumber), FriendlyName: str(n.FriendlyName)}
	if n.Capabilities != nil {
		out.Voice, out.SMS, out.MMS = n.Capabilities.Voice, n.Capabilities.Sms, n.Capabilities.Mms
	}
	return out
}

// restError describes a Twilio error answer for users: code, message and
// the link to Twilio's page about it.
func restError(e *client.TwilioRestError) string {
	msg := fmt.Sprintf("%d: %s", e.Code, e.Message)
	if e.MoreInfo != "" {
		msg += " (" + e.MoreInfo + ")"
	}
	return msg
}

// translate turns a failed Twilio call into the console's error. Bad
// credentials (401, code 20003) are the user's to fix, not an outage.
func (s *Service) translate(err error) error {
	var te *client.TwilioRestError
	if !errors.As(err, &te) {
		if strings.Contains(err.Error(), "error decoding the response for an HTTP error code") {
			return &services.Error{Code: services.EUPSTREAM, Message: "Twilio is having trouble (it answered with an error). Try again in a moment.", Err: err}
		}
		return upstream.Error("Twilio", s.timeout, err)
	}
	switch {
	case te.Status == http.StatusUnauthorized || te.Code == 20003:
		return &services.Error{Code: services.EUPSTREAM, Err: err,
			Message: "Twilio refused the credentials (" + restError(te) + "). Fix them on the Integrations page."}
	case te.Status == http.StatusNotFound:
		return &services.Error{Code: services.EUPSTREAM, Err: err,
			Message: "Twilio does not know this account (" + restError(te) + "). Check the Account SID on the Integrations page."}
	default:
		var wait time.Duration
		if secs, ok := te.Details[retryAfterDetail].(float64); ok {
			wait = time.Duration(secs) * time.Second
		}
		return upstream.StatusError("Twilio", te.Status, restError(te), wait)
	}
}

var (
	accountSIDPattern = regexp.MustCompile(`^AC[0-9a-fA-F]{32}$`)
	apiKeySIDPattern  = regexp.MustCompile(`^SK[0-9a-fA-F]{32}$`)
	secretPattern     = regexp.MustCompile(`^[A-Za-z0-9]{16,64}$`)
)

// Connect checks the credentials with Twilio (it lists one page of
// numbers) and stores them only if Twilio accepts them.
func (s *Service) Connect(ctx context.Context, accountID int64, accountSID, secret, apiKeySID string) (integrations.Resolved, error) {
	accountSID, secret, apiKeySID = strings.TrimSpace(accountSID), strings.TrimSpace(secret), strings.TrimSpace(apiKeySID)
	switch {
	case !accountSIDPattern.MatchString(accountSID):
		return integrations.Resolved{}, services.FieldError(FieldAccountSID, "account_sid must be your Account SID: AC followed by 32 hexadecimal characters.")
	case apiKeySID != "" && !apiKeySIDPattern.MatchString(apiKeySID):
		return integrations.Resolved{}, services.FieldError(FieldAPIKeySID, "api_key_sid must be an API key SID: SK followed by 32 hexadecimal characters, or empty.")
	case !secretPattern.MatchString(secret):
		return integrations.Resolved{}, services.FieldError(FieldAuthToken, "auth_token must be your Auth Token (or the API key's secret): 16 to 64 letters and digits.")
	}
	c := Credentials{AccountSID: accountSID, APIKeySID: apiKeySID, Secret: secret}
	rc := s.pool.Client(c)
	probe := fmt.Sprintf("%s/2010-04-01/Accounts/%s/IncomingPhoneNumbers.json?PageSize=1", apiHost, url.PathEscape(accountSID))
	resp, err := rc.Get(probe, nil, correlationHeaders(ctx), "")
	if err != nil {
		s.pool.Forget(c)
		var te *client.TwilioRestError
		if errors.As(err, &te) && (te.Status == http.StatusUnauthorized || te.Status == http.StatusNotFound || te.Code == 20003) {
			field := FieldAuthToken
			if te.Status == http.StatusNotFound {
				field = FieldAccountSID
			}
			return integrations.Resolved{}, services.FieldError(field, "Twilio refused the credentials: %s", restError(te))
		}
		return integrations.Resolved{}, s.translate(err)
	}
	drainClose(resp)
	previous, _ := s.Connection(ctx, accountID)
	values := map[string]string{FieldAccountSID: accountSID, FieldAuthToken: secret}
	if apiKeySID != "" {
		values[FieldAPIKeySID] = apiKeySID
	}
	r, err := s.creds.Save(ctx, accountID, services.IntegrationTwilio, values)
	if err != nil {
		return integrations.Resolved{}, err
	}
	// The account's previous own credentials are done with; environment
	// credentials stay pooled for the accounts that still use them.
	if previous.Source == integrations.SourceAccount {
		old := Credentials{AccountSID: previous.Values[FieldAccountSID], APIKeySID: previous.Values[FieldAPIKeySID], Secret: previous.Values[FieldAuthToken]}
		if old != c {
			s.pool.Forget(old)
		}
	}
	s.creds.RecordResult(ctx, accountID, services.IntegrationTwilio, nil)
	return r, nil
}

// Test checks the credentials in use and returns how many numbers there are.
func (s *Service) Test(ctx context.Context, accountID int64) (int, error) {
	numbers, err := s.Numbers(ctx, accountID)
	if err != nil {
		return 0, err
	}
	return len(numbers), nil
}

// correlationHeaders are the headers that carry the request's correlation id
// to Twilio (the SDK takes headers, not a context); none without an id.
func correlationHeaders(ctx context.Context) map[string]any {
	h := map[string]any{}
	if id := services.CorrelationID(ctx); id != "" {
		h[services.CorrelationHeader] = id
	}
	return h
}

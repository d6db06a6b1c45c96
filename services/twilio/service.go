package twilio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/twilio/twilio-go/client"
	openapi "github.com/twilio/twilio-go/rest/api/v2010"

	"github.com/ava/console/services"
	"github.com/ava/console/services/integrations"
	"github.com/ava/console/services/upstream"
)

// Paging bounds: at most MaxPages pages of PageSize numbers (1000 numbers).
const (
	PageSize = 50
	MaxPages = 20
)

// Number is one of the account's phone numbers.
type Number struct {
	SID          string
	PhoneNumber  string
	FriendlyName string
	Voice        bool
	SMS          bool
	MMS          bool
}

// Connections runs calls with an account's credentials and records their
// outcome (the integration registry).
type Connections interface {
	Resolve(ctx context.Context, accountID int64, name string) (integrations.Resolved, error)
	Use(ctx context.Context, accountID int64, name string, fn func(ctx context.Context, conn integrations.Resolved) error) error
}

// Service lists phone numbers.
type Service struct {
	twilio *Integration
	creds  Connections
}

// NewService returns the Twilio numbers service.
func NewService(twilio *Integration, creds Connections) *Service {
	return &Service{twilio: twilio, creds: creds}
}

// Connection returns the account's resolved Twilio credentials (masked hints, source).
func (s *Service) Connection(ctx context.Context, accountID int64) (integrations.Resolved, error) {
	return s.creds.Resolve(ctx, accountID, Name)
}

// Numbers lists every phone number of the account's Twilio account,
// following next_page_uri up to MaxPages pages.
func (s *Service) Numbers(ctx context.Context, accountID int64) ([]Number, error) {
	var numbers []Number
	err := s.creds.Use(ctx, accountID, Name, func(ctx context.Context, conn integrations.Resolved) error {
		var err error
		numbers, err = s.twilio.list(ctx, conn)
		return err
	})
	return numbers, err
}

func (i *Integration) list(ctx context.Context, conn integrations.Resolved) ([]Number, error) {
	c := credentialsOf(conn)
	rc := i.poolFor(conn).Client(c)
	next := fmt.Sprintf("%s/2010-04-01/Accounts/%s/IncomingPhoneNumbers.json?PageSize=%d", apiHost, url.PathEscape(c.AccountSID), PageSize)
	numbers := []Number{}
	for page := 0; next != ""; page++ {
		if page == MaxPages {
			return nil, &services.Error{Code: services.EUPSTREAM,
				Message: fmt.Sprintf("This Twilio account has more than %d phone numbers; the console lists at most that many.", MaxPages*PageSize)}
		}
		if err := ctx.Err(); err != nil {
			return nil, upstream.Error("Twilio", i.timeout, err)
		}
		// The SDK takes no context: the correlation id goes as a header,
		// the timeout is the shared http.Client's.
		resp, err := rc.Get(next, nil, correlationHeaders(ctx), "")
		if err != nil {
			return nil, i.translate(err)
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
func (i *Integration) translate(err error) error {
	var te *client.TwilioRestError
	if !errors.As(err, &te) {
		if strings.Contains(err.Error(), "error decoding the response for an HTTP error code") {
			return &services.Error{Code: services.EUPSTREAM, Message: "Twilio is having trouble (it answered with an error). Try again in a moment.", Err: err}
		}
		return upstream.Error("Twilio", i.timeout, err)
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
		return upstream.StatusError("Twilio", te.Status, restError(te), wait, err)
	}
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

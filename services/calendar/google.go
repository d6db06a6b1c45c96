package calendar

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/ava/console/services"
	"github.com/ava/console/services/integrations"
	"github.com/ava/console/services/upstream"
)

// maxGoogleBody bounds what is read of one answer (a page of 250 events
// is well under it).
const maxGoogleBody = 4 << 20

// defaultRetryAfter is what the console tells callers to wait when Google
// limits us without saying for how long.
const defaultRetryAfter = 10 * time.Second

// GoogleError is an answer of Google with an error status: the Calendar
// API's {"error": {"code", "message", "errors": [{"reason"}]}}, or the
// OAuth endpoints' {"error", "error_description"}.
type GoogleError struct {
	Status int
	// Reason is errors[0].reason (authError, rateLimitExceeded...) or the
	// OAuth error code (invalid_grant, invalid_token...).
	Reason string
	// Message is Google's message, or "HTTP <status>" when it gave none.
	Message    string
	RetryAfter time.Duration
}

func (e *GoogleError) Error() string {
	return fmt.Sprintf("google: %d %s: %s", e.Status, e.Reason, e.Message)
}

// rateLimited reports whether Google says we are over a quota: its 429,
// and its 403 with a rate-limit reason.
func (e *GoogleError) rateLimited() bool {
	return e.Status == http.StatusTooManyRequests ||
		e.Status == http.StatusForbidden && (e.Reason == "rateLimitExceeded" || e.Reason == "userRateLimitExceeded")
}

// client speaks the parts of Google's APIs the console uses.
type client struct {
	baseURL   string
	revokeURL string
	http      *http.Client
}

type eventsQuery struct {
	from, to  time.Time
	max       int
	pageToken string
}

// eventsPage is one page of events.list.
type eventsPage struct {
	Summary       string     `json:"summary"`
	Items         []apiEvent `json:"items"`
	NextPageToken string     `json:"nextPageToken"`
}

type apiEvent struct {
	ID       string       `json:"id"`
	Status   string       `json:"status"`
	Summary  string       `json:"summary"`
	Location string       `json:"location"`
	HTMLLink string       `json:"htmlLink"`
	Start    apiEventTime `json:"start"`
	End      apiEventTime `json:"end"`
}

type apiEventTime struct {
	Date     string `json:"date"`
	DateTime string `json:"dateTime"`
}

// events is one page of the primary calendar's events between q.from and
// q.to, expanded (singleEvents) and ordered by start.
func (c *client) events(ctx context.Context, access string, q eventsQuery) (eventsPage, error) {
	v := url.Values{}
	v.Set("timeMin", q.from.Format(time.RFC3339))
	v.Set("timeMax", q.to.Format(time.RFC3339))
	v.Set("singleEvents", "true")
	v.Set("orderBy", "startTime")
	v.Set("maxResults", strconv.Itoa(q.max))
	if q.pageToken != "" {
		v.Set("pageToken", q.pageToken)
	}
	req, err := upstream.NewJSONRequest(ctx, http.MethodGet, c.baseURL+"/calendar/v3/calendars/primary/events?"+v.Encode(), nil)
	if err != nil {
		return eventsPage{}, err
	}
	req.Header.Set("Authorization", "Bearer "+access)
	var page eventsPage
	return page, c.do(req, &page)
}

// revoke revokes a token at Google (a refresh token revokes its grant).
func (c *client) revoke(ctx context.Context, token string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.revokeURL, strings.NewReader(url.Values{"token": {token}}.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.do(req, nil)
}

func (c *client) do(req *http.Request, out any) error {
	resp, err := c.http.Do(req) //nolint:bodyclose // upstream.ReadAnswer closes it
	if err != nil {
		return err
	}
	data, err := upstream.ReadAnswer(resp, maxGoogleBody)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 400 {
		return googleError(resp, data)
	}
	if out == nil || len(data) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("google: unreadable answer (HTTP %d): %w", resp.StatusCode, err)
	}
	return nil
}

// googleError reads either of Google's error bodies.
func googleError(resp *http.Response, data []byte) *GoogleError {
	e := &GoogleError{Status: resp.StatusCode, RetryAfter: retryAfter(resp.Header.Get("Retry-After"))}
	var api struct {
		Error json.RawMessage `json:"error"`
		// The OAuth endpoints' description of their error code.
		Description string `json:"error_description"`
	}
	if json.Unmarshal(data, &api) == nil && len(api.Error) > 0 {
		var detail struct {
			Message string `json:"message"`
			Errors  []struct {
				Reason string `json:"reason"`
			} `json:"errors"`
		}
		var code string
		switch {
		case json.Unmarshal(api.Error, &detail) == nil:
			e.Message = detail.Message
			if len(detail.Errors) > 0 {
				e.Reason = detail.Errors[0].Reason
			}
		case json.Unmarshal(api.Error, &code) == nil:
			e.Reason, e.Message = code, api.Description
		}
	}
	if e.Message == "" {
		e.Message = fmt.Sprintf("HTTP %d", resp.StatusCode)
	}
	return e
}

// retryAfter reads Retry-After: seconds, or an HTTP date.
func retryAfter(v string) time.Duration {
	v = strings.TrimSpace(v)
	if secs, err := strconv.Atoi(v); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// withToken runs call with a valid access token: the stored one, or one
// refreshed first when it expires within 10 seconds (and stored; conn then
// holds it, so the next page of a listing uses it too). When Google
// refuses the access token anyway (401 authError), it refreshes once and
// calls again; refused again, or a refresh Google refuses (invalid_grant),
// the integration needs reconnecting.
func withToken[T any](ctx context.Context, i *Integration, conn *integrations.Resolved, call func(access string) (T, error)) (T, error) {
	var zero T
	if reason := conn.Values[valueReconnect]; reason != "" {
		return zero, integrations.NeedsReconnect(i.Spec(), reason)
	}
	stored := tokenOf(conn.Values)
	tok, err := i.fresh(ctx, conn, stored)
	if err != nil {
		return zero, err
	}
	out, err := call(tok.AccessToken)
	var ge *GoogleError
	if errors.As(err, &ge) && ge.Status == http.StatusUnauthorized {
		// A token is refused before its expiry when the owner changed
		// their password or Google rotated it: one refresh, whatever the
		// expiry says (no access token: not valid).
		if tok, err = i.fresh(ctx, conn, &oauth2.Token{RefreshToken: tok.RefreshToken}); err != nil {
			return zero, err
		}
		out, err = call(tok.AccessToken)
		if errors.As(err, &ge) && ge.Status == http.StatusUnauthorized {
			return zero, i.reconnect(ctx, conn, fmt.Sprintf("Google refused the access it granted (%s).", strings.TrimSuffix(ge.Message, ".")))
		}
	}
	if err != nil {
		return zero, i.callError(err)
	}
	return out, nil
}

// fresh returns tok, refreshed when it is no longer valid; a refreshed
// token is stored (x/oauth2 does not say it refreshed: the access token
// changed) unless the grant was replaced meanwhile, and conn holds it.
func (i *Integration) fresh(ctx context.Context, conn *integrations.Resolved, tok *oauth2.Token) (*oauth2.Token, error) {
	got, err := i.oauth.TokenSource(i.clientContext(ctx), tok).Token()
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.ErrorCode == "invalid_grant" {
		desc := re.ErrorDescription
		if desc == "" {
			desc = "invalid_grant"
		}
		return nil, i.reconnect(ctx, conn, fmt.Sprintf("Google no longer accepts the access it granted (%s). It was removed in your Google Account, expired, or your password changed.", strings.TrimSuffix(desc, ".")))
	}
	if err != nil {
		return nil, i.tokenError(err, "a new access token")
	}
	if got.AccessToken != tok.AccessToken && conn.Source == integrations.SourceAccount && i.saver != nil {
		// Kept even if the caller has gone: the old token is expiring.
		values := tokenValues(got, conn.Values[FieldAccount])
		saved, stored, err := i.saver.Refresh(context.WithoutCancel(ctx), conn.AccountID, Name, *conn, values)
		if err != nil {
			return nil, err
		}
		if stored {
			*conn = saved
		} else {
			conn.Values = values // replaced meanwhile: this call goes on with what it got
		}
	}
	return got, nil
}

// reconnect remembers that the grant no longer works (the tokens are kept,
// so Disconnect can still revoke them) and returns the error that says so;
// unless the owner connected again while this call ran with the old grant.
func (i *Integration) reconnect(ctx context.Context, conn *integrations.Resolved, reason string) error {
	if conn.Source == integrations.SourceAccount && i.saver != nil {
		values := maps.Clone(conn.Values)
		values[valueReconnect] = reason
		_, stored, err := i.saver.Refresh(context.WithoutCancel(ctx), conn.AccountID, Name, *conn, values)
		if err != nil {
			return err
		}
		if !stored {
			return services.Errorf(services.EUPSTREAM, "Google Calendar was connected again while this request ran: try again.")
		}
	}
	return integrations.NeedsReconnect(i.Spec(), reason)
}

// callError is the console's error for a failed call to the Calendar API
// or the revoke endpoint, in Google's words.
func (i *Integration) callError(err error) error {
	var ge *GoogleError
	if !errors.As(err, &ge) {
		return upstream.Error("Google Calendar", i.cfg.Timeout, err)
	}
	msg := strings.TrimSuffix(ge.Message, ".")
	if ge.Reason != "" {
		msg = ge.Reason + ": " + msg
	}
	if ge.rateLimited() {
		wait := ge.RetryAfter
		if wait <= 0 {
			wait = defaultRetryAfter
		}
		return upstream.StatusError("Google Calendar", http.StatusTooManyRequests, msg, wait, err)
	}
	return upstream.StatusError("Google Calendar", ge.Status, msg, 0, err)
}

// tokenError is the console's error for a failed call to Google's token
// endpoint for what ("the authorization code", "a new access token").
func (i *Integration) tokenError(err error, what string) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return upstream.Error("Google", i.cfg.Timeout, err)
	}
	status := 0
	if re.Response != nil {
		status = re.Response.StatusCode
	}
	msg := re.ErrorCode
	if re.ErrorDescription != "" {
		msg += ": " + strings.TrimSuffix(re.ErrorDescription, ".")
	}
	switch {
	case status == http.StatusTooManyRequests:
		wait := defaultRetryAfter
		if re.Response != nil {
			if ra := retryAfter(re.Response.Header.Get("Retry-After")); ra > 0 {
				wait = ra
			}
		}
		return upstream.StatusError("Google", status, msg, wait, err)
	case status >= 500 || status == 0:
		return upstream.StatusError("Google", max(status, 502), msg, 0, err)
	case re.ErrorCode == "invalid_client" || re.ErrorCode == "unauthorized_client" || re.ErrorCode == "redirect_uri_mismatch":
		// The console's own OAuth client is wrong: the operator's to fix.
		return &services.Error{Code: services.EUPSTREAM, Err: err, Message: fmt.Sprintf(
			"Google refused the console's OAuth client (%s). Check GOOGLE_OAUTH_CLIENT_ID, GOOGLE_OAUTH_CLIENT_SECRET and that %s is an authorized redirect URI.", msg, i.cfg.RedirectURL)}
	default:
		return &services.Error{Code: services.EUPSTREAM, Err: err, Message: fmt.Sprintf(
			"Google refused %s (%s). Start again from the Integrations page.", what, msg)}
	}
}

package googletest

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// events.list's path is calendarsPrefix + calendar id + eventsSuffix.
const (
	calendarsPrefix = CalendarPath + "calendars/"
	eventsSuffix    = "/events"
)

// Google's answer to a missing or bad access token.
const authErrorMessage = "Request had invalid authentication credentials. Expected OAuth 2 access token, " +
	"login cookie or other valid authentication credential. " +
	"See https://developers.google.com/identity/sign-in/web/devconsole-project."

// eventsScopes are the scopes that allow events.list.
var eventsScopes = []string{
	ScopeCalendar, ScopeCalendarReadOnly, ScopeCalendarEvents, ScopeCalendarEventsReadOnly,
	"https://www.googleapis.com/auth/calendar.events.owned",
	"https://www.googleapis.com/auth/calendar.events.owned.readonly",
	"https://www.googleapis.com/auth/calendar.app.created",
}

// apiError is Google's JSON error.
type apiError struct {
	Error apiErrorBody `json:"error"`
}

type apiErrorBody struct {
	Code    int            `json:"code"`
	Message string         `json:"message"`
	Errors  []apiErrorItem `json:"errors"`
	Status  string         `json:"status,omitempty"`
}

type apiErrorItem struct {
	Message      string `json:"message"`
	Domain       string `json:"domain"`
	Reason       string `json:"reason"`
	Location     string `json:"location,omitempty"`
	LocationType string `json:"locationType,omitempty"`
}

// canonicalStatus is the gRPC status Google's JSON errors carry per HTTP status.
var canonicalStatus = map[int]string{
	400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
	409: "ABORTED", 412: "FAILED_PRECONDITION", 429: "RESOURCE_EXHAUSTED", 499: "CANCELLED",
	500: "INTERNAL", 501: "UNIMPLEMENTED", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED",
}

// usageLimitReasons are the reasons Google files under the usageLimits domain.
var usageLimitReasons = []string{
	"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded", "dailyLimitExceeded", "variableTermLimitExceeded",
}

// writeAPIError answers Google's JSON error with one item.
func writeAPIError(w http.ResponseWriter, status int, item apiErrorItem) {
	if item.Domain == "" {
		item.Domain = "global"
		if slices.Contains(usageLimitReasons, item.Reason) {
			item.Domain = "usageLimits"
		}
	}
	writeJSON(w, status, apiError{Error: apiErrorBody{
		Code: status, Message: item.Message, Errors: []apiErrorItem{item}, Status: canonicalStatus[status],
	}})
}

// writeAuthError is the 401 for a missing, unknown, expired or revoked token.
func writeAuthError(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="https://accounts.google.com/", error="invalid_token"`)
	writeJSON(w, http.StatusUnauthorized, apiError{Error: apiErrorBody{
		Code: http.StatusUnauthorized, Message: authErrorMessage, Status: "UNAUTHENTICATED",
		Errors: []apiErrorItem{{
			Message: "Invalid Credentials", Domain: "global", Reason: "authError",
			Location: "Authorization", LocationType: "header",
		}},
	}})
}

// badParameter is a 400 about one query parameter.
func badParameter(w http.ResponseWriter, reason, param, message string) {
	writeAPIError(w, http.StatusBadRequest, apiErrorItem{
		Message: message, Reason: reason, Location: param, LocationType: "parameter",
	})
}

// writeCalendarFailure answers a CalendarFaults failure.
func writeCalendarFailure(w http.ResponseWriter, f Failure) {
	reason := f.Reason
	if reason == "" {
		reason = defaultReason(f.Status)
	}
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	if f.Status == http.StatusUnauthorized && reason == "authError" && f.Message == "" {
		writeAuthError(w)
		return
	}
	msg := f.Message
	if msg == "" {
		msg = defaultMessage(f.Status, reason)
	}
	writeAPIError(w, f.Status, apiErrorItem{Message: msg, Reason: reason})
}

// defaultReason is Calendar's reason for a failure that does not give one.
func defaultReason(status int) string {
	switch status {
	case 400:
		return "badRequest"
	case 401:
		return "authError"
	case 403:
		return "rateLimitExceeded"
	case 404:
		return "notFound"
	case 409:
		return "duplicate"
	case 410:
		return "fullSyncRequired"
	case 412:
		return "conditionNotMet"
	case 429:
		return "rateLimitExceeded"
	}
	if status >= 500 {
		return "backendError"
	}
	return "badRequest"
}

// defaultMessage is Calendar's message for a failure that does not give one.
func defaultMessage(status int, reason string) string {
	switch reason {
	case "rateLimitExceeded":
		return "Rate Limit Exceeded"
	case "userRateLimitExceeded":
		return "User Rate Limit Exceeded"
	case "quotaExceeded":
		return "Calendar usage limits exceeded."
	case "backendError":
		if status == http.StatusServiceUnavailable {
			return "The service is currently unavailable."
		}
		return "Backend Error"
	}
	return http.StatusText(status)
}

// calendar serves the Calendar API: events.list of the primary calendar.
func (f *Fake) calendar(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, calendarsPrefix)
	calendarID, isEvents := strings.CutSuffix(rest, eventsSuffix)
	if !ok || !isEvents || calendarID == "" || strings.Contains(calendarID, "/") {
		writeAPIError(w, http.StatusNotFound, apiErrorItem{Message: "Not Found", Reason: "notFound"})
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		writeAPIError(w, http.StatusMethodNotAllowed, apiErrorItem{
			Message: "Only events.list (GET) is served by this fake.", Reason: "httpMethodNotAllowed",
		})
		return
	}
	scope, ok := f.authenticate(r)
	if !ok {
		writeAuthError(w)
		return
	}
	f.mu.Lock()
	summary := f.summary
	f.mu.Unlock()
	if calendarID != "primary" && calendarID != summary {
		writeAPIError(w, http.StatusNotFound, apiErrorItem{Message: "Not Found", Reason: "notFound"})
		return
	}
	if !slices.ContainsFunc(strings.Fields(scope), func(s string) bool { return slices.Contains(eventsScopes, s) }) {
		writeAPIError(w, http.StatusForbidden, apiErrorItem{
			Message: "Request had insufficient authentication scopes.", Reason: "insufficientPermissions",
		})
		return
	}
	f.listEvents(w, r.URL.Query())
}

// authenticate checks the Bearer access token and returns its scope.
func (f *Fake) authenticate(r *http.Request) (scope string, ok bool) {
	scheme, token, found := strings.Cut(r.Header.Get("Authorization"), " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	a, known := f.access[strings.TrimSpace(token)]
	if !known || a.expired || a.grant.revoked || !f.now().Before(a.expires) {
		return "", false
	}
	return a.grant.scope, true
}

// listQuery is what selects the events a listing returns; a page token
// carries it so that later pages continue the same listing.
type listQuery struct {
	timeMin, timeMax time.Time // zero: unbounded
	q                string
}

// page is where a listing goes on.
type page struct {
	query  listQuery
	offset int
}

// eventsResponse is events.list's answer.
type eventsResponse struct {
	Kind             string      `json:"kind"`
	Etag             string      `json:"etag"`
	Summary          string      `json:"summary"`
	Updated          string      `json:"updated"`
	TimeZone         string      `json:"timeZone"`
	AccessRole       string      `json:"accessRole"`
	DefaultReminders []reminder  `json:"defaultReminders"`
	NextPageToken    string      `json:"nextPageToken,omitempty"`
	Items            []eventJSON `json:"items"`
}

type reminder struct {
	Method  string `json:"method"`
	Minutes int    `json:"minutes"`
}

// eventJSON is an event as Google writes it.
type eventJSON struct {
	Kind      string    `json:"kind"`
	Etag      string    `json:"etag"`
	ID        string    `json:"id"`
	Status    string    `json:"status"`
	HTMLLink  string    `json:"htmlLink"`
	Created   string    `json:"created"`
	Updated   string    `json:"updated"`
	Summary   string    `json:"summary,omitempty"`
	Location  string    `json:"location,omitempty"`
	Creator   person    `json:"creator"`
	Organizer person    `json:"organizer"`
	Start     EventTime `json:"start"`
	End       EventTime `json:"end"`
	ICalUID   string    `json:"iCalUID"`
	Sequence  int       `json:"sequence"`
	EventType string    `json:"eventType"`
}

type person struct {
	Email string `json:"email"`
	Self  bool   `json:"self,omitempty"`
}

// googleTime is how Google writes created and updated.
const googleTime = "2006-01-02T15:04:05.000Z"

// listEvents checks events.list's parameters and answers one page.
func (f *Fake) listEvents(w http.ResponseWriter, params url.Values) {
	var lq listQuery
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"timeMin", &lq.timeMin}, {"timeMax", &lq.timeMax}} {
		v := params.Get(p.name)
		if v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			badParameter(w, "badRequest", p.name, "Invalid "+p.name+" value '"+v+
				"'. Must be an RFC 3339 timestamp with a time zone offset, for example 2026-06-03T10:00:00-07:00.")
			return
		}
		*p.dst = t
	}
	if !lq.timeMin.IsZero() && !lq.timeMax.IsZero() && !lq.timeMax.After(lq.timeMin) {
		badParameter(w, "timeRangeEmpty", "timeMax", "The specified time range is empty.")
		return
	}
	lq.q = params.Get("q")
	singleEvents := false
	if v := params.Get("singleEvents"); v != "" {
		switch strings.ToLower(v) {
		case "true":
			singleEvents = true
		case "false":
		default:
			badParameter(w, "invalidParameter", "singleEvents", "Invalid boolean value for singleEvents: '"+v+"'.")
			return
		}
	}
	switch ob := params.Get("orderBy"); ob {
	case "", "updated":
	case "startTime":
		if !singleEvents {
			writeAPIError(w, http.StatusBadRequest, apiErrorItem{
				Message: "The requested ordering is not available for the particular query.", Reason: "badRequest",
			})
			return
		}
	default:
		badParameter(w, "invalidParameter", "orderBy", "Invalid value for orderBy: '"+ob+"'. Allowed values: startTime, updated.")
		return
	}
	maxResults := 250
	if v := params.Get("maxResults"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 2500 {
			badParameter(w, "invalid", "maxResults", "Invalid value '"+v+"'. Values must be within the range: [1, 2500]")
			return
		}
		maxResults = n
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	offset := 0
	if tok := params.Get("pageToken"); tok != "" {
		p, ok := f.pages[tok]
		if !ok {
			badParameter(w, "badRequest", "pageToken", "Invalid page token")
			return
		}
		lq, offset = p.query, p.offset
	}
	matched := f.match(lq)
	end := min(offset+maxResults, len(matched))
	offset = min(offset, end)
	resp := eventsResponse{
		Kind: "calendar#events", Etag: etag(f.updated), Summary: f.summary, Updated: f.updated.Format(googleTime),
		TimeZone: "UTC", AccessRole: "owner", DefaultReminders: []reminder{{Method: "popup", Minutes: 10}},
		Items: make([]eventJSON, 0, end-offset),
	}
	if tz := params.Get("timeZone"); tz != "" {
		resp.TimeZone = tz
	}
	for _, e := range matched[offset:end] {
		resp.Items = append(resp.Items, f.eventJSON(e))
	}
	if end < len(matched) {
		tok := randomToken()
		f.pages[tok] = page{query: lq, offset: end}
		resp.NextPageToken = tok
	}
	writeJSON(w, http.StatusOK, resp)
}

// match returns the events lq selects, ordered by start (then id): those
// that end after timeMin and start before timeMax, cancelled ones
// included. All-day dates count as midnight UTC. f.mu is held.
func (f *Fake) match(lq listQuery) []storedEvent {
	var out []storedEvent
	for _, e := range f.events {
		if !lq.timeMin.IsZero() && !e.end.After(lq.timeMin) {
			continue
		}
		if !lq.timeMax.IsZero() && !e.start.Before(lq.timeMax) {
			continue
		}
		if lq.q != "" && !matchesText(e.Event, lq.q) {
			continue
		}
		out = append(out, e)
	}
	slices.SortStableFunc(out, func(a, b storedEvent) int {
		if c := a.start.Compare(b.start); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// matchesText is q's free text search, over the fields the fake keeps:
// every word must appear in the summary or location, ignoring case.
func matchesText(e Event, q string) bool {
	text := strings.ToLower(e.Summary + " " + e.Location)
	for _, word := range strings.Fields(strings.ToLower(q)) {
		if !strings.Contains(text, word) {
			return false
		}
	}
	return true
}

// eventJSON writes a stored event as Google does; f.mu is held.
func (f *Fake) eventJSON(e storedEvent) eventJSON {
	link := e.HTMLLink
	if link == "" {
		link = "https://www.google.com/calendar/event?eid=" +
			base64.RawURLEncoding.EncodeToString([]byte(e.ID+" "+f.summary))
	}
	owner := person{Email: f.summary, Self: true}
	return eventJSON{
		Kind: "calendar#event", Etag: etag(f.updated), ID: e.ID, Status: e.Status, HTMLLink: link,
		Created: f.updated.Format(googleTime), Updated: f.updated.Format(googleTime),
		Summary: e.Summary, Location: e.Location, Creator: owner, Organizer: owner,
		Start: e.Start, End: e.End, ICalUID: e.ID + "@google.com", EventType: "default",
	}
}

// etag is an entity tag for what changed at t, quoted as Google quotes it.
func etag(t time.Time) string {
	return `"` + strconv.FormatInt(t.UnixMicro(), 10) + `"`
}

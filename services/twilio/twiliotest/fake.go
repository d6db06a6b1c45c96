// Package twiliotest is a wire-level fake of Twilio's IncomingPhoneNumbers
// API for tests: HTTP Basic auth (Account SID + Auth Token, or API key SID +
// secret), Twilio's page JSON with next_page_uri paging, Twilio's error JSON,
// and failures on demand (5xx, 429/20429, slow answers, dropped connections).
package twiliotest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ava/console/services/upstream/upstreamtest"
)

// Failure is how the fake answers the next matching requests instead.
type Failure struct {
	// Status with Code and Message make an error answer in Twilio's format;
	// Code 0 with a 5xx Status answers a plain-text body, as a proxy might.
	Status  int
	Code    int
	Message string
	// RetryAfter, when set, is sent as the Retry-After header.
	RetryAfter string
	// Drop closes the connection without an answer.
	Drop bool
	// Delay waits before answering, unless the client gives up first.
	Delay time.Duration
}

// Dropped reports whether the failure drops the connection.
func (f Failure) Dropped() bool { return f.Drop }

// Delayed is how long the failure waits before answering.
func (f Failure) Delayed() time.Duration { return f.Delay }

// Request is what the fake received.
type Request struct {
	Path          string
	Query         string
	Username      string
	CorrelationID string
	UserAgent     string
}

// Number is a phone number of a fake account.
type Number struct {
	SID, PhoneNumber, FriendlyName string
	Voice, SMS, MMS, Fax           bool
}

type account struct {
	token   string
	apiKeys map[string]string
	numbers []Number
}

// Server is the fake. Serve it with httptest.
type Server struct {
	upstreamtest.Faults[Failure]
	upstreamtest.Recorder[Request]

	mu       sync.Mutex
	accounts map[string]*account
}

// New returns a fake with no accounts.
func New() *Server { return &Server{accounts: map[string]*account{}} }

// AccountSID returns a well-formed Account SID for test account i.
func AccountSID(i int) string { return fmt.Sprintf("AC%032x", i+1) }

// AuthToken returns a well-formed Auth Token for test account i.
func AuthToken(i int) string { return fmt.Sprintf("%032x", 0xabc000+i) }

// AddAccount creates an account with n phone numbers.
func (s *Server) AddAccount(sid, token string, n int) {
	numbers := make([]Number, n)
	for i := range numbers {
		numbers[i] = Number{
			SID:          fmt.Sprintf("PN%032x", i+1),
			PhoneNumber:  fmt.Sprintf("+1415555%04d", i),
			FriendlyName: fmt.Sprintf("(415) 555-%04d", i),
			Voice:        true, SMS: i%2 == 0, MMS: i%3 == 0,
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accounts[sid] = &account{token: token, apiKeys: map[string]string{}, numbers: numbers}
}

// SetNumbers replaces an account's numbers.
func (s *Server) SetNumbers(sid string, numbers []Number) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accounts[sid].numbers = numbers
}

// AddAPIKey lets an API key (SK...) and its secret act for an account.
func (s *Server) AddAPIKey(accountSID, keySID, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accounts[accountSID].apiKeys[keySID] = secret
}

func writeError(w http.ResponseWriter, status, code int, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"code": code, "message": message, "more_info": fmt.Sprintf("https://www.twilio.com/docs/errors/%d", code), "status": status,
	})
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	user, pass, _ := r.BasicAuth()
	s.Record(Request{
		Path: r.URL.Path, Query: r.URL.RawQuery, Username: user,
		CorrelationID: r.Header.Get("X-Correlation-ID"), UserAgent: r.Header.Get("User-Agent"),
	})
	failure, failing, proceed := upstreamtest.Begin(&s.Faults, w, r)
	if !proceed {
		return
	}
	switch {
	case failing && failure.Status != 0 && failure.Code == 0:
		http.Error(w, http.StatusText(failure.Status), failure.Status)
		return
	case failing && failure.Status != 0:
		if failure.RetryAfter != "" {
			w.Header().Set("Retry-After", failure.RetryAfter)
		}
		msg := failure.Message
		if msg == "" {
			msg = http.StatusText(failure.Status)
		}
		writeError(w, failure.Status, failure.Code, msg)
		return
	}
	s.serve(w, r, user, pass)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, user, pass string) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/2010-04-01/Accounts/")
	sid, tail, _ := strings.Cut(rest, "/")
	if !ok || r.Method != http.MethodGet || tail != "IncomingPhoneNumbers.json" {
		writeError(w, http.StatusNotFound, 20404, "The requested resource "+r.URL.Path+" was not found")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	acct, known := s.accounts[sid]
	authorized := known && ((user == sid && pass == acct.token) || (acct.apiKeys[user] != "" && acct.apiKeys[user] == pass))
	if !authorized {
		// Twilio answers 401/20003 both for a wrong token and for an
		// account the credentials cannot see.
		writeError(w, http.StatusUnauthorized, 20003, "Authenticate")
		return
	}
	q := r.URL.Query()
	size, err := strconv.Atoi(q.Get("PageSize"))
	if err != nil || size < 1 {
		size = 50
	}
	size = min(size, 1000)
	page, _ := strconv.Atoi(q.Get("Page"))
	start := page * size
	end := min(start+size, len(acct.numbers))
	items := []map[string]any{}
	for i := start; i < end; i++ {
		items = append(items, numberJSON(sid, acct.numbers[i]))
	}
	base := fmt.Sprintf("/2010-04-01/Accounts/%s/IncomingPhoneNumbers.json", sid)
	pageURI := func(p int) string { return fmt.Sprintf("%s?PageSize=%d&Page=%d", base, size, p) }
	var next, prev any
	if end < len(acct.numbers) {
		next = pageURI(page+1) + fmt.Sprintf("&PageToken=PA%s", acct.numbers[end-1].SID)
	}
	if page > 0 {
		prev = pageURI(page - 1)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"first_page_uri": pageURI(0), "end": max(end-1, 0), "previous_page_uri": prev,
		"incoming_phone_numbers": items, "uri": pageURI(page), "page_size": size, "start": start,
		"next_page_uri": next, "page": page,
	})
}

func numberJSON(accountSID string, n Number) map[string]any {
	const created = "Thu, 30 Jul 2015 20:12:31 +0000"
	return map[string]any{
		"account_sid": accountSID, "address_requirements": "none", "address_sid": nil, "api_version": "2010-04-01",
		"beta":         false,
		"capabilities": map[string]bool{"voice": n.Voice, "sms": n.SMS, "mms": n.MMS, "fax": n.Fax},
		"date_created": created, "date_updated": created, "friendly_name": n.FriendlyName,
		"identity_sid": nil, "phone_number": n.PhoneNumber, "origin": "twilio", "sid": n.SID,
		"sms_application_sid": "", "sms_fallback_method": "POST", "sms_fallback_url": "", "sms_method": "POST",
		"sms_url": "", "status_callback": "", "status_callback_method": "POST", "trunk_sid": nil,
		"uri":                   fmt.Sprintf("/2010-04-01/Accounts/%s/IncomingPhoneNumbers/%s.json", accountSID, n.SID),
		"voice_application_sid": "", "voice_caller_id_lookup": false, "voice_fallback_method": "POST",
		"voice_fallback_url": nil, "voice_method": "POST", "voice_url": "https://example.com/voice",
		"emergency_status": "Active", "emergency_address_sid": nil, "emergency_address_status": "unregistered",
		"bundle_sid": nil, "status": "in-use",
	}
}

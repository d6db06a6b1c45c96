package email

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ava/console/services"

	"github.com/ava/console/services/upstream"
)

const (
	// resendUserAgent is sent on every call: Resend's edge refuses requests
	// without a User-Agent (403, "error code: 1010") before they reach the API.
	resendUserAgent = "ava-console/1"
	// maxResendBody bounds what is read of an answer.
	maxResendBody = 64 << 10
)

// ResendError is an answer of Resend with an error status.
type ResendError struct {
	Status int
	// Name is Resend's error name (invalid_api_key, validation_error,
	// rate_limit_exceeded...); empty when the body was not Resend's JSON.
	Name string
	// Message is Resend's message, or "HTTP <status>" when it gave none.
	Message string
	// RetryAfter is Resend's Retry-After (429), zero when absent.
	RetryAfter time.Duration
}

func (e *ResendError) Error() string {
	if e.Name == "" {
		return fmt.Sprintf("resend: %d: %s", e.Status, e.Message)
	}
	return fmt.Sprintf("resend: %d %s: %s", e.Status, e.Name, e.Message)
}

// ResendClient speaks the part of Resend's REST API the console uses.
type ResendClient struct {
	baseURL string
	http    *http.Client
}

// NewResendClient returns a client for baseURL (https://api.resend.com) over
// hc, the guarded client from upstream.Guards.Client("resend").
func NewResendClient(baseURL string, hc *http.Client) *ResendClient {
	return &ResendClient{baseURL: strings.TrimRight(baseURL, "/"), http: hc}
}

// CheckKey reports whether apiKey is a valid Resend key. A sending-only key
// is valid: Resend refuses it GET /domains with restricted_api_key. Any
// other refusal is a *ResendError; transport errors and *upstream.OpenError
// come back as the HTTP client returned them.
func (c *ResendClient) CheckKey(ctx context.Context, apiKey string) error {
	err := c.do(ctx, http.MethodGet, "/domains", apiKey, nil, nil, nil)
	var re *ResendError
	if errors.As(err, &re) && re.Status == http.StatusUnauthorized && re.Name == "restricted_api_key" {
		return nil
	}
	return err
}

type resendEmail struct {
	From    string   `json:"from"`
	To      []string `json:"to"`
	Subject string   `json:"subject"`
	Text    string   `json:"text"`
}

// Send sends m as a text email. Errors are as CheckKey's.
func (c *ResendClient) Send(ctx context.Context, apiKey string, m Message) (Sent, error) {
	h := http.Header{}
	if m.IdempotencyKey != "" {
		h.Set("Idempotency-Key", m.IdempotencyKey)
	}
	if m.CorrelationID != "" {
		h.Set(services.CorrelationHeader, m.CorrelationID)
	}
	var out struct {
		ID string `json:"id"`
	}
	body := resendEmail{From: m.From, To: []string{m.To}, Subject: m.Subject, Text: m.Text}
	if err := c.do(ctx, http.MethodPost, "/emails", apiKey, h, body, &out); err != nil {
		return Sent{}, err
	}
	if out.ID == "" {
		return Sent{}, errors.New("resend: the answer has no email id")
	}
	return Sent{ID: out.ID}, nil
}

func (c *ResendClient) do(ctx context.Context, method, path, apiKey string, h http.Header, body, out any) error {
	req, err := upstream.NewJSONRequest(ctx, method, c.baseURL+path, body)
	if err != nil {
		return err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+apiKey)
	req.Header.Set("User-Agent", resendUserAgent)
	resp, err := c.http.Do(req) //nolint:bodyclose // upstream.ReadAnswer closes it
	if err != nil {
		return err
	}
	data, err := upstream.ReadAnswer(resp, maxResendBody)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 400 {
		return resendError(resp, data)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("resend: unreadable answer (HTTP %d): %w", resp.StatusCode, err)
	}
	return nil
}

// resendError reads Resend's error body, {"statusCode", "name", "message"};
// bodies from in front of the API (its edge's "error code: 1010") are not JSON.
func resendError(resp *http.Response, data []byte) *ResendError {
	e := &ResendError{Status: resp.StatusCode, RetryAfter: resendRetryAfter(resp)}
	var body struct {
		Name    string `json:"name"`
		Message string `json:"message"`
	}
	if json.Unmarshal(data, &body) == nil {
		e.Name, e.Message = body.Name, body.Message
	}
	if e.Message == "" {
		e.Message = fmt.Sprintf("HTTP %d", resp.StatusCode)
	}
	return e
}

// resendRetryAfter reads Retry-After (seconds, or an HTTP date); on a 429
// without it, ratelimit-reset (seconds until the window resets).
func resendRetryAfter(resp *http.Response) time.Duration {
	if v := strings.TrimSpace(resp.Header.Get("Retry-After")); v != "" {
		if secs, err := strconv.Atoi(v); err == nil && secs >= 0 {
			return time.Duration(secs) * time.Second
		}
		if t, err := http.ParseTime(v); err == nil {
			return max(time.Until(t), 0)
		}
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		if secs, err := strconv.Atoi(strings.TrimSpace(resp.Header.Get("Ratelimit-Reset"))); err == nil && secs >= 0 {
			return time.Duration(secs) * time.Second
		}
	}
	return 0
}

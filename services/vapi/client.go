// Package vapi manages an account's Vapi voice assistant settings: the wire
// client (client.go), the mapping between the console's settings and Vapi's
// assistant fields with their validation (settings.go), and the service
// that reads and updates them with audit and health records (service.go).
package vapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ava/console/services/upstream"
)

// Assistant is the part of a Vapi assistant the console reads and writes.
type Assistant struct {
	ID                 string         `json:"id"`
	Name               string         `json:"name,omitempty"`
	FirstMessage       *string        `json:"firstMessage,omitempty"`
	MaxDurationSeconds *float64       `json:"maxDurationSeconds,omitempty"`
	Voice              map[string]any `json:"voice,omitempty"`
	UpdatedAt          time.Time      `json:"updatedAt"`
}

// APIError is an answer of Vapi with an error status.
type APIError struct {
	Status     int
	Message    string
	RetryAfter time.Duration
}

func (e *APIError) Error() string { return fmt.Sprintf("vapi: %d: %s", e.Status, e.Message) }

// Client speaks Vapi's REST API.
type Client struct {
	baseURL string
	http    *http.Client
}

// NewClient returns a client for baseURL (https://api.vapi.ai) over hc, the
// guarded client from the upstream package.
func NewClient(baseURL string, hc *http.Client) *Client {
	return &Client{baseURL: strings.TrimRight(baseURL, "/"), http: hc}
}

// GetAssistant fetches an assistant.
func (c *Client) GetAssistant(ctx context.Context, apiKey, assistantID string) (*Assistant, error) {
	var a Assistant
	if err := c.do(ctx, http.MethodGet, apiKey, "/assistant/"+url.PathEscape(assistantID), nil, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// UpdateAssistant PATCHes the given fields of an assistant and returns it as updated.
func (c *Client) UpdateAssistant(ctx context.Context, apiKey, assistantID string, patch map[string]any) (*Assistant, error) {
	var a Assistant
	if err := c.do(ctx, http.MethodPatch, apiKey, "/assistant/"+url.PathEscape(assistantID), patch, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

func (c *Client) do(ctx context.Context, method, apiKey, path string, body, out any) error {
	req, err := upstream.NewJSONRequest(ctx, method, c.baseURL+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+apiKey)
	resp, err := c.http.Do(req) //nolint:bodyclose // upstream.ReadAnswer closes it
	if err != nil {
		return err
	}
	data, err := upstream.ReadAnswer(resp, 4<<20)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 400 {
		return &APIError{Status: resp.StatusCode, Message: errorMessage(data, resp.Status), RetryAfter: retryAfter(resp.Header)}
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("vapi: unreadable answer: %w", err)
	}
	return nil
}

// errorMessage reads Vapi's error body: {"message": "..." | ["...", ...], "error": "...", "statusCode": N}.
func errorMessage(data []byte, status string) string {
	var e struct {
		Message json.RawMessage `json:"message"`
		Error   string          `json:"error"`
	}
	if json.Unmarshal(data, &e) == nil {
		var one string
		var many []string
		switch {
		case json.Unmarshal(e.Message, &one) == nil && one != "":
			return one
		case json.Unmarshal(e.Message, &many) == nil && len(many) > 0:
			return strings.Join(many, "; ")
		case e.Error != "":
			return e.Error
		}
	}
	return status
}

func retryAfter(h http.Header) time.Duration {
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// IsStatus reports whether err is a Vapi answer with that status.
func IsStatus(err error, status int) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == status
}

package vapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/ava/console/services"
	"github.com/ava/console/services/integrations"
	"github.com/ava/console/services/upstream"
)

// Credential fields of the Vapi integration.
const (
	FieldAPIKey      = "api_key"
	FieldAssistantID = "assistant_id"
)

// Kind describes Vapi's credentials, with the environment's fallback.
func Kind(envAPIKey, envAssistantID string) integrations.Kind {
	return integrations.Kind{
		Name:   services.IntegrationVapi,
		Fields: []integrations.Field{{Name: FieldAPIKey, Secret: true}, {Name: FieldAssistantID}},
		Env:    map[string]string{FieldAPIKey: envAPIKey, FieldAssistantID: envAssistantID},
	}
}

// ErrNotConnected is returned when neither the account nor the environment has Vapi credentials.
var ErrNotConnected = &services.Error{
	Code:    services.ENOTFOUND,
	Message: "Vapi is not connected. Add your Vapi API key and assistant id on the Integrations page.",
}

// AuditStore keeps the trail of setting changes.
type AuditStore interface {
	RecordSettingChange(ctx context.Context, c services.SettingChange) error
	SettingChanges(ctx context.Context, accountID int64, integration string, limit int) ([]services.SettingChange, error)
}

// Service reads and changes an account's Vapi assistant settings.
type Service struct {
	client  *Client
	stub    *Client
	creds   *integrations.Credentials
	audit   AuditStore
	timeout time.Duration
	reads   singleflight.Group
	now     func() time.Time
}

// NewService returns the Vapi settings service. timeout is UPSTREAM_TIMEOUT,
// for messages.
func NewService(client *Client, creds *integrations.Credentials, audit AuditStore, timeout time.Duration) *Service {
	return &Service{client: client, creds: creds, audit: audit, timeout: timeout, now: time.Now}
}

// Connection returns the account's resolved Vapi credentials (masked hints,
// source), whether configured or not.
func (s *Service) Connection(ctx context.Context, accountID int64) (integrations.Resolved, error) {
	return s.creds.Resolve(ctx, accountID, services.IntegrationVapi)
}

// credentials returns the client and credentials to use for the account:
// the stub's client when the source is the stub.
func (s *Service) credentials(ctx context.Context, accountID int64) (client *Client, apiKey, assistantID string, err error) {
	r, err := s.Connection(ctx, accountID)
	if err != nil {
		return nil, "", "", err
	}
	if !r.Configured() {
		return nil, "", "", ErrNotConnected
	}
	client = s.client
	if r.Source == integrations.SourceStub {
		if s.stub == nil {
			return nil, "", "", services.Errorf(services.EFORBIDDEN, "Stub integrations are not allowed here.")
		}
		client = s.stub
	}
	return client, r.Values[FieldAPIKey], r.Values[FieldAssistantID], nil
}

// WithStub sets the client of the built-in stand-in for Vapi, used when an
// account's credentials resolve to the stub (development with
// INTEGRATIONS_STUB_MODE only).
func (s *Service) WithStub(c *Client) *Service {
	s.stub = c
	return s
}

// fetch reads the assistant. No cache: every read reaches Vapi, but
// concurrent reads of the same assistant with the same key share one call.
func (s *Service) fetch(ctx context.Context, client *Client, apiKey, assistantID string) (*Assistant, error) {
	sum := sha256.Sum256([]byte(apiKey))
	key := client.baseURL + "/" + assistantID + "/" + hex.EncodeToString(sum[:8])
	v, err, _ := s.reads.Do(key, func() (any, error) {
		// The call serves every caller waiting on it: one of them going
		// away must not cancel it for the others (UPSTREAM_TIMEOUT still
		// bounds it). The context keeps its values: the correlation id.
		return client.GetAssistant(context.WithoutCancel(ctx), apiKey, assistantID)
	})
	if err != nil {
		return nil, err
	}
	a := *v.(*Assistant) // callers may not share one value
	a.Voice = deepCopy(a.Voice)
	return &a, nil
}

// translate turns a failed Vapi call into the console's error.
func (s *Service) translate(err error, assistantID string) error {
	var api *APIError
	if !errors.As(err, &api) {
		return upstream.Error("Vapi", s.timeout, err)
	}
	switch api.Status {
	case http.StatusUnauthorized, http.StatusForbidden:
		return &services.Error{Code: services.EUPSTREAM, Err: err,
			Message: fmt.Sprintf("Vapi refused the API key: %s. Update the credentials on the Integrations page.", api.Message)}
	case http.StatusNotFound:
		return &services.Error{Code: services.EUPSTREAM, Err: err,
			Message: fmt.Sprintf("Vapi has no assistant %q for this API key: %s.", assistantID, api.Message)}
	default:
		e := upstream.StatusError("Vapi", api.Status, api.Message, api.RetryAfter)
		if se, ok := e.(*services.Error); ok { //nolint:errorlint // StatusError returns *services.Error
			se.Err = err
		}
		return e
	}
}

// List returns the assistant's settings as they are at Vapi now.
func (s *Service) List(ctx context.Context, accountID int64) ([]Setting, error) {
	client, apiKey, assistantID, err := s.credentials(ctx, accountID)
	if err != nil {
		return nil, err
	}
	a, err := s.fetch(ctx, client, apiKey, assistantID)
	if err != nil {
		err = s.translate(err, assistantID)
		s.creds.RecordResult(ctx, accountID, services.IntegrationVapi, err)
		return nil, err
	}
	s.creds.RecordResult(ctx, accountID, services.IntegrationVapi, nil)
	settings := FromAssistant(a)
	// A setting changed through the console shows when it was changed.
	changes, err := s.audit.SettingChanges(ctx, accountID, services.IntegrationVapi, 50)
	if err != nil {
		return nil, services.Internal(err)
	}
	for i := range settings {
		for _, c := range changes {
			if c.Key == settings[i].Key {
				settings[i].UpdatedAt = c.ChangedAt
				break
			}
		}
	}
	return settings, nil
}

// Update sets one setting. The value is checked against the product's bounds
// before any call to Vapi, then against the assistant's voice provider; only
// the changed field is PATCHed, and the change goes to the audit trail. On
// any failure the assistant is left as it was.
func (s *Service) Update(ctx context.Context, accountID, userID int64, key string, raw json.RawMessage) (Setting, error) {
	value, err := ParseValue(key, raw)
	if err != nil {
		return Setting{}, err
	}
	client, apiKey, assistantID, err := s.credentials(ctx, accountID)
	if err != nil {
		return Setting{}, err
	}
	a, err := s.fetch(ctx, client, apiKey, assistantID)
	if err != nil {
		err = s.translate(err, assistantID)
		s.creds.RecordResult(ctx, accountID, services.IntegrationVapi, err)
		return Setting{}, err
	}
	before, _ := Find(FromAssistant(a), key)
	patch, err := Patch(a, key, value)
	if err != nil {
		return Setting{}, err
	}
	if patch == nil {
		return before, nil // already so: nothing to send, nothing to record
	}
	updated, err := client.UpdateAssistant(ctx, apiKey, assistantID, patch)
	if err != nil {
		err = s.translate(err, assistantID)
		s.creds.RecordResult(ctx, accountID, services.IntegrationVapi, err)
		return Setting{}, err
	}
	s.creds.RecordResult(ctx, accountID, services.IntegrationVapi, nil)
	after, _ := Find(FromAssistant(updated), key)
	after.UpdatedAt = s.now().UTC()
	oldJSON, newJSON := auditJSON(before.Value), auditJSON(after.Value)
	if err := s.audit.RecordSettingChange(ctx, services.SettingChange{
		AccountID: accountID, UserID: userID, Integration: services.IntegrationVapi, Key: key,
		OldValue: oldJSON, NewValue: newJSON, ChangedAt: after.UpdatedAt,
	}); err != nil {
		// Vapi has the new value; failing to record it must not claim otherwise.
		return after, services.Internal(fmt.Errorf("setting saved at Vapi but not recorded: %w", err))
	}
	return after, nil
}

// Changes returns the latest setting changes, newest first.
func (s *Service) Changes(ctx context.Context, accountID int64, limit int) ([]services.SettingChange, error) {
	c, err := s.audit.SettingChanges(ctx, accountID, services.IntegrationVapi, limit)
	if err != nil {
		return nil, services.Internal(err)
	}
	return c, nil
}

// Connect checks credentials against Vapi (it fetches the assistant) and
// stores them only if Vapi accepts them. Vapi's own words say why not.
func (s *Service) Connect(ctx context.Context, accountID int64, apiKey, assistantID string) (integrations.Resolved, *Assistant, error) {
	apiKey, assistantID = strings.TrimSpace(apiKey), strings.TrimSpace(assistantID)
	switch {
	case apiKey == "":
		return integrations.Resolved{}, nil, services.FieldError(FieldAPIKey, "api_key is required: your Vapi private API key.")
	case len(apiKey) > 200:
		return integrations.Resolved{}, nil, services.FieldError(FieldAPIKey, "api_key must be at most 200 characters.")
	case assistantID == "":
		return integrations.Resolved{}, nil, services.FieldError(FieldAssistantID, "assistant_id is required: the id of your Vapi assistant.")
	case len(assistantID) > 200 || strings.ContainsAny(assistantID, "/?# "):
		return integrations.Resolved{}, nil, services.FieldError(FieldAssistantID, "assistant_id must be a Vapi assistant id, like 5b9c...-...")
	}
	a, err := s.client.GetAssistant(ctx, apiKey, assistantID)
	var api *APIError
	switch {
	case err == nil:
	case errors.As(err, &api) && (api.Status == http.StatusUnauthorized || api.Status == http.StatusForbidden):
		return integrations.Resolved{}, nil, services.FieldError(FieldAPIKey, "Vapi refused the API key: %s", api.Message)
	case errors.As(err, &api) && (api.Status == http.StatusNotFound || api.Status == http.StatusBadRequest):
		return integrations.Resolved{}, nil, services.FieldError(FieldAssistantID, "Vapi did not find the assistant: %s", api.Message)
	default:
		return integrations.Resolved{}, nil, s.translate(err, assistantID)
	}
	r, err := s.creds.Save(ctx, accountID, services.IntegrationVapi, map[string]string{FieldAPIKey: apiKey, FieldAssistantID: assistantID})
	if err != nil {
		return integrations.Resolved{}, nil, err
	}
	s.creds.RecordResult(ctx, accountID, services.IntegrationVapi, nil)
	return r, a, nil
}

// Test checks the credentials in use by fetching the assistant, and
// returns the assistant's name.
func (s *Service) Test(ctx context.Context, accountID int64) (string, error) {
	client, apiKey, assistantID, err := s.credentials(ctx, accountID)
	if err != nil {
		return "", err
	}
	a, err := client.GetAssistant(ctx, apiKey, assistantID)
	if err != nil {
		err = s.translate(err, assistantID)
		s.creds.RecordResult(ctx, accountID, services.IntegrationVapi, err)
		return "", err
	}
	s.creds.RecordResult(ctx, accountID, services.IntegrationVapi, nil)
	if a.Name == "" {
		return a.ID, nil
	}
	return a.Name, nil
}

// auditJSON encodes a value for the audit trail as written, without
// HTML-escaping (pages escape when they show it).
func auditJSON(v any) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return strings.TrimSuffix(b.String(), "\n")
}

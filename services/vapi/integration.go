package vapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/ava/console/services"
	"github.com/ava/console/services/integrations"
	"github.com/ava/console/services/upstream"
	"github.com/ava/console/services/upstream/upstreamtest"
	"github.com/ava/console/services/vapi/vapitest"
)

// Name is the integration's name (URLs, storage, the breaker).
const Name = "vapi"

// Credential fields of the Vapi integration.
const (
	FieldAPIKey      = "api_key"
	FieldAssistantID = "assistant_id"
)

// Integration is Vapi as the registry knows it: its spec, how credentials
// are checked, Test connection, and its development stub.
type Integration struct {
	client  *Client
	stub    *Client
	env     integrations.Values
	timeout time.Duration
}

// NewIntegration returns the Vapi integration over client (the guarded
// client), with the environment's credentials (VAPI_API_KEY,
// VAPI_ASSISTANT_ID). timeout is UPSTREAM_TIMEOUT, for messages.
func NewIntegration(client *Client, envAPIKey, envAssistantID string, timeout time.Duration) *Integration {
	stub := &http.Client{Transport: services.CorrelationTransport{Base: upstreamtest.InProcess(vapitest.NewStub())}}
	return &Integration{
		client:  client,
		stub:    NewClient("http://vapi.stub", stub),
		env:     integrations.Values{FieldAPIKey: envAPIKey, FieldAssistantID: envAssistantID},
		timeout: timeout,
	}
}

// Spec describes Vapi.
func (i *Integration) Spec() integrations.Spec {
	return integrations.Spec{
		Name:         Name,
		Label:        "Vapi",
		Blurb:        "The voice assistant that answers your calls: what it says first, how long calls may last, how fast it speaks.",
		ConnectTitle: "Connect your Vapi assistant",
		Needs:        "your Vapi API key and assistant id",
		Fields: []integrations.Field{
			{Name: FieldAPIKey, Label: "Vapi private API key", Short: "API key", Secret: true, EnvVar: "VAPI_API_KEY",
				Hint: "In the Vapi dashboard: Organization settings, API keys, private key."},
			{Name: FieldAssistantID, Label: "Assistant ID", EnvVar: "VAPI_ASSISTANT_ID",
				Hint: "On the assistant's page in the Vapi dashboard."},
		},
		Page: &integrations.Page{Href: "/vapi", Title: "Vapi settings",
			Description: "What your assistant says first, how long calls may last, how fast it speaks."},
	}
}

// Env returns the environment's credentials.
func (i *Integration) Env() integrations.Values { return i.env }

// Stub returns the built-in stand-in's credentials.
func (i *Integration) Stub() integrations.Values {
	return integrations.Values{FieldAPIKey: vapitest.StubKey, FieldAssistantID: vapitest.StubAssistantID}
}

// clientFor is the client that serves conn: the stub's for the stub.
func (i *Integration) clientFor(conn integrations.Resolved) *Client {
	if conn.IsStub() {
		return i.stub
	}
	return i.client
}

// Check fetches the assistant with the credentials: Vapi's own words say
// why it refuses them.
func (i *Integration) Check(ctx context.Context, v integrations.Values) (integrations.Values, error) {
	if strings.ContainsAny(v[FieldAssistantID], "/?# ") {
		return nil, services.FieldError(FieldAssistantID, "assistant_id must be a Vapi assistant id, like 5b9c...-...")
	}
	_, err := i.client.GetAssistant(ctx, v[FieldAPIKey], v[FieldAssistantID])
	var api *APIError
	switch {
	case err == nil:
		return v, nil
	case errors.As(err, &api) && (api.Status == http.StatusUnauthorized || api.Status == http.StatusForbidden):
		return nil, services.FieldError(FieldAPIKey, "Vapi refused the API key: %s", api.Message)
	case errors.As(err, &api) && (api.Status == http.StatusNotFound || api.Status == http.StatusBadRequest):
		return nil, services.FieldError(FieldAssistantID, "Vapi did not find the assistant: %s", api.Message)
	default:
		return nil, i.translate(err, v[FieldAssistantID])
	}
}

// Test fetches the assistant and names it.
func (i *Integration) Test(ctx context.Context, conn integrations.Resolved) (string, error) {
	a, err := i.clientFor(conn).GetAssistant(ctx, conn.Values[FieldAPIKey], conn.Values[FieldAssistantID])
	if err != nil {
		return "", i.translate(err, conn.Values[FieldAssistantID])
	}
	name := a.Name
	if name == "" {
		name = a.ID
	}
	return "Connected: Vapi answered with assistant " + name + ".", nil
}

// translate turns a failed Vapi call into the console's error.
func (i *Integration) translate(err error, assistantID string) error {
	var api *APIError
	if !errors.As(err, &api) {
		return upstream.Error("Vapi", i.timeout, err)
	}
	switch api.Status {
	case http.StatusUnauthorized, http.StatusForbidden:
		return &services.Error{Code: services.EUPSTREAM, Err: err,
			Message: fmt.Sprintf("Vapi refused the API key: %s. Update the credentials on the Integrations page.", api.Message)}
	case http.StatusNotFound:
		return &services.Error{Code: services.EUPSTREAM, Err: err,
			Message: fmt.Sprintf("Vapi has no assistant %q for this API key: %s.", assistantID, api.Message)}
	default:
		return upstream.StatusError("Vapi", api.Status, api.Message, api.RetryAfter, err)
	}
}

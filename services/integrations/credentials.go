// Package integrations keeps each account's integration credentials (sealed,
// masked for display, falling back to the environment's), and what is known
// of each integration's health. The integration packages (vapi, later
// twilio...) resolve their credentials here.
package integrations

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ava/console/services"
	"github.com/ava/console/services/secrets"
)

// Credential sources.
const (
	SourceAccount     = "account"
	SourceEnvironment = "environment"
	// SourceStub is the built-in stand-in for the provider, used only in
	// development with INTEGRATIONS_STUB_MODE on and nothing else configured.
	SourceStub = "stub"
)

// Field is one credential field of an integration.
type Field struct {
	Name string
	// Secret fields are masked to their last four characters when shown;
	// identifiers are shown in full.
	Secret bool
	// Optional fields may be empty (Twilio's API key SID).
	Optional bool
}

// Kind describes an integration's credentials and their environment fallback.
type Kind struct {
	Name   string
	Fields []Field
	// Env holds the environment's values by field; used only when every
	// field has one and the account stored none.
	Env map[string]string
	// Stub, when set, are the values of the built-in stand-in, used when
	// nothing else is configured. Only set when stubs are allowed (never in
	// production).
	Stub map[string]string
}

// Resolved are the credentials an integration uses for an account.
type Resolved struct {
	// Values by field; nil when nothing is configured.
	Values map[string]string
	// Source is SourceAccount, SourceEnvironment, SourceStub or "" (not configured).
	Source string
	// Hints are the values safe to show, by field.
	Hints     map[string]string
	UpdatedAt *time.Time
}

// Configured reports whether credentials were found.
func (r Resolved) Configured() bool { return r.Source != "" }

// Credentials resolves, stores and masks credentials.
type Credentials struct {
	store  services.IntegrationStore
	sealer *secrets.Sealer
	kinds  map[string]Kind
	order  []string
	log    *slog.Logger
	now    func() time.Time
}

// NewCredentials returns the credential keeper for the given integrations.
func NewCredentials(store services.IntegrationStore, sealer *secrets.Sealer, log *slog.Logger, kinds ...Kind) *Credentials {
	m := map[string]Kind{}
	var order []string
	for _, k := range kinds {
		m[k.Name] = k
		order = append(order, k.Name)
	}
	return &Credentials{store: store, sealer: sealer, kinds: m, order: order, log: log, now: time.Now}
}

func sealContext(accountID int64, integration string) string {
	return fmt.Sprintf("account %d integration %s", accountID, integration)
}

func (c *Credentials) kind(integration string) (Kind, error) {
	k, ok := c.kinds[integration]
	if !ok {
		return Kind{}, services.Errorf(services.ENOTFOUND, "Unknown integration %q.", integration)
	}
	return k, nil
}

// Resolve returns the account's own credentials, else the environment's,
// else an unconfigured Resolved.
func (c *Credentials) Resolve(ctx context.Context, accountID int64, integration string) (Resolved, error) {
	k, err := c.kind(integration)
	if err != nil {
		return Resolved{}, err
	}
	stored, err := c.store.Credentials(ctx, accountID, integration)
	switch services.ErrorCode(err) {
	case "":
		plain, err := c.sealer.Open(stored.Sealed, sealContext(accountID, integration))
		if err != nil {
			return Resolved{}, services.Internal(err)
		}
		var values map[string]string
		if err := json.Unmarshal(plain, &values); err != nil {
			return Resolved{}, services.Internal(err)
		}
		at := stored.UpdatedAt
		return Resolved{Values: values, Source: SourceAccount, Hints: stored.Hints, UpdatedAt: &at}, nil
	case services.ENOTFOUND:
	default:
		return Resolved{}, services.Internal(err)
	}
	envComplete := len(k.Fields) > 0
	for _, f := range k.Fields {
		if k.Env[f.Name] == "" && !f.Optional {
			envComplete = false
		}
	}
	switch {
	case envComplete:
		return Resolved{Values: k.Env, Source: SourceEnvironment, Hints: hints(k, k.Env)}, nil
	case k.Stub != nil:
		return Resolved{Values: k.Stub, Source: SourceStub, Hints: hints(k, k.Stub)}, nil
	default:
		return Resolved{}, nil
	}
}

func hints(k Kind, values map[string]string) map[string]string {
	out := map[string]string{}
	for _, f := range k.Fields {
		if values[f.Name] == "" && f.Optional {
			continue
		}
		if f.Secret {
			out[f.Name] = secrets.Mask(values[f.Name])
		} else {
			out[f.Name] = values[f.Name]
		}
	}
	return out
}

// Save seals and stores the account's credentials, replacing earlier ones.
// The caller has checked them against the provider first.
func (c *Credentials) Save(ctx context.Context, accountID int64, integration string, values map[string]string) (Resolved, error) {
	k, err := c.kind(integration)
	if err != nil {
		return Resolved{}, err
	}
	plain, err := json.Marshal(values)
	if err != nil {
		return Resolved{}, services.Internal(err)
	}
	sealed, err := c.sealer.Seal(plain, sealContext(accountID, integration))
	if err != nil {
		return Resolved{}, services.Internal(err)
	}
	now := c.now()
	h := hints(k, values)
	if err := c.store.SaveCredentials(ctx, services.StoredCredentials{
		AccountID: accountID, Integration: integration, Sealed: sealed, Hints: h, UpdatedAt: now,
	}); err != nil {
		return Resolved{}, services.Internal(err)
	}
	c.log.InfoContext(ctx, "integration credentials saved", slog.String("integration", integration))
	return Resolved{Values: values, Source: SourceAccount, Hints: h, UpdatedAt: &now}, nil
}

// RecordResult remembers the outcome of a call for the status page: the
// error's user-facing message and time, or the time of success. Failing to
// record is logged, never returned: it must not hide the call's own result.
func (c *Credentials) RecordResult(ctx context.Context, accountID int64, integration string, callErr error) {
	if errors.Is(callErr, context.Canceled) {
		return // the caller went away: nothing is known of the provider
	}
	if services.ErrorCode(callErr) == services.EUNAVAILABLE {
		// Refused by the open breaker: the call never left, and the error
		// that opened it is the one worth keeping (the status shows the
		// breaker's state).
		return
	}
	// What was learnt about the provider is kept even if the caller has
	// gone meanwhile.
	ctx = context.WithoutCancel(ctx)
	var err error
	if callErr == nil {
		err = c.store.RecordIntegrationOK(ctx, accountID, integration, c.now())
	} else {
		err = c.store.RecordIntegrationError(ctx, accountID, integration, services.ErrorMessage(callErr), c.now())
	}
	if err != nil {
		c.log.ErrorContext(ctx, "recording integration health failed", slog.String("integration", integration), slog.Any("error", err))
	}
}

// Health returns what is known of the integration's last calls for the account.
func (c *Credentials) Health(ctx context.Context, accountID int64, integration string) (services.IntegrationHealth, error) {
	h, err := c.store.IntegrationHealth(ctx, accountID, integration)
	if err != nil {
		return h, services.Internal(err)
	}
	return h, nil
}

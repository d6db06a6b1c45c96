package integrations

import (
	"context"
	"time"
)

// Status is an integration's live status for one account.
type Status struct {
	Name       string
	Configured bool
	// Source is SourceAccount, SourceEnvironment or "".
	Source string
	// Hints are masked credentials, by field.
	Hints        map[string]string
	BreakerState string
	LastError    string
	LastErrorAt  *time.Time
	LastOKAt     *time.Time
}

// BreakerStates tells the state of an upstream's breaker ("closed", "half-open", "open").
type BreakerStates func(upstream string) string

// Statuses returns the status of every integration, in the order given at
// construction.
func (c *Credentials) Statuses(ctx context.Context, accountID int64, breakers BreakerStates) ([]Status, error) {
	out := make([]Status, 0, len(c.order))
	for _, name := range c.order {
		st, err := c.Status(ctx, accountID, name, breakers)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// Status returns one integration's status.
func (c *Credentials) Status(ctx context.Context, accountID int64, name string, breakers BreakerStates) (Status, error) {
	r, err := c.Resolve(ctx, accountID, name)
	if err != nil {
		return Status{}, err
	}
	h, err := c.Health(ctx, accountID, name)
	if err != nil {
		return Status{}, err
	}
	return Status{
		Name: name, Configured: r.Configured(), Source: r.Source, Hints: r.Hints,
		BreakerState: breakers(name), LastError: h.LastError, LastErrorAt: h.LastErrorAt, LastOKAt: h.LastOKAt,
	}, nil
}

// Reporter reports integration statuses with the breakers' live states.
type Reporter struct {
	creds    *Credentials
	breakers BreakerStates
}

// NewReporter returns a Reporter over the credentials and breakers.
func NewReporter(creds *Credentials, breakers BreakerStates) *Reporter {
	return &Reporter{creds: creds, breakers: breakers}
}

// Statuses returns every integration's status for the account.
func (r *Reporter) Statuses(ctx context.Context, accountID int64) ([]Status, error) {
	return r.creds.Statuses(ctx, accountID, r.breakers)
}

// Status returns one integration's status for the account.
func (r *Reporter) Status(ctx context.Context, accountID int64, name string) (Status, error) {
	return r.creds.Status(ctx, accountID, name, r.breakers)
}

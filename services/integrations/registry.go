// Package integrations is the registry of the console's integrations. Each
// integration (vapi, twilio, email...) is a package that describes itself
// with a Spec and implements Integration; the registry does everything
// generic for all of them: credentials (checked with the provider, sealed,
// masked, falling back to the environment's, or the development stub's),
// the one rule for stubs, running a call with an account's credentials and
// recording its result, and each integration's live status.
package integrations

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/ava/console/services"
	"github.com/ava/console/services/cache"
	"github.com/ava/console/services/events"
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

// StubPolicy is what INTEGRATIONS_STUB_MODE means where the console runs.
type StubPolicy int

// Stub policies.
const (
	// StubsOff: the flag is off; an integration without credentials is
	// not connected.
	StubsOff StubPolicy = iota
	// StubsAllowed: development with the flag on; an integration without
	// credentials answers from its stub.
	StubsAllowed
	// StubsRefused: production with the flag on; an integration without
	// credentials that has a stub answers that stubs are refused here.
	StubsRefused
)

// NewStubPolicy returns the policy for the flag and the environment.
func NewStubPolicy(stubMode, production bool) StubPolicy {
	switch {
	case !stubMode:
		return StubsOff
	case production:
		return StubsRefused
	default:
		return StubsAllowed
	}
}

// EnvScope says which accounts the environment's credentials serve
// (ENV_CREDENTIALS_SCOPE).
type EnvScope int

// Environment credential scopes.
const (
	// EnvFirstAccount: only the first account created (the lowest id: the
	// one first-run setup or the first `ava user create` made). The default.
	EnvFirstAccount EnvScope = iota
	// EnvAllAccounts: every account that has stored none of its own.
	EnvAllAccounts
)

// Resolved are the credentials an integration uses for an account.
type Resolved struct {
	// AccountID is the account they were resolved for.
	AccountID int64
	// Values by field; nil when nothing is configured.
	Values Values
	// Source is SourceAccount, SourceEnvironment, SourceStub or "" (not configured).
	Source string
	// Hints are the values safe to show, by field.
	Hints     map[string]string
	UpdatedAt *time.Time
}

// Configured reports whether credentials were found.
func (r Resolved) Configured() bool { return r.Source != "" }

// IsStub reports whether these are the development stub's credentials.
func (r Resolved) IsStub() bool { return r.Source == SourceStub }

// Status is an integration's live status for one account.
type Status struct {
	Spec       Spec
	Configured bool
	// Source is SourceAccount, SourceEnvironment, SourceStub or "".
	Source string
	// Hints are masked credentials, by field.
	Hints map[string]string
	// EnvScope is which accounts the environment's credentials serve.
	EnvScope EnvScope
	// EnvElsewhere: the environment has complete credentials for the
	// integration, but they serve only the first account, not this one.
	EnvElsewhere bool
	BreakerState string
	LastError    string
	LastErrorAt  *time.Time
	LastOKAt     *time.Time
	// OAuthUnavailable, for an OAuth integration, says why the console
	// cannot start a connect (its OAuth client is not configured); "" when
	// it can.
	OAuthUnavailable string
	// NeedsReconnect says why the account's grant no longer works (revoked
	// or expired at the provider): the owner must connect again. "" while
	// it works.
	NeedsReconnect string
}

// Name is the integration's name.
func (s Status) Name() string { return s.Spec.Name }

// Failing reports whether the last call failed (no success since; an
// error in the same millisecond as a success counts as the later).
func (s Status) Failing() bool {
	return s.LastErrorAt != nil && (s.LastOKAt == nil || !s.LastErrorAt.Before(*s.LastOKAt))
}

// BreakerStates tells the state of an upstream's breaker ("closed", "half-open", "open").
type BreakerStates func(upstream string) string

// Upstreamer is an integration whose calls go to another upstream than its
// name (Email: "resend" or "smtp", by the provider chosen).
type Upstreamer interface {
	Upstream(conn Resolved) string
}

// Store is what the registry keeps in the database.
type Store interface {
	services.IntegrationStore
	services.OAuthStateStore
}

// Options configure a registry.
type Options struct {
	Stubs    StubPolicy
	Breakers BreakerStates
	Log      *slog.Logger
	// EnvScope is which accounts the environment's credentials serve
	// (the first account unless EnvAllAccounts).
	EnvScope EnvScope
	// Now is the registry's clock (time.Now when nil).
	Now func() time.Time
	// Events is told when an account's integration is connected,
	// disconnected or its credentials change, and when its calls start
	// failing or succeed again (events.IntegrationChanged); nil tells no
	// one.
	Events events.Publisher
}

// Registry holds the console's integrations and their credentials.
type Registry struct {
	store    Store
	sealer   *secrets.Sealer
	opts     Options
	byName   map[string]Integration
	ordered  []Integration
	now      func() time.Time
	breakers BreakerStates
	// firstAccount caches the first account's id once there is one (it
	// never changes); 0 until then.
	firstAccount atomic.Int64
	// conns caches resolved credentials (decrypted) by account and
	// integration for cache.Staleness: Connect, Save and Disconnect drop
	// the account's entry at once; other instances see the change within
	// cache.Staleness.
	conns *cache.Cache[connKey, Resolved]
	// recorded is the outcome this instance last wrote of an account's
	// integration ("" for a success), for HealthRefresh: the same outcome
	// again is not written again until then.
	recorded *cache.Cache[connKey, string]
}

// connKey names an account's integration.
type connKey struct {
	account int64
	name    string
}

// HealthRefresh is how often an unchanged outcome of calls (success, or
// the same error) is written again at most: the last success and error
// shown are exact to this much. A different outcome is written at once.
const HealthRefresh = time.Minute

// connCacheSize bounds the caches of credentials and outcomes.
const connCacheSize = 10_000

// NewRegistry returns the registry of the given integrations, listed in
// that order everywhere.
func NewRegistry(store Store, sealer *secrets.Sealer, opts Options, all ...Integration) (*Registry, error) {
	r := &Registry{
		store: store, sealer: sealer, opts: opts, byName: map[string]Integration{}, now: time.Now, breakers: opts.Breakers,
		conns:    cache.New[connKey, Resolved](connCacheSize, cache.Staleness),
		recorded: cache.New[connKey, string](connCacheSize, HealthRefresh),
	}
	if r.breakers == nil {
		r.breakers = func(string) string { return "closed" }
	}
	if r.opts.Log == nil {
		r.opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Now != nil {
		r.now = opts.Now
	}
	for _, i := range all {
		s := i.Spec()
		if s.Name == "" || s.Label == "" {
			return nil, fmt.Errorf("integration %T: a spec needs a name and a label", i)
		}
		if _, dup := r.byName[s.Name]; dup {
			return nil, fmt.Errorf("integration %q registered twice", s.Name)
		}
		r.byName[s.Name] = i
		r.ordered = append(r.ordered, i)
	}
	return r, nil
}

// Specs returns every integration's spec, in registration order.
func (r *Registry) Specs() []Spec {
	out := make([]Spec, 0, len(r.ordered))
	for _, i := range r.ordered {
		out = append(out, i.Spec())
	}
	return out
}

// Integration returns the integration of that name; ENOTFOUND if none.
func (r *Registry) Integration(name string) (Integration, error) {
	i, ok := r.byName[name]
	if !ok {
		return nil, services.Errorf(services.ENOTFOUND, "There is no integration %q.", name)
	}
	return i, nil
}

func sealContext(accountID int64, integration string) string {
	return fmt.Sprintf("account %d integration %s", accountID, integration)
}

// Resolve returns the credentials the integration uses for the account:
// its own, else the environment's (when complete, and when they serve this
// account: the first one, unless EnvAllAccounts), else the stub's (when
// stubs are allowed), else an unconfigured Resolved. What it found is kept
// for cache.Staleness (see conns).
func (r *Registry) Resolve(ctx context.Context, accountID int64, name string) (Resolved, error) {
	key, now := connKey{accountID, name}, r.now()
	if conn, ok := r.conns.Get(key, now); ok {
		return conn.clone(), nil
	}
	gen := r.conns.Generation()
	conn, settled, err := r.resolve(ctx, accountID, name)
	if err != nil {
		return Resolved{}, err
	}
	if settled {
		r.conns.Add(key, conn, gen, now)
	}
	return conn.clone(), nil
}

// clone is a copy callers may change without changing the cached one.
func (r Resolved) clone() Resolved {
	r.Values, r.Hints = maps.Clone(r.Values), maps.Clone(r.Hints)
	if r.UpdatedAt != nil {
		at := *r.UpdatedAt
		r.UpdatedAt = &at
	}
	return r
}

// resolve is Resolve from the database, without the cache. settled is
// false when the answer depends on there being no account yet (which
// account the environment's credentials serve is not known then).
func (r *Registry) resolve(ctx context.Context, accountID int64, name string) (_ Resolved, settled bool, _ error) {
	i, err := r.Integration(name)
	if err != nil {
		return Resolved{}, false, err
	}
	spec := i.Spec()
	stored, err := r.store.Credentials(ctx, accountID, name)
	switch services.ErrorCode(err) {
	case "":
		plain, err := r.sealer.Open(stored.Sealed, sealContext(accountID, name))
		if err != nil {
			return Resolved{}, false, services.Internal(err)
		}
		var values Values
		if err := json.Unmarshal(plain, &values); err != nil {
			return Resolved{}, false, services.Internal(err)
		}
		at := stored.UpdatedAt
		return Resolved{AccountID: accountID, Values: values, Source: SourceAccount, Hints: stored.Hints, UpdatedAt: &at}, true, nil
	case services.ENOTFOUND:
	default:
		return Resolved{}, false, services.Internal(err)
	}
	settled = true
	if env := i.Env(); complete(spec, env) {
		serves, err := r.envServes(ctx, accountID)
		if err != nil {
			return Resolved{}, false, err
		}
		if serves {
			return Resolved{AccountID: accountID, Values: env, Source: SourceEnvironment, Hints: hints(spec, env)}, true, nil
		}
		settled = r.opts.EnvScope == EnvAllAccounts || r.firstAccount.Load() != 0
	}
	if s, ok := i.(Stubber); ok && r.opts.Stubs == StubsAllowed {
		v := s.Stub()
		return Resolved{AccountID: accountID, Values: v, Source: SourceStub, Hints: hints(spec, v)}, settled, nil
	}
	return Resolved{AccountID: accountID}, settled, nil
}

// envServes reports whether the environment's credentials serve the account.
func (r *Registry) envServes(ctx context.Context, accountID int64) (bool, error) {
	if r.opts.EnvScope == EnvAllAccounts {
		return true, nil
	}
	first, err := r.firstAccountID(ctx)
	if err != nil {
		return false, err
	}
	return first != 0 && accountID == first, nil
}

// firstAccountID is the first account's id, 0 while there is none.
func (r *Registry) firstAccountID(ctx context.Context) (int64, error) {
	if id := r.firstAccount.Load(); id != 0 {
		return id, nil
	}
	id, err := r.store.FirstAccountID(ctx)
	switch services.ErrorCode(err) {
	case "":
		r.firstAccount.Store(id)
		return id, nil
	case services.ENOTFOUND:
		return 0, nil
	default:
		return 0, services.Internal(err)
	}
}

// complete reports whether every field that applies has a value.
func complete(spec Spec, values Values) bool {
	if len(values) == 0 {
		return false
	}
	for _, f := range spec.Fields {
		if spec.Applies(f, values) && !f.Optional && values[f.Name] == "" {
			return false
		}
	}
	return true
}

func hints(spec Spec, values Values) map[string]string {
	out := map[string]string{}
	for _, f := range spec.Fields {
		if !spec.Applies(f, values) || values[f.Name] == "" && f.Optional {
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

// Use runs fn with the account's credentials for the integration and
// records its outcome as the integration's last success or error. Without
// credentials it returns StubRefused (production with the stub flag, for
// an integration that has a stub) or NotConnected, and fn is not called.
//
// The outcome is written when it differs from the one this instance wrote
// last, or when that is HealthRefresh old: repeated successful reads
// write nothing.
func (r *Registry) Use(ctx context.Context, accountID int64, name string, fn func(ctx context.Context, conn Resolved) error) error {
	return r.use(ctx, accountID, name, fn, false)
}

// use is Use; always writes the outcome whatever was written before (Test
// connection: the owner asked).
func (r *Registry) use(ctx context.Context, accountID int64, name string, fn func(ctx context.Context, conn Resolved) error, always bool) error {
	conn, err := r.connection(ctx, accountID, name)
	if err != nil {
		return err
	}
	err = fn(ctx, conn)
	r.recordOutcome(ctx, accountID, name, err, always)
	return err
}

// connection resolves credentials for a call: configured, or the error
// that says why not.
func (r *Registry) connection(ctx context.Context, accountID int64, name string) (Resolved, error) {
	conn, err := r.Resolve(ctx, accountID, name)
	if err != nil {
		return Resolved{}, err
	}
	if conn.Configured() {
		return conn, nil
	}
	i := r.byName[name]
	if _, ok := i.(Stubber); ok && r.opts.Stubs == StubsRefused {
		return Resolved{}, StubRefused(i.Spec())
	}
	return Resolved{}, NotConnected(i.Spec())
}

// Test checks the credentials in use with the provider ("Test connection").
func (r *Registry) Test(ctx context.Context, accountID int64, name string) (string, error) {
	i, err := r.Integration(name)
	if err != nil {
		return "", err
	}
	var msg string
	err = r.use(ctx, accountID, name, func(ctx context.Context, conn Resolved) error {
		var err error
		msg, err = i.Test(ctx, conn)
		return err
	}, true)
	return msg, err
}

// Connect checks the values (the spec's rules, then the provider) and
// stores them as the account's own credentials, replacing earlier ones. On
// any refusal nothing stored changes.
func (r *Registry) Connect(ctx context.Context, accountID int64, name string, raw Values) (Resolved, error) {
	i, err := r.Integration(name)
	if err != nil {
		return Resolved{}, err
	}
	spec := i.Spec()
	values, err := Normalize(spec, raw)
	if err != nil {
		return Resolved{}, err
	}
	if values, err = i.Check(ctx, values); err != nil {
		return Resolved{}, err
	}
	return r.replace(ctx, accountID, i, values)
}

// replace stores values the provider has just accepted or issued as the
// account's credentials, tells a Replacer what they replaced, and records
// the success.
func (r *Registry) replace(ctx context.Context, accountID int64, i Integration, values Values) (Resolved, error) {
	name := i.Spec().Name
	previous, _, err := r.resolve(ctx, accountID, name)
	if err != nil {
		// Stored credentials that no longer open (AVA_SECRET_KEY changed,
		// a damaged row) must not stop the owner from replacing them.
		r.opts.Log.WarnContext(ctx, "replacing credentials that cannot be read", slog.String("integration", name), slog.Any("error", err))
		previous = Resolved{}
	}
	saved, err := r.save(ctx, accountID, i.Spec(), values)
	if err != nil {
		return Resolved{}, err
	}
	if rep, ok := i.(Replacer); ok && previous.Source == SourceAccount {
		rep.Replaced(previous, saved)
	}
	r.record(ctx, accountID, name, nil)
	r.changed(ctx, accountID, name, StateConnected)
	return saved, nil
}

// The states of an events.IntegrationChanged.
const (
	StateConnected      = "connected"
	StateDisconnected   = "disconnected"
	StateCredentials    = "credentials"     // refreshed by the provider
	StateNeedsReconnect = "needs_reconnect" // the grant no longer works
	StateOK             = "ok"              // calls succeed again (or the first outcome known here)
	StateFailing        = "failing"         // the last call failed
)

// changed tells the events hub that an account's integration changed.
func (r *Registry) changed(ctx context.Context, accountID int64, name, state string) {
	events.Publish(ctx, r.opts.Events, events.Event{Kind: events.IntegrationChanged, AccountID: accountID, Integration: name, State: state})
}

// Invalidate drops what this instance keeps of an account's integration
// whose credentials another instance changed (an event it published): the
// next read is from the database. Another instance's outcome of a call
// changes nothing kept here (its status reads the health it wrote), and
// must not: forgetting would make the next call here write and publish
// again, and the instances would set each other off.
func (r *Registry) Invalidate(e events.Event) {
	if e.Kind == events.IntegrationChanged && e.AccountID != 0 && e.State != StateOK && e.State != StateFailing {
		r.forget(e.AccountID, e.Integration)
	}
}

// Disconnect removes the account's own credentials (revoking the grant at
// the provider first for integrations that hold one). ENOTFOUND when the
// account has stored none.
func (r *Registry) Disconnect(ctx context.Context, accountID int64, name string) error {
	i, err := r.Integration(name)
	if err != nil {
		return err
	}
	conn, _, err := r.resolve(ctx, accountID, name)
	readable := err == nil
	if !readable {
		// Credentials that no longer open can still be removed; there is
		// nothing to revoke or forget with them.
		r.opts.Log.WarnContext(ctx, "removing credentials that cannot be read", slog.String("integration", name), slog.Any("error", err))
	}
	if readable && conn.Source != SourceAccount {
		return services.Errorf(services.ENOTFOUND, "This account has no %s credentials of its own to remove.", i.Spec().Label)
	}
	if rev, ok := i.(Revoker); ok && readable {
		if err := rev.Revoke(ctx, conn); err != nil {
			return err
		}
	}
	deleted, err := r.store.DeleteCredentials(ctx, accountID, name)
	r.forget(accountID, name)
	if err != nil {
		return services.Internal(err)
	}
	if !deleted {
		return services.Errorf(services.ENOTFOUND, "This account has no %s credentials of its own to remove.", i.Spec().Label)
	}
	if rep, ok := i.(Replacer); ok && readable {
		rep.Replaced(conn, Resolved{})
	}
	r.opts.Log.InfoContext(ctx, "integration credentials removed", slog.String("integration", name))
	r.changed(ctx, accountID, name, StateDisconnected)
	return nil
}

// Save stores values as the account's credentials without asking the
// provider: for credentials the provider just issued (an OAuth exchange or
// refresh).
func (r *Registry) Save(ctx context.Context, accountID int64, name string, values Values) (Resolved, error) {
	i, err := r.Integration(name)
	if err != nil {
		return Resolved{}, err
	}
	return r.save(ctx, accountID, i.Spec(), values)
}

// Refresh stores values the provider has just issued in place of was (a
// refreshed token; a grant marked for reconnecting), unless the account's
// stored credentials changed since was was read (connected again or
// removed meanwhile, here or on another instance): then nothing is stored
// and stored is false, so a call that started with the old grant cannot
// overwrite the new one. The check reads the database, not the cache; it
// is not atomic with the write (a change within that moment still loses).
func (r *Registry) Refresh(ctx context.Context, accountID int64, name string, was Resolved, values Values) (_ Resolved, stored bool, _ error) {
	i, err := r.Integration(name)
	if err != nil {
		return Resolved{}, false, err
	}
	current, _, err := r.resolve(ctx, accountID, name)
	if err != nil {
		return Resolved{}, false, err
	}
	if current.Source != SourceAccount || was.UpdatedAt == nil || current.UpdatedAt == nil ||
		current.UpdatedAt.UnixMilli() != was.UpdatedAt.UnixMilli() {
		return current, false, nil
	}
	saved, err := r.save(ctx, accountID, i.Spec(), values)
	if err != nil {
		return Resolved{}, false, err
	}
	state := StateCredentials
	if rc, ok := i.(Reconnecter); ok && rc.NeedsReconnect(saved) != "" {
		state = StateNeedsReconnect
	}
	r.changed(ctx, accountID, name, state)
	return saved, true, nil
}

func (r *Registry) save(ctx context.Context, accountID int64, spec Spec, values Values) (Resolved, error) {
	plain, err := json.Marshal(values)
	if err != nil {
		return Resolved{}, services.Internal(err)
	}
	sealed, err := r.sealer.Seal(plain, sealContext(accountID, spec.Name))
	if err != nil {
		return Resolved{}, services.Internal(err)
	}
	now := r.now()
	h := hints(spec, values)
	err = r.store.SaveCredentials(ctx, services.StoredCredentials{
		AccountID: accountID, Integration: spec.Name, Sealed: sealed, Hints: h, UpdatedAt: now,
	})
	r.forget(accountID, spec.Name)
	if err != nil {
		return Resolved{}, services.Internal(err)
	}
	r.opts.Log.InfoContext(ctx, "integration credentials saved", slog.String("integration", spec.Name))
	return Resolved{AccountID: accountID, Values: values, Source: SourceAccount, Hints: h, UpdatedAt: &now}, nil
}

// Normalize applies a spec's generic rules to submitted values: trims them,
// keeps only the fields that apply, and refuses a missing required value,
// one too long, a choice not offered or a number that is not one, naming
// the field.
func Normalize(spec Spec, raw Values) (Values, error) {
	values := Values{}
	if spec.Selector != "" {
		values[spec.Selector] = strings.TrimSpace(raw[spec.Selector])
	}
	for _, f := range spec.Fields {
		if !spec.Applies(f, values) {
			continue
		}
		v := strings.TrimSpace(raw[f.Name])
		switch {
		case v == "" && f.Optional:
			continue
		case v == "" && len(f.Choices) > 0:
			return nil, services.FieldError(f.Name, "%s is required: one of %s.", f.Name, choiceList(f))
		case v == "":
			return nil, services.FieldError(f.Name, "%s is required: %s.", f.Name, f.Label)
		case utf8.RuneCountInString(v) > f.MaxLength():
			return nil, services.FieldError(f.Name, "%s must be at most %d characters.", f.Name, f.MaxLength())
		case len(f.Choices) > 0 && !offered(f, v):
			return nil, services.FieldError(f.Name, "%s must be one of %s.", f.Name, choiceList(f))
		case f.Number:
			if _, err := strconv.Atoi(v); err != nil {
				return nil, services.FieldError(f.Name, "%s must be a whole number.", f.Name)
			}
		}
		values[f.Name] = v
	}
	return values, nil
}

func offered(f Field, v string) bool {
	for _, c := range f.Choices {
		if c.Value == v {
			return true
		}
	}
	return false
}

func choiceList(f Field) string {
	names := make([]string, 0, len(f.Choices))
	for _, c := range f.Choices {
		names = append(names, c.Value)
	}
	return strings.Join(names, ", ")
}

// errNoCall is the cause of errors that happen before any call leaves.
var errNoCall = errors.New("no call to the provider was made")

// NoCall marks an error that happened before any call to the provider left
// (waiting for a lock of our own): Use returns it without recording it as
// the integration's last error.
func NoCall(e *services.Error) error {
	e.Err = errNoCall
	return e
}

// record remembers the outcome of a call for the status, whatever was
// written before (a connect).
func (r *Registry) record(ctx context.Context, accountID int64, name string, callErr error) {
	r.recordOutcome(ctx, accountID, name, callErr, true)
}

// forget drops what this instance keeps of an account's integration: its
// credentials and the outcome it last wrote.
func (r *Registry) forget(accountID int64, name string) {
	key := connKey{accountID, name}
	r.conns.Remove(key)
	r.recorded.Remove(key)
}

// recordOutcome remembers the outcome of a call for the status: the error's
// user-facing message and time, or the time of success; unless always, not
// when this instance wrote the same outcome less than HealthRefresh ago.
// Failing to record is logged, never returned: it must not hide the call's
// own result.
func (r *Registry) recordOutcome(ctx context.Context, accountID int64, name string, callErr error, always bool) {
	if errors.Is(callErr, context.Canceled) || errors.Is(callErr, errNoCall) {
		return // the caller went away, or nothing was asked: nothing is known of the provider
	}
	switch services.ErrorCode(callErr) {
	case services.EUNAVAILABLE:
		// Refused by the open breaker: the call never left, and the error
		// that opened it is the one worth keeping (the status shows the
		// breaker's state).
		return
	case services.EINVALID:
		// Refused before any call (a value the owner typed): says nothing
		// about the provider.
		return
	}
	key, now, msg := connKey{accountID, name}, r.now(), ""
	if callErr != nil {
		msg = services.ErrorMessage(callErr)
	}
	last, known := r.recorded.Get(key, now)
	if known && last == msg && !always {
		return
	}
	gen := r.recorded.Generation()
	// What was learnt about the provider is kept even if the caller has
	// gone meanwhile.
	ctx = context.WithoutCancel(ctx)
	var err error
	if callErr == nil {
		err = r.store.RecordIntegrationOK(ctx, accountID, name, now)
	} else {
		err = r.store.RecordIntegrationError(ctx, accountID, name, msg, now)
	}
	if err != nil {
		r.opts.Log.ErrorContext(ctx, "recording integration health failed", slog.String("integration", name), slog.Any("error", err))
		return
	}
	r.recorded.Add(key, msg, gen, now)
	if !known || last != msg {
		state := StateOK
		if callErr != nil {
			state = StateFailing
		}
		r.changed(ctx, accountID, name, state)
	}
}

// Changes returns the account's latest setting changes (the audit trail),
// newest first, at most limit: of one integration, or of every one when
// name is "". ENOTFOUND for an integration that is not registered.
func (r *Registry) Changes(ctx context.Context, accountID int64, name string, limit int) ([]services.SettingChange, error) {
	if name != "" {
		if _, err := r.Integration(name); err != nil {
			return nil, err
		}
	}
	c, err := r.store.SettingChanges(ctx, accountID, name, limit)
	if err != nil {
		return nil, services.Internal(err)
	}
	return c, nil
}

// Statuses returns every integration's status for the account, in
// registration order.
func (r *Registry) Statuses(ctx context.Context, accountID int64) ([]Status, error) {
	out := make([]Status, 0, len(r.ordered))
	for _, i := range r.ordered {
		st, err := r.Status(ctx, accountID, i.Spec().Name)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// Status returns one integration's status for the account.
func (r *Registry) Status(ctx context.Context, accountID int64, name string) (Status, error) {
	i, err := r.Integration(name)
	if err != nil {
		return Status{}, err
	}
	conn, err := r.Resolve(ctx, accountID, name)
	if err != nil {
		return Status{}, err
	}
	h, err := r.store.IntegrationHealth(ctx, accountID, name)
	if err != nil {
		return Status{}, services.Internal(err)
	}
	failing := h.LastErrorAt != nil && (h.LastOKAt == nil || !h.LastErrorAt.Before(*h.LastOKAt))
	if last, ok := r.recorded.Get(connKey{accountID, name}, r.now()); ok && (failing != (last != "") || failing && last != h.LastError) {
		// Another instance wrote another outcome since: the next call
		// here writes its own.
		r.recorded.Remove(connKey{accountID, name})
	}
	elsewhere := false
	if conn.Source != SourceEnvironment && complete(i.Spec(), i.Env()) {
		serves, err := r.envServes(ctx, accountID)
		if err != nil {
			return Status{}, err
		}
		elsewhere = !serves
	}
	st := Status{
		Spec: i.Spec(), Configured: conn.Configured(), Source: conn.Source, Hints: conn.Hints,
		EnvScope: r.opts.EnvScope, EnvElsewhere: elsewhere,
		BreakerState: r.breakers(r.upstream(i, conn)), LastError: h.LastError, LastErrorAt: h.LastErrorAt, LastOKAt: h.LastOKAt,
	}
	if oc, ok := i.(OAuthConnector); ok {
		if err := oc.OAuthReady(); err != nil {
			st.OAuthUnavailable = services.ErrorMessage(err)
		}
	}
	if rc, ok := i.(Reconnecter); ok && conn.Source == SourceAccount {
		st.NeedsReconnect = rc.NeedsReconnect(conn)
	}
	return st, nil
}

// upstream is the breaker an integration's calls go through for conn.
func (r *Registry) upstream(i Integration, conn Resolved) string {
	if u, ok := i.(Upstreamer); ok {
		if name := u.Upstream(conn); name != "" {
			return name
		}
	}
	return i.Spec().Name
}

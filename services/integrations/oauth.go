package integrations

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"log/slog"
	"time"

	"github.com/ava/console/services"
)

// OAuthStateTTL is how long an owner has to give consent once a connect
// has started.
const OAuthStateTTL = 10 * time.Minute

// Callback is what the provider sent back to the redirect URI.
type Callback struct {
	State string
	Code  string
	// Error is the provider's refusal ("access_denied": the owner said no);
	// ErrorDescription its words, when it gave some.
	Error            string
	ErrorDescription string
}

// errConsentDenied is the cause of the error of a consent the owner refused.
var errConsentDenied = errors.New("consent denied")

// IsConsentDenied reports whether err says the owner refused consent at
// the provider (Cancel): not a failure, and nothing was stored.
func IsConsentDenied(err error) bool { return errors.Is(err, errConsentDenied) }

// oauth returns the named integration as an OAuth connector.
func (r *Registry) oauth(name string) (Integration, OAuthConnector, error) {
	i, err := r.Integration(name)
	if err != nil {
		return nil, nil, err
	}
	oc, ok := i.(OAuthConnector)
	if !ok {
		return nil, nil, services.Errorf(services.ENOTFOUND, "%s is not connected through a consent.", i.Spec().Label)
	}
	return i, oc, nil
}

// BeginConnect starts an OAuth connect for the account, from the browser
// session identified by binding (any value unique to that session: only the
// same session can finish it). It returns the provider's consent URL, whose
// state is kept in the database (so any instance can take the owner back),
// taken once, and forgotten after OAuthStateTTL.
func (r *Registry) BeginConnect(ctx context.Context, accountID int64, name, binding string) (string, error) {
	i, oc, err := r.oauth(name)
	if err != nil {
		return "", err
	}
	if err := oc.OAuthReady(); err != nil {
		return "", err
	}
	state, verifier := randomToken(), randomToken()
	hash := hashOf(state)
	sealed, err := r.sealer.Seal([]byte(verifier), oauthSealContext(hash))
	if err != nil {
		return "", services.Internal(err)
	}
	if err := r.store.SaveOAuthState(ctx, services.OAuthState{
		Hash: hash, Binding: hashOf(binding), AccountID: accountID, Integration: i.Spec().Name,
		SealedVerifier: sealed, ExpiresAt: r.now().Add(OAuthStateTTL),
	}); err != nil {
		return "", services.Internal(err)
	}
	return oc.AuthCodeURL(state, verifier), nil
}

// FinishConnect completes an OAuth connect with what the provider sent
// back. The state is checked first, and taken (a second use is refused):
// it must have been started by this account from the same browser session
// less than OAuthStateTTL ago. Only then is the code exchanged, and the
// credentials sealed and stored like any other. A refused consent returns
// an error IsConsentDenied recognises, and stores nothing.
func (r *Registry) FinishConnect(ctx context.Context, accountID int64, name, binding string, cb Callback) (Resolved, error) {
	i, oc, err := r.oauth(name)
	if err != nil {
		return Resolved{}, err
	}
	spec := i.Spec()
	refused := services.Errorf(services.EFORBIDDEN,
		"This %s sign-in cannot be finished: it was not started from this browser session, was finished already, or is more than 10 minutes old. Start again from the Integrations page.", spec.Label)
	if cb.State == "" {
		return Resolved{}, refused
	}
	st, err := r.store.TakeOAuthState(ctx, hashOf(cb.State), r.now())
	switch services.ErrorCode(err) {
	case "":
	case services.ENOTFOUND:
		r.opts.Log.WarnContext(ctx, "oauth callback with an unknown, used or expired state", slog.String("integration", name))
		return Resolved{}, refused
	default:
		return Resolved{}, services.Internal(err)
	}
	if st.AccountID != accountID || st.Integration != spec.Name || st.Binding != hashOf(binding) {
		r.opts.Log.WarnContext(ctx, "oauth callback from another session or account", slog.String("integration", name))
		return Resolved{}, refused
	}
	switch {
	case cb.Error == "access_denied":
		return Resolved{}, &services.Error{Code: services.EFORBIDDEN,
			Message: spec.Label + " was not connected: access was not allowed at the provider.", Err: errConsentDenied}
	case cb.Error != "":
		msg := cb.Error
		if cb.ErrorDescription != "" {
			msg += ": " + cb.ErrorDescription
		}
		return Resolved{}, services.Errorf(services.EUPSTREAM, "%s was not connected: the provider answered %q.", spec.Label, msg)
	case cb.Code == "":
		return Resolved{}, services.Errorf(services.EUPSTREAM, "%s was not connected: the provider sent no authorization code.", spec.Label)
	}
	verifier, err := r.sealer.Open(st.SealedVerifier, oauthSealContext(st.Hash))
	if err != nil {
		return Resolved{}, services.Internal(err)
	}
	values, err := oc.Exchange(ctx, cb.Code, string(verifier))
	if err != nil {
		return Resolved{}, err
	}
	return r.replace(ctx, accountID, i, values)
}

// randomToken is 256 random bits, base64url: an OAuth state, or a PKCE
// verifier (43 characters, as RFC 7636 asks).
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func oauthSealContext(stateHash string) string { return "oauth state " + stateHash }

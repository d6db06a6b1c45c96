package googletest

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"html/template"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// pkceValue is what RFC 7636 allows in a code challenge or verifier.
var pkceValue = regexp.MustCompile(`^[A-Za-z0-9._~-]{43,128}$`)

// authorize serves GET /o/oauth2/v2/auth: it checks the request as Google
// does (errors are HTML pages, never redirects), then asks the owner or
// answers for them.
func (f *Fake) authorize(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	q := r.Form // ParseForm ran for POST; a GET's form is its query
	if r.Method == http.MethodGet {
		q = r.URL.Query()
	}
	switch clientID := q.Get("client_id"); {
	case clientID == "":
		authError(w, http.StatusBadRequest, "invalid_request", "Missing required parameter: client_id")
		return
	case clientID != f.opts.ClientID:
		authError(w, http.StatusUnauthorized, "invalid_client", "The OAuth client was not found.")
		return
	}
	redirectURI := q.Get("redirect_uri")
	switch {
	case redirectURI == "":
		authError(w, http.StatusBadRequest, "invalid_request", "Missing required parameter: redirect_uri")
		return
	case !f.redirectAllowed(redirectURI):
		authError(w, http.StatusBadRequest, "redirect_uri_mismatch",
			"You can't sign in to this app because it doesn't comply with Google's OAuth 2.0 policy. "+
				"If you're the app developer, register the redirect URI in the Google Cloud Console. "+
				"Request details: redirect_uri="+redirectURI)
		return
	}
	switch rt := q.Get("response_type"); {
	case rt == "":
		authError(w, http.StatusBadRequest, "invalid_request", "Required parameter is missing: response_type")
		return
	case rt != "code":
		authError(w, http.StatusBadRequest, "unsupported_response_type", "Invalid response_type: "+rt)
		return
	}
	scopes := unique(strings.Fields(q.Get("scope")))
	if len(scopes) == 0 {
		authError(w, http.StatusBadRequest, "invalid_request", "Missing required parameter: scope")
		return
	}
	if bad := invalidScopes(scopes); len(bad) > 0 {
		authError(w, http.StatusBadRequest, "invalid_scope",
			"Some requested scopes were invalid. {invalid=["+strings.Join(bad, ", ")+"]}")
		return
	}
	challenge, method := q.Get("code_challenge"), q.Get("code_challenge_method")
	switch {
	case challenge == "":
		authError(w, http.StatusBadRequest, "invalid_request", "Missing required parameter: code_challenge")
		return
	case method == "":
		authError(w, http.StatusBadRequest, "invalid_request", "Missing required parameter: code_challenge_method")
		return
	case method != "S256": // Google allows plain too; this fake insists on S256
		authError(w, http.StatusBadRequest, "invalid_request", "Invalid code_challenge_method value: "+method+" (this fake requires S256)")
		return
	case !pkceValue.MatchString(challenge):
		authError(w, http.StatusBadRequest, "invalid_request", "Invalid code_challenge value.")
		return
	}
	switch at := q.Get("access_type"); at {
	case "", "online", "offline":
	default:
		authError(w, http.StatusBadRequest, "invalid_request", "Invalid access_type: "+at)
		return
	}
	req := &authRequest{
		redirectURI: redirectURI, scope: strings.Join(scopes, " "),
		state: q.Get("state"), hasState: q.Has("state"), challenge: challenge,
		offline: q.Get("access_type") == "offline", forceAsk: slices.Contains(strings.Fields(q.Get("prompt")), "consent"),
	}
	f.mu.Lock()
	mode := f.consent
	var id string
	if mode == Interactive {
		id = randomToken()
		f.pending[id] = req
	}
	account := f.summary
	f.mu.Unlock()
	switch mode {
	case AutoAllow:
		f.allow(w, r, req)
	case AutoDeny:
		deny(w, r, req)
	default:
		f.consentPage(w, id, account, scopes)
	}
}

// unique drops repeated words, keeping the first of each.
func unique(words []string) []string {
	var out []string
	for _, w := range words {
		if !slices.Contains(out, w) {
			out = append(out, w)
		}
	}
	return out
}

// redirectAllowed reports whether uri may receive the owner's answer: the
// registered URI exactly, or any absolute http(s) URI when none is.
func (f *Fake) redirectAllowed(uri string) bool {
	if f.opts.RedirectURI != "" {
		return uri == f.opts.RedirectURI
	}
	u, err := url.Parse(uri)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.Fragment == ""
}

// invalidScopes returns the scopes Google would not know.
func invalidScopes(scopes []string) []string {
	var bad []string
	for _, s := range scopes {
		switch {
		case s == "openid", s == "email", s == "profile":
		case strings.HasPrefix(s, "https://www.googleapis.com/auth/") && len(s) > len("https://www.googleapis.com/auth/"):
		default:
			bad = append(bad, s)
		}
	}
	return bad
}

// decide serves the consent page's buttons: POST consent=<id>&action=allow|cancel.
func (f *Fake) decide(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	id := r.PostForm.Get("consent")
	f.mu.Lock()
	req, ok := f.pending[id]
	delete(f.pending, id) // one decision per consent page
	f.mu.Unlock()
	if !ok {
		authError(w, http.StatusBadRequest, "invalid_request", "This consent request is unknown or was already answered. Start the sign-in again.")
		return
	}
	if r.PostForm.Get("action") == "allow" {
		f.allow(w, r, req)
		return
	}
	deny(w, r, req)
}

// allow issues a code and sends the owner back to the client.
func (f *Fake) allow(w http.ResponseWriter, r *http.Request, req *authRequest) {
	code := "4/0A" + randomToken()
	f.mu.Lock()
	f.codes[code] = &authCode{req: req, expires: f.now().Add(codeTTL)}
	f.mu.Unlock()
	v := url.Values{"code": {code}, "scope": {req.scope}, "authuser": {"0"}, "prompt": {"consent"}}
	if req.hasState {
		v.Set("state", req.state)
	}
	redirect(w, r, req.redirectURI, v)
}

// deny sends the owner back to the client with access_denied.
func deny(w http.ResponseWriter, r *http.Request, req *authRequest) {
	v := url.Values{"error": {"access_denied"}}
	if req.hasState {
		v.Set("state", req.state)
	}
	redirect(w, r, req.redirectURI, v)
}

// redirect answers 302 to uri with params added to its query.
func redirect(w http.ResponseWriter, r *http.Request, uri string, params url.Values) {
	u, err := url.Parse(uri)
	if err != nil { // checked by authorize; cannot happen
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	q := u.Query()
	for k, vs := range params {
		q[k] = vs
	}
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// scopeDescriptions are what the consent page says a scope allows.
var scopeDescriptions = map[string]string{
	ScopeCalendar:               "See, edit, share, and permanently delete all the calendars you can access using Google Calendar",
	ScopeCalendarReadOnly:       "See and download any calendar you can access using your Google Calendar",
	ScopeCalendarEvents:         "View and edit events on all your calendars",
	ScopeCalendarEventsReadOnly: "View events on all your calendars",
	"openid":                    "Associate you with your personal info on Google",
	"email":                     "See your primary Google Account email address",
	"profile":                   "See your personal info, including any personal info you've made publicly available",
}

var pageTemplates = template.Must(template.New("consent").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in - Google Accounts</title>
<style>
body { font-family: sans-serif; max-width: 32rem; margin: 3rem auto; padding: 0 1rem; color: #202124; }
.account { color: #5f6368; }
.scope { margin: .5rem 0; }
.scope code { display: block; font-size: .8rem; color: #5f6368; }
.actions { display: flex; gap: 1rem; justify-content: flex-end; margin-top: 2rem; }
button { font-size: 1rem; padding: .5rem 1.5rem; }
</style>
</head>
<body>
<main>
<h1>{{.App}} wants to access your Google Account</h1>
<p class="account">{{.Account}}</p>
<p>This will allow {{.App}} to:</p>
<ul>
{{- range .Scopes}}
<li class="scope">{{.Description}}<code>{{.Scope}}</code></li>
{{- end}}
</ul>
<p>Make sure you trust {{.App}}. You can remove its access in your Google Account at any time.</p>
<div class="actions">
<form method="post" action="{{.Decide}}"><input type="hidden" name="consent" value="{{.ID}}"><button type="submit" name="action" value="cancel">Cancel</button></form>
<form method="post" action="{{.Decide}}"><input type="hidden" name="consent" value="{{.ID}}"><button type="submit" name="action" value="allow">Allow</button></form>
</div>
</main>
</body>
</html>
{{define "error"}}<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Sign in - Google Accounts</title>
</head>
<body>
<main>
<h1>Access blocked: Authorization Error</h1>
<p><strong>Error {{.Status}}: {{.Code}}</strong></p>
<p>{{.Detail}}</p>
</main>
</body>
</html>
{{end}}`))

type scopeLine struct{ Scope, Description string }

// consentPage shows the owner what the client asks for.
func (f *Fake) consentPage(w http.ResponseWriter, id, account string, scopes []string) {
	lines := make([]scopeLine, 0, len(scopes))
	for _, s := range scopes {
		d := scopeDescriptions[s]
		if d == "" {
			d = s
		}
		lines = append(lines, scopeLine{Scope: s, Description: d})
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = pageTemplates.Execute(w, map[string]any{
		"App": f.opts.AppName, "Account": account, "Scopes": lines, "ID": id, "Decide": DecidePath,
	})
}

// authError is Google's HTML error page for a bad authorization request.
func authError(w http.ResponseWriter, status int, code, detail string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = pageTemplates.ExecuteTemplate(w, "error", map[string]any{"Status": status, "Code": code, "Detail": detail})
}

// tokenError is the token and revoke endpoints' error JSON.
type tokenError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

func writeTokenError(w http.ResponseWriter, status int, code, description string) {
	writeJSON(w, status, tokenError{Error: code, Description: description})
}

// writeTokenFailure answers a TokenFaults failure.
func writeTokenFailure(w http.ResponseWriter, f Failure) {
	reason, msg := f.Reason, f.Message
	if reason == "" {
		switch {
		case f.Status == http.StatusTooManyRequests:
			reason = "rate_limit_exceeded"
		case f.Status == http.StatusServiceUnavailable:
			reason = "temporarily_unavailable"
		case f.Status >= 500:
			reason = "internal_failure"
		case f.Status == http.StatusUnauthorized:
			reason = "invalid_client"
		default:
			reason = "invalid_request"
		}
	}
	if msg == "" {
		msg = http.StatusText(f.Status)
	}
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	writeTokenError(w, f.Status, reason, msg)
}

// tokenResponse is a successful token answer.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope"`
	TokenType    string `json:"token_type"`
}

// token serves POST /token: authorization_code and refresh_token grants.
func (f *Fake) token(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeTokenError(w, http.StatusMethodNotAllowed, "invalid_request", "Method Not Allowed")
		return
	}
	if !f.authenticateClient(w, r) {
		return
	}
	form := r.PostForm
	switch gt := form.Get("grant_type"); gt {
	case "authorization_code":
		f.exchange(w, form)
	case "refresh_token":
		f.refreshGrant(w, form)
	default:
		writeTokenError(w, http.StatusBadRequest, "unsupported_grant_type", "Invalid grant_type: "+gt)
	}
}

// authenticateClient checks the client's credentials, sent in the form
// (client_id, client_secret) or with HTTP Basic (form-encoded, RFC 6749
// section 2.3.1); it answers and reports false when they are wrong.
func (f *Fake) authenticateClient(w http.ResponseWriter, r *http.Request) bool {
	id, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if user, pass, ok := r.BasicAuth(); ok {
		bid, err1 := url.QueryUnescape(user)
		bsecret, err2 := url.QueryUnescape(pass)
		if err1 != nil || err2 != nil || (id != "" && id != bid) {
			writeTokenError(w, http.StatusUnauthorized, "invalid_client", "Unauthorized")
			return false
		}
		id, secret = bid, bsecret
	}
	switch {
	case id == "":
		writeTokenError(w, http.StatusBadRequest, "invalid_request", "Could not determine client ID from request.")
	case id != f.opts.ClientID:
		writeTokenError(w, http.StatusUnauthorized, "invalid_client", "The OAuth client was not found.")
	case secret == "":
		writeTokenError(w, http.StatusBadRequest, "invalid_request", "client_secret is missing.")
	case subtle.ConstantTimeCompare([]byte(secret), []byte(f.opts.ClientSecret)) != 1:
		writeTokenError(w, http.StatusUnauthorized, "invalid_client", "Unauthorized")
	default:
		return true
	}
	return false
}

// exchange serves grant_type=authorization_code.
func (f *Fake) exchange(w http.ResponseWriter, form url.Values) {
	code := form.Get("code")
	if code == "" {
		writeTokenError(w, http.StatusBadRequest, "invalid_request", "Missing required parameter: code")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.codes[code]
	switch {
	case !ok:
		writeTokenError(w, http.StatusBadRequest, "invalid_grant", "Bad Request")
		return
	case c.used:
		// A code replayed is a code stolen: Google revokes what it issued.
		if c.grant != nil {
			c.grant.revoked = true
		}
		writeTokenError(w, http.StatusBadRequest, "invalid_grant", "Bad Request")
		return
	case !f.now().Before(c.expires):
		delete(f.codes, code)
		writeTokenError(w, http.StatusBadRequest, "invalid_grant", "Bad Request")
		return
	}
	redirectURI, verifier := form.Get("redirect_uri"), form.Get("code_verifier")
	switch {
	case redirectURI == "":
		writeTokenError(w, http.StatusBadRequest, "invalid_request", "Missing parameter: redirect_uri")
		return
	case redirectURI != c.req.redirectURI:
		writeTokenError(w, http.StatusBadRequest, "redirect_uri_mismatch", "Bad Request")
		return
	case verifier == "":
		writeTokenError(w, http.StatusBadRequest, "invalid_request", "Missing code verifier.")
		return
	case !pkceValue.MatchString(verifier) || s256(verifier) != c.req.challenge:
		writeTokenError(w, http.StatusBadRequest, "invalid_grant", "Invalid code verifier.")
		return
	}
	// A refresh token comes with offline access, on the first consent or
	// when the client forced the consent again (prompt=consent).
	offline := c.req.offline && (c.req.forceAsk || !f.liveOfflineGrant())
	g := f.newGrant(c.req.scope, offline)
	c.used, c.grant = true, g
	access, _ := f.newAccessToken(g)
	f.exchanges++
	writeJSON(w, http.StatusOK, tokenResponse{
		AccessToken: access, ExpiresIn: f.ttlSeconds(), RefreshToken: g.refreshToken,
		Scope: g.scope, TokenType: "Bearer",
	})
}

// refreshGrant serves grant_type=refresh_token.
func (f *Fake) refreshGrant(w http.ResponseWriter, form url.Values) {
	rt := form.Get("refresh_token")
	if rt == "" {
		writeTokenError(w, http.StatusBadRequest, "invalid_request", "Missing required parameter: refresh_token")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	g, ok := f.refresh[rt]
	if !ok || g.revoked {
		writeTokenError(w, http.StatusBadRequest, "invalid_grant", "Token has been expired or revoked.")
		return
	}
	access, _ := f.newAccessToken(g)
	f.refreshes++
	writeJSON(w, http.StatusOK, tokenResponse{
		AccessToken: access, ExpiresIn: f.ttlSeconds(), Scope: g.scope, TokenType: "Bearer",
	})
}

// ttlSeconds is expires_in.
func (f *Fake) ttlSeconds() int64 {
	return int64(f.opts.AccessTokenTTL / time.Second)
}

// s256 is the S256 code challenge of a verifier.
func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// revoke serves POST /revoke: token= in the form (or the query), a
// refresh or access token. Either revokes the whole grant, as at Google.
func (f *Fake) revoke(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET, POST")
		writeTokenError(w, http.StatusMethodNotAllowed, "invalid_request", "Method Not Allowed")
		return
	}
	tok := r.PostForm.Get("token")
	if tok == "" {
		tok = r.URL.Query().Get("token")
	}
	if tok == "" {
		writeTokenError(w, http.StatusBadRequest, "invalid_request", "Bad Request")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.revoked = append(f.revoked, tok)
	var g *grant
	if rg, ok := f.refresh[tok]; ok {
		g = rg
	} else if a, ok := f.access[tok]; ok && !a.expired && f.now().Before(a.expires) {
		g = a.grant
	}
	if g == nil || g.revoked {
		writeTokenError(w, http.StatusBadRequest, "invalid_token", "Token expired or revoked")
		return
	}
	g.revoked = true
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
}

// String names a consent mode.
func (m ConsentMode) String() string {
	switch m {
	case Interactive:
		return "Interactive"
	case AutoAllow:
		return "AutoAllow"
	case AutoDeny:
		return "AutoDeny"
	}
	return "ConsentMode(" + strconv.Itoa(int(m)) + ")"
}

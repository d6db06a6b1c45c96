package console

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ava/console/services/postgres"
)

// Config is the console's configuration, read from the environment as
// README.md lists it. Every field has its default or came from a valid value.
type Config struct {
	Port         int
	Env          string // "development" or "production"
	DatabaseURL  string // sqlite:PATH or postgres://...
	SecretKey    []byte // 32 bytes; nil until resolved (development may generate it)
	StubMode     bool
	RateLimiting bool
	RedisURL     string
	LogLevel     slog.Level
	LogFormat    string // "json" or "text"

	// RateLimitDefault and RateLimitVapiList are route budgets, requests a
	// minute (RATE_LIMIT_DEFAULT: each route's own; RATE_LIMIT_VAPI_LIST:
	// listing Vapi settings, page and API together).
	RateLimitDefault  int
	RateLimitVapiList int

	// RedisKeyPrefix starts every key the console writes in Redis
	// (REDIS_KEY_PREFIX), so that several consoles can share one Redis.
	RedisKeyPrefix string

	UpstreamTimeout         time.Duration
	BreakerFailureThreshold uint32
	BreakerRecoveryTimeout  time.Duration
	BreakerSuccessThreshold uint32

	VapiBaseURL           string
	VapiAPIKey            string
	VapiAssistantID       string
	TwilioBaseURL         string
	TwilioAccountSID      string
	TwilioAuthToken       string
	ResendBaseURL         string
	ResendAPIKey          string
	SMTPHost              string
	SMTPPort              int
	SMTPUsername          string
	SMTPPassword          string
	SMTPTLS               string // starttls, tls or none
	EmailFrom             string
	GoogleCalendarBaseURL string
	// The console's Google OAuth client (a Web application client):
	// Calendar can be connected only when both are set.
	GoogleOAuthClientID     string
	GoogleOAuthClientSecret string
	GoogleOAuthAuthURL      string
	GoogleOAuthTokenURL     string
	GoogleOAuthRevokeURL    string
	// BaseURL is the console's public address (AVA_BASE_URL), from which
	// OAuth redirect URIs are made; no trailing slash.
	BaseURL string
	// EnvCredentialsScope is which accounts the environment's provider
	// credentials serve (ENV_CREDENTIALS_SCOPE): "first" or "all".
	EnvCredentialsScope string

	// TrustedProxies are the reverse proxies whose X-Forwarded-For names
	// the client (TRUSTED_PROXIES); none by default.
	TrustedProxies []netip.Prefix
}

// Production reports whether the console runs in production mode.
func (c Config) Production() bool { return c.Env == "production" }

// StubsAllowed reports whether stub integrations may be used: only when
// INTEGRATIONS_STUB_MODE is on, and never in production.
func (c Config) StubsAllowed() bool { return c.StubMode && !c.Production() }

// DataDir is where development keeps its database and generated secret.
const DataDir = "data"

// configError names the variable whose value is refused.
type configError struct {
	variable, reason string
}

func (e *configError) Error() string { return e.variable + ": " + e.reason }

// LoadConfig reads the configuration through getenv (os.Getenv in production
// code). The first invalid value stops it with an error naming the variable.
func LoadConfig(getenv func(string) string) (Config, error) {
	p := envParser{getenv: getenv}
	c := Config{
		Port:         p.integer("PORT", 8080, 1, 65535),
		Env:          p.oneOf("AVA_ENV", "production", "development", "production"),
		DatabaseURL:  p.str("DATABASE_URL", "sqlite:"+filepath.Join(DataDir, "ava.db")),
		StubMode:     p.boolean("INTEGRATIONS_STUB_MODE", false),
		RateLimiting: p.boolean("ENABLE_RATE_LIMITING", true),
		RedisURL:     p.str("REDIS_URL", ""),
		LogFormat:    p.oneOf("LOG_FORMAT", "json", "json", "text"),

		RateLimitDefault:  p.integer("RATE_LIMIT_DEFAULT", 60, 1, 1_000_000_000),
		RateLimitVapiList: p.integer("RATE_LIMIT_VAPI_LIST", 10, 1, 1_000_000_000),

		RedisKeyPrefix: p.keyPrefix("REDIS_KEY_PREFIX", "ava:"),

		UpstreamTimeout:         p.duration("UPSTREAM_TIMEOUT", 10*time.Second),
		BreakerFailureThreshold: uint32(p.integer("BREAKER_FAILURE_THRESHOLD", 3, 1, 1000)), //nolint:gosec // bounded above
		BreakerRecoveryTimeout:  p.duration("BREAKER_RECOVERY_TIMEOUT", 30*time.Second),
		BreakerSuccessThreshold: uint32(p.integer("BREAKER_SUCCESS_THRESHOLD", 2, 1, 1000)), //nolint:gosec // bounded above

		VapiBaseURL:           p.baseURL("VAPI_BASE_URL", "https://api.vapi.ai"),
		VapiAPIKey:            p.str("VAPI_API_KEY", ""),
		VapiAssistantID:       p.str("VAPI_ASSISTANT_ID", ""),
		TwilioBaseURL:         p.baseURL("TWILIO_BASE_URL", "https://api.twilio.com"),
		TwilioAccountSID:      p.str("TWILIO_ACCOUNT_SID", ""),
		TwilioAuthToken:       p.str("TWILIO_AUTH_TOKEN", ""),
		ResendBaseURL:         p.baseURL("RESEND_BASE_URL", "https://api.resend.com"),
		ResendAPIKey:          p.str("RESEND_API_KEY", ""),
		SMTPHost:              p.str("SMTP_HOST", ""),
		SMTPPort:              p.integer("SMTP_PORT", 587, 1, 65535),
		SMTPUsername:          p.str("SMTP_USERNAME", ""),
		SMTPPassword:          p.getenv("SMTP_PASSWORD"),
		SMTPTLS:               p.oneOf("SMTP_TLS", "starttls", "starttls", "tls", "none"),
		EmailFrom:             p.str("EMAIL_FROM", ""),
		GoogleCalendarBaseURL: p.baseURL("GOOGLE_CALENDAR_BASE_URL", "https://www.googleapis.com"),
		EnvCredentialsScope:   p.oneOf("ENV_CREDENTIALS_SCOPE", "first", "first", "all"),

		GoogleOAuthClientID:     p.str("GOOGLE_OAUTH_CLIENT_ID", ""),
		GoogleOAuthClientSecret: p.getenv("GOOGLE_OAUTH_CLIENT_SECRET"),
		GoogleOAuthAuthURL:      p.baseURL("GOOGLE_OAUTH_AUTH_URL", "https://accounts.google.com/o/oauth2/v2/auth"),
		GoogleOAuthTokenURL:     p.baseURL("GOOGLE_OAUTH_TOKEN_URL", "https://oauth2.googleapis.com/token"),
		GoogleOAuthRevokeURL:    p.baseURL("GOOGLE_OAUTH_REVOKE_URL", "https://oauth2.googleapis.com/revoke"),

		TrustedProxies: p.prefixes("TRUSTED_PROXIES"),
	}
	c.LogLevel = p.level("LOG_LEVEL")
	c.BaseURL = p.baseURL("AVA_BASE_URL", fmt.Sprintf("http://localhost:%d", c.Port))
	if (c.GoogleOAuthClientID == "") != (c.GoogleOAuthClientSecret == "") {
		if c.GoogleOAuthClientID == "" {
			p.fail("GOOGLE_OAUTH_CLIENT_ID", "required with GOOGLE_OAUTH_CLIENT_SECRET (the client id of the same Google OAuth client)")
		} else {
			p.fail("GOOGLE_OAUTH_CLIENT_SECRET", "required with GOOGLE_OAUTH_CLIENT_ID (the client secret of the same Google OAuth client)")
		}
	}
	p.databaseURL("DATABASE_URL", c.DatabaseURL)
	if c.RedisURL != "" {
		p.urlWithScheme("REDIS_URL", c.RedisURL, "redis", "rediss")
	}
	if c.EmailFrom != "" {
		if _, err := mail.ParseAddress(c.EmailFrom); err != nil {
			p.fail("EMAIL_FROM", fmt.Sprintf("%q is not an email address (like Ava <ava@example.com>)", c.EmailFrom))
		}
	}
	if key := getenv("AVA_SECRET_KEY"); key != "" {
		c.SecretKey = p.secret("AVA_SECRET_KEY", key)
	} else if c.Production() && p.err == nil {
		p.fail("AVA_SECRET_KEY", "required in production (32 random bytes, base64: `openssl rand -base64 32`)")
	}
	return c, p.err
}

// PostgresURL returns a postgres:// (or postgresql://) DATABASE_URL.
func (c Config) PostgresURL() (string, bool) {
	if strings.HasPrefix(c.DatabaseURL, "postgres://") || strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		return c.DatabaseURL, true
	}
	return "", false
}

// SQLitePath returns the database file of a sqlite: DATABASE_URL.
func (c Config) SQLitePath() (string, bool) {
	path, ok := strings.CutPrefix(c.DatabaseURL, "sqlite:")
	return path, ok
}

// envParser reads variables and keeps the first error.
type envParser struct {
	getenv func(string) string
	err    error
}

func (p *envParser) fail(name, reason string) {
	if p.err == nil {
		p.err = &configError{variable: name, reason: reason}
	}
}

func (p *envParser) str(name, def string) string {
	if v := strings.TrimSpace(p.getenv(name)); v != "" {
		return v
	}
	return def
}

func (p *envParser) integer(name string, def, lo, hi int) int {
	v := p.getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < lo || n > hi {
		p.fail(name, fmt.Sprintf("%q is not an integer from %d to %d", v, lo, hi))
		return def
	}
	return n
}

func (p *envParser) boolean(name string, def bool) bool {
	v := p.getenv(name)
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	if err != nil {
		p.fail(name, fmt.Sprintf("%q is not a boolean (true or false)", v))
		return def
	}
	return b
}

func (p *envParser) duration(name string, def time.Duration) time.Duration {
	v := p.getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil || d <= 0 {
		p.fail(name, fmt.Sprintf("%q is not a positive duration in Go syntax (like 30s or 2m)", v))
		return def
	}
	return d
}

func (p *envParser) oneOf(name, def string, allowed ...string) string {
	v := strings.TrimSpace(p.getenv(name))
	if v == "" {
		return def
	}
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	p.fail(name, fmt.Sprintf("%q is not one of %s", v, strings.Join(allowed, ", ")))
	return def
}

// prefixes reads a comma-separated list of CIDRs (10.0.0.0/8, fd00::/8); a
// bare address stands for itself alone.
func (p *envParser) prefixes(name string) []netip.Prefix {
	var out []netip.Prefix
	for _, item := range strings.Split(p.getenv(name), ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		prefix, err := netip.ParsePrefix(item)
		if err != nil {
			addr, aerr := netip.ParseAddr(item)
			if aerr != nil {
				p.fail(name, fmt.Sprintf("%q is not a CIDR (like 10.0.0.0/8 or 192.168.1.10/32)", item))
				return nil
			}
			addr = addr.Unmap()
			prefix = netip.PrefixFrom(addr, addr.BitLen())
		}
		if prefix.Addr().Is4In6() && prefix.Bits() >= 96 {
			// ::ffff:10.0.0.0/104 is 10.0.0.0/8: peers are compared unmapped.
			prefix = netip.PrefixFrom(prefix.Addr().Unmap(), prefix.Bits()-96)
		}
		out = append(out, prefix.Masked())
	}
	return out
}

func (p *envParser) level(name string) slog.Level {
	v := strings.TrimSpace(p.getenv(name))
	if v == "" {
		return slog.LevelInfo
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(v)); err != nil {
		p.fail(name, fmt.Sprintf("%q is not a log level (debug, info, warn, error)", v))
		return slog.LevelInfo
	}
	return l
}

func (p *envParser) baseURL(name, def string) string {
	v := strings.TrimRight(p.str(name, def), "/")
	p.urlWithScheme(name, v, "http", "https")
	return v
}

func (p *envParser) urlWithScheme(name, v string, schemes ...string) {
	u, err := url.Parse(v)
	if err == nil && u.Host != "" {
		for _, s := range schemes {
			if u.Scheme == s {
				return
			}
		}
	}
	p.fail(name, fmt.Sprintf("%q is not a %s URL", redactURL(v), strings.Join(schemes, " or ")))
}

// keyPrefix reads a prefix of Redis keys: 1 to 64 characters from
// [A-Za-z0-9:._-].
func (p *envParser) keyPrefix(name, def string) string {
	v := p.str(name, def)
	ok := len(v) <= 64
	for _, r := range v {
		ok = ok && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(":._-", r))
	}
	if !ok {
		p.fail(name, fmt.Sprintf("%q must be 1 to 64 characters from A-Z a-z 0-9 : . _ -", v))
		return def
	}
	return v
}

func (p *envParser) databaseURL(name, v string) {
	if path, ok := strings.CutPrefix(v, "sqlite:"); ok {
		if path == "" {
			p.fail(name, "sqlite: needs a file path, like sqlite:data/ava.db")
		}
		return
	}
	if strings.HasPrefix(v, "postgres://") || strings.HasPrefix(v, "postgresql://") {
		if _, err := postgres.ParseURL(v); err != nil {
			p.fail(name, fmt.Sprintf("%q %v (postgres://user:password@host:5432/dbname?sslmode=require)", redactURL(v), err))
		}
		return
	}
	p.fail(name, fmt.Sprintf("%q must be sqlite:PATH or postgres://...", redactURL(v)))
}

func (p *envParser) secret(name, v string) []byte {
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v))
	if err != nil || len(key) != 32 {
		p.fail(name, "must be 32 random bytes, base64-encoded (`openssl rand -base64 32`)")
		return nil
	}
	return key
}

// redactURL drops the password from a URL before it is shown in a message.
func redactURL(v string) string {
	u, err := url.Parse(v)
	if err != nil || u.User == nil {
		if err != nil {
			return "(unparseable URL)"
		}
		return v
	}
	return u.Redacted()
}

// EnsureDevSecret returns the development secret kept in dir, generating it
// on first use. Only development calls it; production must be given a key.
func EnsureDevSecret(dir string) ([]byte, error) {
	path := filepath.Join(dir, "secret.key")
	data, err := os.ReadFile(path) //nolint:gosec // path is our own data folder
	if err == nil {
		key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data)))
		if err != nil || len(key) != 32 {
			return nil, fmt.Errorf("%s is not 32 base64 bytes; delete it to generate a new one", path)
		}
		return key, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		return nil, err
	}
	return key, nil
}

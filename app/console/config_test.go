package console

import (
	"bytes"
	"encoding/base64"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func envOf(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

var testKey = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32))

func TestConfigDefaults(t *testing.T) {
	c, err := LoadConfig(envOf(map[string]string{"AVA_SECRET_KEY": testKey}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != 8080 || c.Env != "production" || c.DatabaseURL != "sqlite:data/ava.db" || c.StubMode ||
		!c.RateLimiting || c.LogLevel != slog.LevelInfo || c.LogFormat != "json" || c.UpstreamTimeout != 10*time.Second ||
		c.BreakerFailureThreshold != 3 || c.BreakerRecoveryTimeout != 30*time.Second || c.BreakerSuccessThreshold != 2 ||
		c.VapiBaseURL != "https://api.vapi.ai" || c.TwilioBaseURL != "https://api.twilio.com" ||
		c.ResendBaseURL != "https://api.resend.com" || c.GoogleCalendarBaseURL != "https://www.googleapis.com" {
		t.Fatalf("defaults: %+v", c)
	}
	if len(c.SecretKey) != 32 {
		t.Fatal("secret key not decoded")
	}
}

func TestConfigValues(t *testing.T) {
	c, err := LoadConfig(envOf(map[string]string{
		"PORT": "9000", "AVA_ENV": "development", "DATABASE_URL": "sqlite:/tmp/x.db", "INTEGRATIONS_STUB_MODE": "true",
		"ENABLE_RATE_LIMITING": "false", "REDIS_URL": "redis://127.0.0.1:6379/0", "LOG_LEVEL": "debug", "LOG_FORMAT": "text",
		"UPSTREAM_TIMEOUT": "2s", "BREAKER_FAILURE_THRESHOLD": "5", "BREAKER_RECOVERY_TIMEOUT": "1m",
		"BREAKER_SUCCESS_THRESHOLD": "1", "VAPI_BASE_URL": "http://127.0.0.1:9999/", "VAPI_API_KEY": "k",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if path, ok := c.SQLitePath(); !ok || path != "/tmp/x.db" {
		t.Fatalf("sqlite path %q", path)
	}
	if c.Port != 9000 || c.Production() || !c.StubsAllowed() || c.RateLimiting || c.LogLevel != slog.LevelDebug ||
		c.LogFormat != "text" || c.UpstreamTimeout != 2*time.Second || c.BreakerFailureThreshold != 5 ||
		c.BreakerRecoveryTimeout != time.Minute || c.BreakerSuccessThreshold != 1 || c.VapiBaseURL != "http://127.0.0.1:9999" {
		t.Fatalf("values: %+v", c)
	}
	if c.SecretKey != nil {
		t.Fatal("development without a key must generate one later, not invent one here")
	}
}

func TestConfigDatabases(t *testing.T) {
	for _, url := range []string{
		"postgres://ava:secret@db.internal:5432/ava?sslmode=require",
		"postgresql://ava@10.0.0.5/ava?sslmode=verify-full&pool_max_conns=20",
	} {
		c, err := LoadConfig(envOf(map[string]string{"AVA_SECRET_KEY": testKey, "DATABASE_URL": url}))
		if err != nil {
			t.Fatalf("%s: %v", url, err)
		}
		if got, ok := c.PostgresURL(); !ok || got != url {
			t.Fatalf("PostgresURL() = %q, %v", got, ok)
		}
		if _, ok := c.SQLitePath(); ok {
			t.Fatal("a PostgreSQL URL read as a SQLite path")
		}
	}
	c, err := LoadConfig(envOf(map[string]string{"AVA_SECRET_KEY": testKey}))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.PostgresURL(); ok || c.RedisKeyPrefix != "ava:" {
		t.Fatalf("defaults: %q, prefix %q", c.DatabaseURL, c.RedisKeyPrefix)
	}
}

func TestStubsNeverInProduction(t *testing.T) {
	c, err := LoadConfig(envOf(map[string]string{"AVA_SECRET_KEY": testKey, "INTEGRATIONS_STUB_MODE": "true"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.StubsAllowed() {
		t.Fatal("stub integrations allowed in production")
	}
}

func TestConfigEmail(t *testing.T) {
	c, err := LoadConfig(envOf(map[string]string{"AVA_SECRET_KEY": testKey}))
	if err != nil {
		t.Fatal(err)
	}
	if c.SMTPPort != 587 || c.SMTPTLS != "starttls" || c.SMTPHost != "" || c.EmailFrom != "" {
		t.Fatalf("email defaults: %+v", c)
	}
	c, err = LoadConfig(envOf(map[string]string{
		"AVA_SECRET_KEY": testKey, "SMTP_HOST": "smtp.example.com", "SMTP_PORT": "465", "SMTP_TLS": "tls",
		"SMTP_USERNAME": "ava", "SMTP_PASSWORD": " pass word ", "EMAIL_FROM": "Ava <ava@example.com>",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.SMTPHost != "smtp.example.com" || c.SMTPPort != 465 || c.SMTPTLS != "tls" || c.SMTPUsername != "ava" ||
		c.SMTPPassword != " pass word " || c.EmailFrom != "Ava <ava@example.com>" {
		t.Fatalf("email values: %+v", c)
	}
}

func TestConfigGoogle(t *testing.T) {
	c, err := LoadConfig(envOf(map[string]string{"AVA_SECRET_KEY": testKey, "PORT": "9090"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.BaseURL != "http://localhost:9090" || c.GoogleOAuthClientID != "" ||
		c.GoogleOAuthAuthURL != "https://accounts.google.com/o/oauth2/v2/auth" ||
		c.GoogleOAuthTokenURL != "https://oauth2.googleapis.com/token" ||
		c.GoogleOAuthRevokeURL != "https://oauth2.googleapis.com/revoke" {
		t.Fatalf("google defaults: %+v", c)
	}
	c, err = LoadConfig(envOf(map[string]string{
		"AVA_SECRET_KEY": testKey, "AVA_BASE_URL": "https://console.example.com/", "GOOGLE_OAUTH_CLIENT_ID": "id.apps.googleusercontent.com",
		"GOOGLE_OAUTH_CLIENT_SECRET": "GOCSPX-s", "GOOGLE_OAUTH_TOKEN_URL": "http://127.0.0.1:9/token",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.BaseURL != "https://console.example.com" || c.GoogleOAuthClientID != "id.apps.googleusercontent.com" ||
		c.GoogleOAuthClientSecret != "GOCSPX-s" || c.GoogleOAuthTokenURL != "http://127.0.0.1:9/token" {
		t.Fatalf("google values: %+v", c)
	}
}

func TestConfigTrustedProxies(t *testing.T) {
	c, err := LoadConfig(envOf(map[string]string{"AVA_SECRET_KEY": testKey}))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.TrustedProxies) != 0 {
		t.Fatalf("default: %v, want none", c.TrustedProxies)
	}
	c, err = LoadConfig(envOf(map[string]string{
		"AVA_SECRET_KEY": testKey, "TRUSTED_PROXIES": " 10.0.0.0/8, 192.168.1.7 ,fd00::/8,, 172.16.5.4/12,::ffff:100.64.0.0/106",
	}))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range c.TrustedProxies {
		got = append(got, p.String())
	}
	want := "10.0.0.0/8 192.168.1.7/32 fd00::/8 172.16.0.0/12 100.64.0.0/10"
	if strings.Join(got, " ") != want {
		t.Fatalf("TRUSTED_PROXIES: %v, want %s", got, want)
	}
}

func TestConfigErrorsNameTheVariable(t *testing.T) {
	tests := []struct {
		env     map[string]string
		varName string
	}{
		{map[string]string{}, "AVA_SECRET_KEY"}, // production without a key
		{map[string]string{"AVA_SECRET_KEY": "c2hvcnQ="}, "AVA_SECRET_KEY"},
		{map[string]string{"AVA_SECRET_KEY": "not base64!"}, "AVA_SECRET_KEY"},
		{map[string]string{"AVA_ENV": "staging"}, "AVA_ENV"},
		{map[string]string{"AVA_ENV": "development", "PORT": "http"}, "PORT"},
		{map[string]string{"AVA_ENV": "development", "PORT": "70000"}, "PORT"},
		{map[string]string{"AVA_ENV": "development", "UPSTREAM_TIMEOUT": "10"}, "UPSTREAM_TIMEOUT"},
		{map[string]string{"AVA_ENV": "development", "UPSTREAM_TIMEOUT": "-1s"}, "UPSTREAM_TIMEOUT"},
		{map[string]string{"AVA_ENV": "development", "BREAKER_RECOVERY_TIMEOUT": "soon"}, "BREAKER_RECOVERY_TIMEOUT"},
		{map[string]string{"AVA_ENV": "development", "BREAKER_FAILURE_THRESHOLD": "0"}, "BREAKER_FAILURE_THRESHOLD"},
		{map[string]string{"AVA_ENV": "development", "BREAKER_SUCCESS_THRESHOLD": "x"}, "BREAKER_SUCCESS_THRESHOLD"},
		{map[string]string{"AVA_ENV": "development", "ENABLE_RATE_LIMITING": "yes please"}, "ENABLE_RATE_LIMITING"},
		{map[string]string{"AVA_ENV": "development", "INTEGRATIONS_STUB_MODE": "maybe"}, "INTEGRATIONS_STUB_MODE"},
		{map[string]string{"AVA_ENV": "development", "LOG_LEVEL": "loud"}, "LOG_LEVEL"},
		{map[string]string{"AVA_ENV": "development", "LOG_FORMAT": "xml"}, "LOG_FORMAT"},
		{map[string]string{"AVA_ENV": "development", "DATABASE_URL": "mysql://x"}, "DATABASE_URL"},
		{map[string]string{"AVA_ENV": "development", "DATABASE_URL": "sqlite:"}, "DATABASE_URL"},
		{map[string]string{"AVA_ENV": "development", "DATABASE_URL": "postgres://u:hunter2@db:port/ava"}, "DATABASE_URL"},
		{map[string]string{"AVA_ENV": "development", "DATABASE_URL": "postgres://u:hunter2@db/ava?sslmode=sometimes"}, "DATABASE_URL"},
		{map[string]string{"AVA_ENV": "development", "DATABASE_URL": "postgresql://u:hunter2@db/ava?pool_max_conns=0"}, "DATABASE_URL"},
		{map[string]string{"AVA_ENV": "development", "REDIS_KEY_PREFIX": "ava prod"}, "REDIS_KEY_PREFIX"},
		{map[string]string{"AVA_ENV": "development", "REDIS_URL": "127.0.0.1:6379"}, "REDIS_URL"},
		{map[string]string{"AVA_ENV": "development", "VAPI_BASE_URL": "ftp://vapi"}, "VAPI_BASE_URL"},
		{map[string]string{"AVA_ENV": "development", "TWILIO_BASE_URL": "not a url"}, "TWILIO_BASE_URL"},
		{map[string]string{"AVA_ENV": "development", "RESEND_BASE_URL": "resend"}, "RESEND_BASE_URL"},
		{map[string]string{"AVA_ENV": "development", "SMTP_PORT": "0"}, "SMTP_PORT"},
		{map[string]string{"AVA_ENV": "development", "SMTP_PORT": "smtp"}, "SMTP_PORT"},
		{map[string]string{"AVA_ENV": "development", "SMTP_TLS": "ssl"}, "SMTP_TLS"},
		{map[string]string{"AVA_ENV": "development", "EMAIL_FROM": "reception at example"}, "EMAIL_FROM"},
		{map[string]string{"AVA_ENV": "development", "TRUSTED_PROXIES": "10.0.0.0/33"}, "TRUSTED_PROXIES"},
		{map[string]string{"AVA_ENV": "development", "TRUSTED_PROXIES": "10.0.0.0/8, proxy.internal"}, "TRUSTED_PROXIES"},
		{map[string]string{"AVA_ENV": "development", "AVA_BASE_URL": "console.example.com"}, "AVA_BASE_URL"},
		{map[string]string{"AVA_ENV": "development", "GOOGLE_OAUTH_TOKEN_URL": "oauth2.googleapis.com/token"}, "GOOGLE_OAUTH_TOKEN_URL"},
		{map[string]string{"AVA_ENV": "development", "GOOGLE_OAUTH_AUTH_URL": "ftp://accounts.google.com"}, "GOOGLE_OAUTH_AUTH_URL"},
		{map[string]string{"AVA_ENV": "development", "GOOGLE_OAUTH_REVOKE_URL": "revoke"}, "GOOGLE_OAUTH_REVOKE_URL"},
		{map[string]string{"AVA_ENV": "development", "GOOGLE_OAUTH_CLIENT_ID": "id.apps.googleusercontent.com"}, "GOOGLE_OAUTH_CLIENT_SECRET"},
		{map[string]string{"AVA_ENV": "development", "GOOGLE_OAUTH_CLIENT_SECRET": "hunter2"}, "GOOGLE_OAUTH_CLIENT_ID"},
	}
	for _, tt := range tests {
		t.Run(tt.varName, func(t *testing.T) {
			_, err := LoadConfig(envOf(tt.env))
			if err == nil || !strings.HasPrefix(err.Error(), tt.varName+": ") {
				t.Fatalf("got %v, want an error naming %s", err, tt.varName)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("the error shows a password: %v", err)
			}
		})
	}
}

func TestDevSecretIsGeneratedOnceAndKept(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	k1, err := EnsureDevSecret(dir)
	if err != nil || len(k1) != 32 {
		t.Fatalf("%v %d", err, len(k1))
	}
	k2, err := EnsureDevSecret(dir)
	if err != nil || !bytes.Equal(k1, k2) {
		t.Fatal("the development secret changed between starts")
	}
	info, err := os.Stat(filepath.Join(dir, "secret.key"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("secret file: %v %v", info, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "secret.key"), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureDevSecret(dir); err == nil {
		t.Fatal("a corrupt secret file was accepted")
	}
}

// RATE_LIMIT_DEFAULT and RATE_LIMIT_VAPI_LIST set the route budgets (60 and
// 10 a minute by default).
func TestConfigRateLimitBudgets(t *testing.T) {
	c, err := LoadConfig(envOf(map[string]string{"AVA_SECRET_KEY": testKey}))
	if err != nil || c.RateLimitDefault != 60 || c.RateLimitVapiList != 10 {
		t.Fatalf("defaults: %d %d %v", c.RateLimitDefault, c.RateLimitVapiList, err)
	}
	c, err = LoadConfig(envOf(map[string]string{"AVA_SECRET_KEY": testKey, "RATE_LIMIT_DEFAULT": "600", "RATE_LIMIT_VAPI_LIST": "1000000000"}))
	if err != nil || c.RateLimitDefault != 600 || c.RateLimitVapiList != 1_000_000_000 {
		t.Fatalf("set: %d %d %v", c.RateLimitDefault, c.RateLimitVapiList, err)
	}
	for _, name := range []string{"RATE_LIMIT_DEFAULT", "RATE_LIMIT_VAPI_LIST"} {
		for _, bad := range []string{"0", "-1", "ten", "1000000001"} {
			_, err := LoadConfig(envOf(map[string]string{"AVA_SECRET_KEY": testKey, name: bad}))
			if err == nil || !strings.HasPrefix(err.Error(), name+": ") {
				t.Errorf("%s=%s: %v, want a refusal naming %s", name, bad, err, name)
			}
		}
	}
}

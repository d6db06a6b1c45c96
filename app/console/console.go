// Package console is the composition root of Ava console: it reads the
// configuration and builds the application from it, the same way for the
// server (package main) and for the tests that drive the whole console.
// The integrations are listed here, one line each.
package console

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"github.com/ava/console/handlers"
	"github.com/ava/console/services"
	"github.com/ava/console/services/account"
	"github.com/ava/console/services/calendar"
	"github.com/ava/console/services/email"
	"github.com/ava/console/services/events"
	"github.com/ava/console/services/integrations"
	"github.com/ava/console/services/postgres"
	"github.com/ava/console/services/ratelimit"
	"github.com/ava/console/services/secrets"
	"github.com/ava/console/services/sqlite"
	"github.com/ava/console/services/twilio"
	"github.com/ava/console/services/upstream"
	"github.com/ava/console/services/vapi"
)

// Console is the built application and what it was built from.
type Console struct {
	Config       Config
	App          *fiber.App
	DB           services.Store
	Accounts     *account.Service
	Log          *slog.Logger
	Metrics      *prometheus.Registry
	Guards       *upstream.Guards
	Integrations *integrations.Registry
	TwilioPool   *twilio.Pool
	// Events is the events hub: what the services publish, the live
	// updates stream (through Redis to the other instances, with
	// REDIS_URL).
	Events *events.Hub

	closers []func() error
}

// Options are what a caller may add to the configuration.
type Options struct {
	// HTTP adjusts the HTTP layer's dependencies before the app is built
	// (tests lower budgets or replace the home sections).
	HTTP func(*handlers.Deps)
	// SMTPTLS, when set, is the TLS configuration of SMTP connections
	// (tests trust their SMTP server's certificate).
	SMTPTLS *tls.Config
}

// Open resolves the secret key and opens the database and the account
// service: what every command needs.
func Open(ctx context.Context, cfg Config) (Config, services.Store, *account.Service, error) {
	var err error
	if cfg.SecretKey == nil {
		// LoadConfig refuses production without a key, so this is development.
		if cfg.SecretKey, err = EnsureDevSecret(DataDir); err != nil {
			return Config{}, nil, nil, fmt.Errorf("development secret key: %w", err)
		}
	}
	db, err := openStore(ctx, cfg)
	if err != nil {
		return Config{}, nil, nil, err
	}
	accounts, err := account.New(db, cfg.SecretKey)
	if err != nil {
		_ = db.Close()
		return Config{}, nil, nil, err
	}
	return cfg, db, accounts, nil
}

// openStore opens the database DATABASE_URL names: PostgreSQL for
// postgres://..., else the SQLite file of sqlite:PATH. Either brings its
// schema up to date first.
func openStore(ctx context.Context, cfg Config) (services.Store, error) {
	if dsn, ok := cfg.PostgresURL(); ok {
		db, err := postgres.Open(ctx, dsn)
		if err != nil {
			// pgx's errors name the host and user, never the password.
			return nil, fmt.Errorf("database %s: %w", redactURL(dsn), err)
		}
		return db, nil
	}
	path, _ := cfg.SQLitePath()
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", path, err)
	}
	return db, nil
}

// New builds the console: database, services, integrations, HTTP app. Logs
// go to logOut. Close releases what it opened.
func New(ctx context.Context, cfg Config, logOut io.Writer, opts Options) (_ *Console, err error) {
	if err := CheckFrontEnd(frontEnd); err != nil {
		return nil, err
	}
	cfg, db, accounts, err := Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	c := &Console{Config: cfg, DB: db, Accounts: accounts, closers: []func() error{db.Close}}
	defer func() {
		if err != nil {
			_ = c.Close()
		}
	}()
	c.Log = services.NewLogger(logOut, cfg.LogLevel, cfg.LogFormat)

	c.Metrics = prometheus.NewRegistry()
	var limiter ratelimit.Limiter // nil: in memory
	var transport events.Transport
	if cfg.RedisURL != "" {
		client, err := redisClient(ctx, cfg.RedisURL)
		if err != nil {
			return nil, err
		}
		c.closers = append(c.closers, client.Close)
		limiter = ratelimit.NewRedis(client, c.Log)
		transport = events.NewRedis(client, cfg.RedisKeyPrefix+"events", c.Log)
	}
	if c.Events, err = events.New(instanceID(), transport, c.Metrics); err != nil {
		return nil, err
	}
	runCtx, stopEvents := context.WithCancel(context.WithoutCancel(ctx))
	eventsDone := make(chan struct{})
	go func() {
		defer close(eventsDone)
		c.Events.Run(runCtx)
	}()
	c.closers = append(c.closers, func() error {
		c.Events.Close()
		stopEvents()
		<-eventsDone
		return nil
	})

	c.Metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	registerStoreMetrics(c.Metrics, db)
	if c.Guards, err = upstream.NewGuards(upstream.Settings{
		Timeout:          cfg.UpstreamTimeout,
		FailureThreshold: cfg.BreakerFailureThreshold,
		RecoveryTimeout:  cfg.BreakerRecoveryTimeout,
		SuccessThreshold: cfg.BreakerSuccessThreshold,
	}, c.Log, c.Metrics); err != nil {
		return nil, err
	}
	c.Guards.OnTransition(func(upstream, _, to string) {
		c.Events.Publish(context.Background(), events.Event{Kind: events.BreakerChanged, Upstream: upstream, State: to})
	})
	accounts.PublishTo(c.Events)
	sealer, err := secrets.NewSealer(cfg.SecretKey)
	if err != nil {
		return nil, err
	}

	vapiIntegration := vapi.NewIntegration(vapi.NewClient(cfg.VapiBaseURL, c.Guards.Client(vapi.Name)), cfg.VapiAPIKey, cfg.VapiAssistantID, cfg.UpstreamTimeout)
	if c.TwilioPool, err = twilioPool(cfg, c.Guards, c.Metrics); err != nil {
		return nil, err
	}
	twilioIntegration, err := twilio.NewIntegration(c.TwilioPool, cfg.TwilioAccountSID, cfg.TwilioAuthToken, cfg.UpstreamTimeout)
	if err != nil {
		return nil, err
	}
	smtp := email.SMTP{
		// One breaker per SMTP server: each account has its own, and one
		// that fails must not pause the others' email.
		Send: email.NewSMTPSender(func(ctx context.Context, server string, fn func(context.Context) error) error {
			return c.Guards.Do(ctx, email.ProviderSMTP+":"+server, fn)
		}),
		Check: email.NewSMTPSender(func(ctx context.Context, server string, fn func(context.Context) error) error {
			return c.Guards.Do(ctx, email.ProviderSMTP+":"+server, func(ctx context.Context) error { return upstream.Neutral(fn(ctx)) })
		}),
	}
	smtp.Send.TLSConfig, smtp.Check.TLSConfig = opts.SMTPTLS, opts.SMTPTLS
	emailIntegration := email.NewIntegration(
		email.NewResendClient(cfg.ResendBaseURL, c.Guards.Client(email.ProviderResend)), smtp,
		email.Env{ResendAPIKey: cfg.ResendAPIKey, From: cfg.EmailFrom, SMTP: email.SMTPConfig{
			Host: cfg.SMTPHost, Port: cfg.SMTPPort, Username: cfg.SMTPUsername, Password: cfg.SMTPPassword, TLS: cfg.SMTPTLS,
		}},
		cfg.UpstreamTimeout)

	calendarIntegration := calendar.NewIntegration(calendar.Config{
		ClientID: cfg.GoogleOAuthClientID, ClientSecret: cfg.GoogleOAuthClientSecret,
		AuthURL: cfg.GoogleOAuthAuthURL, TokenURL: cfg.GoogleOAuthTokenURL, RevokeURL: cfg.GoogleOAuthRevokeURL,
		CalendarBaseURL: cfg.GoogleCalendarBaseURL, RedirectURL: cfg.BaseURL + calendar.CallbackPath, Timeout: cfg.UpstreamTimeout,
	}, c.Guards.Client(calendar.Upstream))

	// The integrations, one line each, in the order the console lists them.
	if c.Integrations, err = integrations.NewRegistry(db, sealer, integrations.Options{
		Stubs:    integrations.NewStubPolicy(cfg.StubMode, cfg.Production()),
		Breakers: func(name string) string { return c.Guards.Breaker(name).State() },
		Log:      c.Log,
		EnvScope: envScope(cfg.EnvCredentialsScope),
		Events:   c.Events,
	},
		vapiIntegration,
		twilioIntegration,
		emailIntegration,
		calendarIntegration,
	); err != nil {
		return nil, err
	}
	calendarIntegration.SaveTokensWith(c.Integrations)
	vapiSettings := vapi.NewService(vapiIntegration, c.Integrations, db).PublishTo(c.Events)
	// What another instance changed is read again here before any page
	// is told of it.
	c.Events.OnRemote(c.Integrations.Invalidate)
	c.Events.OnRemote(vapiSettings.Invalidate)
	c.Events.OnRemote(accounts.Invalidate)

	deps := handlers.Deps{
		Config: handlers.Config{
			Production:     cfg.Production(),
			RateLimiting:   cfg.RateLimiting,
			DefaultLimit:   cfg.RateLimitDefault,
			VapiListLimit:  cfg.RateLimitVapiList,
			TrustedProxies: cfg.TrustedProxies,

			// Counted in Redis when REDIS_URL is set, else in memory.
			Limiter:          limiter,
			LimiterKeyPrefix: cfg.RedisKeyPrefix + "ratelimit:",
		},
		Logger:       c.Log,
		Accounts:     accounts,
		DB:           db,
		Sections:     homeSections(accounts, c.Integrations),
		Registry:     c.Metrics,
		Integrations: c.Integrations,
		Vapi:         vapiSettings,
		Twilio:       twilio.NewService(twilioIntegration, c.Integrations),
		Email:        email.NewService(emailIntegration, c.Integrations, db),
		Calendar:     calendar.NewService(calendarIntegration, c.Integrations, c.Log),
		Events:       c.Events,
	}
	if opts.HTTP != nil {
		opts.HTTP(&deps)
	}
	if c.App, err = handlers.NewApp(deps); err != nil {
		return nil, err
	}
	return c, nil
}

// Shutdown stops serving: the live-update streams end first (they would
// hold the graceful stop for its whole grace), then in-flight requests
// may finish within grace.
func (c *Console) Shutdown(grace time.Duration) error {
	c.Events.Close()
	return c.App.ShutdownWithTimeout(grace)
}

// instanceID names this process among the instances sharing Redis.
func instanceID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Close releases the database and Redis connections.
func (c *Console) Close() error {
	var errs []error
	for i := len(c.closers) - 1; i >= 0; i-- {
		errs = append(errs, c.closers[i]())
	}
	return errors.Join(errs...)
}

// envScope is ENV_CREDENTIALS_SCOPE as the registry knows it.
func envScope(v string) integrations.EnvScope {
	if v == "all" {
		return integrations.EnvAllAccounts
	}
	return integrations.EnvFirstAccount
}

// twilioPool is the LRU of twilio-go clients over one guarded HTTP client
// pointed at TWILIO_BASE_URL.
func twilioPool(cfg Config, guards *upstream.Guards, reg prometheus.Registerer) (*twilio.Pool, error) {
	hc := guards.Client(twilio.Name)
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	var err error
	if hc.Transport, err = twilio.NewRewriteTransport(hc.Transport, cfg.TwilioBaseURL); err != nil {
		return nil, err
	}
	return twilio.NewPool(twilio.PoolSize, hc, reg)
}

// redisClient connects to the Redis the rate limiters share. Redis that
// does not answer at start-up stops it (a wrong REDIS_URL shows at once);
// once running, the limiters outlive an outage (ratelimit.Redis).
func redisClient(ctx context.Context, url string) (*redis.Client, error) {
	opts, err := ratelimit.RedisOptions(url)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	client := redis.NewClient(opts)
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := client.Ping(pingCtx).Err(); err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("REDIS_URL: cannot reach Redis at %s: %w", opts.Addr, err)
	}
	return client, nil
}

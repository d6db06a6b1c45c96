package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/gofiber/fiber/v2"
	fiberredis "github.com/gofiber/storage/redis/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"github.com/ava/console/handlers"
	"github.com/ava/console/services"
	"github.com/ava/console/services/integrations"
	"github.com/ava/console/services/secrets"
	"github.com/ava/console/services/twilio"
	"github.com/ava/console/services/upstream"
	"github.com/ava/console/services/vapi"
	"github.com/ava/console/services/vapi/vapitest"
)

// shutdownGrace bounds how long in-flight requests may take to finish after
// SIGTERM/SIGINT.
const shutdownGrace = 20 * time.Second

// serve runs the console until SIGTERM or SIGINT, then stops accepting,
// lets in-flight requests finish (bounded), closes the database and returns.
func serve(getenv env, logOut io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	cfg, db, accounts, err := open(ctx, getenv)
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }()
	log := services.NewLogger(logOut, cfg.LogLevel, cfg.LogFormat)

	var limiterStorage fiber.Storage
	if cfg.RedisURL != "" {
		st, err := redisStorage(ctx, cfg.RedisURL)
		if err != nil {
			return err
		}
		defer func() { _ = st.Close() }()
		limiterStorage = st
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	guards, err := upstream.NewGuards(upstream.Settings{
		Timeout:          cfg.UpstreamTimeout,
		FailureThreshold: cfg.BreakerFailureThreshold,
		RecoveryTimeout:  cfg.BreakerRecoveryTimeout,
		SuccessThreshold: cfg.BreakerSuccessThreshold,
	}, log, reg)
	if err != nil {
		return err
	}
	sealer, err := secrets.NewSealer(cfg.SecretKey)
	if err != nil {
		return err
	}
	vapiKind := vapi.Kind(cfg.VapiAPIKey, cfg.VapiAssistantID)
	if cfg.StubsAllowed() {
		vapiKind.Stub = map[string]string{vapi.FieldAPIKey: vapitest.StubKey, vapi.FieldAssistantID: vapitest.StubAssistantID}
	}
	creds := integrations.NewCredentials(db, sealer, log,
		vapiKind,
		twilio.Kind(cfg.TwilioAccountSID, cfg.TwilioAuthToken),
		integrations.Kind{Name: services.IntegrationEmail, Fields: []integrations.Field{{Name: "api_key", Secret: true}},
			Env: map[string]string{"api_key": cfg.ResendAPIKey}},
		integrations.Kind{Name: services.IntegrationCalendar, Fields: []integrations.Field{{Name: "access_token", Secret: true}}},
	)
	vapiSettings := vapi.NewService(vapi.NewClient(cfg.VapiBaseURL, guards.Client(services.IntegrationVapi)), creds, db, cfg.UpstreamTimeout)
	if cfg.StubsAllowed() {
		stub := &http.Client{Transport: services.CorrelationTransport{Base: vapitest.NewStub()}}
		vapiSettings.WithStub(vapi.NewClient("http://vapi.stub", stub))
	}
	twilioHTTP := guards.Client(services.IntegrationTwilio)
	twilioHTTP.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if twilioHTTP.Transport, err = twilio.NewRewriteTransport(twilioHTTP.Transport, cfg.TwilioBaseURL); err != nil {
		return err
	}
	twilioPool, err := twilio.NewPool(twilio.PoolSize, twilioHTTP, reg)
	if err != nil {
		return err
	}
	twilioNumbers := twilio.NewService(twilioPool, creds, cfg.UpstreamTimeout)
	statuses := integrations.NewReporter(creds, func(name string) string { return guards.Breaker(name).State() })

	app, err := handlers.NewApp(handlers.Deps{
		Config: handlers.Config{
			Production:     cfg.Production(),
			RateLimiting:   cfg.RateLimiting,
			LimiterStorage: limiterStorage,
		},
		Logger:       log,
		Accounts:     accounts,
		DB:           db,
		Sections:     homeSections(accounts, statuses),
		Registry:     reg,
		Vapi:         vapiSettings,
		Twilio:       twilioNumbers,
		Integrations: statuses,
	})
	if err != nil {
		return err
	}

	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", ":"+strconv.Itoa(cfg.Port))
	if err != nil {
		return fmt.Errorf("PORT %d: %w", cfg.Port, err)
	}
	log.Info("Ava console listening",
		slog.String("addr", "http://localhost:"+strconv.Itoa(cfg.Port)),
		slog.String("env", cfg.Env),
		slog.Bool("rate_limiting", cfg.RateLimiting),
		slog.Bool("stub_integrations", cfg.StubsAllowed()))
	if cfg.StubMode && cfg.Production() {
		log.Warn("INTEGRATIONS_STUB_MODE is ignored in production: stub integrations are refused")
	}

	go cleanSessions(ctx, log, accounts)

	served := make(chan error, 1)
	go func() { served <- app.Listener(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing in-flight requests", slog.String("grace", shutdownGrace.String()))
	if err := app.ShutdownWithTimeout(shutdownGrace); err != nil {
		log.Error("shutdown did not finish cleanly", slog.Any("error", err))
	}
	if err := <-served; err != nil && !errors.Is(err, net.ErrClosed) {
		log.Error("server stopped with an error", slog.Any("error", err))
	}
	log.Info("stopped")
	return nil
}

// redisStorage connects the rate limiters to Redis, so instances share counters.
func redisStorage(ctx context.Context, url string) (*fiberredis.Storage, error) {
	opts, err := redis.ParseURL(url)
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
	return fiberredis.NewFromConnection(client), nil
}

// cleanSessions removes expired sessions every hour until ctx ends.
func cleanSessions(ctx context.Context, log *slog.Logger, accounts interface {
	CleanExpiredSessions(context.Context) (int64, error)
},
) {
	tick := time.NewTicker(time.Hour)
	defer tick.Stop()
	for {
		if n, err := accounts.CleanExpiredSessions(ctx); err != nil && ctx.Err() == nil {
			log.Error("cleaning expired sessions failed", slog.Any("error", err))
		} else if n > 0 {
			log.Info("expired sessions removed", slog.Int64("count", n))
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

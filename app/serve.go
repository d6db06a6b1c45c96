package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/ava/console/app/console"
	"github.com/ava/console/app/listener"
)

// shutdownGrace bounds how long in-flight requests may take to finish after
// SIGTERM/SIGINT.
const shutdownGrace = 20 * time.Second

// serve runs the console until SIGTERM or SIGINT, then stops accepting,
// lets in-flight requests finish (bounded), closes the database and returns.
func serve(getenv env, logOut io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	cfg, err := console.LoadConfig(getenv)
	if err != nil {
		return err
	}
	c, err := console.New(ctx, cfg, logOut, console.Options{})
	if err != nil {
		return err
	}
	defer func() { _ = c.Close() }()
	log := c.Log

	tcp, err := (&net.ListenConfig{}).Listen(ctx, "tcp", ":"+strconv.Itoa(cfg.Port))
	if err != nil {
		return fmt.Errorf("PORT %d: %w", cfg.Port, err)
	}
	ln, maxConns, perIP := guard(c, tcp)
	log.Info("Ava console listening",
		slog.String("addr", "http://localhost:"+strconv.Itoa(cfg.Port)),
		slog.String("env", cfg.Env),
		slog.Int("max_conns", maxConns),
		slog.Int("max_conns_per_ip", perIP),
		slog.Int("trusted_proxies", len(cfg.TrustedProxies)),
		slog.Bool("rate_limiting", cfg.RateLimiting),
		slog.Bool("stub_integrations", cfg.StubsAllowed()))
	if cfg.StubMode && cfg.Production() {
		log.Warn("INTEGRATIONS_STUB_MODE is on in production: integrations without credentials answer 403 instead of using stubs")
	}

	go cleanSessions(ctx, log, c.Accounts)

	served := make(chan error, 1)
	go func() { served <- c.App.Listener(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing in-flight requests", slog.String("grace", shutdownGrace.String()))
	started := time.Now()
	// Connections a browser opened ahead of need and never used would hold
	// the stop for the whole grace: close them while it waits.
	unusedDone, unusedClosed := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(unusedClosed)
		closeUnused(ln, log, unusedDone)
	}()
	err = c.Shutdown(shutdownGrace)
	close(unusedDone)
	<-unusedClosed
	if err != nil {
		log.Error("shutdown did not finish cleanly", slog.Any("error", err),
			slog.Int("open_connections", int(c.App.Server().GetOpenConnectionsCount())))
	}
	log.Info("requests finished", slog.Float64("took_ms", float64(time.Since(started).Microseconds())/1000))
	if err := <-served; err != nil && !errors.Is(err, net.ErrClosed) {
		log.Error("server stopped with an error", slog.Any("error", err))
	}
	log.Info("stopped")
	return nil
}

// closeUnused closes, until done, the connections that have sent nothing
// for a second (listener.CloseUnused).
func closeUnused(ln *listener.Listener, log *slog.Logger, done <-chan struct{}) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	closed := 0
	for {
		select {
		case <-done:
			if closed > 0 {
				log.Info("closed connections that sent nothing", slog.Int("count", closed))
			}
			return
		case <-tick.C:
			closed += ln.CloseUnused(time.Second)
		}
	}
}

// guard keeps the server alive when descriptors run out: accept errors such
// as EMFILE are retried with a back-off instead of ending Serve, the open
// connections stay under half the descriptor limit (the next ones are
// answered 503), and one client address (trusted proxies aside) may hold at
// most listener.DefaultMaxConnsPerIP of them (429). fasthttp's own
// Concurrency cap is a backstop a quarter above; the listener counts a
// closed connection out when its lingering ends (at most 500 ms later).
func guard(c *console.Console, tcp net.Listener) (ln *listener.Listener, maxConns, perIP int) {
	maxConns, perIP = listener.Limits(listener.FDLimit())
	c.App.Server().Concurrency = maxConns + maxConns/4
	return listener.New(tcp, listener.Options{
		MaxConns: maxConns, MaxConnsPerIP: perIP, Exempt: c.Config.TrustedProxies, Log: c.Log,
	}), maxConns, perIP
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

package main

// The processes the bench starts besides the console: the fake Vapi and the
// bare-Fiber baseline, each the bench's own binary in another mode, so that
// the load generator, the fake and each server are separate processes, as
// they would be on a real machine.

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gofiber/fiber/v2"
	"golang.org/x/sync/singleflight"

	"github.com/ava/console/app/console"
	"github.com/ava/console/components"
	"github.com/ava/console/services/vapi"
	"github.com/ava/console/services/vapi/vapitest"
)

// Fake Vapi's credentials.
const (
	fakeKey       = "bench-vapi-key"
	fakeAssistant = "asst_bench"
)

// serveFake serves GET /assistant/{id} as Vapi does, with no delay: the
// answer is encoded once. GET /count answers how many assistant reads it
// served (upstream calls per request).
func serveFake(addr string) error {
	body, err := json.Marshal(vapitest.DefaultAssistant(fakeAssistant))
	if err != nil {
		return err
	}
	unauthorized := []byte(`{"message":"Invalid Key. Hot tip, make sure you're using the private key.","error":"Unauthorized","statusCode":401}`)
	var served atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("GET /assistant/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		if r.Header.Get("Authorization") != "Bearer "+fakeKey || r.PathValue("id") != fakeAssistant {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write(unauthorized)
			return
		}
		served.Add(1)
		_, _ = w.Write(body)
	})
	mux.HandleFunc("GET /count", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = fmt.Fprint(w, served.Load())
	})
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	return srv.ListenAndServe()
}

// settingJSON is a setting as GET /api/v1/vapi/settings answers it.
type settingJSON struct {
	Key       string `json:"key"`
	Value     any    `json:"value"`
	UpdatedAt string `json:"updated_at"`
}

// serveBaseline is bare Fiber doing what the console's route does for the
// caller: the same upstream call (the console's Vapi client, over a plain
// HTTP client with the same connection pool settings, no breaker), shared
// by concurrent identical reads as the console shares them (singleflight),
// and the same mapping to the same JSON. No authentication, database,
// logs, metrics or rate limits. GET /mallocs answers the process's
// allocation count.
func serveBaseline(addr, vapiURL string) error {
	base, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		return fmt.Errorf("http.DefaultTransport is not an *http.Transport")
	}
	t := base.Clone()
	t.MaxIdleConnsPerHost = 32 // as services/upstream
	client := vapi.NewClient(vapiURL, &http.Client{Transport: t, Timeout: 10 * time.Second})
	var reads singleflight.Group
	settings := func(c *fiber.Ctx) ([]vapi.Setting, error) {
		v, err, _ := reads.Do(fakeAssistant, func() (any, error) {
			return client.GetAssistant(context.WithoutCancel(c.UserContext()), fakeKey, fakeAssistant)
		})
		if err != nil {
			return nil, err
		}
		a := *v.(*vapi.Assistant)
		a.Voice = maps.Clone(a.Voice) // as the console: callers do not share one value
		return vapi.FromAssistant(&a), nil
	}
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Get("/api/v1/vapi/settings", func(c *fiber.Ctx) error {
		list, err := settings(c)
		if err != nil {
			return err
		}
		out := struct {
			Settings []settingJSON `json:"settings"`
		}{Settings: []settingJSON{}}
		for _, s := range list {
			out.Settings = append(out.Settings, settingJSON{Key: s.Key, Value: s.Value, UpdatedAt: s.UpdatedAt.UTC().Format(time.RFC3339)})
		}
		return c.JSON(out)
	})
	// The same fragment as the console's, the same component.
	csrf := strings.Repeat("c", 43)
	app.Get("/fragments/vapi/settings", func(c *fiber.Ctx) error {
		list, err := settings(c)
		if err != nil {
			return err
		}
		rows := make([]components.SettingRow, 0, len(list))
		for _, s := range list {
			rows = append(rows, components.SettingRow{Setting: s, CSRF: csrf})
		}
		c.Type("html", "utf-8")
		return components.SettingsList(rows).Render(c.UserContext(), c.Response().BodyWriter())
	})
	app.Get("/mallocs", func(c *fiber.Ctx) error {
		return c.SendString(strconv.FormatUint(mallocs(), 10))
	})
	app.Get("/readyz", func(c *fiber.Ctx) error { return c.SendString("ok") })
	return app.Listen(addr)
}

func mallocs() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.Mallocs
}

// freeAddr returns a local address nobody listens on (yet).
func freeAddr() (string, error) {
	l, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String(), nil
}

func port(addr string) string {
	return addr[strings.LastIndexByte(addr, ':')+1:]
}

// childMode runs the bench binary as one of its children when asked to;
// it reports whether it did.
func childMode(args []string) (bool, error) {
	if len(args) < 2 {
		return false, nil
	}
	switch args[0] {
	case "serve-fake":
		return true, serveFake(args[1])
	case "serve-console":
		return true, serveConsole(args[1])
	case "serve-baseline":
		if len(args) < 3 {
			return true, fmt.Errorf("serve-baseline ADDR VAPI_URL")
		}
		return true, serveBaseline(args[1], args[2])
	}
	return false, nil
}

// serveConsole serves the console as bin/ava serve does (console.New from
// the environment, the same app) in this process, with the Go profiler on
// pprofAddr: the bench's -cpuprofile runs the console this way. (bin/ava
// also caps connections per client address: nothing the bench reaches.)
func serveConsole(pprofAddr string) error {
	cfg, err := console.LoadConfig(os.Getenv)
	if err != nil {
		return err
	}
	c, err := console.New(context.Background(), cfg, os.Stdout, console.Options{})
	if err != nil {
		return err
	}
	defer func() { _ = c.Close() }()
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	go func() {
		srv := &http.Server{Addr: pprofAddr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		_ = srv.ListenAndServe()
	}()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- c.App.Listen(":" + strconv.Itoa(cfg.Port)) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
		return c.App.ShutdownWithTimeout(10 * time.Second)
	}
}

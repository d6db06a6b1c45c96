package events

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// sendTimeout bounds each PUBLISH: a publisher never waits longer for the
// other instances to be told.
const sendTimeout = 500 * time.Millisecond

// Redis carries events between instances over one Redis pub/sub channel.
// go-redis reconnects a lost subscription by itself; every subscription
// after the first one means events may have been missed meanwhile, and the
// hub resyncs its subscribers. Failures are logged, at most once a minute.
type Redis struct {
	client  redis.UniversalClient
	channel string
	log     *slog.Logger

	mu       sync.Mutex
	lastWarn time.Time
}

// NewRedis returns the transport over client's channel (REDIS_KEY_PREFIX
// + "events").
func NewRedis(client redis.UniversalClient, channel string, log *slog.Logger) *Redis {
	return &Redis{client: client, channel: channel, log: log}
}

// Send publishes e on the channel.
func (r *Redis) Send(ctx context.Context, e Event) {
	b, err := json.Marshal(e)
	if err == nil {
		ctx, cancel := context.WithTimeout(ctx, sendTimeout)
		defer cancel()
		err = r.client.Publish(ctx, r.channel, b).Err()
	}
	if err != nil {
		r.warn("live events not sent to the other instances", err, slog.String("kind", string(e.Kind)))
	}
}

// Run subscribes to the channel and delivers its events until ctx ends.
func (r *Redis) Run(ctx context.Context, deliver func(Event), resync func()) {
	ps := r.client.Subscribe(ctx, r.channel)
	// Closing the subscription is what ends a Receive that waits.
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer stop()
	defer func() { _ = ps.Close() }()
	subscribed := 0
	for {
		msg, err := ps.Receive(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			// go-redis reconnects on the next Receive; wait a little so an
			// outage does not spin.
			r.warn("live events from the other instances interrupted", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind != "subscribe" {
				continue
			}
			if subscribed++; subscribed > 1 {
				r.log.Info("live events from the other instances resumed: open pages catch up")
				resync()
			}
		case *redis.Message:
			var e Event
			if err := json.Unmarshal([]byte(m.Payload), &e); err != nil {
				r.warn("unreadable live event from another instance", err)
				continue
			}
			deliver(e)
		}
	}
}

func (r *Redis) warn(msg string, err error, attrs ...any) {
	r.mu.Lock()
	now := time.Now()
	quiet := now.Sub(r.lastWarn) < time.Minute
	if !quiet {
		r.lastWarn = now
	}
	r.mu.Unlock()
	if !quiet {
		r.log.Warn(msg, append(attrs, slog.Any("error", err))...)
	}
}

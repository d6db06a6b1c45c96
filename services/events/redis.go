package events

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// How the Redis transport behaves.
const (
	// sendTimeout bounds each PUBLISH.
	sendTimeout = 500 * time.Millisecond
	// sendQueue is how many events may wait to be published; more are
	// dropped (and logged): a publisher never waits for Redis.
	sendQueue = 1024
	// pingEvery is how long a quiet subscription waits before it asks
	// Redis whether the connection is still alive: a connection dropped
	// without a word (a failover, a NAT) shows within about this long.
	pingEvery = 15 * time.Second
)

// Redis carries events between instances over one Redis pub/sub channel.
// Publishing is asynchronous: Send queues, and Run's sender publishes.
// go-redis pings a quiet subscription, reconnects a lost one and
// subscribes again by itself; a subscription made again means events may
// have been missed meanwhile, and the hub resyncs its subscribers. Failures are logged, at most once a minute.
type Redis struct {
	client  redis.UniversalClient
	channel string
	log     *slog.Logger
	queue   chan Event

	mu       sync.Mutex
	lastWarn time.Time
}

// NewRedis returns the transport over client's channel (REDIS_KEY_PREFIX
// + "events").
func NewRedis(client redis.UniversalClient, channel string, log *slog.Logger) *Redis {
	return &Redis{client: client, channel: channel, log: log, queue: make(chan Event, sendQueue)}
}

// Send queues e for the other instances without waiting.
func (r *Redis) Send(_ context.Context, e Event) {
	select {
	case r.queue <- e:
	default:
		r.warn("live events not sent to the other instances: too many waiting", errors.New("queue full"), slog.String("kind", string(e.Kind)))
	}
}

// Run publishes what Send queued and delivers the channel's events until
// ctx ends.
func (r *Redis) Run(ctx context.Context, deliver func(Event), resync func()) {
	var wg sync.WaitGroup
	wg.Go(func() { r.publish(ctx) })
	defer wg.Wait()
	r.receive(ctx, deliver, resync)
}

func (r *Redis) publish(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-r.queue:
			b, err := json.Marshal(e)
			if err == nil {
				pctx, cancel := context.WithTimeout(ctx, sendTimeout)
				err = r.client.Publish(pctx, r.channel, b).Err()
				cancel()
			}
			if err != nil && ctx.Err() == nil {
				r.warn("live events not sent to the other instances", err, slog.String("kind", string(e.Kind)))
			}
		}
	}
}

func (r *Redis) receive(ctx context.Context, deliver func(Event), resync func()) {
	ps := r.client.Subscribe(ctx, r.channel)
	// Closing the subscription ends the channel below.
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer stop()
	defer func() { _ = ps.Close() }()
	// go-redis pings a quiet subscription and reconnects (and subscribes
	// again) one that does not answer; each subscription is reported.
	subscribed := false
	for msg := range ps.ChannelWithSubscriptions(redis.WithChannelHealthCheckInterval(pingEvery)) {
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind != "subscribe" {
				continue
			}
			if subscribed {
				r.log.Info("live events from the other instances resumed: open pages catch up")
				resync()
			}
			subscribed = true
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

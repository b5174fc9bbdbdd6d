// Package redissub keeps a Redis pub/sub subscription for as long as a
// context lasts, and tells its caller whenever messages may have been
// missed.
//
// Redis keeps no pub/sub message: what is published while a client is not
// subscribed is lost to it. The issuer's instances tell each other of
// changes this way (docs/redis.md): the store drops
// changed clients from its cache and reloads changed signing keys, and the
// rate limiter learns which counters have failures. Each treats what it
// learned from messages as incomplete from the moment the subscription is
// down until it is established again, and for some time after (see
// Config.Subscribed and Config.Down).
//
// A subscription that breaks without its connection reporting it (a
// silent network failure, a server that stops answering) is found by
// pinging: when no message has come for Config.PingIdle, Run sends PING on
// it, and takes it for broken when nothing comes for another PingIdle. A
// failed or broken subscription is closed, and a new one made on a new
// connection after a pause that doubles from Config.MinRetry up to
// Config.MaxRetry. Run logs a warning once per outage and a line when the
// subscription is back.
package redissub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Defaults of the zero fields of Config.
const (
	defaultPingIdle = 2 * time.Second
	defaultMinRetry = 50 * time.Millisecond
	defaultMaxRetry = 2 * time.Second
)

// Config says what to subscribe to, whom to tell and how to log. Run calls
// its functions from its own goroutine, one at a time: they must return
// quickly, since no message is read meanwhile. Nil functions are not
// called.
type Config struct {
	// Channels are the channels to subscribe to: at least one.
	Channels []string

	// Message is called with every message published on one of Channels
	// while the subscription is established.
	Message func(channel, payload string)
	// Subscribed is called each time the subscription is established on
	// every channel, the first time included. Messages published before
	// it may have been missed.
	Subscribed func()
	// Down is called each time an attempt to subscribe ends, whether it
	// failed, was lost or ctx ended: messages published from then until
	// the next Subscribed are missed.
	Down func()

	// Name names the subscription in log messages, for instance
	// "rate-limit hint subscription".
	Name string
	// WhileDown says in the warning of an outage what the caller does
	// until the subscription is back, for instance "retrying".
	WhileDown string

	// PingIdle is how long the subscription may stay silent before it is
	// pinged, and how long the answer may then take (2s when 0).
	PingIdle time.Duration
	// MinRetry is the pause before the first new attempt after a failure
	// (50ms when 0); it doubles after each further failure, up to MaxRetry
	// (2s when 0), and starts again from MinRetry once a subscription has
	// been established.
	MinRetry time.Duration
	// MaxRetry is the longest pause between two attempts.
	MaxRetry time.Duration
}

// errNoPong is the error of a subscription that did not answer a PING.
var errNoPong = errors.New("redissub: no answer to PING")

// Run subscribes client to cfg.Channels and keeps the subscription until
// ctx ends, making a new one whenever it fails or breaks, and returns then.
// It reports through cfg's functions, and logs to log (nothing when nil).
// It runs on the caller's goroutine: callers start it with go, and wait
// for it to return after cancelling ctx.
func Run(ctx context.Context, client goredis.UniversalClient, log *slog.Logger, cfg Config) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.PingIdle <= 0 {
		cfg.PingIdle = defaultPingIdle
	}
	if cfg.MinRetry <= 0 {
		cfg.MinRetry = defaultMinRetry
	}
	if cfg.MaxRetry <= 0 {
		cfg.MaxRetry = defaultMaxRetry
	}
	r := &runner{client: client, log: log, cfg: cfg}
	retry := cfg.MinRetry
	for ctx.Err() == nil {
		established, err := r.attempt(ctx)
		call(cfg.Down)
		if ctx.Err() != nil {
			return
		}
		if established {
			retry = cfg.MinRetry
		}
		if !r.failing {
			r.failing = true
			what := " failed"
			if established {
				what = " lost"
			}
			msg := cfg.Name + what
			if cfg.WhileDown != "" {
				msg += "; " + cfg.WhileDown
			}
			log.WarnContext(ctx, msg, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(retry):
		}
		retry = min(2*retry, cfg.MaxRetry)
	}
}

// runner is the state of one Run.
type runner struct {
	client  goredis.UniversalClient
	log     *slog.Logger
	cfg     Config
	failing bool // an outage was logged and is not over
}

// attempt makes one subscription and serves it until it fails or ctx
// ends. It reports whether the subscription was established, and why it
// ended.
func (r *runner) attempt(ctx context.Context) (established bool, err error) {
	ps := r.client.Subscribe(ctx, r.cfg.Channels...)
	defer ps.Close()
	// A receive blocks on the connection whatever ctx does: closing the
	// subscription ends it.
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer stop()

	pending := slices.Clone(r.cfg.Channels) // not confirmed yet
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(ctx, r.cfg.PingIdle)
		if err != nil {
			if ctx.Err() != nil {
				return established, ctx.Err()
			}
			if ne, ok := errors.AsType[net.Error](err); !ok || !ne.Timeout() {
				return established, err
			}
			if pinged {
				return established, errNoPong
			}
			if err := ps.Ping(ctx); err != nil { // the answer comes to ReceiveTimeout
				return established, err
			}
			pinged = true
			continue
		}
		pinged = false
		switch m := msg.(type) {
		case *goredis.Message:
			if r.cfg.Message != nil && slices.Contains(r.cfg.Channels, m.Channel) {
				r.cfg.Message(m.Channel, m.Payload)
			}
		case *goredis.Subscription:
			if !slices.Contains(r.cfg.Channels, m.Channel) {
				break
			}
			if m.Kind != "subscribe" {
				return established, fmt.Errorf("redissub: %s %s", m.Kind, m.Channel)
			}
			pending = slices.DeleteFunc(pending, func(c string) bool { return c == m.Channel })
			if len(pending) == 0 && !established {
				established = true
				if r.failing {
					r.log.InfoContext(ctx, r.cfg.Name+" re-established")
					r.failing = false
				}
				call(r.cfg.Subscribed)
			}
		}
	}
}

// call calls f unless it is nil.
func call(f func()) {
	if f != nil {
		f()
	}
}

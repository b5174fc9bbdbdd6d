package redis

import (
	"context"
	"time"

	"github.com/issuer-oauth/issuer/internal/redissub"
)

// subscriberPing is how long the subscriber waits for a message before it
// pings Redis, and then for the answer before it reconnects. A variable for
// tests.
var subscriberPing = 3 * time.Second

// Backoff between failed attempts to reach Redis.
const (
	minSubscribeBackoff = 100 * time.Millisecond
	maxSubscribeBackoff = 2 * time.Second
)

// subscribe runs until ctx ends: it listens on the change channels, drops
// changed clients from the cache and reports key changes. Whenever the
// subscription is (re)established it drops the whole cache and reports a key
// change, since messages sent while it was down are lost; it drops the cache
// whenever the subscription goes down too.
func (s *Store) subscribe(ctx context.Context, ping time.Duration) {
	defer close(s.subDone)
	redissub.Run(ctx, s.client, s.logger, redissub.Config{
		Channels: []string{s.clientsChan, s.keysChan},
		Message:  s.changed,
		Subscribed: func() {
			s.cache.flush()
			s.notifyKeys()
		},
		Down:      s.cache.flush,
		Name:      "redis: cache invalidation subscription",
		WhileDown: "retrying",
		PingIdle:  ping,
		MinRetry:  minSubscribeBackoff,
		MaxRetry:  maxSubscribeBackoff,
	})
}

// changed handles a message on a change channel.
func (s *Store) changed(channel, payload string) {
	switch channel {
	case s.clientsChan:
		s.cache.drop(payload)
	case s.keysChan:
		s.notifyKeys()
	}
}

// notifyKeys reports a key change without blocking.
func (s *Store) notifyKeys() {
	select {
	case s.keyChanges <- struct{}{}:
	default:
	}
}

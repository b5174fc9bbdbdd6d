package redis

import (
	"context"
	"errors"
	"net"
	"time"

	goredis "github.com/redis/go-redis/v9"
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
// change, since messages sent while it was down are lost.
func (s *Store) subscribe(ctx context.Context, pingEvery time.Duration) {
	defer close(s.subDone)
	var (
		ps         *goredis.PubSub
		subscribed bool // confirmation received on the current connection
		awaitPong  bool // a ping is unanswered
		failing    bool // an outage was logged
		backoff    = minSubscribeBackoff
	)
	for ctx.Err() == nil {
		if ps == nil {
			if ps = s.newPubSub(); ps == nil {
				return // closed
			}
			// Subscribe remembers the channels even when it cannot
			// connect; Receive connects and subscribes again.
			_ = ps.Subscribe(ctx, s.clientsChan, s.keysChan)
			subscribed, awaitPong = false, false
		}

		msg, err := ps.ReceiveTimeout(ctx, pingEvery)
		if ctx.Err() != nil || errors.Is(err, goredis.ErrClosed) {
			return
		}
		var netErr net.Error
		switch {
		case err != nil && errors.As(err, &netErr) && netErr.Timeout():
			if awaitPong {
				// The connection answers nothing: start over.
				s.dropPubSub(ps)
				ps = nil
				continue
			}
			awaitPong = true
			if err := ps.Ping(ctx); err != nil { // the answer comes to Receive
				// go-redis reconnects; messages may have been lost.
				subscribed = false
				s.cache.flush()
			}
			continue
		case err != nil:
			// go-redis reconnects on the next Receive.
			subscribed = false
			s.cache.flush()
			if !failing {
				s.logger.Warn("redis: cache invalidation subscription lost; retrying", "err", err)
				failing = true
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, maxSubscribeBackoff)
			continue
		}

		awaitPong = false
		backoff = minSubscribeBackoff
		switch m := msg.(type) {
		case *goredis.Subscription:
			if !subscribed {
				subscribed = true
				s.cache.flush()
				s.notifyKeys()
				if failing {
					s.logger.Info("redis: cache invalidation subscription re-established")
					failing = false
				}
			}
		case *goredis.Message:
			switch m.Channel {
			case s.clientsChan:
				s.cache.drop(m.Payload)
			case s.keysChan:
				s.notifyKeys()
			}
		}
	}
}

// newPubSub returns a new PubSub that Close will close, or nil if the store
// is closed. It does no I/O.
func (s *Store) newPubSub() *goredis.PubSub {
	s.subMu.Lock()
	defer s.subMu.Unlock()
	if s.subClosed {
		return nil
	}
	s.pubsub = s.client.Subscribe(context.Background())
	return s.pubsub
}

// dropPubSub closes a PubSub that no longer works.
func (s *Store) dropPubSub(ps *goredis.PubSub) {
	s.subMu.Lock()
	defer s.subMu.Unlock()
	if s.pubsub == ps {
		s.pubsub = nil
	}
	_ = ps.Close()
	s.cache.flush()
}

// notifyKeys reports a key change without blocking.
func (s *Store) notifyKeys() {
	select {
	case s.keyChanges <- struct{}{}:
	default:
	}
}

package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/issuer-oauth/issuer/internal/redissub"
)

// Redis is a Counter kept in Redis, shared by every issuer instance on it.
// Each Add is one Lua script on one key (so it works on Redis Cluster), and
// windows are Redis key expiries, so the instances' clocks do not matter.
//
// A read (Add with n 0) of a key that no instance has added to in its
// current window answers 0 without asking Redis: see the package doc for
// how the instances tell each other, and what that guarantees. A Redis
// subscribes to those hints in the background until Close.
type Redis struct {
	client   goredis.UniversalClient
	prefix   string
	channel  string
	maxHot   int
	now      func() time.Time
	pingIdle time.Duration
	log      *slog.Logger

	mu         sync.RWMutex
	subscribed bool                 // the hint subscription is established
	since      time.Time            // when it was (re)established
	epoch      uint64               // counts (re)establishments and losses
	hot        map[string]time.Time // key → local time its window ends
	clean      map[string]struct{}  // keys read as 0 since the subscription was established
	fullUntil  time.Time            // every key is hot until then: hot was full
	nextSweep  time.Time

	closeOnce sync.Once
	stop      context.CancelFunc
	done      chan struct{} // closed when the subscriber has returned

	lastPubErrLog atomic.Int64 // unix nanoseconds of the last logged PUBLISH failure
}

var _ Counter = (*Redis)(nil)

// DefaultRedisPrefix starts the name of every counter key in Redis.
const DefaultRedisPrefix = "issuer:ratelimit:"

// RedisOption configures NewRedis.
type RedisOption func(*Redis)

// WithMaxHotKeys bounds the keys a Redis remembers as hot (DefaultMaxKeys
// when 0 or less). When they do not fit, every read goes to Redis until they
// would have ended.
func WithMaxHotKeys(n int) RedisOption {
	return func(c *Redis) {
		if n > 0 {
			c.maxHot = n
		}
	}
}

// WithLogger sets the logger that is told when the hint subscription is
// lost and when hints cannot be published; nil discards them.
func WithLogger(log *slog.Logger) RedisOption {
	return func(c *Redis) {
		if log != nil {
			c.log = log
		}
	}
}

// withClock sets the clock of the hot set (tests). Redis windows run on
// Redis's clock whatever it is.
func withClock(now func() time.Time) RedisOption {
	return func(c *Redis) { c.now = now }
}

// withPingIdle sets how long the subscription may stay silent before it is
// pinged (tests).
func withPingIdle(d time.Duration) RedisOption {
	return func(c *Redis) { c.pingIdle = d }
}

// defaultPingIdle is how long the subscription may stay silent before it
// is pinged; one more without an answer and it is taken for broken.
const defaultPingIdle = 2 * time.Second

// Retries of a subscription that failed wait from minRetry, doubling up to
// maxRetry.
const (
	minRetry = 50 * time.Millisecond
	maxRetry = 2 * time.Second
)

// NewRedis returns a counter set on client whose keys start with prefix
// (DefaultRedisPrefix when empty), and starts its subscription to the hints
// of the other instances on the channel prefix+"hot". The caller keeps
// owning client, and calls Close before closing it.
func NewRedis(client goredis.UniversalClient, prefix string, opts ...RedisOption) *Redis {
	if prefix == "" {
		prefix = DefaultRedisPrefix
	}
	c := &Redis{
		client:   client,
		prefix:   prefix,
		channel:  prefix + "hot",
		maxHot:   DefaultMaxKeys,
		now:      time.Now,
		pingIdle: defaultPingIdle,
		log:      slog.New(slog.DiscardHandler),
		hot:      make(map[string]time.Time),
		done:     make(chan struct{}),
	}
	for _, opt := range opts {
		opt(c)
	}
	ctx, stop := context.WithCancel(context.Background())
	c.stop = stop
	go c.subscribe(ctx)
	return c
}

// Close stops the subscription and waits for it to end. Reads after Close
// all go to Redis.
func (c *Redis) Close() error {
	c.closeOnce.Do(func() {
		c.stop()
		<-c.done
	})
	return nil
}

// addScript adds ARGV[1] to the counter KEYS[1], giving a new counter a
// time to live of ARGV[2] milliseconds, and returns {count, ttl in ms}.
// With ARGV[1] 0 it only reads. A counter somehow left without a time to
// live gets one, so that no counter can block forever.
//
// When the window of the counter starts (its first addition, or a time to
// live given now) it publishes "<ttl in ms> <key>" on the channel ARGV[3].
// A failed PUBLISH (a Redis ACL may forbid it) does not fail the count: the
// reply then has a third element, 0.
var addScript = goredis.NewScript(`
local n = tonumber(ARGV[1])
local count
if n == 0 then
  count = tonumber(redis.call('GET', KEYS[1]) or '0')
  if count == 0 then return {0, 0} end
else
  count = redis.call('INCRBY', KEYS[1], n)
end
local starts = n > 0 and count == n
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  ttl = tonumber(ARGV[2])
  starts = true
end
if starts then
  local ok = redis.pcall('PUBLISH', ARGV[3], ttl .. ' ' .. KEYS[1])
  if type(ok) == 'table' and ok.err then return {count, ttl, 0} end
end
return {count, ttl}
`)

// Add implements Counter.
func (c *Redis) Add(ctx context.Context, key string, n int64, d time.Duration) (int64, time.Duration, error) {
	read, epoch := c.mustRead(key, d)
	if n <= 0 && !read {
		return 0, 0, nil
	}
	ms := max(d.Milliseconds(), 1)
	res, err := addScript.Run(ctx, c.client, []string{c.prefix + key}, max(n, 0), ms, c.channel).Int64Slice()
	if err != nil {
		return 0, 0, fmt.Errorf("ratelimit: redis: %w", err)
	}
	if len(res) < 2 {
		return 0, 0, errors.New("ratelimit: redis: unexpected script reply")
	}
	count, left := res[0], time.Duration(res[1])*time.Millisecond
	switch {
	case count > 0:
		c.markHot(key, left)
	case n <= 0:
		c.markClean(key, d, epoch)
	}
	if len(res) > 2 && res[2] == 0 {
		c.logPublishError(ctx)
	}
	return count, left, nil
}

// Reset implements Counter. The key stays hot here and at the other
// instances until its old window ends, so their reads go to Redis and
// find it gone.
func (c *Redis) Reset(ctx context.Context, key string) error {
	if err := c.client.Del(ctx, c.prefix+key).Err(); err != nil {
		return fmt.Errorf("ratelimit: redis: %w", err)
	}
	return nil
}

// mustRead reports whether a read of key, counted in windows of length d,
// must go to Redis: whether some instance may have added to it in a window
// that has not ended.
//
// In the window after the subscription was established, hints published
// before it may have been missed, so a key is read from Redis until one read
// has found it at 0; from then on the subscription reports every addition
// to it.
func (c *Redis) mustRead(key string, d time.Duration) (read bool, epoch uint64) {
	now := c.now()
	c.mu.RLock()
	defer c.mu.RUnlock()
	if !c.subscribed || now.Before(c.fullUntil) {
		return true, c.epoch
	}
	if end, ok := c.hot[key]; ok && now.Before(end) {
		return true, c.epoch
	}
	if now.Before(c.since.Add(d)) {
		_, seen := c.clean[key]
		return !seen, c.epoch
	}
	return false, c.epoch
}

// markClean records that a read of key found no count, when the
// subscription has stayed established (as epoch) since before the read: an
// addition after the read then sends a hint. It matters only in the window
// after the subscription was established, and is bounded like the hot set;
// when full, the key keeps being read.
func (c *Redis) markClean(key string, d time.Duration, epoch uint64) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.subscribed || c.epoch != epoch {
		return
	}
	if !now.Before(c.since.Add(d)) {
		c.clean = nil // the window after subscribing is over
		return
	}
	if c.clean == nil {
		c.clean = make(map[string]struct{})
	}
	if len(c.clean) < c.maxHot {
		c.clean[key] = struct{}{}
	}
}

// Sweeps of ended hot keys run at most this often, or sweepFull when the
// set is full (each sweep walks the whole set).
const (
	sweepEvery = time.Minute
	sweepFull  = time.Second
)

// markHot records that key counts for ttl from now.
func (c *Redis) markHot(key string, ttl time.Duration) {
	now := c.now()
	end := now.Add(ttl)
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.hot[key]; ok {
		if end.After(old) {
			c.hot[key] = end
		}
		return
	}
	if !now.Before(c.nextSweep) {
		for k, e := range c.hot {
			if !now.Before(e) {
				delete(c.hot, k)
			}
		}
		c.nextSweep = now.Add(sweepEvery)
		if len(c.hot) >= c.maxHot {
			c.nextSweep = now.Add(sweepFull)
		}
	}
	if len(c.hot) >= c.maxHot {
		// Rather than forget that key counts, count every key as hot
		// until its window ends.
		if end.After(c.fullUntil) {
			c.fullUntil = end
		}
		return
	}
	c.hot[key] = end
}

// hint records a hint "<ttl in ms> <prefixed key>" from the channel.
func (c *Redis) hint(payload string) {
	ttl, key, ok := strings.Cut(payload, " ")
	if !ok {
		return
	}
	key, ok = strings.CutPrefix(key, c.prefix)
	ms, err := strconv.ParseInt(ttl, 10, 64)
	if !ok || err != nil || ms <= 0 {
		return
	}
	c.markHot(key, time.Duration(ms)*time.Millisecond)
}

func (c *Redis) setSubscribed(on bool) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.subscribed = on
	c.epoch++
	c.clean = nil
	if on {
		c.since = now
	}
}

// subscribe keeps a subscription to the hints until ctx ends. Reads go to
// Redis while it is down, and for a window after it is (re)established
// (see mustRead).
func (c *Redis) subscribe(ctx context.Context) {
	defer close(c.done)
	redissub.Run(ctx, c.client, c.log, redissub.Config{
		Channels:   []string{c.channel},
		Message:    func(_, payload string) { c.hint(payload) },
		Subscribed: func() { c.setSubscribed(true) },
		Down:       func() { c.setSubscribed(false) },
		Name:       "rate-limit hint subscription",
		WhileDown:  "reading every rate-limit counter from Redis until it is back (then each once)",
		PingIdle:   c.pingIdle,
		MinRetry:   minRetry,
		MaxRetry:   maxRetry,
	})
}

// logPublishError logs a failed PUBLISH at most once a minute: the other
// instances then miss the hints of this one.
func (c *Redis) logPublishError(ctx context.Context) {
	now := time.Now().UnixNano()
	last := c.lastPubErrLog.Load()
	if now-last < int64(time.Minute) || !c.lastPubErrLog.CompareAndSwap(last, now) {
		return
	}
	c.log.ErrorContext(ctx, "rate-limit hints cannot be published on Redis (is PUBLISH allowed on the channel?); other instances may miss failures counted here",
		"channel", c.channel)
}

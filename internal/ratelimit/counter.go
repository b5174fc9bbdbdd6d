package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Counter is a set of fixed-window counters: a counter starts at its first
// hit, counts for one window, and then disappears.
type Counter interface {
	// Add adds n (0 or more) to the counter key and returns its count and the
	// time left in its window. A counter that does not exist starts a window
	// of the given length when n is more than 0; with n 0, Add only reads,
	// and returns 0 for a counter that does not exist.
	Add(ctx context.Context, key string, n int64, window time.Duration) (count int64, left time.Duration, err error)
}

// DefaultMaxKeys is the default bound on the counters a Memory keeps.
const DefaultMaxKeys = 100_000

// Memory is a Counter kept in the memory of one process. It is safe for
// concurrent use.
type Memory struct {
	now     func() time.Time
	maxKeys int

	mu        sync.Mutex
	windows   map[string]*window
	nextSweep time.Time
}

type window struct {
	count int64
	end   time.Time
}

var _ Counter = (*Memory)(nil)

// NewMemory returns an in-memory counter set on the clock now (time.Now
// when nil) that keeps at most maxKeys counters (DefaultMaxKeys when 0 or
// less). When it is full it first drops the counters whose window has ended,
// then arbitrary ones, so that memory stays bounded whatever the traffic.
func NewMemory(now func() time.Time, maxKeys int) *Memory {
	if now == nil {
		now = time.Now
	}
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	return &Memory{now: now, maxKeys: maxKeys, windows: make(map[string]*window)}
}

// Add implements Counter.
func (m *Memory) Add(_ context.Context, key string, n int64, d time.Duration) (int64, time.Duration, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	w := m.windows[key]
	if w != nil && !now.Before(w.end) {
		delete(m.windows, key)
		w = nil
	}
	if n <= 0 {
		if w == nil {
			return 0, 0, nil
		}
		return w.count, w.end.Sub(now), nil
	}
	if w == nil {
		m.makeRoom(now)
		w = &window{end: now.Add(d)}
		m.windows[key] = w
	}
	w.count += n
	return w.count, w.end.Sub(now), nil
}

// makeRoom drops ended windows now and then, and arbitrary ones when the
// map is still full.
func (m *Memory) makeRoom(now time.Time) {
	if len(m.windows) < m.maxKeys && now.Before(m.nextSweep) {
		return
	}
	for k, w := range m.windows {
		if !now.Before(w.end) {
			delete(m.windows, k)
		}
	}
	m.nextSweep = now.Add(time.Minute)
	for k := range m.windows { // map order is random enough
		if len(m.windows) < m.maxKeys {
			break
		}
		delete(m.windows, k)
	}
}

// Len returns the number of counters kept, ended ones included.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.windows)
}

// Redis is a Counter kept in Redis, shared by every issuer instance on it.
// Each Add is one Lua script on one key (so it works on Redis Cluster), and
// windows are Redis key expiries, so the instances' clocks do not matter.
type Redis struct {
	client goredis.UniversalClient
	prefix string
}

var _ Counter = (*Redis)(nil)

// DefaultRedisPrefix starts the name of every counter key in Redis.
const DefaultRedisPrefix = "issuer:ratelimit:"

// NewRedis returns a counter set on client whose keys start with prefix
// (DefaultRedisPrefix when empty). The caller keeps owning client.
func NewRedis(client goredis.UniversalClient, prefix string) *Redis {
	if prefix == "" {
		prefix = DefaultRedisPrefix
	}
	return &Redis{client: client, prefix: prefix}
}

// addScript adds ARGV[1] to the counter KEYS[1], giving a new counter a
// time to live of ARGV[2] milliseconds, and returns {count, ttl in ms}.
// With ARGV[1] 0 it only reads. A counter somehow left without a time to
// live gets one, so that no counter can block forever.
var addScript = goredis.NewScript(`
local n = tonumber(ARGV[1])
local count
if n == 0 then
  count = tonumber(redis.call('GET', KEYS[1]) or '0')
  if count == 0 then return {0, 0} end
else
  count = redis.call('INCRBY', KEYS[1], n)
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  ttl = tonumber(ARGV[2])
end
return {count, ttl}
`)

// Add implements Counter.
func (c *Redis) Add(ctx context.Context, key string, n int64, d time.Duration) (int64, time.Duration, error) {
	ms := max(d.Milliseconds(), 1)
	res, err := addScript.Run(ctx, c.client, []string{c.prefix + key}, max(n, 0), ms).Int64Slice()
	if err != nil {
		return 0, 0, fmt.Errorf("ratelimit: redis: %w", err)
	}
	if len(res) != 2 {
		return 0, 0, errors.New("ratelimit: redis: unexpected script reply")
	}
	return res[0], time.Duration(res[1]) * time.Millisecond, nil
}

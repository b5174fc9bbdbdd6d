package ratelimit

import "time"

// Test hooks.
var (
	WithClock    = withClock
	WithPingIdle = withPingIdle
)

// Subscribed reports whether c's hint subscription is established.
func Subscribed(c *Redis) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.subscribed
}

// HotLen returns the number of keys c remembers as hot, ended ones
// included.
func HotLen(c *Redis) int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.hot)
}

// MustRead reports whether a read of key would go to Redis.
func MustRead(c *Redis, key string, window time.Duration) bool {
	read, _ := c.mustRead(key, window)
	return read
}

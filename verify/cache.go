package verify

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// verification is what a successful verification of a token established,
// and what the token cache keeps of it.
type verification struct {
	token  string    // the exact token, the cache's key
	claims Claims    // each caller gets a copy (see Claims.clone)
	kid    string    // of the key that verified the signature
	key    *Key      // that key, as the KeySet returned it
	until  time.Time // exp plus the leeway: never served from then on
	hasNBF bool      // the token has an nbf claim
	// status is the token's status claim, when WithStatusLists is on:
	// its status is checked at every presentation, cache hits included.
	status *statusClaim

	ref  atomic.Bool // CLOCK reference bit: used since the hand passed
	slot int         // index in tokenCache.ring; guarded by tokenCache.mu
}

// tokenCache remembers the verifications of the last tokens seen, keyed
// by the exact token: a Go map compares the whole string on every lookup
// (its hash, seeded at random per map, only picks the bucket), so no other
// token, however it collides, can hit an entry. At most max entries are
// kept; when full, CLOCK (second chance) picks the entry to evict, so
// hits take only the read lock. Only successful verifications are ever
// put.
type tokenCache struct {
	max int

	mu   sync.RWMutex
	m    map[string]*verification
	ring []*verification // len <= max; nil where an entry was removed
	hand int

	hits, misses, evictions atomic.Uint64
}

func newTokenCache(size int) *tokenCache {
	return &tokenCache{max: size, m: make(map[string]*verification)}
}

// get returns the entry of raw, or nil.
func (c *tokenCache) get(raw string) *verification {
	c.mu.RLock()
	e := c.m[raw]
	c.mu.RUnlock()
	if e != nil && !e.ref.Load() {
		e.ref.Store(true)
	}
	return e
}

// put adds e, evicting an entry when the cache is full: the first one
// under the hand that has expired or has not been used since the hand last
// passed it.
func (c *tokenCache) put(e *verification, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.m[e.token]; old != nil { // verified twice at once
		e.slot = old.slot
		c.ring[e.slot], c.m[e.token] = e, e
		return
	}
	if len(c.ring) < c.max {
		e.slot = len(c.ring)
		c.ring, c.m[e.token] = append(c.ring, e), e
		return
	}
	for {
		old := c.ring[c.hand]
		if old == nil || !now.Before(old.until) || !old.ref.Swap(false) {
			break
		}
		c.hand = (c.hand + 1) % c.max
	}
	if old := c.ring[c.hand]; old != nil {
		delete(c.m, old.token)
		c.evictions.Add(1)
	}
	e.slot = c.hand
	c.ring[c.hand], c.m[e.token] = e, e
	c.hand = (c.hand + 1) % c.max
}

// remove drops e, when it is still the entry of its token.
func (c *tokenCache) remove(e *verification) {
	c.mu.Lock()
	if c.m[e.token] == e {
		delete(c.m, e.token)
		c.ring[e.slot] = nil
	}
	c.mu.Unlock()
}

// CacheStats are the counters of a Verifier's token cache
// (WithTokenCache), for monitoring: a hit ratio that stays low while
// Evictions grows means the cache is too small for the tokens in use.
type CacheStats struct {
	// Size is the maximum number of entries; 0 when the cache is off.
	Size int
	// Entries is the number of tokens cached now.
	Entries int
	// Hits counts verifications answered from the cache.
	Hits uint64
	// Misses counts verifications done in full (and cached when they
	// succeeded), including those of cached tokens that could not be
	// reused: expired, or whose key changed.
	Misses uint64
	// Evictions counts entries dropped to make room for another.
	Evictions uint64
}

// CacheStats returns the counters of v's token cache; all zero when it is
// off.
func (v *Verifier) CacheStats() CacheStats {
	c := v.cache
	if c == nil {
		return CacheStats{}
	}
	c.mu.RLock()
	n := len(c.m)
	c.mu.RUnlock()
	return CacheStats{
		Size:      c.max,
		Entries:   n,
		Hits:      c.hits.Load(),
		Misses:    c.misses.Load(),
		Evictions: c.evictions.Load(),
	}
}

// clone returns a copy of c that shares no slice with it, so that a
// caller changing its claims cannot change what the cache serves others.
func (c *Claims) clone() *Claims {
	d := *c
	d.Audience, d.Scopes = slices.Clone(c.Audience), slices.Clone(c.Scopes)
	return &d
}

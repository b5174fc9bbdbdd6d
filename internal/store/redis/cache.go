package redis

import (
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/issuer-oauth/issuer/internal/store"
)

// clientCache holds recently read clients. Ages use the monotonic wall clock,
// not the store's injected one: they bound staleness, not token validity.
//
// The cache holds only clients that exist (unknown ids are not cached), one
// entry per id, so it is no larger than the clients hash.
//
// gen counts invalidations. A reader notes gen before it reads Redis and
// caches what it read only if no invalidation came in between, so that a
// read racing with an update cannot put the old client back after the
// update's message has dropped it.
type clientCache struct {
	ttl time.Duration

	mu      sync.RWMutex
	gen     uint64
	entries map[string]cachedClient
}

type cachedClient struct {
	c  store.Client
	at time.Time
}

func newClientCache(ttl time.Duration) *clientCache {
	return &clientCache{ttl: ttl, entries: make(map[string]cachedClient)}
}

// get returns a copy of a fresh entry.
func (cc *clientCache) get(id string) (store.Client, bool) {
	if cc.ttl <= 0 {
		return store.Client{}, false
	}
	cc.mu.RLock()
	e, ok := cc.entries[id]
	cc.mu.RUnlock()
	if !ok || time.Since(e.at) >= cc.ttl {
		return store.Client{}, false
	}
	return cloneClient(e.c), true
}

// generation returns the invalidation count, to pass to put.
func (cc *clientCache) generation() uint64 {
	cc.mu.RLock()
	defer cc.mu.RUnlock()
	return cc.gen
}

// put caches c, read at generation gen, unless an invalidation came since.
func (cc *clientCache) put(c store.Client, gen uint64, at time.Time) {
	if cc.ttl <= 0 {
		return
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.gen != gen {
		return
	}
	cc.entries[c.ID] = cachedClient{c: cloneClient(c), at: at}
}

// drop removes one id.
func (cc *clientCache) drop(id string) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.gen++
	delete(cc.entries, id)
}

// flush removes every entry.
func (cc *clientCache) flush() {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.gen++
	clear(cc.entries)
}

// cloneClient copies the slices of c, so that callers cannot change the
// cached client.
func cloneClient(c store.Client) store.Client {
	c.SecretHash = slices.Clone(c.SecretHash)
	c.GrantTypes = slices.Clone(c.GrantTypes)
	c.Scopes = slices.Clone(c.Scopes)
	c.Audiences = slices.Clone(c.Audiences)
	c.JWKS = slices.Clone(c.JWKS)
	if c.Federated != nil {
		f := *c.Federated
		f.Claims = maps.Clone(f.Claims)
		c.Federated = &f
	}
	return c
}

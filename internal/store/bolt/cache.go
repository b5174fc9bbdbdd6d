package bolt

import (
	"maps"
	"slices"
	"sync"

	"github.com/issuer-oauth/issuer/internal/store"
)

// clientCacheSize is how many decoded clients GetClient keeps by default.
const clientCacheSize = 10_000

// clientCache keeps the clients that GetClient decoded, so that a token
// request does not pay for a read transaction and a JSON decode. It is
// coherent because the file is locked by this process: only this Store
// writes clients, and it invalidates the cache every time it does.
//
// It holds at most limit clients and drops an arbitrary one to make room. It
// keeps its own copies and hands out copies, so callers cannot change it.
type clientCache struct {
	mu    sync.RWMutex
	limit int // 0 disables the cache
	m     map[string]store.Client
	// gen counts invalidations. A reader notes it before reading the file
	// and adds what it read only if it has not moved, so that a client
	// read before a concurrent write is not cached after the write.
	gen uint64
}

// newClientCache returns a cache of at most limit clients; 0 disables it.
func newClientCache(limit int) *clientCache {
	return &clientCache{limit: limit, m: make(map[string]store.Client)}
}

// get returns a copy of the cached client id, if there is one.
func (c *clientCache) get(id string) (store.Client, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	cl, ok := c.m[id]
	if !ok {
		return store.Client{}, false
	}
	return cloneClient(cl), true
}

// generation returns the invalidation count, to pass to add.
func (c *clientCache) generation() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gen
}

// add caches a copy of cl, read from the file when the invalidation count
// was gen, unless a client has been written since.
func (c *clientCache) add(gen uint64, cl store.Client) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen || c.limit == 0 {
		return
	}
	if _, ok := c.m[cl.ID]; !ok && len(c.m) >= c.limit {
		for id := range c.m {
			delete(c.m, id)
			break
		}
	}
	c.m[cl.ID] = cloneClient(cl)
}

// invalidate forgets client id and fails the adds of the reads in progress.
// Call it after every write of a client, successful or not.
func (c *clientCache) invalidate(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, id)
	c.gen++
}

// disable empties the cache and stops it caching, for Close.
func (c *clientCache) disable() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.m)
	c.limit = 0
	c.gen++
}

// len returns how many clients are cached.
func (c *clientCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}

// cloneClient copies c with slices of its own.
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

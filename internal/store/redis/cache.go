package redis

import (
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/issuer-oauth/issuer/internal/store"
)

// clientCache holds recently read clients, and recently looked-up ids that
// no client has, so that a token request with an unknown client id costs no
// more Redis round trips than one with a known id: neither costs one while
// its entry is fresh, and a failed authentication does not tell by its time
// whether the id exists. Ages use the monotonic wall clock, not the store's
// injected one: they bound staleness, not token validity.
//
// There is one entry of clients that exist per id, so that part is no larger
// than the clients hash. Ids that do not exist come from requests, so there
// may be any number of them: at most maxMissing are kept, and a new one
// pushes out an arbitrary old one. Both kinds live at most ttl and are
// dropped by the same invalidations: CreateClient publishes the id it
// creates, as UpdateClient and DeleteClient publish theirs.
//
// gen counts invalidations. A reader notes gen before it reads Redis and
// caches what it read only if no invalidation came in between, so that a
// read racing with an update (or a creation) cannot put the old client (or
// its absence) back after the write's message has dropped it.
type clientCache struct {
	ttl time.Duration

	mu      sync.RWMutex
	gen     uint64
	entries map[string]cachedClient
	missing map[string]time.Time // ids without a client, when they were read
}

// maxMissing bounds the ids without a client that the cache remembers.
const maxMissing = 10_000

type cachedClient struct {
	c  store.Client
	at time.Time
}

func newClientCache(ttl time.Duration) *clientCache {
	return &clientCache{ttl: ttl, entries: make(map[string]cachedClient), missing: make(map[string]time.Time)}
}

// get returns a copy of a fresh entry and true, or, for an id that had no
// client when it was read, a fresh "missing" entry: the zero Client, true,
// and exists false. ok is false when the cache knows nothing fresh of id.
func (cc *clientCache) get(id string) (c store.Client, exists, ok bool) {
	if cc.ttl <= 0 {
		return store.Client{}, false, false
	}
	cc.mu.RLock()
	e, found := cc.entries[id]
	at, gone := cc.missing[id]
	cc.mu.RUnlock()
	switch {
	case found && time.Since(e.at) < cc.ttl:
		return cloneClient(e.c), true, true
	case gone && time.Since(at) < cc.ttl:
		return store.Client{}, false, true
	}
	return store.Client{}, false, false
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
	delete(cc.missing, c.ID)
	cc.entries[c.ID] = cachedClient{c: cloneClient(c), at: at}
}

// putMissing remembers that id had no client when it was read at
// generation gen, unless an invalidation came since, pushing out an
// arbitrary remembered id when maxMissing are.
func (cc *clientCache) putMissing(id string, gen uint64, at time.Time) {
	if cc.ttl <= 0 {
		return
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.gen != gen {
		return
	}
	if _, ok := cc.missing[id]; !ok && len(cc.missing) >= maxMissing {
		for old := range cc.missing {
			delete(cc.missing, old)
			break
		}
	}
	delete(cc.entries, id)
	cc.missing[id] = at
}

// drop removes one id.
func (cc *clientCache) drop(id string) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.gen++
	delete(cc.entries, id)
	delete(cc.missing, id)
}

// flush removes every entry.
func (cc *clientCache) flush() {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.gen++
	clear(cc.entries)
	clear(cc.missing)
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

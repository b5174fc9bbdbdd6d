package verify

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// KeySet finds the key that verifies a token: a RemoteKeySet, or any
// other implementation given with WithKeySet.
type KeySet interface {
	// Key returns the key whose kid is kid, or an error wrapping
	// ErrUnknownKey when the set has none (or ErrKeySetStale when the
	// set's keys can no longer be trusted). It is called on every
	// verification, token cache hits included, and should return the
	// same *Key for as long as the key has not changed (see
	// WithTokenCache).
	Key(ctx context.Context, kid string) (*Key, error)
}

// staticKeySet is a fixed set of keys.
type staticKeySet map[string]*Key

func (s staticKeySet) Key(_ context.Context, kid string) (*Key, error) {
	if k, ok := s[kid]; ok {
		return k, nil
	}
	return nil, fmt.Errorf("%w: kid %.64q", ErrUnknownKey, kid)
}

// Limits of the remote key set.
const (
	// maxJWKSBytes bounds a JWK Set response body.
	maxJWKSBytes = 1 << 20
	// maxKIDLen: a longer kid never triggers a refresh (the issuer's kids
	// are 43-character RFC 7638 thumbprints).
	maxKIDLen = 256
	// fetchTimeout bounds a fetch, discovery included.
	fetchTimeout = 10 * time.Second
)

// RemoteKeySet is a KeySet of a JWK Set (RFC 7517 §5) fetched over HTTP
// and cached; make one with NewRemoteKeySet. It is safe for concurrent
// use, and several Verifiers may share one.
//
// Nothing is fetched until a key is asked for. Keys are then looked up
// under a read lock. The set is refreshed when its Cache-Control lifetime
// has passed (in the background: callers go on with the cached keys
// meanwhile) and when a kid is unknown (the caller waits, as long as its
// context allows). Either way at most one fetch runs at a time, shared by
// every caller, and fetches start at most once per refresh interval, so
// tokens with made-up kids cannot turn into a flood of requests to the
// issuer. A failed fetch keeps the cached keys, but not forever: once the
// last successful fetch is older than the maximum staleness
// (WithMaxStaleness), a lookup waits for a fetch and, when that fails,
// fails with ErrKeySetStale.
type RemoteKeySet struct {
	// issuer: while url is "", the JWK Set's URL is discovered from the
	// issuer's metadata (New without a source of keys).
	issuer         string
	client         *http.Client
	now            func() time.Time
	floor          time.Duration // minimum time between fetch starts
	minTTL, maxTTL time.Duration // bounds on the Cache-Control lifetime
	maxStale       time.Duration // keys are refused this long after fetched
	hook           func(FetchEvent)

	mu  sync.RWMutex
	url string // of the JWK Set; "" until discovered
	// sharedSecret: the discovered metadata says that access tokens are
	// HS256, whose keys no JWK Set holds.
	sharedSecret bool
	keys         map[string]*Key
	expires      time.Time  // the cached keys are fresh until then
	fetched      time.Time  // end of the last successful fetch
	lastErr      error      // of the last fetch; nil when it succeeded
	lastTry      time.Time  // start of the last fetch
	etag         string     // of the cached set, for If-None-Match
	inflight     *fetchCall // the fetch in progress, or nil
}

var _ KeySet = (*RemoteKeySet)(nil)

// NewRemoteKeySet returns the RemoteKeySet of the JWK Set at jwksURL (the
// jwks_uri of the issuer's metadata; see Discover). It does no I/O: the
// first Key call fetches the set.
//
// It takes WithHTTPClient, WithClock, WithRefreshInterval,
// WithCacheBounds, WithMaxStaleness and WithFetchHook. Its errors wrap
// ErrInvalidConfig, ErrOptionConflict or ErrOptionNotApplicable (see
// Option).
func NewRemoteKeySet(jwksURL string, opts ...Option) (*RemoteKeySet, error) {
	o, errs := collect("NewRemoteKeySet", opts, optHTTPClient, optClock, optRefreshInterval,
		optCacheBounds, optMaxStaleness, optFetchHook)
	if err := checkURL(jwksURL); err != nil {
		errs = append(errs, fmt.Errorf("%w: the JWK Set URL %w", ErrInvalidConfig, err))
	}
	if len(errs) > 0 {
		return nil, joinConfig(errs)
	}
	return newRemoteKeySet(jwksURL, "", o), nil
}

// newRemoteKeySet returns the key set of the JWK Set at jwksURL, or, when
// jwksURL is "", at the jwks_uri of issuer's metadata.
func newRemoteKeySet(jwksURL, issuer string, o *options) *RemoteKeySet {
	return &RemoteKeySet{
		url:      jwksURL,
		issuer:   issuer,
		client:   o.client,
		now:      o.now,
		floor:    o.floor,
		minTTL:   o.minTTL,
		maxTTL:   o.maxTTL,
		maxStale: o.maxStale,
		hook:     o.hook,
	}
}

// FetchEvent is what a fetch hook (WithFetchHook) learns after each fetch
// of a document the package caches.
type FetchEvent struct {
	// URL is the JWK Set's URL, or, while it is not known because
	// discovering it failed, the issuer's.
	URL string
	// Err is why the fetch failed; nil when it succeeded (a 304 Not
	// Modified included).
	Err error
	// LastSuccess is when the keys were last fetched successfully: the
	// end of this fetch when Err is nil; zero when they never were.
	LastSuccess time.Time
	// Age is how long ago LastSuccess was; 0 when Err is nil or the keys
	// were never fetched. Alert well before it reaches the maximum
	// staleness.
	Age time.Duration
	// Stale reports that Age exceeds the maximum staleness
	// (WithMaxStaleness): until a fetch succeeds, verifications fail with
	// ErrKeySetStale.
	Stale bool
}

// fetchCall is one fetch that many callers wait for.
type fetchCall struct {
	done chan struct{}
	err  error // set before done is closed
}

// defaultTTL is the lifetime of a JWK Set served without max-age.
const defaultTTL = 5 * time.Minute

// Key returns the key whose kid is kid. A kid the cached set does not hold
// triggers a fetch, unless one started less than the refresh interval ago;
// Key waits for it, or for ctx to be done. The error wraps ErrUnknownKey
// and, when the set could not be fetched, says why. Past the maximum
// staleness Key waits for a fetch too, and fails with ErrKeySetStale when
// there is none or it fails. As long as the JWK Set publishes a key
// unchanged, Key returns the same *Key for it.
func (s *RemoteKeySet) Key(ctx context.Context, kid string) (*Key, error) {
	now := s.now()
	s.mu.RLock()
	k := s.keys[kid]
	expired := !now.Before(s.expires)
	tooOld := s.tooOld(now)
	s.mu.RUnlock()
	if k != nil && !tooOld {
		if expired {
			s.start(now) // refresh in the background; this request goes on
		}
		return k, nil
	}
	if k != nil {
		return s.refetchStale(ctx, now, kid)
	}
	if len(kid) > maxKIDLen {
		return nil, fmt.Errorf("%w: kid of %d bytes", ErrUnknownKey, len(kid))
	}
	if s.client == nil {
		return nil, fmt.Errorf("%w: kid %.64q (a RemoteKeySet must be made by NewRemoteKeySet)", ErrUnknownKey, kid)
	}
	call := s.start(now)
	if call == nil {
		return nil, fmt.Errorf("%w: kid %.64q (the key set was fetched less than %v ago)", ErrUnknownKey, kid, s.floor)
	}
	select {
	case <-call.done:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: kid %.64q: waiting for the key set: %w", ErrUnknownKey, kid, ctx.Err())
	}
	s.mu.RLock()
	k = s.keys[kid]
	s.mu.RUnlock()
	switch {
	case k != nil:
		return k, nil
	case call.err != nil:
		return nil, fmt.Errorf("%w: kid %.64q (fetching the key set failed: %v)", ErrUnknownKey, kid, call.err)
	}
	return nil, fmt.Errorf("%w: kid %.64q", ErrUnknownKey, kid)
}

// tooOld reports whether the cached keys were fetched longer than the
// maximum staleness before now; s.mu is held.
func (s *RemoteKeySet) tooOld(now time.Time) bool {
	return !s.fetched.IsZero() && now.Sub(s.fetched) > s.maxStale
}

// refetchStale returns the key kid once a fetch has made the cached keys,
// which are too old to be trusted, fresh again; it waits for that fetch,
// and fails closed with ErrKeySetStale when there is none or it fails.
func (s *RemoteKeySet) refetchStale(ctx context.Context, now time.Time, kid string) (*Key, error) {
	if call := s.start(now); call != nil {
		select {
		case <-call.done:
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: waiting for the key set: %w", ErrKeySetStale, ctx.Err())
		}
	}
	s.mu.RLock()
	k, fetched, lastErr := s.keys[kid], s.fetched, s.lastErr
	tooOld := s.tooOld(s.now())
	s.mu.RUnlock()
	switch {
	case tooOld:
		return nil, fmt.Errorf("%w: last fetched at %s, more than %v ago (the last fetch failed: %v)",
			ErrKeySetStale, fetched.UTC().Format(time.RFC3339), s.maxStale, lastErr)
	case k == nil:
		return nil, fmt.Errorf("%w: kid %.64q", ErrUnknownKey, kid)
	}
	return k, nil
}

// start returns the fetch in progress, or starts one when the floor allows
// it. It returns nil when no fetch runs and none may start yet.
func (s *RemoteKeySet) start(now time.Time) *fetchCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inflight != nil {
		return s.inflight
	}
	if !s.lastTry.IsZero() && now.Sub(s.lastTry) < s.floor {
		return nil
	}
	call := &fetchCall{done: make(chan struct{})}
	s.inflight, s.lastTry = call, now
	go func() {
		// The fetch is not tied to the context of the request that
		// started it: other requests wait for it too.
		ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
		defer cancel()
		call.err = s.fetch(ctx)
		s.mu.Lock()
		s.inflight, s.lastErr = nil, call.err
		ev := s.event(call.err)
		s.mu.Unlock()
		if s.hook != nil {
			s.hook(ev)
		}
		close(call.done)
	}()
	return call
}

// event describes the cache after a fetch that failed with err (nil: it
// succeeded); s.mu is held.
func (s *RemoteKeySet) event(err error) FetchEvent {
	ev := FetchEvent{URL: s.url, Err: err, LastSuccess: s.fetched}
	if ev.URL == "" {
		ev.URL = s.issuer
	}
	if err != nil && !s.fetched.IsZero() {
		now := s.now()
		ev.Age, ev.Stale = now.Sub(s.fetched), s.tooOld(now)
	}
	return ev
}

// fetch gets the JWK Set, after discovering its URL when that is not
// known yet, and replaces the cached keys with it; on failure the cached
// keys stay. Only the goroutine of start calls it, one at a time.
func (s *RemoteKeySet) fetch(ctx context.Context) error {
	s.mu.RLock()
	u, etag, sharedSecret := s.url, s.etag, s.sharedSecret
	if s.keys == nil {
		etag = ""
	}
	s.mu.RUnlock()
	if u == "" {
		md, err := discover(ctx, s.client, s.issuer)
		if err != nil {
			return err
		}
		u, sharedSecret = md.JWKSURI, md.SharedSecretRequired
		s.mu.Lock()
		s.url, s.sharedSecret = u, sharedSecret
		s.mu.Unlock()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	ttl := s.lifetime(resp.Header)
	switch resp.StatusCode {
	case http.StatusNotModified:
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.keys == nil {
			return fmt.Errorf("GET %s: 304 Not Modified, but no keys are cached", u)
		}
		now := s.now()
		s.expires, s.fetched = now.Add(ttl), now
		return nil
	case http.StatusOK:
	default:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("GET %s: status %d", u, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	if len(body) > maxJWKSBytes {
		return fmt.Errorf("GET %s: JWK Set larger than %d bytes", u, maxJWKSBytes)
	}
	keys, err := ParseJWKS(body)
	if err != nil && sharedSecret {
		return fmt.Errorf("GET %s: %w (the issuer's metadata says its access tokens are HS256: "+
			"verify them with NewHMACKey and WithKeys)", u, err)
	}
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	s.mu.RLock()
	old := s.keys
	s.mu.RUnlock()
	m := make(map[string]*Key, len(keys))
	for _, k := range keys {
		if o := old[k.id]; o != nil && o.equal(k) {
			k = o // the same *Key for the same key: cached tokens stay valid
		}
		m[k.id] = k
	}
	s.mu.Lock()
	now := s.now()
	s.keys, s.etag, s.expires, s.fetched = m, resp.Header.Get("ETag"), now.Add(ttl), now
	s.mu.Unlock()
	return nil
}

// lifetime is how long a response may be cached: its Cache-Control
// max-age less its Age (no-store and no-cache count as 0, no max-age as
// defaultTTL), within [minTTL, maxTTL].
func (s *RemoteKeySet) lifetime(h http.Header) time.Duration {
	ttl, noCache := defaultTTL, false
	for _, line := range h.Values("Cache-Control") {
		for _, d := range strings.Split(line, ",") {
			name, val, _ := strings.Cut(strings.TrimSpace(d), "=")
			switch strings.ToLower(name) {
			case "no-store", "no-cache":
				noCache = true
			case "max-age":
				if n, err := strconv.ParseInt(strings.Trim(val, `"`), 10, 64); err == nil && n >= 0 {
					ttl = time.Duration(min(n, int64(365*24*time.Hour/time.Second))) * time.Second
				}
			}
		}
	}
	if noCache {
		ttl = 0
	}
	if age, err := strconv.ParseInt(h.Get("Age"), 10, 64); err == nil && age > 0 {
		ttl -= time.Duration(min(age, int64(365*24*time.Hour/time.Second))) * time.Second
	}
	return max(s.minTTL, min(ttl, s.maxTTL))
}

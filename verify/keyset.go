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

// KeySet finds the public key that verifies a token.
type KeySet interface {
	// Key returns the key whose kid is kid, or an error wrapping
	// ErrUnknownKey when the set has none.
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
	// fetchTimeout bounds a background refresh.
	fetchTimeout = 10 * time.Second
)

// remoteKeySet is a JWK Set fetched over HTTP and cached. Keys are looked
// up under a read lock. The set is refreshed when its Cache-Control
// lifetime has passed (in the background: requests go on with the cached
// keys meanwhile) and when a token names an unknown kid (the request
// waits). Either way at most one fetch runs at a time, shared by every
// caller, and fetches start at most once per floor, so tokens with random
// kids cannot turn into a flood of requests to the issuer. A failed fetch
// keeps the cached keys.
type remoteKeySet struct {
	url            string
	client         *http.Client
	now            func() time.Time
	floor          time.Duration // minimum time between fetch starts
	minTTL, maxTTL time.Duration // bounds on the Cache-Control lifetime

	mu       sync.RWMutex
	keys     map[string]*Key
	expires  time.Time  // the cached keys are fresh until then
	lastTry  time.Time  // start of the last fetch
	etag     string     // of the cached set, for If-None-Match
	inflight *fetchCall // the fetch in progress, or nil
}

// fetchCall is one fetch that many callers wait for.
type fetchCall struct {
	done chan struct{}
	err  error // set before done is closed
}

// defaultTTL is the lifetime of a JWK Set served without max-age.
const defaultTTL = 5 * time.Minute

func (s *remoteKeySet) Key(ctx context.Context, kid string) (*Key, error) {
	now := s.now()
	s.mu.RLock()
	k := s.keys[kid]
	stale := !now.Before(s.expires)
	s.mu.RUnlock()
	if k != nil {
		if stale {
			s.start(now) // refresh in the background; this request goes on
		}
		return k, nil
	}
	if len(kid) > maxKIDLen {
		return nil, fmt.Errorf("%w: kid of %d bytes", ErrUnknownKey, len(kid))
	}
	call := s.start(now)
	if call == nil {
		return nil, fmt.Errorf("%w: kid %.64q (the key set was refreshed less than %v ago)", ErrUnknownKey, kid, s.floor)
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
		return nil, fmt.Errorf("%w: kid %.64q (refreshing the key set failed: %v)", ErrUnknownKey, kid, call.err)
	}
	return nil, fmt.Errorf("%w: kid %.64q", ErrUnknownKey, kid)
}

// start returns the fetch in progress, or starts one when the floor allows
// it. It returns nil when no fetch runs and none may start yet.
func (s *remoteKeySet) start(now time.Time) *fetchCall {
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
		s.inflight = nil
		s.mu.Unlock()
		close(call.done)
	}()
	return call
}

// fetch gets the JWK Set and replaces the cached keys with it; on failure
// the cached keys stay.
func (s *remoteKeySet) fetch(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	s.mu.RLock()
	if s.etag != "" && s.keys != nil {
		req.Header.Set("If-None-Match", s.etag)
	}
	s.mu.RUnlock()
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	ttl := s.lifetime(resp.Header)
	switch resp.StatusCode {
	case http.StatusNotModified:
		s.mu.Lock()
		if s.keys != nil {
			s.expires = s.now().Add(ttl)
		}
		s.mu.Unlock()
		return nil
	case http.StatusOK:
	default:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("GET %s: status %d", s.url, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return fmt.Errorf("GET %s: %w", s.url, err)
	}
	if len(body) > maxJWKSBytes {
		return fmt.Errorf("GET %s: JWK Set larger than %d bytes", s.url, maxJWKSBytes)
	}
	keys, err := ParseJWKS(body)
	if err != nil {
		return fmt.Errorf("GET %s: %w", s.url, err)
	}
	m := make(map[string]*Key, len(keys))
	for _, k := range keys {
		m[k.id] = k
	}
	s.mu.Lock()
	s.keys, s.etag, s.expires = m, resp.Header.Get("ETag"), s.now().Add(ttl)
	s.mu.Unlock()
	return nil
}

// lifetime is how long a response may be cached: its Cache-Control
// max-age less its Age (no-store and no-cache count as 0, no max-age as
// defaultTTL), within [minTTL, maxTTL].
func (s *remoteKeySet) lifetime(h http.Header) time.Duration {
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

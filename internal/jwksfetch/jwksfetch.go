// Package jwksfetch fetches and caches the JWK Sets (RFC 7517) that other
// parties publish: the jwks_uri of private_key_jwt clients (RFC 7591 §2)
// and the keys of trusted workload-identity issuers, found through OpenID
// Connect Discovery 1.0 (/.well-known/openid-configuration) when no
// jwks_uri is configured.
//
// The fetcher is built for URLs that an administrator wrote down, not for
// URLs from the internet at large: it follows no redirect, reads at most
// MaxBytes, gives up after Timeout, and speaks https only unless
// AllowInsecure. Any host is reachable (key servers often live inside the
// cluster) unless Policy.AllowedHosts narrows it.
//
// Sets are cached for the time their Cache-Control max-age (or Expires)
// says, clamped to [MinTTL, MaxTTL]. A kid missing from the cached set
// triggers a refetch at most once per RefetchInterval per URL, and
// concurrent fetches of one URL share a single request. When a refetch
// fails the last good set stays in use.
package jwksfetch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/issuer-oauth/issuer/internal/jwk"
)

// Limits of a fetch and of the cache.
const (
	// MaxBytes bounds a response body.
	MaxBytes = 64 << 10
	// Timeout bounds a whole fetch: connection, TLS, headers and body.
	Timeout = 5 * time.Second
	// MinTTL and MaxTTL clamp the caching time a response asks for;
	// DefaultTTL applies when it asks for none.
	MinTTL     = time.Minute
	MaxTTL     = 24 * time.Hour
	DefaultTTL = 5 * time.Minute
	// RefetchInterval is the least time between two fetches of one URL
	// caused by an unknown kid.
	RefetchInterval = time.Minute
	// maxURILen bounds a registered URL.
	maxURILen = 2048
)

// ErrFetch is wrapped by every failure to get a key set or a discovery
// document.
var ErrFetch = errors.New("jwksfetch")

// Policy says which URLs may be fetched.
type Policy struct {
	// AllowInsecure permits http:// URLs (development only).
	AllowInsecure bool
	// AllowedHosts, when not empty, are the only hosts (host names or
	// addresses, without port, compared without case) a client's jwks_uri
	// may name.
	AllowedHosts []string
}

// Check says what is wrong with a client's jwks_uri, or returns nil.
func (p Policy) Check(raw string) error {
	if len(raw) > maxURILen {
		return fmt.Errorf("longer than %d bytes", maxURILen)
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return errors.New("not an absolute URL such as https://keys.example.com/jwks.json")
	}
	if err := p.scheme(u); err != nil {
		return err
	}
	switch {
	case u.User != nil:
		return errors.New("must not contain user info (user@)")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return errors.New("must not have a fragment (#...)")
	}
	if len(p.AllowedHosts) > 0 && !slices.ContainsFunc(p.AllowedHosts, func(h string) bool { return strings.EqualFold(h, u.Hostname()) }) {
		return fmt.Errorf("host %q is not in jwks_uri_allowed_hosts (%s)", u.Hostname(), strings.Join(p.AllowedHosts, ", "))
	}
	return nil
}

func (p Policy) scheme(u *url.URL) error {
	switch {
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && p.AllowInsecure:
		return nil
	case u.Scheme == "http":
		return errors.New("must be https (http only with allow_insecure_jwks_uri, for development)")
	}
	return fmt.Errorf("scheme %q is not https", u.Scheme)
}

// Config configures a Fetcher.
type Config struct {
	// Policy is checked again before every fetch of a client's jwks_uri
	// (Keys with client true).
	Policy Policy
	// Client makes the requests; a client with the system's roots when
	// nil. Its Timeout and CheckRedirect are replaced.
	Client *http.Client
	// Now is the clock of the cache; time.Now when nil.
	Now func() time.Time
	// Logger receives a line per failed fetch.
	Logger *slog.Logger
}

// Fetcher fetches and caches key sets and discovery documents. It is safe
// for concurrent use; its constructor does no I/O.
type Fetcher struct {
	cfg    Config
	client *http.Client
	mu     sync.Mutex
	sets   map[string]*entry
}

// entry is the cache of one URL.
type entry struct {
	set       jwk.Set
	jwksURI   string // discovery documents: the jwks_uri found
	expires   time.Time
	fetched   time.Time     // when the last fetch began; zero before any
	inflight  chan struct{} // closed when the fetch in flight ends
	err       error         // the last fetch's error
	hasResult bool
}

// New returns a Fetcher.
func New(cfg Config) *Fetcher {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c := &http.Client{}
	if cfg.Client != nil {
		*c = *cfg.Client
	}
	c.Timeout = Timeout
	c.CheckRedirect = func(*http.Request, []*http.Request) error {
		return errors.New("redirects are not followed")
	}
	return &Fetcher{cfg: cfg, client: c, sets: make(map[string]*entry)}
}

// Keys returns the key set at uri: the cached one while fresh and, when
// kid is not empty and no key has it, a refetched one if the last fetch is
// RefetchInterval old. client says that uri is a client's jwks_uri, which
// Policy governs.
func (f *Fetcher) Keys(ctx context.Context, uri, kid string, client bool) (jwk.Set, error) {
	if client {
		if err := f.cfg.Policy.Check(uri); err != nil {
			return nil, fmt.Errorf("%w: jwks_uri %s: %v", ErrFetch, uri, err)
		}
	}
	e, err := f.get(ctx, "keys "+uri, func(e *entry) bool {
		return kid != "" && !slices.ContainsFunc(e.set, func(k jwk.Key) bool { return k.ID == kid })
	}, func(ctx context.Context, e *entry) (time.Duration, error) {
		body, ttl, err := f.fetch(ctx, uri)
		if err != nil {
			return 0, err
		}
		set, err := jwk.ParseRemote(body)
		if err != nil {
			return 0, fmt.Errorf("%w: %s: %v", ErrFetch, uri, err)
		}
		e.set = set
		return ttl, nil
	})
	if err != nil {
		return nil, err
	}
	return e.set, nil
}

// Discover returns the jwks_uri of the OpenID provider issuer, from its
// /.well-known/openid-configuration, whose issuer must be issuer itself.
func (f *Fetcher) Discover(ctx context.Context, issuer string) (string, error) {
	e, err := f.get(ctx, "discovery "+issuer, nil, func(ctx context.Context, e *entry) (time.Duration, error) {
		doc := strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
		body, ttl, err := f.fetch(ctx, doc)
		if err != nil {
			return 0, err
		}
		var md struct {
			Issuer  string `json:"issuer"`
			JWKSURI string `json:"jwks_uri"`
		}
		if err := json.Unmarshal(body, &md); err != nil {
			return 0, fmt.Errorf("%w: %s: not a JSON discovery document", ErrFetch, doc)
		}
		if md.Issuer != issuer {
			return 0, fmt.Errorf("%w: %s: issuer %q, want %q (OpenID Connect Discovery 1.0 §4.3)", ErrFetch, doc, md.Issuer, issuer)
		}
		u, err := url.Parse(md.JWKSURI)
		if err != nil || u.Host == "" {
			return 0, fmt.Errorf("%w: %s: jwks_uri %q is not an absolute URL", ErrFetch, doc, md.JWKSURI)
		}
		if err := f.cfg.Policy.scheme(u); err != nil {
			return 0, fmt.Errorf("%w: %s: jwks_uri %s %v", ErrFetch, doc, md.JWKSURI, err)
		}
		e.jwksURI = md.JWKSURI
		return ttl, nil
	})
	if err != nil {
		return "", err
	}
	return e.jwksURI, nil
}

// get returns the entry of key after a fetch when there is no fresh result
// or stale reports the cached one unfit (and the last fetch is
// RefetchInterval old). Concurrent callers share one fetch; the fetch runs
// on a context that the first caller's cancellation does not end.
func (f *Fetcher) get(ctx context.Context, key string, stale func(*entry) bool,
	fetch func(context.Context, *entry) (time.Duration, error)) (*entry, error) {
	f.mu.Lock()
	e := f.sets[key]
	if e == nil {
		e = &entry{}
		f.sets[key] = e
	}
	now := f.cfg.Now()
	if e.inflight != nil {
		wait := e.inflight
		f.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		f.mu.Lock()
		res, err := *e, e.err
		f.mu.Unlock()
		if !res.hasResult {
			return nil, err
		}
		return &res, nil
	}
	fresh := e.hasResult && now.Before(e.expires)
	unfit := e.hasResult && stale != nil && stale(e)
	if fresh && !(unfit && !now.Before(e.fetched.Add(RefetchInterval))) {
		res := *e
		f.mu.Unlock()
		return &res, nil
	}
	if !fresh && e.hasResult && now.Before(e.fetched.Add(RefetchInterval)) && e.err != nil {
		// A recent fetch failed: keep the last good result rather
		// than asking the server again at once.
		res := *e
		f.mu.Unlock()
		return &res, nil
	}
	done := make(chan struct{})
	e.inflight, e.fetched = done, now
	work := *e
	f.mu.Unlock()

	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), Timeout)
	ttl, err := fetch(fctx, &work)
	cancel()

	f.mu.Lock()
	e.inflight = nil
	e.err = err
	if err == nil {
		e.set, e.jwksURI, e.hasResult = work.set, work.jwksURI, true
		e.expires = f.cfg.Now().Add(ttl)
	} else {
		f.cfg.Logger.WarnContext(ctx, "key set fetch failed", "what", key, "err", err)
	}
	res := *e
	close(done)
	f.mu.Unlock()
	if res.hasResult {
		return &res, nil // the new result, or the last good one
	}
	return nil, err
}

// fetch GETs uri within the limits and returns the body and how long it
// may be cached.
func (f *Fetcher) fetch(ctx context.Context, uri string) ([]byte, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %s: %v", ErrFetch, uri, err)
	}
	if u := req.URL; f.cfg.Policy.scheme(u) != nil {
		return nil, 0, fmt.Errorf("%w: %s: %v", ErrFetch, uri, f.cfg.Policy.scheme(u))
	}
	req.Header.Set("Accept", "application/json, application/jwk-set+json")
	resp, err := f.client.Do(req)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, 0, fmt.Errorf("%w: %s: no answer within %s", ErrFetch, uri, Timeout)
		}
		return nil, 0, fmt.Errorf("%w: %s: %v", ErrFetch, uri, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("%w: %s: status %d", ErrFetch, uri, resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || !(mt == "application/json" || strings.HasSuffix(mt, "+json")) {
			return nil, 0, fmt.Errorf("%w: %s: content type %q is not JSON", ErrFetch, uri, ct)
		}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBytes+1))
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %s: reading the body: %v", ErrFetch, uri, err)
	}
	if len(body) > MaxBytes {
		return nil, 0, fmt.Errorf("%w: %s: the body is larger than %d bytes", ErrFetch, uri, MaxBytes)
	}
	return body, cacheTTL(resp.Header, f.cfg.Now()), nil
}

// cacheTTL is how long a response may be cached per its Cache-Control
// max-age (or Expires), clamped to [MinTTL, MaxTTL]; DefaultTTL when it
// says nothing.
func cacheTTL(h http.Header, now time.Time) time.Duration {
	ttl, found := DefaultTTL, false
	for _, d := range strings.Split(h.Get("Cache-Control"), ",") {
		d = strings.ToLower(strings.TrimSpace(d))
		switch {
		case d == "no-store" || d == "no-cache":
			ttl, found = 0, true
		case strings.HasPrefix(d, "max-age="):
			if n, err := strconv.ParseInt(strings.TrimPrefix(d, "max-age="), 10, 64); err == nil && !found {
				ttl, found = time.Duration(min(n, int64(MaxTTL/time.Second)))*time.Second, true
			}
		}
	}
	if !found {
		if t, err := http.ParseTime(h.Get("Expires")); err == nil {
			ttl = t.Sub(now)
		}
	}
	return min(max(ttl, MinTTL), MaxTTL)
}

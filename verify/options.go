package verify

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Defaults of the options.
const (
	// DefaultLeeway is the clock skew allowed when checking exp, nbf and
	// iat: a token is accepted until exp+5s, and from nbf-5s and iat-5s.
	// It covers the issuer's whole-second iat and small clock drift
	// between hosts. Set it with WithLeeway (0 is strict).
	DefaultLeeway = 5 * time.Second
	// DefaultMaxTokenSize is the longest token Verify parses, in bytes.
	DefaultMaxTokenSize = 8 << 10
	// DefaultRefreshInterval is the minimum time between two fetches of
	// the JWK Set.
	DefaultRefreshInterval = 10 * time.Second
	// DefaultMinCacheAge and DefaultMaxCacheAge bound the lifetime the
	// JWK Set's Cache-Control header gives the cached keys.
	DefaultMinCacheAge = time.Minute
	DefaultMaxCacheAge = time.Hour
	// DefaultHTTPTimeout is the timeout of the HTTP client used for
	// discovery and JWK Set fetches when WithHTTPClient is not given.
	DefaultHTTPTimeout = 10 * time.Second
	// DefaultMaxStaleness is how long after the last successful fetch of
	// the JWK Set its keys still verify tokens while every refresh fails;
	// then verification fails with ErrKeySetStale. Set it with
	// WithMaxStaleness.
	DefaultMaxStaleness = 24 * time.Hour
	// DefaultTokenCacheSize is how many verified tokens a Verifier
	// remembers (WithTokenCache).
	DefaultTokenCacheSize = 10000
)

// Option configures New, NewRemoteKeySet or Discover.
//
// The constructors check their options together, before anything else,
// and refuse a configuration that could be misread instead of guessing:
//
//   - each option may be given once (ErrOptionConflict);
//   - New takes at most one source of keys: WithJWKSURL, WithKeys or
//     WithKeySet (ErrOptionConflict);
//   - an option that would have no effect is refused
//     (ErrOptionNotApplicable): WithHTTPClient, WithRefreshInterval,
//     WithCacheBounds, WithMaxStaleness and WithFetchHook beside WithKeys
//     or WithKeySet, whose keys the Verifier does not fetch;
//     NewRemoteKeySet takes only WithHTTPClient, WithClock,
//     WithRefreshInterval, WithCacheBounds, WithMaxStaleness and
//     WithFetchHook; Discover only WithHTTPClient;
//   - invalid values, such as a negative duration, are ErrInvalidConfig.
//
// Every problem is reported, each wrapping one of these sentinels.
type Option func(*options)

// Names of the options, as the errors of the constructors spell them.
const (
	optJWKSURL         = "WithJWKSURL"
	optKeys            = "WithKeys"
	optKeySet          = "WithKeySet"
	optHTTPClient      = "WithHTTPClient"
	optLeeway          = "WithLeeway"
	optClock           = "WithClock"
	optRefreshInterval = "WithRefreshInterval"
	optCacheBounds     = "WithCacheBounds"
	optMaxTokenSize    = "WithMaxTokenSize"
	optRealm           = "WithRealm"
	optMaxStaleness    = "WithMaxStaleness"
	optFetchHook       = "WithFetchHook"
	optTokenCache      = "WithTokenCache"
	optStatusLists     = "WithStatusLists"
)

// options is what the Options given to a constructor say.
type options struct {
	given []string // names of the options, in the order given
	errs  []error  // invalid values, each wrapping ErrInvalidConfig

	jwksURL        string
	keys           staticKeySet
	keySet         KeySet
	client         *http.Client
	leeway         time.Duration
	now            func() time.Time
	floor          time.Duration
	minTTL, maxTTL time.Duration
	maxSize        int
	realm          *string
	maxStale       time.Duration
	hook           func(FetchEvent)
	cacheSize      int
	statusLists    *StatusListConfig
}

func (o *options) set(name string) { o.given = append(o.given, name) }

func (o *options) has(name string) bool { return slices.Contains(o.given, name) }

func (o *options) invalid(format string, args ...any) {
	o.errs = append(o.errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
}

// collect applies opts over the defaults and checks what every
// constructor checks: invalid values, options given twice, and options
// that who does not take (accepted lists those it does).
func collect(who string, opts []Option, accepted ...string) (*options, []error) {
	o := &options{
		leeway:    DefaultLeeway,
		now:       time.Now,
		floor:     DefaultRefreshInterval,
		minTTL:    DefaultMinCacheAge,
		maxTTL:    DefaultMaxCacheAge,
		maxSize:   DefaultMaxTokenSize,
		maxStale:  DefaultMaxStaleness,
		cacheSize: DefaultTokenCacheSize,
	}
	for _, opt := range opts {
		if opt == nil {
			o.invalid("%s was given a nil Option", who)
			continue
		}
		opt(o)
	}
	errs := o.errs
	var twice []string
	for i, name := range o.given {
		switch {
		case !slices.Contains(o.given[:i], name):
			if !slices.Contains(accepted, name) {
				errs = append(errs, fmt.Errorf("%w: %s does not take %s", ErrOptionNotApplicable, who, name))
			}
		case !slices.Contains(twice, name):
			twice = append(twice, name)
			errs = append(errs, fmt.Errorf("%w: %s given more than once", ErrOptionConflict, name))
		}
	}
	o.client = withRedirectPolicy(o.client)
	return o, errs
}

// checkURL checks that u is an absolute http or https URL.
func checkURL(u string) error {
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
		return fmt.Errorf("%q is not an absolute http or https URL", u)
	}
	return nil
}

// WithJWKSURL makes New fetch the keys from the JWK Set at url (RFC 7517
// §5) instead of discovering its jwks_uri from the issuer's metadata. Like
// discovered keys, they are fetched at the first verification and cached
// (see RemoteKeySet). It is a source of keys: it cannot go with WithKeys
// or WithKeySet.
func WithJWKSURL(url string) Option {
	return func(o *options) {
		o.set(optJWKSURL)
		if err := checkURL(url); err != nil {
			o.invalid("%s: %w", optJWKSURL, err)
		}
		o.jwksURL = url
	}
}

// WithKeys makes New verify with these keys only; nothing is fetched. It
// is the only way to give a Verifier an HS256 key (NewHMACKey). It is a
// source of keys: it cannot go with WithJWKSURL or WithKeySet, nor with
// the options about fetching keys.
func WithKeys(keys ...*Key) Option {
	return func(o *options) {
		o.set(optKeys)
		if len(keys) == 0 {
			o.invalid("%s needs at least one key", optKeys)
		}
		m := make(staticKeySet, len(keys))
		for i, k := range keys {
			switch {
			case k == nil:
				o.invalid("%s: key %d is nil", optKeys, i)
				continue
			case m[k.id] != nil:
				o.invalid("%s: two keys have kid %.64q", optKeys, k.id)
			}
			m[k.id] = k
		}
		o.keys = m
	}
}

// WithKeySet makes New verify with the keys ks provides, such as a
// RemoteKeySet shared by several Verifiers. It is a source of keys: it
// cannot go with WithJWKSURL or WithKeys, nor with the options about
// fetching keys (give those to NewRemoteKeySet). A Verifier never takes an
// HS256 key from a KeySet.
func WithKeySet(ks KeySet) Option {
	return func(o *options) {
		o.set(optKeySet)
		if ks == nil {
			o.invalid("%s: the KeySet is nil", optKeySet)
		}
		o.keySet = ks
	}
}

// WithHTTPClient sets the client of discovery and JWK Set fetches. The
// default has a timeout of DefaultHTTPTimeout and the redirect policy of
// CheckRedirect: a redirect is followed only to the same host and port,
// never from https to http. A client whose CheckRedirect is nil gets that
// policy too: the constructor keeps a copy of c with CheckRedirect set (c
// itself is not changed, and later changes to c do not reach the copy,
// but the Transport, and so its connections, is shared). A client with
// its own CheckRedirect keeps it.
func WithHTTPClient(c *http.Client) Option {
	return func(o *options) {
		o.set(optHTTPClient)
		if c == nil {
			o.invalid("%s: the client is nil", optHTTPClient)
		}
		o.client = c
	}
}

// WithLeeway sets the clock skew allowed on exp, nbf and iat
// (DefaultLeeway when not set; 0 is strict). It must not be negative.
func WithLeeway(d time.Duration) Option {
	return func(o *options) {
		o.set(optLeeway)
		if d < 0 {
			o.invalid("%s(%v): the leeway must not be negative", optLeeway, d)
		}
		o.leeway = d
	}
}

// WithClock sets the clock (time.Now when not set) of the time checks and
// of the cache of the keys New fetches (a RemoteKeySet given with
// WithKeySet has its own: give it to NewRemoteKeySet).
func WithClock(now func() time.Time) Option {
	return func(o *options) {
		o.set(optClock)
		if now == nil {
			o.invalid("%s: the clock is nil", optClock)
			return
		}
		o.now = now
	}
}

// WithRefreshInterval sets the minimum time between two fetches of the JWK
// Set (DefaultRefreshInterval when not set; 0 lets only the sharing of one
// fetch in flight limit them). A token with an unknown kid triggers a
// fetch only when the last one started at least d ago; other such tokens
// fail with ErrUnknownKey without a fetch.
func WithRefreshInterval(d time.Duration) Option {
	return func(o *options) {
		o.set(optRefreshInterval)
		if d < 0 {
			o.invalid("%s(%v): the interval must not be negative", optRefreshInterval, d)
		}
		o.floor = d
	}
}

// WithCacheBounds bounds the lifetime of the cached JWK Set: its
// Cache-Control max-age is raised to lo and lowered to hi
// (DefaultMinCacheAge and DefaultMaxCacheAge when not set). It needs
// 0 <= lo <= hi.
func WithCacheBounds(lo, hi time.Duration) Option {
	return func(o *options) {
		o.set(optCacheBounds)
		if lo < 0 || hi < lo {
			o.invalid("%s(%v, %v): the bounds must be 0 <= lo <= hi", optCacheBounds, lo, hi)
		}
		o.minTTL, o.maxTTL = lo, hi
	}
}

// WithMaxTokenSize sets the longest token, in bytes, that Verify parses
// (DefaultMaxTokenSize when not set). It must be positive.
func WithMaxTokenSize(n int) Option {
	return func(o *options) {
		o.set(optMaxTokenSize)
		if n <= 0 {
			o.invalid("%s(%d): the size must be positive", optMaxTokenSize, n)
		}
		o.maxSize = n
	}
}

// WithRealm sets the realm of the WWW-Authenticate challenges Middleware
// sends (the audience when not set; "" omits it). It must be printable
// ASCII without '"' or '\' (RFC 6750 §3).
func WithRealm(realm string) Option {
	return func(o *options) {
		o.set(optRealm)
		if !quotable(realm) {
			o.invalid(`%s(%.64q): the realm must be printable ASCII without '"' or '\'`, optRealm, realm)
		}
		o.realm = &realm
	}
}

// WithMaxStaleness sets how long after the last successful fetch of the
// JWK Set (a 304 Not Modified counts) its keys may still verify tokens
// while refreshing it fails (DefaultMaxStaleness when not set). Past that,
// a verification that needs the keys first waits for a fetch (at most one
// per refresh interval, shared as usual) and, when that fails too, fails
// with ErrKeySetStale: a resource API cut off from its issuer stops
// accepting tokens signed by keys the issuer may have revoked meanwhile,
// instead of accepting them forever. d must be positive; keep it well
// above the cache lifetime (WithCacheBounds), which is when refreshing
// starts.
func WithMaxStaleness(d time.Duration) Option {
	return func(o *options) {
		o.set(optMaxStaleness)
		if d <= 0 {
			o.invalid("%s(%v): the staleness must be positive", optMaxStaleness, d)
		}
		o.maxStale = d
	}
}

// WithFetchHook sets a function called after every fetch of the JWK Set
// (with the discovery of its URL when it is discovered), successful or
// not, with what it means for the cached keys: wire it to monitoring, to
// alert before the keys go stale (see FetchEvent and WithMaxStaleness).
// It is called from the goroutine that fetches, before the requests
// waiting for that fetch go on, so it must return quickly; it is never
// called on the path of a verification that uses cached keys.
func WithFetchHook(hook func(FetchEvent)) Option {
	return func(o *options) {
		o.set(optFetchHook)
		if hook == nil {
			o.invalid("%s: the hook is nil", optFetchHook)
		}
		o.hook = hook
	}
}

// WithTokenCache sets how many verified tokens the Verifier remembers
// (DefaultTokenCacheSize when not set); 0 turns the cache off.
//
// Clients use one access token for its whole lifetime, so most requests
// present a token already verified. The cache keeps the outcome of each
// successful verification, keyed by the exact token (another token, even
// one differing in a single bit, never hits it), and answers the next
// presentation of that token without parsing it or checking its
// signature again. It still checks, every time, what can change between
// two presentations: exp, nbf and iat against the clock (an entry is never
// served past exp), and that the token's kid still names the same key in
// the key set, so a key removed from the JWK Set (seen at a refetch) or a
// key set past its maximum staleness fails the cached tokens it signed
// too. Middleware checks scopes on every request, hit or not. Failed
// verifications are never cached.
//
// When full, the cache drops a token not used recently (CLOCK); a token
// seen once is the first to go, so a stream of new tokens cannot push out
// the ones in use. Each entry holds the token and its claims: budget about
// the token's size plus 300 bytes (some 10 MB for 10 000 entries of 1 KB
// tokens). CacheStats reports hits, misses and evictions. A KeySet given
// with WithKeySet should return the same *Key for a key that has not
// changed (RemoteKeySet and WithKeys do): a different one makes the
// cached tokens it signed verify in full again.
func WithTokenCache(size int) Option {
	return func(o *options) {
		o.set(optTokenCache)
		if size < 0 {
			o.invalid("%s(%d): the size must not be negative (0 turns the cache off)", optTokenCache, size)
		}
		o.cacheSize = size
	}
}

// keyFetchOptions are the options about fetching keys over HTTP.
var keyFetchOptions = []string{optHTTPClient, optRefreshInterval, optCacheBounds, optMaxStaleness, optFetchHook}

// checkSources checks the options New takes about where keys come from.
func (o *options) checkSources() []error {
	var errs, sources []string
	for _, name := range o.given {
		switch name {
		case optJWKSURL, optKeys, optKeySet:
			if !slices.Contains(sources, name) {
				sources = append(sources, name)
			}
		}
	}
	if len(sources) > 1 {
		return []error{fmt.Errorf("%w: %s are %d sources of keys; give one",
			ErrOptionConflict, strings.Join(sources, " and "), len(sources))}
	}
	if len(sources) == 0 || sources[0] == optJWKSURL {
		return nil
	}
	for _, name := range keyFetchOptions {
		if o.has(name) {
			errs = append(errs, name)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	hint := "keys given with WithKeys are never fetched"
	if sources[0] == optKeySet {
		hint = "the KeySet fetches its own keys: give these options to NewRemoteKeySet"
	}
	return []error{fmt.Errorf("%w: %s beside %s (%s)",
		ErrOptionNotApplicable, strings.Join(errs, ", "), sources[0], hint)}
}

// joinConfig returns nil when errs is empty, else one error holding them.
func joinConfig(errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	return errors.Join(errs...)
}

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
//     (ErrOptionNotApplicable): WithHTTPClient, WithRefreshInterval and
//     WithCacheBounds beside WithKeys or WithKeySet, whose keys the
//     Verifier does not fetch; NewRemoteKeySet takes only WithHTTPClient,
//     WithClock, WithRefreshInterval and WithCacheBounds; Discover only
//     WithHTTPClient;
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
		leeway:  DefaultLeeway,
		now:     time.Now,
		floor:   DefaultRefreshInterval,
		minTTL:  DefaultMinCacheAge,
		maxTTL:  DefaultMaxCacheAge,
		maxSize: DefaultMaxTokenSize,
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
	if o.client == nil {
		o.client = &http.Client{Timeout: DefaultHTTPTimeout}
	}
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
// default has a timeout of DefaultHTTPTimeout.
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

// keyFetchOptions are the options about fetching keys over HTTP.
var keyFetchOptions = []string{optHTTPClient, optRefreshInterval, optCacheBounds}

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

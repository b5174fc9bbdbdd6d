package verify

import "errors"

// Sentinel errors. Every error Verify returns wraps exactly one of the
// token errors below, so callers can tell failures apart with errors.Is:
//
//	if errors.Is(err, verify.ErrExpired) { ... }
//
// The wrapped message adds detail for logs; it may quote (truncated) values
// taken from the token, so do not echo it to clients verbatim. Middleware
// answers with fixed descriptions instead.
var (
	// ErrMalformed: the token is not a compact JWS with a JSON object
	// header and claims set (bad segments, base64, JSON, claim types, or
	// duplicate member names).
	ErrMalformed = errors.New("verify: malformed token")
	// ErrTooLarge: the token is longer than the size limit.
	ErrTooLarge = errors.New("verify: token too large")
	// ErrHeader: the token carries a header this package refuses: jku, x5u,
	// jwk or x5c (keys are never taken from the token) or crit (no
	// extension is understood).
	ErrHeader = errors.New("verify: forbidden header")
	// ErrType: the typ header is not at+jwt (RFC 9068 §4), as with a
	// refresh token or an ID token.
	ErrType = errors.New("verify: not an access token")
	// ErrAlgorithm: the token's alg is not an asymmetric algorithm this
	// package verifies, or not the algorithm of the key its kid names.
	ErrAlgorithm = errors.New("verify: wrong algorithm")
	// ErrUnknownKey: no key of the issuer has the token's kid, even after
	// refreshing the key set (when a refresh was allowed), or the key set
	// could not be had at all (the message says why).
	ErrUnknownKey = errors.New("verify: unknown signing key")
	// ErrKeySetStale: the issuer's keys were last fetched longer ago than
	// the maximum staleness (WithMaxStaleness), and fetching them again
	// failed (the message says why). Verification fails closed rather than
	// trust keys the issuer may have revoked since; it resumes as soon as
	// a fetch succeeds.
	ErrKeySetStale = errors.New("verify: key set too stale")
	// ErrSignature: the signature does not verify with the issuer's key.
	ErrSignature = errors.New("verify: invalid signature")
	// ErrIssuer: the iss claim is not the issuer.
	ErrIssuer = errors.New("verify: wrong issuer")
	// ErrAudience: the aud claim does not contain the audience.
	ErrAudience = errors.New("verify: wrong audience")
	// ErrExpired: the token has expired (exp, plus the leeway, has passed).
	ErrExpired = errors.New("verify: token expired")
	// ErrNotYetValid: nbf or iat lies in the future (beyond the leeway).
	ErrNotYetValid = errors.New("verify: token not valid yet")
	// ErrMissingClaim: a claim RFC 9068 requires (iss, sub, aud, exp, iat,
	// jti, client_id) is absent or empty.
	ErrMissingClaim = errors.New("verify: required claim missing")

	// ErrDiscovery: Discover could not read the issuer's RFC 8414
	// metadata, or the metadata is unusable (another issuer, no valid
	// jwks_uri).
	ErrDiscovery = errors.New("verify: discovery failed")
)

// Configuration errors. New, NewRemoteKeySet and Discover check their
// arguments and options together, before any I/O, and report every
// problem; each problem wraps exactly one of these.
var (
	// ErrInvalidConfig: an argument or an option's value is invalid (an
	// empty audience, a negative duration, a realm that cannot be quoted,
	// a JWK Set URL that is not http or https, …).
	ErrInvalidConfig = errors.New("verify: invalid configuration")
	// ErrOptionConflict: two options contradict each other (two sources of
	// keys, such as WithKeys and WithJWKSURL), or an option is given twice.
	ErrOptionConflict = errors.New("verify: conflicting options")
	// ErrOptionNotApplicable: an option would have no effect, so it is
	// refused rather than ignored: WithHTTPClient, WithRefreshInterval,
	// WithCacheBounds, WithMaxStaleness or WithFetchHook beside WithKeys or
	// WithKeySet (whose keys are not fetched by the Verifier), or an option the constructor does not take
	// (WithLeeway given to NewRemoteKeySet, say).
	ErrOptionNotApplicable = errors.New("verify: option does not apply")
)

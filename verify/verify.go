package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Verifier verifies RFC 9068 access tokens of one issuer for one audience.
// It is safe for concurrent use.
type Verifier struct {
	issuer   string
	audience string
	keys     KeySet
	// hmac: the keys, given with WithKeys, include an HS256 key.
	hmac    bool
	leeway  time.Duration
	now     func() time.Time
	maxSize int
	realm   string
	parser  *jwt.Parser
	cache   *tokenCache  // nil when off
	status  *statusLists // WithStatusLists; nil without
}

// New returns a Verifier of the access tokens that issuer issues for
// audience. It does no I/O: keys are fetched when a token first needs
// them, so New does not depend on the issuer being up, and it fails only
// when the configuration is wrong.
//
// Where the keys come from is set by at most one option:
//
//   - none: the jwks_uri is discovered from the issuer's RFC 8414
//     metadata (as Discover does; issuer must be an http or https URL) at
//     the first verification, and the JWK Set is fetched and cached as
//     RemoteKeySet describes;
//   - WithJWKSURL: the JWK Set at that URL, fetched and cached the same
//     way, without discovery;
//   - WithKeySet: the keys of any KeySet, such as a RemoteKeySet shared
//     by several Verifiers;
//   - WithKeys: fixed keys, never fetched; the only way to verify HS256.
//
// While the keys cannot be had (the issuer is not up yet, say), Verify
// fails with ErrUnknownKey, whose message says why, and the next fetch is
// tried after the refresh interval. Fetched keys that could not be
// refreshed for longer than the maximum staleness (WithMaxStaleness) make
// Verify fail with ErrKeySetStale.
//
// The errors of New wrap ErrInvalidConfig, ErrOptionConflict or
// ErrOptionNotApplicable (see Option).
func New(issuer, audience string, opts ...Option) (*Verifier, error) {
	o, errs := collect("New", opts, optJWKSURL, optKeys, optKeySet, optHTTPClient, optLeeway,
		optClock, optRefreshInterval, optCacheBounds, optMaxTokenSize, optRealm, optMaxStaleness, optFetchHook,
		optTokenCache, optStatusLists)
	if issuer == "" {
		errs = append(errs, fmt.Errorf("%w: the issuer is empty", ErrInvalidConfig))
	}
	if audience == "" {
		errs = append(errs, fmt.Errorf("%w: the audience is empty", ErrInvalidConfig))
	}
	errs = append(errs, o.checkSources()...)
	discover := o.keys == nil && o.keySet == nil && o.jwksURL == ""
	if discover && issuer != "" {
		if _, err := metadataURLs(issuer); err != nil {
			errs = append(errs, fmt.Errorf("%w: discovering the keys: %w", ErrInvalidConfig, err))
		}
	}
	realm := audience
	if o.realm != nil {
		realm = *o.realm
	} else if !quotable(realm) {
		errs = append(errs, fmt.Errorf(`%w: the audience %.64q cannot be the realm (printable ASCII without '"' or '\'): give WithRealm`, ErrInvalidConfig, audience))
	}
	if len(errs) > 0 {
		return nil, joinConfig(errs)
	}
	v := &Verifier{
		issuer:   issuer,
		audience: audience,
		leeway:   o.leeway,
		now:      o.now,
		maxSize:  o.maxSize,
		realm:    realm,
		// Claims are checked in the key function, before the signature;
		// the key, not the token, decides the algorithm (see keyFor).
		parser: jwt.NewParser(jwt.WithoutClaimsValidation(), jwt.WithStrictDecoding()),
	}
	if o.cacheSize > 0 {
		v.cache = newTokenCache(o.cacheSize)
	}
	switch {
	case o.keys != nil:
		v.keys = o.keys
		for _, k := range o.keys {
			v.hmac = v.hmac || k.hmac()
		}
	case o.keySet != nil:
		v.keys = o.keySet
	default:
		// WithJWKSURL, or discovery from the issuer when the URL is "".
		v.keys = newRemoteKeySet(o.jwksURL, issuer, o)
	}
	if o.statusLists != nil {
		var err error
		if v.status, err = newStatusLists(*o.statusLists, v, o.client); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// Issuer returns the issuer whose tokens v accepts.
func (v *Verifier) Issuer() string { return v.issuer }

// Audience returns the audience v requires.
func (v *Verifier) Audience() string { return v.audience }

// Claims are the verified claims of an access token (RFC 9068 §2.2).
type Claims struct {
	// Issuer is the iss claim.
	Issuer string
	// Subject is the sub claim: for the client-credentials grant, the
	// client_id.
	Subject string
	// ClientID is the client_id claim: the client the token was issued to.
	ClientID string
	// Audience is the aud claim; it contains the Verifier's audience.
	Audience []string
	// Scopes are the space-separated values of the scope claim.
	Scopes []string
	// Expiry is the exp claim.
	Expiry time.Time
	// IssuedAt is the iat claim.
	IssuedAt time.Time
	// NotBefore is the nbf claim; zero when the token has none.
	NotBefore time.Time
	// ID is the jti claim.
	ID string
	// JKT is the cnf.jkt claim of a DPoP-bound token (RFC 9449 §6.1):
	// the thumbprint of the key whose proofs must go with it; "" for a
	// bearer token.
	JKT string

	payload string // base64url claims segment, for Decode
}

// HasScope reports whether the token was granted scope.
func (c *Claims) HasScope(scope string) bool { return slices.Contains(c.Scopes, scope) }

// Decode unmarshals the token's whole claims set, including claims that
// Claims has no field for, into v (a struct pointer, or a
// *map[string]any for the raw claims).
func (c *Claims) Decode(v any) error {
	b, err := b64.DecodeString(c.payload)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return json.Unmarshal(b, v)
}

// accessClaims is what the parser decodes the claims set into. Its types
// are stricter than jwt.RegisteredClaims: a NumericDate must be a JSON
// number (not a string holding one) and aud a string or an array of
// strings. The jwt.Claims methods exist only to satisfy the parser, whose
// claim validation is off: checkClaims validates.
type accessClaims struct {
	Issuer    string      `json:"iss"`
	Subject   string      `json:"sub"`
	Audience  audience    `json:"aud"`
	ExpiresAt numericDate `json:"exp"`
	NotBefore numericDate `json:"nbf"`
	IssuedAt  numericDate `json:"iat"`
	ID        string      `json:"jti"`
	ClientID  string      `json:"client_id"`
	Scope     string      `json:"scope"`
	Cnf       struct {
		JKT string `json:"jkt"`
	} `json:"cnf"`
	// Status is decoded only by WithStatusLists: a status claim of
	// another shape is no concern of a Verifier without it.
	Status json.RawMessage `json:"status"`
}

var _ jwt.Claims = (*accessClaims)(nil)

func (c *accessClaims) GetExpirationTime() (*jwt.NumericDate, error) { return c.ExpiresAt.jwt(), nil }
func (c *accessClaims) GetIssuedAt() (*jwt.NumericDate, error)       { return c.IssuedAt.jwt(), nil }
func (c *accessClaims) GetNotBefore() (*jwt.NumericDate, error)      { return c.NotBefore.jwt(), nil }
func (c *accessClaims) GetIssuer() (string, error)                   { return c.Issuer, nil }
func (c *accessClaims) GetSubject() (string, error)                  { return c.Subject, nil }
func (c *accessClaims) GetAudience() (jwt.ClaimStrings, error) {
	return jwt.ClaimStrings(c.Audience), nil
}

// numericDate is a JWT NumericDate (RFC 7519 §2); null counts as absent.
type numericDate struct {
	time.Time
	set bool
}

// maxNumericDate bounds NumericDates (year 5138), far inside time.Time.
const maxNumericDate = 1e11

func (d *numericDate) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*d = numericDate{}
		return nil
	}
	if len(b) == 0 || (b[0] != '-' && (b[0] < '0' || b[0] > '9')) {
		return errors.New("a NumericDate must be a JSON number")
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.Abs(f) > maxNumericDate {
		return fmt.Errorf("NumericDate %.32s out of range", b)
	}
	sec, frac := math.Modf(f)
	*d = numericDate{Time: time.Unix(int64(sec), int64(frac*1e9)), set: true}
	return nil
}

func (d numericDate) jwt() *jwt.NumericDate {
	if !d.set {
		return nil
	}
	return &jwt.NumericDate{Time: d.Time}
}

// audience is the aud claim: one string or an array of strings.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	switch {
	case string(b) == "null":
		*a = nil
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = audience{s}
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return errors.New("aud must be a string or an array of strings")
	}
	*a = l
	return nil
}

// Verify verifies the access token raw and returns its claims. It follows
// RFC 9068 §4 and RFC 8725:
//
//   - the token is at most the size limit, a compact JWS whose header and
//     claims set are JSON objects without duplicate member names;
//   - typ is "at+jwt" or "application/at+jwt" (so refresh and ID tokens
//     are refused); jku, x5u, jwk, x5c and crit headers are refused;
//   - iss is the issuer, aud contains the audience, exp has not passed,
//     nbf and iat are not in the future (each within the leeway); iss, sub,
//     aud, exp, iat, jti and client_id are present;
//   - the key is the issuer's key named by kid; its algorithm, never the
//     token's alg header, decides how the signature is checked, and a
//     token whose alg differs is refused.
//
// The cheap checks run before the key lookup and the signature check. ctx
// bounds the wait for a key set refresh when kid is unknown.
//
// A token verified before is answered from the token cache (see
// WithTokenCache) when its entry passes the checks that can change
// between two presentations of the same token: exp, nbf and iat against
// the clock, and its kid still naming the same key in the key set (which
// is not too stale); the result is the same as a full verification's.
// Each call returns its own copy of the claims.
//
// A DPoP-bound token (with cnf.jkt) is refused with ErrDPoPBound: it is
// valid only with a proof of its key (see DPoPVerifier).
func (v *Verifier) Verify(ctx context.Context, raw string) (*Claims, error) {
	c, err := v.verify(ctx, raw)
	if err == nil && c.JKT != "" {
		return nil, fmt.Errorf("%w: presented without a DPoP proof", ErrDPoPBound)
	}
	return c, err
}

// verify is Verify without the refusal of DPoP-bound tokens.
func (v *Verifier) verify(ctx context.Context, raw string) (*Claims, error) {
	if len(raw) > v.maxSize {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, len(raw), v.maxSize)
	}
	e, err := v.verified(ctx, raw)
	if err != nil {
		return nil, err
	}
	// Checks that depend on state outside the token belong here, so that
	// they run on cache hits and full verifications alike; checks that
	// depend on the request (scope, a DPoP proof) belong in Middleware,
	// after Verify.
	if v.status != nil {
		if err := v.status.check(ctx, e.status); err != nil {
			return nil, err
		}
	}
	if v.cache == nil {
		return &e.claims, nil // nobody else holds them
	}
	return e.claims.clone(), nil
}

// verified returns the verification of raw: the cached one when it is
// still good (see reusable), else a full verification, which is then
// cached. Failures are never cached.
func (v *Verifier) verified(ctx context.Context, raw string) (*verification, error) {
	if v.cache == nil {
		return v.verifyToken(ctx, raw)
	}
	if e := v.cache.get(raw); e != nil {
		reuse, err := v.reusable(ctx, e)
		if reuse {
			v.cache.hits.Add(1)
			return e, nil
		}
		v.cache.remove(e)
		if err != nil {
			v.cache.misses.Add(1)
			return nil, err
		}
	}
	v.cache.misses.Add(1)
	e, err := v.verifyToken(ctx, raw)
	if err != nil {
		return nil, err
	}
	v.cache.put(e, v.now())
	return e, nil
}

// reusable runs, on a cached verification, the checks whose outcome can
// change between two presentations of one token (the full verification
// runs them too): the time checks, and the key lookup, which fails once
// the key set no longer holds the key (rotated out or revoked, as seen at
// a refetch) or is too stale to be trusted. It reports false with the
// error a full verification would return, or false and no error when the
// kid now names another key, which only a full verification can judge.
func (v *Verifier) reusable(ctx context.Context, e *verification) (bool, error) {
	c := &e.claims
	if err := v.checkTime(c.Expiry, c.IssuedAt, c.NotBefore, e.hasNBF); err != nil {
		return false, err
	}
	k, err := v.keys.Key(ctx, e.kid)
	if err != nil {
		return false, err
	}
	return k == e.key, nil
}

// verifyToken verifies raw in full, as Verify documents.
func (v *Verifier) verifyToken(ctx context.Context, raw string) (*verification, error) {
	var (
		dec    accessClaims
		key    *Key   // that verified the signature
		kid    string // that named it
		reason error  // why the key function refused the token
	)
	_, err := v.parser.ParseWithClaims(raw, &dec, func(t *jwt.Token) (any, error) {
		k, err := v.keyFor(ctx, raw, t, &dec)
		if err != nil {
			reason = err
			return nil, err
		}
		key = k
		kid, _ = t.Header["kid"].(string)
		return k.verifyKey(), nil
	})
	switch {
	case reason != nil:
		return nil, reason
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return nil, fmt.Errorf("%w: %w", ErrSignature, err)
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		// Raised before the key function only for an absent or
		// unknown alg.
		return nil, fmt.Errorf("%w: %w", ErrAlgorithm, err)
	case err != nil:
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	e := &verification{token: raw, kid: kid, key: key, until: dec.ExpiresAt.Add(v.leeway), hasNBF: dec.NotBefore.set}
	c := &e.claims
	if v.status != nil {
		if e.status, err = parseStatus(dec.Status); err != nil {
			return nil, err
		}
	}
	_, rest, _ := strings.Cut(raw, ".")
	c.payload, _, _ = strings.Cut(rest, ".")
	c.Issuer, c.Subject, c.ClientID, c.ID = dec.Issuer, dec.Subject, dec.ClientID, dec.ID
	c.Audience, c.JKT = dec.Audience, dec.Cnf.JKT
	c.Scopes = strings.Fields(dec.Scope)
	c.Expiry, c.IssuedAt, c.NotBefore = dec.ExpiresAt.Time, dec.IssuedAt.Time, dec.NotBefore.Time
	return e, nil
}

// forbiddenHeaders are never used: keys come from the issuer's key set
// only (RFC 8725 §3.10), and no critical extension is understood.
var forbiddenHeaders = [...]string{"jku", "x5u", "jwk", "x5c", "crit"}

// keyFor checks the parsed but unverified token and returns the key that
// must have signed it.
func (v *Verifier) keyFor(ctx context.Context, raw string, t *jwt.Token, c *accessClaims) (*Key, error) {
	if err := checkUnique(raw); err != nil {
		return nil, err
	}
	typ, _ := t.Header["typ"].(string)
	if !strings.EqualFold(typ, "at+jwt") && !strings.EqualFold(typ, "application/at+jwt") {
		return nil, fmt.Errorf("%w: typ %.32q", ErrType, typ)
	}
	for _, h := range forbiddenHeaders {
		if _, ok := t.Header[h]; ok {
			return nil, fmt.Errorf("%w: %s", ErrHeader, h)
		}
	}
	alg := t.Method.Alg()
	if alg == "HS256" && !v.hmac {
		return nil, fmt.Errorf("%w: alg HS256 (its secret is no public key: give it with NewHMACKey and WithKeys)", ErrAlgorithm)
	}
	if !supportedAlg(alg) && alg != "HS256" {
		return nil, fmt.Errorf("%w: alg %.32q", ErrAlgorithm, alg)
	}
	kid, ok := t.Header["kid"].(string)
	if !ok && t.Header["kid"] != nil {
		return nil, fmt.Errorf("%w: kid is not a string", ErrMalformed)
	}
	if err := v.checkClaims(c); err != nil {
		return nil, err
	}
	k, err := v.keys.Key(ctx, kid)
	if err != nil {
		return nil, err
	}
	if k == nil {
		return nil, fmt.Errorf("%w: kid %.64q", ErrUnknownKey, kid)
	}
	if k.alg != alg {
		return nil, fmt.Errorf("%w: alg %.32q, but key %.64q is %s", ErrAlgorithm, alg, kid, k.alg)
	}
	if k.hmac() && !v.hmac {
		// Only WithKeys may supply secrets: never a key set that could
		// be fetched or influenced by someone else.
		return nil, fmt.Errorf("%w: HS256 key %.64q did not come from WithKeys", ErrAlgorithm, kid)
	}
	return k, nil
}

// checkClaims checks the claims that need no key.
func (v *Verifier) checkClaims(c *accessClaims) error {
	var missing string
	switch {
	case c.Issuer == "":
		missing = "iss"
	case c.Subject == "":
		missing = "sub"
	case len(c.Audience) == 0:
		missing = "aud"
	case !c.ExpiresAt.set:
		missing = "exp"
	case !c.IssuedAt.set:
		missing = "iat"
	case c.ID == "":
		missing = "jti"
	case c.ClientID == "":
		missing = "client_id"
	}
	if missing != "" {
		return fmt.Errorf("%w: %s", ErrMissingClaim, missing)
	}
	if c.Issuer != v.issuer {
		return fmt.Errorf("%w: iss %.128q", ErrIssuer, c.Issuer)
	}
	if !slices.Contains(c.Audience, v.audience) {
		return fmt.Errorf("%w: aud %.128q", ErrAudience, c.Audience)
	}
	return v.checkTime(c.ExpiresAt.Time, c.IssuedAt.Time, c.NotBefore.Time, c.NotBefore.set)
}

// checkTime checks exp, iat and, when hasNBF, nbf against the clock,
// within the leeway.
func (v *Verifier) checkTime(exp, iat, nbf time.Time, hasNBF bool) error {
	now := v.now()
	if !now.Before(exp.Add(v.leeway)) {
		return fmt.Errorf("%w: at %s", ErrExpired, exp.UTC().Format(time.RFC3339))
	}
	if hasNBF && now.Add(v.leeway).Before(nbf) {
		return fmt.Errorf("%w: nbf %s", ErrNotYetValid, nbf.UTC().Format(time.RFC3339))
	}
	if now.Add(v.leeway).Before(iat) {
		return fmt.Errorf("%w: iat %s", ErrNotYetValid, iat.UTC().Format(time.RFC3339))
	}
	return nil
}

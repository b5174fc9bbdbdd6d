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
// tried after the refresh interval.
//
// The errors of New wrap ErrInvalidConfig, ErrOptionConflict or
// ErrOptionNotApplicable (see Option).
func New(issuer, audience string, opts ...Option) (*Verifier, error) {
	o, errs := collect("New", opts, optJWKSURL, optKeys, optKeySet, optHTTPClient, optLeeway,
		optClock, optRefreshInterval, optCacheBounds, optMaxTokenSize, optRealm, optStatusLists)
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
func (v *Verifier) Verify(ctx context.Context, raw string) (*Claims, error) {
	if len(raw) > v.maxSize {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, len(raw), v.maxSize)
	}
	var (
		dec    accessClaims
		reason error // why the key function refused the token
	)
	_, err := v.parser.ParseWithClaims(raw, &dec, func(t *jwt.Token) (any, error) {
		k, err := v.keyFor(ctx, raw, t, &dec)
		if err != nil {
			reason = err
			return nil, err
		}
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
	if v.status != nil {
		if err := v.status.checkRaw(ctx, dec.Status); err != nil {
			return nil, err
		}
	}
	c := &Claims{}
	_, rest, _ := strings.Cut(raw, ".")
	c.payload, _, _ = strings.Cut(rest, ".")
	c.Issuer, c.Subject, c.ClientID, c.ID = dec.Issuer, dec.Subject, dec.ClientID, dec.ID
	c.Audience = dec.Audience
	c.Scopes = strings.Fields(dec.Scope)
	c.Expiry, c.IssuedAt, c.NotBefore = dec.ExpiresAt.Time, dec.IssuedAt.Time, dec.NotBefore.Time
	return c, nil
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
	now := v.now()
	if !now.Before(c.ExpiresAt.Add(v.leeway)) {
		return fmt.Errorf("%w: at %s", ErrExpired, c.ExpiresAt.UTC().Format(time.RFC3339))
	}
	if c.NotBefore.set && now.Add(v.leeway).Before(c.NotBefore.Time) {
		return fmt.Errorf("%w: nbf %s", ErrNotYetValid, c.NotBefore.UTC().Format(time.RFC3339))
	}
	if now.Add(v.leeway).Before(c.IssuedAt.Time) {
		return fmt.Errorf("%w: iat %s", ErrNotYetValid, c.IssuedAt.UTC().Format(time.RFC3339))
	}
	return nil
}

package grant

import (
	"context"
	"crypto/sha256"
	"errors"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/issuer-oauth/issuer/internal/jwk"
	"github.com/issuer-oauth/issuer/internal/oauth"
	"github.com/issuer-oauth/issuer/internal/ratelimit"
	"github.com/issuer-oauth/issuer/internal/request"
	"github.com/issuer-oauth/issuer/internal/store"
)

// Limits of client assertions (RFC 7523 §3).
const (
	// MaxAssertionLen bounds the client_assertion parameter. A Kubernetes
	// or GitHub Actions token is 1 to 2 KB; 16 KiB leaves room without
	// letting a request make the parser decode megabytes.
	MaxAssertionLen = 16 << 10
	// maxJTILen bounds the jti that the store records.
	maxJTILen = 256
	// assertionLeeway is the clock skew allowed on exp, nbf and iat.
	assertionLeeway = 30 * time.Second
	// DefaultAssertionMaxLifetime is the default AssertionConfig.MaxLifetime.
	DefaultAssertionMaxLifetime = 5 * time.Minute
)

// AssertionConfig configures client authentication by JWT assertion.
type AssertionConfig struct {
	// LegacyAudience also accepts assertions whose aud contains the issuer
	// identifier or the token endpoint URL among other values
	// (client_assertion_legacy_audience); by default aud must be the issuer
	// identifier alone (draft-ietf-oauth-rfc7523bis).
	LegacyAudience bool
	// MaxLifetime bounds exp after iat, or after now without iat
	// (client_assertion_max_lifetime); DefaultAssertionMaxLifetime when 0.
	MaxLifetime time.Duration
	// TokenEndpoint is the token endpoint URL, which LegacyAudience accepts
	// as aud.
	TokenEndpoint string
	// Fetcher fetches the key sets of clients registered with a jwks_uri
	// and of trusted issuers; nil fails their authentication.
	Fetcher KeyFetcher
	// TrustedIssuers are the issuers of the workload-identity tokens of
	// federated_jwt clients, by name (trusted_issuers).
	TrustedIssuers map[string]TrustedIssuer
	// FederatedMaxLifetime bounds a workload-identity token's exp after its
	// iat, or after now without iat (federated_assertion_max_lifetime);
	// DefaultFederatedMaxLifetime when 0.
	FederatedMaxLifetime time.Duration
}

// DefaultFederatedMaxLifetime is the default
// AssertionConfig.FederatedMaxLifetime.
const DefaultFederatedMaxLifetime = 24 * time.Hour

// TrustedIssuer is an external issuer of workload-identity tokens.
type TrustedIssuer struct {
	// Issuer is the iss of its tokens.
	Issuer string
	// JWKSURI is where its keys are; when empty, found by OpenID Connect
	// discovery of Issuer.
	JWKSURI string
	// Audience is the aud its tokens must contain.
	Audience string
}

// KeyFetcher fetches and caches remote key sets (jwksfetch.Fetcher).
type KeyFetcher interface {
	// Keys returns the key set at uri, refetched when no key has kid (within
	// the fetcher's limits); client says that uri is a client's jwks_uri.
	Keys(ctx context.Context, uri, kid string, client bool) (jwk.Set, error)
	// Discover returns the jwks_uri of an OpenID provider.
	Discover(ctx context.Context, issuer string) (string, error)
}

// assertionFailure is why a well-formed assertion was refused. Its text
// goes to the log and, once the signature verified (only the key holder
// learns it), to the client.
type assertionFailure string

func (f assertionFailure) Error() string { return string(f) }

// errBadSignature is the failure of everything before the signature is
// verified: the client learns no more than from an unknown client id.
const errBadSignature = assertionFailure("the assertion is not signed by a key of the client")

// authenticateAssertion authenticates a client by a JWT assertion (RFC 7523
// §2.2): private_key_jwt with the client's registered keys. It applies the
// limiter and the failure floor as Authenticate does for secrets; every
// refused assertion counts as a failed authentication.
func (h *Handler) authenticateAssertion(r *http.Request, form url.Values) (store.Client, *Error) {
	start := time.Now()
	if r.Header.Get("Authorization") != "" || form.Has("client_secret") {
		return store.Client{}, errInvalidRequest("use one client authentication method: a client_assertion, HTTP Basic or client_secret, not several")
	}
	if t := form.Get("client_assertion_type"); t != oauth.AssertionTypeJWTBearer {
		return store.Client{}, errInvalidClient("client_assertion_type must be " + oauth.AssertionTypeJWTBearer)
	}
	assertion := form.Get("client_assertion")
	switch {
	case assertion == "":
		return store.Client{}, errInvalidClient("client_assertion is missing")
	case len(assertion) > MaxAssertionLen:
		return store.Client{}, errInvalidClient("client_assertion is longer than the limit")
	}
	id := form.Get("client_id")
	if id == "" {
		// RFC 7523 §3: the client is the assertion's sub (= iss), which
		// the signature check below binds.
		var claims jwt.RegisteredClaims
		if _, _, err := jwt.NewParser().ParseUnverified(assertion, &claims); err != nil || claims.Subject == "" {
			return store.Client{}, errInvalidClient("client_assertion is not a JWT with a sub, and client_id is missing")
		}
		id = claims.Subject
	}
	addr, limitID := request.ClientAddr(r), id
	if len(id) > maxClientIDLen {
		limitID = ""
	}
	if h.cfg.Limiter != nil {
		if d := h.cfg.Limiter.AllowAuth(r.Context(), limitID, addr); d.Refused() {
			what := "from this address"
			if d.Limit == ratelimit.LimitClient {
				what = "of this client"
			}
			return store.Client{}, errRateLimited("too many failed client authentications "+what+
				"; retry after "+seconds(d.RetryAfter), d.RetryAfter)
		}
	}
	method := oauth.AuthPrivateKeyJWT
	fail := func(why error) (store.Client, *Error) {
		h.authMetric(method, "failure")
		if h.cfg.Limiter != nil {
			h.cfg.Limiter.AuthFailed(r.Context(), limitID, addr)
		}
		h.log.InfoContext(r.Context(), "client assertion refused", "client_id", limitID, "reason", why.Error())
		h.waitFloor(r.Context(), start)
		desc := "client authentication failed"
		if f, ok := why.(assertionFailure); ok && f != errBadSignature {
			desc += ": " + string(f)
		}
		return store.Client{}, errInvalidClient(desc)
	}
	if len(id) > maxClientIDLen {
		return fail(errors.New("client_id is too long"))
	}
	c, err := h.st.GetClient(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return fail(errors.New("unknown client"))
	}
	if err != nil {
		h.log.ErrorContext(r.Context(), "client lookup failed", "client_id", id, "err", err)
		return store.Client{}, storeUnavailable(err)
	}
	switch c.AuthMethod {
	case oauth.AuthPrivateKeyJWT:
		err = h.verifyClientAssertion(r.Context(), c, assertion)
	case oauth.AuthFederatedJWT:
		method = c.AuthMethod
		err = h.verifyFederated(r.Context(), c, assertion)
	default:
		// The registered method is told only to whoever proves to be
		// the client.
		return fail(errors.New("the client is registered for " + c.AuthMethod))
	}
	var af assertionFailure
	if err != nil && !errors.As(err, &af) {
		h.log.ErrorContext(r.Context(), "client assertion check failed", "client_id", id, "err", err)
		return store.Client{}, storeUnavailable(err)
	}
	if err != nil {
		return fail(err)
	}
	h.authMetric(method, "success")
	return c, nil
}

// storeUnavailable is the answer to a store (or key server) failure.
func storeUnavailable(err error) *Error {
	if errors.Is(err, store.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		return errUnavailable
	}
	return errServer
}

// verifyClientAssertion checks a private_key_jwt assertion of c (RFC 7523
// §3 with draft-ietf-oauth-rfc7523bis): the signature by one of the
// client's keys with an algorithm that the key (and the client's
// token_endpoint_auth_signing_alg) allows — never the header's choice
// alone —, typ, iss = sub = client_id, aud, exp and the lifetime, and last
// the jti's single use. It returns an assertionFailure for a refused
// assertion, any other error for a failure of the store or key server.
func (h *Handler) verifyClientAssertion(ctx context.Context, c store.Client, assertion string) error {
	var (
		set jwk.Set
		err error
	)
	if c.JWKSURI != "" {
		set, err = h.remoteClientKeys(ctx, c, assertion)
	} else {
		set, err = h.clientKeys.keys(ctx, c)
	}
	if err != nil {
		return err
	}
	algs := set.Algs()
	if c.AuthSigningAlg != "" {
		algs = onlyAlg(algs, c.AuthSigningAlg)
	}
	now := h.cfg.Now()
	claims, tok, err := parseAssertion(assertion, set, algs)
	if err != nil {
		return err
	}
	if msg := checkTyp(tok.Header); msg != "" {
		return assertionFailure(msg)
	}
	if iss, _ := claims["iss"].(string); iss != c.ID {
		return assertionFailure("iss must be the client_id")
	}
	if sub, _ := claims["sub"].(string); sub != c.ID {
		return assertionFailure("sub must be the client_id")
	}
	if msg := h.checkAudience(claims); msg != "" {
		return assertionFailure(msg)
	}
	exp, msg := checkTimes(claims, now, h.cfg.Assertions.MaxLifetime)
	if msg != "" {
		return assertionFailure(msg)
	}
	jti, _ := claims["jti"].(string)
	switch {
	case jti == "":
		return assertionFailure("jti is required")
	case len(jti) > maxJTILen:
		return assertionFailure("jti is longer than 256 bytes")
	}
	err = h.st.UseOnce(ctx, "assertion:"+c.ID+":"+jti, exp.Add(assertionLeeway))
	if errors.Is(err, store.ErrReplayed) {
		return assertionFailure("the assertion's jti was already used; sign a new assertion for every request")
	}
	return err
}

// verifyFederated checks the workload-identity token of a federated_jwt
// client: signed by a key of the trusted issuer (fetched and cached, never
// chosen by the token), iss the issuer, aud containing the expected
// audience, exp required and the lifetime bounded, sub the client's
// subject and every listed claim equal. Such tokens are not single use.
func (h *Handler) verifyFederated(ctx context.Context, c store.Client, token string) error {
	f := c.Federated
	if f == nil {
		return assertionFailure("the client has no federated_identity")
	}
	ti, ok := h.cfg.Assertions.TrustedIssuers[f.Issuer]
	if !ok || h.cfg.Assertions.Fetcher == nil {
		return assertionFailure("the client's trusted issuer " + quote(f.Issuer) + " is not configured on this issuer")
	}
	tok, _, err := jwt.NewParser().ParseUnverified(token, jwt.MapClaims{})
	if err != nil {
		return errBadSignature
	}
	uri := ti.JWKSURI
	if uri == "" {
		if uri, err = h.cfg.Assertions.Fetcher.Discover(ctx, ti.Issuer); err != nil {
			h.log.WarnContext(ctx, "trusted issuer discovery failed", "client_id", c.ID, "trusted_issuer", f.Issuer, "err", err)
			return errBadSignature
		}
	}
	kid, _ := tok.Header["kid"].(string)
	set, err := h.cfg.Assertions.Fetcher.Keys(ctx, uri, kid, false)
	if err != nil {
		h.log.WarnContext(ctx, "trusted issuer keys unavailable", "client_id", c.ID, "trusted_issuer", f.Issuer, "err", err)
		return errBadSignature
	}
	claims, _, err := parseAssertion(token, set, set.Algs())
	if err != nil {
		return err
	}
	if iss, _ := claims["iss"].(string); iss != ti.Issuer {
		return assertionFailure("iss must be the trusted issuer " + ti.Issuer)
	}
	aud, err := claims.GetAudience()
	if err != nil || !slices.Contains(aud, ti.Audience) {
		return assertionFailure("aud must contain " + ti.Audience)
	}
	if _, msg := checkTimes(claims, h.cfg.Now(), h.cfg.Assertions.FederatedMaxLifetime); msg != "" {
		return assertionFailure(msg)
	}
	if sub, _ := claims["sub"].(string); sub != f.Subject {
		return assertionFailure("sub is not the client's federated subject")
	}
	for _, name := range slices.Sorted(maps.Keys(f.Claims)) {
		if v, ok := claims[name].(string); !ok || v != f.Claims[name] {
			return assertionFailure("claim " + quote(name) + " is not the client's")
		}
	}
	return nil
}

// remoteClientKeys returns the key set at the client's jwks_uri, asking
// for the kid of the assertion's header. A set that cannot be had fails
// the authentication: the key server is the client's.
func (h *Handler) remoteClientKeys(ctx context.Context, c store.Client, assertion string) (jwk.Set, error) {
	if h.cfg.Assertions.Fetcher == nil {
		return nil, assertionFailure("the client's jwks_uri is not served by this issuer")
	}
	tok, _, err := jwt.NewParser().ParseUnverified(assertion, jwt.MapClaims{})
	if err != nil {
		return nil, errBadSignature
	}
	kid, _ := tok.Header["kid"].(string)
	set, err := h.cfg.Assertions.Fetcher.Keys(ctx, c.JWKSURI, kid, true)
	if err != nil {
		h.log.WarnContext(ctx, "client keys unavailable", "client_id", c.ID, "err", err)
		return nil, errBadSignature
	}
	return set, nil
}

// parseAssertion verifies the signature of a JWT by a key of set with one
// of algs, and returns its claims. Every failure is errBadSignature.
func parseAssertion(raw string, set jwk.Set, algs []string) (jwt.MapClaims, *jwt.Token, error) {
	if len(algs) == 0 {
		return nil, nil, errBadSignature
	}
	claims := jwt.MapClaims{}
	p := jwt.NewParser(jwt.WithValidMethods(algs), jwt.WithoutClaimsValidation(), jwt.WithJSONNumber())
	tok, err := p.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		if _, ok := t.Header["crit"]; ok {
			return nil, errBadSignature // RFC 7515 §4.1.11: no extension is understood here
		}
		kid, _ := t.Header["kid"].(string)
		alg, _ := t.Header["alg"].(string)
		cands := set.Candidates(kid, alg)
		if len(cands) == 0 {
			return nil, errBadSignature
		}
		ks := jwt.VerificationKeySet{Keys: make([]jwt.VerificationKey, len(cands))}
		for i, k := range cands {
			ks.Keys[i] = k.Public
		}
		return ks, nil
	})
	if err != nil || !tok.Valid {
		return nil, nil, errBadSignature
	}
	return claims, tok, nil
}

// checkTyp accepts the typ of a client assertion: absent, JWT, or
// client-authentication+jwt (draft-ietf-oauth-rfc7523bis), compared without
// case and with the optional application/ prefix (RFC 7515 §4.1.9).
func checkTyp(h map[string]any) string {
	v, ok := h["typ"]
	if !ok {
		return ""
	}
	typ, _ := v.(string)
	typ = strings.ToLower(typ)
	typ = strings.TrimPrefix(typ, "application/")
	if typ == "jwt" || typ == "client-authentication+jwt" {
		return ""
	}
	return "typ must be client-authentication+jwt, JWT or absent"
}

// checkAudience accepts the issuer identifier as the sole aud, or with
// LegacyAudience an aud that contains it or the token endpoint URL.
func (h *Handler) checkAudience(claims jwt.MapClaims) string {
	aud, err := claims.GetAudience()
	if err != nil || len(aud) == 0 {
		return "aud is required: the issuer identifier " + h.cfg.Issuer
	}
	if len(aud) == 1 && aud[0] == h.cfg.Issuer {
		return ""
	}
	if h.cfg.Assertions.LegacyAudience {
		for _, a := range aud {
			if a == h.cfg.Issuer || a == h.cfg.Assertions.TokenEndpoint {
				return ""
			}
		}
		return "aud must contain the issuer identifier " + h.cfg.Issuer + " or the token endpoint URL"
	}
	return "aud must be the issuer identifier " + h.cfg.Issuer + " as its only value (not the token endpoint URL, not a list)"
}

// checkTimes checks exp (required, not past), nbf and iat (not in the
// future) and the lifetime: exp at most max after iat, or after now when
// iat is absent. It returns exp, or what is wrong.
func checkTimes(claims jwt.MapClaims, now time.Time, max time.Duration) (time.Time, string) {
	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil {
		return time.Time{}, "exp is required"
	}
	if !now.Before(exp.Add(assertionLeeway)) {
		return time.Time{}, "the assertion has expired"
	}
	if nbf, err := claims.GetNotBefore(); err != nil {
		return time.Time{}, "nbf is not a NumericDate"
	} else if nbf != nil && now.Add(assertionLeeway).Before(nbf.Time) {
		return time.Time{}, "the assertion is not valid yet (nbf)"
	}
	from := now
	iat, err := claims.GetIssuedAt()
	switch {
	case err != nil:
		return time.Time{}, "iat is not a NumericDate"
	case iat != nil && now.Add(assertionLeeway).Before(iat.Time):
		return time.Time{}, "iat is in the future"
	case iat != nil:
		from = iat.Time
	}
	if exp.Sub(from) > max {
		return time.Time{}, "the assertion's lifetime (exp after iat, or after now without iat) is over " + max.String()
	}
	return exp.Time, ""
}

// onlyAlg returns [v] when list holds v, and nil otherwise.
func onlyAlg(list []string, v string) []string {
	for _, a := range list {
		if a == v {
			return []string{v}
		}
	}
	return nil
}

// authMetric counts a client authentication by method and outcome.
func (h *Handler) authMetric(method, outcome string) {
	if h.cfg.Metrics != nil {
		h.cfg.Metrics.ClientAuth(method, outcome)
	}
}

// clientKeys finds the public keys of private_key_jwt clients. Inline
// sets are parsed once and kept by their hash, so that an authentication
// costs no JWK decoding.
type clientKeys struct {
	mu     sync.Mutex
	parsed map[[32]byte]jwk.Set
}

// maxParsedSets bounds the cache of parsed inline sets; it starts over
// when full.
const maxParsedSets = 4096

func (ck *clientKeys) keys(_ context.Context, c store.Client) (jwk.Set, error) {
	if len(c.JWKS) == 0 {
		return nil, assertionFailure("the client has no registered keys")
	}
	sum := sha256.Sum256(c.JWKS)
	ck.mu.Lock()
	set, ok := ck.parsed[sum]
	ck.mu.Unlock()
	if ok {
		return set, nil
	}
	set, err := jwk.Parse(c.JWKS)
	if err != nil {
		// Registration validated the set; a stored set that no longer
		// parses (a stricter release) leaves the client unable to log in.
		return nil, assertionFailure("the client's registered jwks is not usable: " + err.Error())
	}
	ck.mu.Lock()
	if ck.parsed == nil || len(ck.parsed) >= maxParsedSets {
		ck.parsed = make(map[[32]byte]jwk.Set)
	}
	ck.parsed[sum] = set
	ck.mu.Unlock()
	return set, nil
}

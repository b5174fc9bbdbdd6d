package verify

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// DPoPConfig configures a DPoPVerifier. Exactly one of BaseURL and
// RequestURL says what URL the clients address, for htu.
type DPoPConfig struct {
	// BaseURL is the public URL of the API as clients address it, such as
	// https://api.example.com (with the path prefix a proxy strips, if
	// any): a request's URL is BaseURL followed by its path. It is never
	// taken from the request's Host header, which a client or a proxy
	// may change.
	BaseURL string
	// RequestURL, instead of BaseURL, returns the public URL of a request
	// (its query is ignored).
	RequestURL func(r *http.Request) string
	// Replay remembers the jti of the proofs accepted, so that each is
	// accepted once: NewMemoryReplayCache(the Verifier's clock) when nil.
	// An API running several replicas shares one, such as package
	// dpopredis's, or a proof replayed at another replica passes.
	Replay ReplayCache
	// Nonces, when not nil, makes proofs need a nonce of this server (RFC
	// 9449 §9): a request without a valid one gets 401 use_dpop_nonce and
	// the nonce in a DPoP-Nonce header, and so does every response.
	// Replicas that share the key accept each other's nonces.
	Nonces *Nonces
	// MaxAge is how old a proof's iat may be: DefaultDPoPMaxAge when zero.
	// The leeway of the Verifier bounds how far in the future it may be.
	MaxAge time.Duration
}

// DPoPVerifier verifies the requests of a resource API that accepts
// DPoP-bound access tokens (RFC 9449 §7) besides bearer tokens (RFC
// 6750): "Authorization: DPoP <token>" with a DPoP proof header, and
// "Authorization: Bearer <token>" for tokens that are not bound. It is
// safe for concurrent use.
type DPoPVerifier struct {
	v         *Verifier
	cfg       DPoPConfig
	challenge string // DPoP algs="…"
}

// NewDPoPVerifier returns a DPoPVerifier of v's tokens. It does no I/O;
// it fails when cfg is not one of the configurations DPoPConfig describes.
func NewDPoPVerifier(v *Verifier, cfg DPoPConfig) (*DPoPVerifier, error) {
	var errs []error
	switch {
	case v == nil:
		errs = append(errs, fmt.Errorf("%w: the Verifier is nil", ErrInvalidConfig))
	case cfg.BaseURL != "" && cfg.RequestURL != nil:
		errs = append(errs, fmt.Errorf("%w: DPoPConfig has both BaseURL and RequestURL", ErrOptionConflict))
	case cfg.BaseURL == "" && cfg.RequestURL == nil:
		errs = append(errs, fmt.Errorf("%w: DPoPConfig needs BaseURL (the API's public URL) or RequestURL", ErrInvalidConfig))
	case cfg.BaseURL != "":
		if _, err := NormalizeHTU(cfg.BaseURL); err != nil {
			errs = append(errs, fmt.Errorf("%w: DPoPConfig.BaseURL %q: %w", ErrInvalidConfig, cfg.BaseURL, err))
		}
		cfg.BaseURL = strings.TrimSuffix(cfg.BaseURL, "/")
	}
	if cfg.MaxAge < 0 {
		errs = append(errs, fmt.Errorf("%w: DPoPConfig.MaxAge %s is negative", ErrInvalidConfig, cfg.MaxAge))
	}
	if len(errs) > 0 {
		return nil, joinConfig(errs)
	}
	if cfg.MaxAge == 0 {
		cfg.MaxAge = DefaultDPoPMaxAge
	}
	if cfg.Replay == nil {
		cfg.Replay = NewMemoryReplayCache(v.now)
	}
	return &DPoPVerifier{v: v, cfg: cfg, challenge: `algs="` + strings.Join(dpopAlgs, " ") + `"`}, nil
}

// scheme is the authorization scheme of a request.
type scheme int

const (
	schemeNone scheme = iota
	schemeBearer
	schemeDPoP
)

// requestError is a refused request: the error, the scheme it came with,
// and the answer's status and RFC 6750 error code.
type requestError struct {
	err    error
	scheme scheme
	status int
	code   string
	desc   string
}

func (e *requestError) Error() string { return e.err.Error() }
func (e *requestError) Unwrap() error { return e.err }

// errNoToken: the request has no token of either scheme.
var errNoToken = errors.New("verify: no access token")

// VerifyRequest verifies the access token of r: a bearer token that is
// not DPoP-bound, or a DPoP-bound token with its proof, which must pass
// every check of RFC 9449 §7.1: the proof itself (CheckDPoPProof: typ,
// alg, jwk, signature, htm the request's method, htu its public URL, iat
// within MaxAge), ath the hash of this token, the proof's key the one
// cnf.jkt names, the nonce when Nonces is set, and a jti not used before.
// Errors wrap the token errors of Verify, or ErrDPoPProof, ErrDPoPNonce,
// ErrDPoPReplay or ErrDPoPBound.
func (d *DPoPVerifier) VerifyRequest(r *http.Request) (*Claims, error) {
	c, rerr := d.verifyRequest(r)
	if rerr != nil {
		return nil, rerr
	}
	return c, nil
}

func (d *DPoPVerifier) verifyRequest(r *http.Request) (*Claims, *requestError) {
	vals := r.Header.Values("Authorization")
	if len(vals) > 1 {
		return nil, &requestError{errors.New("verify: more than one Authorization header"), schemeNone, http.StatusBadRequest, "invalid_request", "more than one Authorization header"}
	}
	if len(vals) == 0 {
		return nil, &requestError{errNoToken, schemeNone, http.StatusUnauthorized, "", ""}
	}
	name, token, _ := strings.Cut(vals[0], " ")
	token = strings.TrimSpace(token)
	var sch scheme
	switch {
	case strings.EqualFold(name, "Bearer"):
		sch = schemeBearer
	case strings.EqualFold(name, "DPoP"):
		sch = schemeDPoP
	default:
		return nil, &requestError{errNoToken, schemeNone, http.StatusUnauthorized, "", ""}
	}
	if token == "" {
		return nil, &requestError{errors.New("verify: empty token"), sch, http.StatusBadRequest, "invalid_request", "the access token is empty"}
	}
	invalid := func(err error, code, desc string) *requestError {
		return &requestError{err, sch, http.StatusUnauthorized, code, desc}
	}
	if sch == schemeBearer {
		c, err := d.v.Verify(r.Context(), token)
		if err != nil {
			return nil, invalid(err, "invalid_token", describe(err))
		}
		return c, nil
	}
	c, err := d.v.verify(r.Context(), token)
	if err != nil {
		return nil, invalid(err, "invalid_token", describe(err))
	}
	if c.JKT == "" {
		return nil, invalid(fmt.Errorf("%w: the token has no cnf.jkt", ErrDPoPBound), "invalid_token", "the access token is not DPoP-bound: present it as a Bearer token")
	}
	proofs := r.Header.Values("DPoP")
	if len(proofs) != 1 {
		return nil, invalid(fmt.Errorf("%w: %d DPoP headers", ErrDPoPProof, len(proofs)), "invalid_dpop_proof", "send exactly one DPoP proof header")
	}
	htu := d.cfg.BaseURL + r.URL.EscapedPath()
	if d.cfg.RequestURL != nil {
		htu = d.cfg.RequestURL(r)
	}
	now := d.v.now()
	p, err := CheckDPoPProof(proofs[0], ProofCheck{
		Method: r.Method, URL: htu, AccessToken: token, Now: now, MaxAge: d.cfg.MaxAge, Leeway: d.v.leeway,
	})
	if err != nil {
		return nil, invalid(err, "invalid_dpop_proof", "the DPoP proof is invalid")
	}
	if subtle.ConstantTimeCompare([]byte(p.JKT), []byte(c.JKT)) != 1 {
		return nil, invalid(fmt.Errorf("%w: the proof's key is not the token's cnf.jkt", ErrDPoPBound), "invalid_dpop_proof", "the DPoP proof is not signed by the key the access token is bound to")
	}
	if n := d.cfg.Nonces; n != nil && !n.Valid(p.Nonce, now) {
		return nil, invalid(fmt.Errorf("%w: missing or stale", ErrDPoPNonce), "use_dpop_nonce", "the DPoP proof must carry the nonce of the DPoP-Nonce header")
	}
	if err := d.cfg.Replay.Use(r.Context(), p.ReplayID(), p.Until); err != nil {
		if errors.Is(err, ErrDPoPReplay) {
			return nil, invalid(err, "invalid_dpop_proof", "the DPoP proof was already used")
		}
		return nil, &requestError{fmt.Errorf("verify: DPoP replay cache: %w", err), sch, http.StatusServiceUnavailable, "temporarily_unavailable", "the replay check is unavailable; retry shortly"}
	}
	return c, nil
}

// Middleware returns middleware that lets a request through only with a
// valid access token (see VerifyRequest) that was granted every one of
// scopes; the handler finds the claims with ClaimsFromContext. Every
// refusal carries two challenges (RFC 9449 §7.1): Bearer first, DPoP with
// the accepted algs after it; the error goes in the challenge of the
// scheme the request used. A missing nonce is 401 use_dpop_nonce with a
// DPoP-Nonce header; a replay cache that cannot be reached is 503.
func (d *DPoPVerifier) Middleware(scopes ...string) func(http.Handler) http.Handler {
	for _, s := range scopes {
		if !validScope(s) {
			panic(fmt.Sprintf("verify: invalid scope %q", s))
		}
	}
	scope := strings.Join(scopes, " ")
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if n := d.cfg.Nonces; n != nil {
				w.Header().Set("DPoP-Nonce", n.Nonce(d.v.now()))
			}
			c, rerr := d.verifyRequest(r)
			if rerr != nil {
				d.refuse(w, rerr, "")
				return
			}
			sch := schemeBearer
			if c.JKT != "" {
				sch = schemeDPoP
			}
			for _, s := range scopes {
				if !c.HasScope(s) {
					d.refuse(w, &requestError{nil, sch, http.StatusForbidden, "insufficient_scope", "the access token lacks scope " + s}, scope)
					return
				}
			}
			next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), c)))
		})
	}
}

// refuse writes the error response of e: a Bearer and a DPoP challenge,
// the error in the one of the scheme used (in Bearer's when none was).
func (d *DPoPVerifier) refuse(w http.ResponseWriter, e *requestError, scope string) {
	params := func(b *strings.Builder, first bool) {
		sep := " "
		if !first {
			sep = ", "
		}
		if e.code != "" {
			// Codes, fixed descriptions and checked scopes hold no '"'
			// or '\'.
			fmt.Fprintf(b, `%serror="%s", error_description="%s"`, sep, e.code, e.desc)
			if scope != "" {
				fmt.Fprintf(b, `, scope="%s"`, scope)
			}
		}
	}
	var bearer, dpop strings.Builder
	bearer.WriteString("Bearer")
	if d.v.realm != "" {
		fmt.Fprintf(&bearer, ` realm="%s"`, d.v.realm)
	}
	dpop.WriteString("DPoP ")
	dpop.WriteString(d.challenge)
	if d.v.realm != "" {
		fmt.Fprintf(&dpop, `, realm="%s"`, d.v.realm)
	}
	switch e.scheme {
	case schemeDPoP:
		params(&dpop, false)
	default:
		params(&bearer, d.v.realm == "")
	}
	h := w.Header()
	h["Www-Authenticate"] = []string{bearer.String(), dpop.String()}
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Type", "application/json")
	w.WriteHeader(e.status)
	code, desc := e.code, e.desc
	if code == "" {
		code, desc = "unauthorized", "an access token is required"
	}
	fmt.Fprintf(w, "{\"error\":%q,\"error_description\":%q}\n", code, desc)
}

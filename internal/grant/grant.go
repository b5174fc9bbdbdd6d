package grant

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"time"

	"github.com/issuer-oauth/issuer/internal/keys"
	"github.com/issuer-oauth/issuer/internal/oauth"
	"github.com/issuer-oauth/issuer/internal/ratelimit"
	"github.com/issuer-oauth/issuer/internal/secret"
	"github.com/issuer-oauth/issuer/internal/store"
	"github.com/issuer-oauth/issuer/verify"
)

// Store is the part of the store the token endpoint needs.
type Store interface {
	GetClient(ctx context.Context, id string) (store.Client, error)
	CreateFamily(ctx context.Context, f store.Family) error
	RotateRefresh(ctx context.Context, r store.Rotation) (store.Family, error)
	RotateRefreshRetry(ctx context.Context, r store.RetryRotation) ([]byte, error)
	GetFamily(ctx context.Context, id string) (store.Family, error)
	RevokeFamily(ctx context.Context, id string) error
	RevokeToken(ctx context.Context, jti string, until time.Time) error
	IsRevoked(ctx context.Context, jti string) (bool, error)
	UseOnce(ctx context.Context, id string, until time.Time) error
}

// Signer mints and verifies the tokens (keys.Keys).
type Signer interface {
	SignAccess(keys.AccessClaims) (string, error)
	SignRefresh(keys.RefreshClaims) (string, error)
	ParseRefresh(token string) (keys.RefreshClaims, error)
	ParseAccess(token string) (keys.AccessClaims, error)
}

// Users is the part of the store the password grant needs.
type Users interface {
	GetUser(ctx context.Context, username string) (store.User, error)
	UpgradeUserPassword(ctx context.Context, username, oldHash, newHash string) error
}

// Limiter applies the abuse limits (ratelimit.Limiter): failed client
// authentications per source address and client id, and token requests per
// client (perMinute, or the limiter's own quota when 0).
type Limiter interface {
	AllowAuth(ctx context.Context, clientID string, addr netip.Addr) ratelimit.Decision
	AuthFailed(ctx context.Context, clientID string, addr netip.Addr)
	AllowToken(ctx context.Context, clientID string, perMinute int64) ratelimit.Decision
}

// Metrics counts token requests by grant type and outcome: "success" or the
// error code (metrics.Metrics).
type Metrics interface {
	TokenRequest(grantType, outcome string)
	// ClientAuth counts a client authentication by method
	// (token_endpoint_auth_method) and outcome (success or failure).
	ClientAuth(method, outcome string)
}

// Config configures the token endpoint.
type Config struct {
	// Issuer is the issuer identifier (ISSUER_URL).
	Issuer string
	// AccessTTL and RefreshTTL are the token lifetimes of the clients
	// without their own.
	AccessTTL, RefreshTTL time.Duration
	// RefreshMaxLifetime is the absolute end of a refresh-token family,
	// from its first token, for the clients without their own; 0 is none.
	RefreshMaxLifetime time.Duration
	// RetryKey is the key that seals the answers kept for retried
	// refreshes (secret.PurposeRefreshRetries; an AES-256 key, or hashed
	// into one when it is not 32 bytes): instances that share a store must
	// share it. A random key of this process when nil.
	RetryKey []byte
	// MaxBodyBytes bounds the request body; larger requests get 413.
	MaxBodyBytes int64
	// FailureFloor is the least time a failed client authentication takes
	// (see Authenticate); DefaultFailureFloor when zero, none when negative.
	FailureFloor time.Duration
	// Now returns the current time; time.Now when nil.
	Now func() time.Time
	// Limiter, when not nil, applies the abuse limits.
	Limiter Limiter
	// Metrics, when not nil, counts token requests.
	Metrics Metrics
	// Users and Passwords, both set, turn on the password grant (RFC 6749
	// §4.3) for the clients registered with it.
	Users     Users
	Passwords Passwords
	// PasswordLimiter, when not nil, applies the brute-force limits of the
	// password grant.
	PasswordLimiter PasswordLimiter
	// SimpleJWTClaims adds Django REST framework SimpleJWT's claims to the
	// access tokens of the password grant: token_type "access" and the
	// user id under UserIDClaim.
	SimpleJWTClaims bool
	// UserIDClaim is the claim of the user id in SimpleJWT-style tokens;
	// "user_id" when empty.
	UserIDClaim string
	// TokenURL is the public URL of the token endpoint, under Issuer
	// (never from the request's Host header), which the htu of a DPoP
	// proof must match.
	TokenURL string
	// DPoPMaxAge is how old the iat of a DPoP proof may be
	// (dpop_proof_max_age); verify.DefaultDPoPMaxAge when zero.
	DPoPMaxAge time.Duration
	// DPoPNonces, when not nil, makes DPoP proofs need a nonce of the
	// server (dpop_nonce, RFC 9449 §8); every response of the token
	// endpoint then carries the current one in a DPoP-Nonce header.
	DPoPNonces *verify.Nonces
	// Assertions configures client authentication by JWT assertion
	// (private_key_jwt).
	Assertions AssertionConfig
	// StatusLists, when not nil, gives every access token a status-list
	// entry, and sets its bit when the token or its family is revoked.
	StatusLists StatusLists
}

// DefaultFailureFloor is the default Config.FailureFloor: well above the
// cost of any store lookup, and harmless to a client that has its secret.
const DefaultFailureFloor = 5 * time.Millisecond

// Handler serves the token endpoint.
type Handler struct {
	cfg    Config
	st     Store
	keys   Signer
	hasher *secret.Hasher
	log    *slog.Logger
	cc     *clientCredentials
	// users and passwords are both nil when the password grant is off.
	users     Users
	passwords Passwords
	retries   *retrySealer
	// clientKeys finds the keys of private_key_jwt clients.
	clientKeys *clientKeys
}

// New returns the token endpoint handler.
func New(cfg Config, st Store, signer Signer, hasher *secret.Hasher, log *slog.Logger) *Handler {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.FailureFloor == 0 {
		cfg.FailureFloor = DefaultFailureFloor
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 64 << 10
	}
	if cfg.DPoPMaxAge <= 0 {
		cfg.DPoPMaxAge = verify.DefaultDPoPMaxAge
	}
	if cfg.UserIDClaim == "" {
		cfg.UserIDClaim = "user_id"
	}
	if cfg.Assertions.MaxLifetime <= 0 {
		cfg.Assertions.MaxLifetime = DefaultAssertionMaxLifetime
	}
	if cfg.Assertions.FederatedMaxLifetime <= 0 {
		cfg.Assertions.FederatedMaxLifetime = DefaultFederatedMaxLifetime
	}
	h := &Handler{cfg: cfg, st: st, keys: signer, hasher: hasher, log: log, users: cfg.Users, passwords: cfg.Passwords,
		retries: newRetrySealer(cfg.RetryKey), clientKeys: &clientKeys{}}
	if h.users == nil || h.passwords == nil {
		h.users, h.passwords = nil, nil
	}
	h.cc = newClientCredentials(h)
	return h
}

// tokenResponse is the RFC 6749 §5.1 success body. writeToken writes it as
// encoding/json would.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
}

// ServeHTTP handles POST requests to the token endpoint.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.cfg.Metrics != nil {
		ow := &outcomeWriter{ResponseWriter: w}
		// ParseForm sets r.PostForm, also when authentication fails.
		defer func() { h.cfg.Metrics.TokenRequest(r.PostForm.Get("grant_type"), ow.outcome()) }()
		w = ow
	}
	if n := h.cfg.DPoPNonces; n != nil {
		w.Header().Set("DPoP-Nonce", n.Nonce(h.cfg.Now()))
	}
	client, form, ok := h.tokenEndpointClient(w, r, "token")
	if !ok {
		return
	}
	gt := form.Get("grant_type")
	var (
		resp *tokenResponse
		err  error
	)
	switch gt {
	case "":
		err = errInvalidRequest("grant_type is missing")
	case oauth.GrantClientCredentials, oauth.GrantRefreshToken, oauth.GrantPassword:
		if gt == oauth.GrantPassword && h.users == nil {
			err = errUnsupportedGrantType("grant_type password is not enabled on this issuer")
			break
		}
		if !slices.Contains(client.GrantTypes, gt) {
			err = errUnauthorizedClient("the client may not use the " + gt + " grant")
			break
		}
		if oe := h.quota(r, client); oe != nil {
			err = oe
			break
		}
		var jkt string
		if jkt, err = h.dpopKey(r, client); err != nil {
			break
		}
		switch gt {
		case oauth.GrantClientCredentials:
			resp, err = h.clientCredentialsGrant(r.Context(), form, client, jkt)
		case oauth.GrantPassword:
			resp, err = h.passwordGrant(r, form, client, jkt)
		default:
			resp, err = h.refresh(r.Context(), form, client, issue{simpleJWT: h.cfg.SimpleJWTClaims, jkt: jkt})
		}
	default:
		err = errUnsupportedGrantType("grant_type " + quote(gt) + " is not supported; use " + h.grantList())
	}
	if err != nil {
		h.fail(w, r, client.ID, gt, err)
		return
	}
	writeToken(w, resp)
}

// grantList names the grant types this issuer serves, for an error.
func (h *Handler) grantList() string {
	if h.users != nil {
		return "client_credentials, password or refresh_token"
	}
	return "client_credentials or refresh_token"
}

// quota counts a token request of the client against its quota (its own
// token_quota_per_minute, or the server's), and returns the error to
// answer when the quota is used up.
func (h *Handler) quota(r *http.Request, c store.Client) *Error {
	if h.cfg.Limiter == nil {
		return nil
	}
	d := h.cfg.Limiter.AllowToken(r.Context(), c.ID, c.TokenQuotaPerMinute)
	if !d.Refused() {
		return nil
	}
	return errRateLimited("the client's token quota is used up; retry after "+seconds(d.RetryAfter), d.RetryAfter)
}

// outcomeWriter remembers the outcome of a token request for the metrics:
// WriteError tells it the error code.
type outcomeWriter struct {
	http.ResponseWriter
	status int
	code   string
}

func (o *outcomeWriter) WriteHeader(code int) {
	if o.status == 0 {
		o.status = code
	}
	o.ResponseWriter.WriteHeader(code)
}

func (o *outcomeWriter) Write(b []byte) (int, error) {
	if o.status == 0 {
		o.status = http.StatusOK
	}
	return o.ResponseWriter.Write(b)
}

// outcome is "success", the error code written, or "server_error" for any
// other failure.
func (o *outcomeWriter) outcome() string {
	switch {
	case o.code != "":
		return o.code
	case o.status == http.StatusOK || o.status == 0:
		return "success"
	}
	return "server_error"
}

// fail writes err: protocol errors as they are, anything else as
// server_error (or temporarily_unavailable when the store is unreachable),
// logged once here.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, clientID, gt string, err error) {
	var oe *Error
	if !errors.As(err, &oe) {
		oe = errServer
		if errors.Is(err, store.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
			oe = errUnavailable
		}
		h.log.ErrorContext(r.Context(), "token request failed", "client_id", clientID, "grant_type", gt, "err", err)
	} else {
		h.log.InfoContext(r.Context(), "token request refused", "client_id", clientID, "grant_type", gt, "error", oe.Code)
	}
	WriteError(w, oe)
}

// repeatable are the parameters that may appear more than once (RFC 8707).
var repeatable = map[string]bool{"resource": true, "audience": true}

// ParseForm reads an application/x-www-form-urlencoded body of at most max
// bytes. Parameters in the URL query are ignored (credentials must not travel
// in URLs), and a parameter sent twice is an error (RFC 6749 §3.2).
func ParseForm(w http.ResponseWriter, r *http.Request, max int64) (url.Values, *Error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, errInvalidRequest("the body must be application/x-www-form-urlencoded")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, &Error{Code: "invalid_request", Description: "the request body is larger than the limit", Status: http.StatusRequestEntityTooLarge}
		}
		return nil, errInvalidRequest("the request body could not be read")
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, errInvalidRequest("the request body is not valid form encoding")
	}
	for k, v := range form {
		if len(v) > 1 && !repeatable[k] {
			return nil, errInvalidRequest("parameter " + quote(k) + " is repeated")
		}
	}
	r.Form, r.PostForm = form, form
	return form, nil
}

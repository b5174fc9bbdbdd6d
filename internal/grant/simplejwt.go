package grant

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/issuer-oauth/issuer/internal/oauth"
	"github.com/issuer-oauth/issuer/internal/request"
	"github.com/issuer-oauth/issuer/internal/store"
)

// SimpleJWT serves the endpoints of Django REST framework SimpleJWT
// (TokenObtainPairView, TokenRefreshView, TokenVerifyView and
// TokenBlacklistView) under one path, for front ends written against
// them: JSON (or form) in, JSON out, in SimpleJWT's shapes, and no client
// authentication, as in SimpleJWT. Tokens are issued to one configured
// client, whose audience and scope apply, through the same user
// authentication, limits, rotation and reuse detection as the token
// endpoint's password and refresh-token grants; their access tokens carry
// SimpleJWT's token_type and user id claims, so that a Django resource
// server running SimpleJWT accepts them.
type SimpleJWT struct {
	h        *Handler
	clientID string
	path     string
}

// SimpleJWT returns the SimpleJWT-compatible endpoints, issuing to the
// client clientID and served under path (which ends with a slash, such as
// /api/token/). It needs the password grant (Config.Users and
// Config.Passwords).
func (h *Handler) SimpleJWT(clientID, path string) *SimpleJWT {
	return &SimpleJWT{h: h, clientID: clientID, path: path}
}

// SimpleJWT's answers (rest_framework_simplejwt, its default messages).
const (
	sjNoAccount    = "No active account found with the given credentials"
	sjInvalidToken = "Token is invalid or expired"
	sjRequired     = "This field is required."
	sjBlank        = "This field may not be blank."
	sjNull         = "This field may not be null."
)

// ServeHTTP routes POST {path}, {path}refresh/, {path}verify/ and
// {path}blacklist/; any other path under {path} is not found, as in a
// Django URLconf.
func (s *SimpleJWT) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	endpoint, found := strings.CutPrefix(r.URL.Path, s.path)
	var serve func(http.ResponseWriter, *http.Request, map[string]string)
	fields := []string{"refresh"}
	switch endpoint {
	case "":
		serve, fields = s.obtain, []string{"username", "password"}
	case "refresh/":
		serve = s.refresh
	case "verify/":
		serve, fields = s.verify, []string{"token"}
	case "blacklist/":
		serve = s.blacklist
	default:
		found = false
	}
	if !found {
		sjWrite(w, http.StatusNotFound, map[string]string{"detail": "Not found."})
		return
	}
	if r.Method != http.MethodPost {
		// DRF's views also answer OPTIONS; these do not, so they do not
		// advertise it (RFC 9110 §10.2.1).
		w.Header().Set("Allow", "POST")
		sjWrite(w, http.StatusMethodNotAllowed, map[string]string{"detail": `Method "` + methodName(r.Method) + `" not allowed.`})
		return
	}
	if m := s.h.cfg.Metrics; m != nil {
		sw := &statusWriter{ResponseWriter: w}
		defer func() { m.TokenRequest("simplejwt", sw.outcome()) }()
		w = sw
	}
	in, problem := s.read(w, r, fields)
	if problem != nil {
		sjWrite(w, problem.status, problem.body)
		return
	}
	serve(w, r, in)
}

// statusWriter remembers the status of an answer, for the metrics.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

// outcome names the answer as the token endpoint's metrics do: success,
// or the RFC 6749 code closest to SimpleJWT's answer.
func (s *statusWriter) outcome() string {
	switch {
	case s.status == http.StatusOK:
		return "success"
	case s.status == http.StatusUnauthorized:
		return "invalid_grant"
	case s.status == http.StatusTooManyRequests, s.status == http.StatusServiceUnavailable:
		return "temporarily_unavailable"
	case s.status >= 500:
		return "server_error"
	}
	return "invalid_request"
}

// methodName is m when it is a standard method, else "OTHER": it goes into
// a JSON string.
func methodName(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPatch, http.MethodDelete,
		http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "OTHER"
}

// sjProblem is an answer to a request that could not be read.
type sjProblem struct {
	status int
	body   any
}

// read reads the request body (JSON, or a form as DRF also accepts) and
// returns the string fields named; a missing, null or blank one is a 400
// in DRF's shape, naming every such field.
func (s *SimpleJWT) read(w http.ResponseWriter, r *http.Request, fields []string) (map[string]string, *sjProblem) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.h.cfg.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, &sjProblem{http.StatusRequestEntityTooLarge, map[string]string{"detail": "Request body too large."}}
		}
		return nil, &sjProblem{http.StatusBadRequest, map[string]string{"detail": "The request body could not be read."}}
	}
	values := map[string]any{}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mt {
	case "application/json":
		if err := json.Unmarshal(body, &values); err != nil {
			return nil, &sjProblem{http.StatusBadRequest, map[string]string{"detail": "JSON parse error - the body must be a JSON object."}}
		}
	case "application/x-www-form-urlencoded":
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, &sjProblem{http.StatusBadRequest, map[string]string{"detail": "Malformed form data."}}
		}
		for k, v := range form {
			values[k] = v[0]
		}
	default:
		return nil, &sjProblem{http.StatusUnsupportedMediaType, map[string]string{"detail": "Unsupported media type " + quote(mt) + " in request."}}
	}
	in := make(map[string]string, len(fields))
	errs := map[string][]string{}
	for _, f := range fields {
		v, present := values[f]
		switch v := v.(type) {
		case nil:
			if present {
				errs[f] = []string{sjNull} // JSON null
			} else {
				errs[f] = []string{sjRequired}
			}
		case string:
			if strings.TrimSpace(v) == "" {
				errs[f] = []string{sjBlank}
			}
			in[f] = v
		default:
			errs[f] = []string{"Not a valid string."}
		}
	}
	if len(errs) > 0 {
		return nil, &sjProblem{http.StatusBadRequest, errs}
	}
	return in, nil
}

// client returns the configured client, or false after answering when it
// is missing or cannot serve (an operator's mistake, logged).
func (s *SimpleJWT) client(w http.ResponseWriter, r *http.Request) (store.Client, bool) {
	c, err := s.h.st.GetClient(r.Context(), s.clientID)
	switch {
	case err == nil && c.DPoPBound:
		// SimpleJWT's endpoints take no DPoP proof, so they could only
		// issue the bearer tokens the client's registration forbids.
		s.h.log.ErrorContext(r.Context(), "the simplejwt_client_id client has dpop_bound_access_tokens, which the SimpleJWT-compatible endpoints "+
			"cannot honour (they take no DPoP proof); use a client without it", "client_id", s.clientID)
		sjWrite(w, http.StatusInternalServerError, map[string]string{"detail": "The token service is not configured."})
	case err == nil && slices.Contains(c.GrantTypes, oauth.GrantPassword) && slices.Contains(c.GrantTypes, oauth.GrantRefreshToken):
		return c, true
	case err == nil || errors.Is(err, store.ErrNotFound):
		s.h.log.ErrorContext(r.Context(), "the simplejwt_client_id client does not exist or lacks the password and refresh_token grants; "+
			"register it with issuer clients create --grant-types password,refresh_token", "client_id", s.clientID)
		sjWrite(w, http.StatusInternalServerError, map[string]string{"detail": "The token service is not configured."})
	default:
		s.fail(w, r, err)
	}
	return store.Client{}, false
}

// obtain is TokenObtainPairView: a username and password for an access and
// a refresh token.
func (s *SimpleJWT) obtain(w http.ResponseWriter, r *http.Request, in map[string]string) {
	h := s.h
	if h.users == nil {
		sjWrite(w, http.StatusNotFound, map[string]string{"detail": "Not found."})
		return
	}
	c, ok := s.client(w, r)
	if !ok {
		return
	}
	if c.Disabled { // a disabled client issues nothing
		sjWrite(w, http.StatusUnauthorized, map[string]string{"detail": sjNoAccount})
		return
	}
	if oe := h.quota(r, c); oe != nil {
		s.fail(w, r, oe)
		return
	}
	u, err := h.authenticateUser(r.Context(), request.ClientAddr(r), in["username"], in["password"])
	if err != nil {
		if errors.Is(err, errBadCredentials) {
			sjWrite(w, http.StatusUnauthorized, map[string]string{"detail": sjNoAccount})
			return
		}
		s.fail(w, r, err)
		return
	}
	aud, oerr := grantAudience(nil, c.Audiences)
	if oerr != nil {
		s.fail(w, r, oerr)
		return
	}
	resp, err := h.cc.token(r.Context(), c, issue{user: &u, simpleJWT: true}, userScopes(c.Scopes, u), aud)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	sjWrite(w, http.StatusOK, map[string]string{"access": resp.AccessToken, "refresh": resp.RefreshToken})
}

// refresh is TokenRefreshView with ROTATE_REFRESH_TOKENS and
// BLACKLIST_AFTER_ROTATION: a refresh token for a new access and refresh
// token; the old one is retired, and presenting it again ends its family.
func (s *SimpleJWT) refresh(w http.ResponseWriter, r *http.Request, in map[string]string) {
	if claims, err := s.h.keys.ParseRefresh(in["refresh"]); err != nil || claims.ClientID != s.clientID {
		sjTokenNotValid(w)
		return
	}
	c, ok := s.client(w, r)
	if !ok {
		return
	}
	if c.Disabled { // its families ended with the generation
		sjTokenNotValid(w)
		return
	}
	if oe := s.h.quota(r, c); oe != nil {
		s.fail(w, r, oe)
		return
	}
	resp, err := s.h.refresh(r.Context(), url.Values{"refresh_token": {in["refresh"]}}, c, issue{simpleJWT: true})
	if err != nil {
		var oe *Error
		if errors.As(err, &oe) && oe.Code == "invalid_grant" {
			sjTokenNotValid(w)
			return
		}
		s.fail(w, r, err)
		return
	}
	sjWrite(w, http.StatusOK, map[string]string{"access": resp.AccessToken, "refresh": resp.RefreshToken})
}

// verify is TokenVerifyView: 200 {} for a live token of this issuer (an
// access token, or a refresh token that is its family's current one).
func (s *SimpleJWT) verify(w http.ResponseWriter, r *http.Request, in map[string]string) {
	tok, err := s.h.identify(r.Context(), in["token"])
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if tok == nil {
		sjTokenNotValid(w)
		return
	}
	sjWrite(w, http.StatusOK, struct{}{})
}

// blacklist is TokenBlacklistView: the refresh token's family ends.
func (s *SimpleJWT) blacklist(w http.ResponseWriter, r *http.Request, in map[string]string) {
	ctx := r.Context()
	tok, err := s.h.identify(ctx, in["refresh"])
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if tok == nil || tok.refresh == nil || tok.clientID != s.clientID {
		sjTokenNotValid(w)
		return
	}
	if err := s.h.endFamily(ctx, tok.refresh.FamilyID); err != nil {
		s.fail(w, r, err)
		return
	}
	s.h.log.InfoContext(ctx, "refresh token family revoked (SimpleJWT blacklist)", "client_id", s.clientID, "family", tok.refresh.FamilyID)
	sjWrite(w, http.StatusOK, struct{}{})
}

// fail answers err in SimpleJWT's shape: limits as DRF's throttling (429
// with Retry-After), an unreachable store or a full hashing pool as 503,
// anything else as 500, logged once here.
func (s *SimpleJWT) fail(w http.ResponseWriter, r *http.Request, err error) {
	var oe *Error
	if !errors.As(err, &oe) {
		if errors.Is(err, store.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
			oe = errUnavailable
		} else {
			s.h.log.ErrorContext(r.Context(), "SimpleJWT-compatible request failed", "client_id", s.clientID, "err", err)
			sjWrite(w, http.StatusInternalServerError, map[string]string{"detail": "A server error occurred."})
			return
		}
	}
	if oe.RetryAfter > 0 {
		n := int64((oe.RetryAfter + 999_999_999) / 1_000_000_000)
		w.Header().Set("Retry-After", strconv.FormatInt(n, 10))
		sjWrite(w, oe.Status, map[string]string{"detail": "Request was throttled. Expected available in " + strconv.FormatInt(n, 10) + " seconds."})
		return
	}
	sjWrite(w, oe.Status, map[string]string{"detail": oe.Description})
}

// sjTokenNotValid is SimpleJWT's answer to a bad, expired or used token.
func sjTokenNotValid(w http.ResponseWriter) {
	sjWrite(w, http.StatusUnauthorized, map[string]string{"detail": sjInvalidToken, "code": "token_not_valid"})
}

// sjWrite writes a JSON answer that must not be cached.
func sjWrite(w http.ResponseWriter, status int, v any) {
	noStoreJSON(w)
	if status == http.StatusUnauthorized {
		// DRF's JWTAuthentication challenge.
		w.Header().Set("WWW-Authenticate", `Bearer realm="api"`)
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

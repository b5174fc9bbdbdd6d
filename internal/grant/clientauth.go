package grant

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/issuer-oauth/issuer/internal/oauth"
	"github.com/issuer-oauth/issuer/internal/ratelimit"
	"github.com/issuer-oauth/issuer/internal/request"
	"github.com/issuer-oauth/issuer/internal/store"
)

// maxClientIDLen bounds the client ids looked up in the store.
const maxClientIDLen = 128

// Authenticate authenticates the client of a token-endpoint request
// (RFC 6749 §2.3.1) by HTTP Basic, by client_id and client_secret in the
// form, or by a JWT client assertion (RFC 7523 §2.2: private_key_jwt), never
// two of them. A client authenticates only with the method it registered.
//
// A disabled client is refused (invalid_client) once its secret is right.
//
// An unknown client id gets the same answer as a wrong secret, after the same
// HMAC work, and no sooner than FailureFloor after the request began: a store
// finds a missing record faster than it decodes a present one (microseconds,
// but measurable with enough samples), and the floor hides that difference.
//
// With a Limiter, a request whose source address (request.ClientAddr) or
// client id is over its failure limit gets 429 temporarily_unavailable with
// Retry-After before its credentials are checked (see package ratelimit for
// the rules), and every wrong secret or unknown client id counts as a failure
// of both. Requests without credentials, with malformed ones, or with the
// right secret over the wrong method do not count.
//
// A disabled client is refused whatever its method, and only a client that
// proved itself learns that it is disabled.
func (h *Handler) Authenticate(r *http.Request, form url.Values) (store.Client, *Error) {
	var (
		c    store.Client
		oerr *Error
	)
	if form.Has("client_assertion") || form.Has("client_assertion_type") {
		c, oerr = h.authenticateAssertion(r, form)
	} else {
		c, oerr = h.authenticateSecret(r, form)
	}
	if oerr == nil && c.Disabled {
		return store.Client{}, errInvalidClient("the client is disabled; an administrator enables it with issuer clients update " + c.ID + " --disabled=false")
	}
	return c, oerr
}

// authenticateSecret authenticates a client by its secret
// (client_secret_basic or client_secret_post).
func (h *Handler) authenticateSecret(r *http.Request, form url.Values) (store.Client, *Error) {
	start := time.Now()
	id, sec, method, oerr := credentials(r, form)
	if oerr != nil {
		return store.Client{}, oerr
	}
	addr, limitID := request.ClientAddr(r), id
	if len(id) > maxClientIDLen {
		limitID = "" // not a client id worth a counter
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
	fail := func() (store.Client, *Error) {
		h.authMetric(method, "failure")
		if h.cfg.Limiter != nil {
			h.cfg.Limiter.AuthFailed(r.Context(), limitID, addr)
		}
		h.waitFloor(r.Context(), start)
		return store.Client{}, errInvalidClient("client authentication failed")
	}
	if len(id) > maxClientIDLen {
		h.hasher.VerifyUnknown(sec)
		return fail()
	}
	c, err := h.st.GetClient(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		h.hasher.VerifyUnknown(sec)
		return fail()
	}
	if err != nil {
		h.log.ErrorContext(r.Context(), "client lookup failed", "client_id", id, "err", err)
		if errors.Is(err, store.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
			return store.Client{}, errUnavailable
		}
		return store.Client{}, errServer
	}
	if !h.hasher.Verify(c.ID, sec, c.SecretHash) {
		return fail()
	}
	if c.AuthMethod != method {
		h.authMetric(method, "failure")
		return store.Client{}, errInvalidClient("the client is registered for " + c.AuthMethod + ", not " + method)
	}
	h.authMetric(method, "success")
	return c, nil
}

// seconds formats d as whole seconds, rounded up, as Retry-After does.
func seconds(d time.Duration) string {
	n := int64((d + time.Second - 1) / time.Second)
	if n == 1 {
		return "1 second"
	}
	return strconv.FormatInt(n, 10) + " seconds"
}

// waitFloor returns once FailureFloor has passed since start, or ctx ends.
func (h *Handler) waitFloor(ctx context.Context, start time.Time) {
	d := h.cfg.FailureFloor - time.Since(start)
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// credentials extracts the client credentials and the method used.
func credentials(r *http.Request, form url.Values) (id, sec, method string, oerr *Error) {
	formID, formSecret := form.Get("client_id"), form.Get("client_secret")
	auth := r.Header.Get("Authorization")
	if auth == "" {
		if formID == "" || formSecret == "" {
			return "", "", "", errInvalidClient("client authentication is required: HTTP Basic or client_id and client_secret")
		}
		return formID, formSecret, oauth.AuthClientSecretPost, nil
	}
	if formSecret != "" {
		return "", "", "", errInvalidRequest("use one client authentication method: HTTP Basic or client_secret in the body, not both")
	}
	user, pass, ok := r.BasicAuth()
	if !ok {
		scheme, _, _ := strings.Cut(auth, " ")
		if strings.EqualFold(scheme, "Basic") {
			return "", "", "", errInvalidClient("malformed Basic credentials: want base64 of client_id:client_secret")
		}
		return "", "", "", errInvalidClient("unsupported Authorization scheme " + quote(scheme) + "; use Basic")
	}
	// RFC 6749 §2.3.1: both are form-urlencoded before Basic encoding.
	var err1, err2 error
	id, err1 = url.QueryUnescape(user)
	sec, err2 = url.QueryUnescape(pass)
	if err1 != nil || err2 != nil || id == "" {
		return "", "", "", errInvalidClient("malformed Basic credentials")
	}
	if formID != "" && formID != id {
		return "", "", "", errInvalidRequest("client_id in the body differs from the Basic credentials")
	}
	return id, sec, oauth.AuthClientSecretBasic, nil
}

package grant

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/issuer-oauth/issuer/internal/store"
)

// maxClientIDLen bounds the client ids looked up in the store.
const maxClientIDLen = 128

// Authenticate authenticates the client of a token-endpoint request
// (RFC 6749 §2.3.1) by HTTP Basic or by client_id and client_secret in the
// form, never both. A client authenticates only with the method it
// registered. An unknown client costs the same work as a wrong secret and gets
// the same answer. It returns the client and the secret it presented.
func (h *Handler) Authenticate(r *http.Request, form url.Values) (store.Client, string, *Error) {
	id, sec, method, oerr := credentials(r, form)
	if oerr != nil {
		return store.Client{}, "", oerr
	}
	fail := errInvalidClient("client authentication failed")
	if len(id) > maxClientIDLen {
		h.hasher.VerifyUnknown(sec)
		return store.Client{}, "", fail
	}
	c, err := h.st.GetClient(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		h.hasher.VerifyUnknown(sec)
		return store.Client{}, "", fail
	}
	if err != nil {
		h.log.ErrorContext(r.Context(), "client lookup failed", "client_id", id, "err", err)
		if errors.Is(err, store.ErrUnavailable) {
			return store.Client{}, "", errUnavailable
		}
		return store.Client{}, "", errServer
	}
	if !h.hasher.Verify(c.ID, sec, c.SecretHash) {
		return store.Client{}, "", fail
	}
	if c.AuthMethod != method {
		return store.Client{}, "", errInvalidClient("the client is registered for " + c.AuthMethod + ", not " + method)
	}
	return c, sec, nil
}

// credentials extracts the client credentials and the method used.
func credentials(r *http.Request, form url.Values) (id, sec, method string, oerr *Error) {
	formID, formSecret := form.Get("client_id"), form.Get("client_secret")
	auth := r.Header.Get("Authorization")
	if auth == "" {
		if formID == "" || formSecret == "" {
			return "", "", "", errInvalidClient("client authentication is required: HTTP Basic or client_id and client_secret")
		}
		return formID, formSecret, AuthPost, nil
	}
	if formSecret != "" {
		return "", "", "", errInvalidRequest("use one client authentication method: HTTP Basic or client_secret in the body, not both")
	}
	user, pass, ok := r.BasicAuth()
	if !ok {
		scheme, _, _ := strings.Cut(auth, " ")
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
	return id, sec, AuthBasic, nil
}

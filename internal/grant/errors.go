package grant

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// Error is an OAuth 2.0 error response (RFC 6749 §5.2). Handlers return it as a
// value; WriteError is the one function that puts it on the wire.
type Error struct {
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
	Status      int    `json:"-"`
	// RetryAfter, when more than 0, is sent as the Retry-After header (in
	// whole seconds, rounded up).
	RetryAfter time.Duration `json:"-"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Description }

// Constructors for the standard codes, each with its RFC 6749 status.
func errInvalidRequest(desc string) *Error {
	return &Error{Code: "invalid_request", Description: desc, Status: http.StatusBadRequest}
}
func errInvalidClient(desc string) *Error {
	return &Error{Code: "invalid_client", Description: desc, Status: http.StatusUnauthorized}
}
func errInvalidGrant(desc string) *Error {
	return &Error{Code: "invalid_grant", Description: desc, Status: http.StatusBadRequest}
}
func errInvalidScope(desc string) *Error {
	return &Error{Code: "invalid_scope", Description: desc, Status: http.StatusBadRequest}
}

// errInvalidTarget is RFC 8707's code for a resource or audience the client
// may not ask for.
func errInvalidTarget(desc string) *Error {
	return &Error{Code: "invalid_target", Description: desc, Status: http.StatusBadRequest}
}
func errUnauthorizedClient(desc string) *Error {
	return &Error{Code: "unauthorized_client", Description: desc, Status: http.StatusBadRequest}
}
func errUnsupportedGrantType(desc string) *Error {
	return &Error{Code: "unsupported_grant_type", Description: desc, Status: http.StatusBadRequest}
}

// errServer is what any unexpected failure becomes; the cause is logged, not sent.
var errServer = &Error{Code: "server_error", Description: "the server failed to handle the request", Status: http.StatusInternalServerError}

// errUnavailable is the answer when the store cannot be reached.
var errUnavailable = &Error{Code: "temporarily_unavailable", Description: "the token service cannot reach its store; retry shortly", Status: http.StatusServiceUnavailable}

// errRateLimited is the answer to a request refused by an abuse limit:
// 429 with Retry-After. The code is temporarily_unavailable ("retry later",
// RFC 6749 §4.1.2.1), not invalid_client: a limited request is refused
// whatever its credentials, which may well be right (the quota refuses
// authenticated clients), and a client must not conclude that its secret is
// wrong.
func errRateLimited(desc string, retryAfter time.Duration) *Error {
	return &Error{Code: "temporarily_unavailable", Description: desc, Status: http.StatusTooManyRequests, RetryAfter: retryAfter}
}

// WriteError writes e as an RFC 6749 §5.2 JSON error response.
func WriteError(w http.ResponseWriter, e *Error) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	if e.Status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Basic realm="issuer", charset="UTF-8"`)
	}
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.FormatInt(int64((e.RetryAfter+time.Second-1)/time.Second), 10))
	}
	if ow, ok := w.(*outcomeWriter); ok {
		ow.code = e.Code
	}
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(e)
}

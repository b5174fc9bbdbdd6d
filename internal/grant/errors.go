package grant

import (
	"encoding/json"
	"net/http"
)

// Error is an OAuth 2.0 error response (RFC 6749 §5.2). Handlers return it as a
// value; writeError is the one place that puts it on the wire.
type Error struct {
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
	Status      int    `json:"-"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Description }

// Constructors for the standard codes, each with its RFC 6749 status.
func errInvalidRequest(desc string) *Error {
	return &Error{"invalid_request", desc, http.StatusBadRequest}
}
func errInvalidClient(desc string) *Error {
	return &Error{"invalid_client", desc, http.StatusUnauthorized}
}
func errInvalidGrant(desc string) *Error { return &Error{"invalid_grant", desc, http.StatusBadRequest} }
func errInvalidScope(desc string) *Error { return &Error{"invalid_scope", desc, http.StatusBadRequest} }

// errInvalidTarget is RFC 8707's code for a resource or audience the client
// may not ask for.
func errInvalidTarget(desc string) *Error {
	return &Error{"invalid_target", desc, http.StatusBadRequest}
}
func errUnauthorizedClient(desc string) *Error {
	return &Error{"unauthorized_client", desc, http.StatusBadRequest}
}
func errUnsupportedGrantType(desc string) *Error {
	return &Error{"unsupported_grant_type", desc, http.StatusBadRequest}
}

// errServer is what any unexpected failure becomes; the cause is logged, not sent.
var errServer = &Error{"server_error", "the server failed to handle the request", http.StatusInternalServerError}

// errUnavailable is the answer when the store cannot be reached.
var errUnavailable = &Error{"temporarily_unavailable", "the token service cannot reach its store; retry shortly", http.StatusServiceUnavailable}

// WriteError writes e as an RFC 6749 §5.2 JSON error response.
func WriteError(w http.ResponseWriter, e *Error) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	if e.Status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Basic realm="issuer", charset="UTF-8"`)
	}
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(e)
}

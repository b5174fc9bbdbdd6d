// Package adminapi is the wire format of the issuer's admin API and a Go
// client for it. The server (internal/admin) writes these types and the
// CLI (cmd/issuer) reads them through Client, so the two cannot drift.
//
// Client registration follows RFC 7591 (the request of §2 and the response
// of §3.2.1) with the management operations of RFC 7592 under
// /admin/clients/{id}; the README's "Admin API" section lists every call.
package adminapi

import "time"

// Paths of the admin API, relative to the issuer's base URL.
const (
	PathClients = "/admin/clients"
	PathKeys    = "/admin/keys"
	PathRotate  = "/admin/keys/rotate"
)

// ClientMetadata is the client metadata of RFC 7591 §2 that the issuer
// supports: the body of POST /admin/clients and of PUT /admin/clients/{id}
// (which replaces all of it). A zero field in a registration gets the
// server's default.
type ClientMetadata struct {
	// ClientName is a human-readable name.
	ClientName string `json:"client_name"`
	// GrantTypes are the grants the client may use; default
	// client_credentials and refresh_token.
	GrantTypes []string `json:"grant_types"`
	// Scope lists the scopes the client may ask for, space-separated.
	Scope string `json:"scope"`
	// Audience (extension) lists the audiences its tokens may name; the
	// first is the default.
	Audience []string `json:"audience"`
	// TokenEndpointAuthMethod is how the client authenticates:
	// client_secret_basic (default) or client_secret_post.
	TokenEndpointAuthMethod string `json:"token_endpoint_auth_method"`
	// IntrospectAll (extension) lets the client introspect every token,
	// not only its own: for resource servers that introspect.
	IntrospectAll bool `json:"introspect_all"`
}

// ClientInfo is a registered client as the admin API returns it: the RFC
// 7591 §3.2.1 client information response.
type ClientInfo struct {
	// ClientID is the client's id.
	ClientID string `json:"client_id"`
	// ClientSecret is present only in the answers of registration and of
	// secret rotation: the issuer keeps only a hash.
	ClientSecret string `json:"client_secret,omitempty"`
	// ClientIDIssuedAt is the registration time, in seconds since the epoch.
	ClientIDIssuedAt int64 `json:"client_id_issued_at"`
	// ClientSecretExpiresAt is 0: secrets do not expire.
	ClientSecretExpiresAt int64 `json:"client_secret_expires_at"`
	ClientMetadata
}

// ClientList is the answer of GET /admin/clients, ordered by client id.
type ClientList struct {
	// Clients are the registered clients.
	Clients []ClientInfo `json:"clients"`
}

// Key is a signing key as the admin API returns it.
type Key struct {
	// KID is the key id (the JWS kid).
	KID string `json:"kid"`
	// Alg is the key's JWS algorithm.
	Alg string `json:"alg"`
	// State is next, current or retired.
	State string `json:"state"`
	// CreatedAt is when the key was generated (for a file: its
	// modification time).
	CreatedAt time.Time `json:"created_at"`
	// NotBefore is when the key starts (or started) signing.
	NotBefore time.Time `json:"not_before"`
	// RetiresAt is when the key stops signing; zero when unknown.
	RetiresAt time.Time `json:"retires_at,omitzero"`
	// RemovedAt is when the key leaves the JWK Set, once every token it
	// signed has expired; zero when unknown.
	RemovedAt time.Time `json:"removed_at,omitzero"`
	// File is the key's file name, for keys loaded from keys_dir.
	File string `json:"file,omitempty"`
}

// KeyList is the answer of GET /admin/keys.
type KeyList struct {
	// Keys are ordered by NotBefore, oldest first.
	Keys []Key `json:"keys"`
}

// RotateKeyRequest is the optional body of POST /admin/keys/rotate.
type RotateKeyRequest struct {
	// NotBefore, when set, schedules the new key to start signing then
	// (at least the publish lead from now) instead of at once.
	NotBefore *time.Time `json:"not_before,omitempty"`
}

// RevokedKey is the answer of DELETE /admin/keys/{kid}.
type RevokedKey struct {
	// Revoked is the key removed, as it was.
	Revoked Key `json:"revoked"`
	// Current is the key that signs now: a new one when the current key
	// was revoked.
	Current Key `json:"current"`
}

// KeySecret is an HS256 key as an RFC 7517 "oct" JWK: the answer of
// GET /admin/keys/{kid}/secret.
type KeySecret struct {
	// Kty is "oct".
	Kty string `json:"kty"`
	// Kid is the key id.
	Kid string `json:"kid"`
	// Alg is "HS256".
	Alg string `json:"alg"`
	// K is the secret, base64url without padding.
	K string `json:"k"`
}

// ErrorBody is the body of every error answer, in the shape of RFC 6749
// §5.2 (RFC 7591 §3.2.2 for registration).
type ErrorBody struct {
	// Error is the error code, e.g. invalid_client_metadata, not_found.
	Error string `json:"error"`
	// ErrorDescription says what went wrong and what to do.
	ErrorDescription string `json:"error_description"`
}

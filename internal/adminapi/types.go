// Package adminapi is the wire format of the issuer's admin API and a Go
// client for it. The server (internal/admin) writes these types and the
// CLI (cmd/issuer) reads them through Client, so the two cannot drift.
//
// Client registration follows RFC 7591 (the request of §2 and the response
// of §3.2.1) with the management operations of RFC 7592 under
// /admin/clients/{id}. Users of the password grant (RFC 6749 §4.3) are
// managed under /admin/users. docs/admin.md lists
// every call.
package adminapi

import (
	"encoding/json"
	"time"
)

// Paths of the admin API, relative to the issuer's base URL.
const (
	PathClients = "/admin/clients"
	PathKeys    = "/admin/keys"
	PathBackup  = "/admin/backup"
	PathRotate  = "/admin/keys/rotate"
	PathUsers   = "/admin/users"
	PathImport  = "/admin/users/import"
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
	// client_secret_basic (default), client_secret_post, private_key_jwt
	// (with JWKS or JWKSURI) or federated_jwt (with FederatedIdentity).
	TokenEndpointAuthMethod string `json:"token_endpoint_auth_method"`
	// IntrospectAll (extension) lets the client introspect every token,
	// not only its own: for resource servers that introspect.
	IntrospectAll bool `json:"introspect_all"`
	// DPoPBoundAccessTokens (RFC 9449 §5.2) makes every token request of
	// the client need a DPoP proof, so all its access tokens are bound
	// to a key it holds.
	DPoPBoundAccessTokens bool `json:"dpop_bound_access_tokens"`

	// Per-client policy (extension; docs/client-policy.md). Durations are Go
	// durations such as "90s", "10m" or "36h"; empty (or absent) means the
	// server's setting of the same name.

	// Disabled clients cannot authenticate, and disabling a client ends
	// every refresh token it holds, for good.
	Disabled bool `json:"disabled"`
	// AccessTokenTTL is the lifetime of the client's access tokens, 1s
	// to 24h.
	AccessTokenTTL string `json:"access_token_ttl,omitempty"`
	// RefreshTokenTTL is the lifetime of the client's refresh tokens,
	// longer than its access tokens' and at most 8760h.
	RefreshTokenTTL string `json:"refresh_token_ttl,omitempty"`
	// RefreshTokenMaxLifetime is the absolute end of each of the client's
	// refresh-token families, counted from its first token; longer than
	// its access tokens' lifetime and at most 87600h.
	RefreshTokenMaxLifetime string `json:"refresh_token_max_lifetime,omitempty"`
	// RefreshTokenReuseInterval is how long after a refresh the same
	// request with the just-rotated refresh token gets a byte-identical
	// copy of the first answer: 1s to 60s, or empty (0) for never.
	RefreshTokenReuseInterval string `json:"refresh_token_reuse_interval,omitempty"`
	// TokenQuotaPerMinute is the number of token requests the client may
	// make per minute; 0 (or absent) means the server's
	// token_quota_per_minute.
	TokenQuotaPerMinute int64 `json:"token_quota_per_minute,omitempty"`

	// JWKS is the client's JWK Set of public keys (RFC 7591 §2), for
	// private_key_jwt; never together with JWKSURI.
	JWKS json.RawMessage `json:"jwks,omitempty"`
	// JWKSURI is the https URL of the client's JWK Set (RFC 7591 §2),
	// for private_key_jwt; never together with JWKS.
	JWKSURI string `json:"jwks_uri,omitempty"`
	// TokenEndpointAuthSigningAlg pins the algorithm of the client's
	// assertions: RS256, PS256, ES256 or EdDSA (RFC 7591 §2).
	TokenEndpointAuthSigningAlg string `json:"token_endpoint_auth_signing_alg,omitempty"`
	// FederatedIdentity (extension) is the workload identity of a
	// federated_jwt client.
	FederatedIdentity *FederatedIdentity `json:"federated_identity,omitempty"`
}

// FederatedIdentity binds a federated_jwt client to the tokens of a
// trusted issuer (trusted_issuers in the configuration).
type FederatedIdentity struct {
	// Issuer is the name of the trusted issuer.
	Issuer string `json:"issuer"`
	// Subject is the exact sub of the workload's tokens.
	Subject string `json:"subject"`
	// Claims are further claims the tokens must carry, each a string
	// equal to the given value.
	Claims map[string]string `json:"claims,omitempty"`
}

// ClientInfo is a registered client as the admin API returns it: the RFC
// 7591 §3.2.1 client information response.
type ClientInfo struct {
	// ClientID is the client's id.
	ClientID string `json:"client_id"`
	// ClientSecret is present only in the answers of registration and of
	// secret rotation: the issuer keeps only a hash. Clients that
	// authenticate without a secret (private_key_jwt, federated_jwt) have
	// none.
	ClientSecret string `json:"client_secret,omitempty"`
	// ClientIDIssuedAt is the registration time, in seconds since the epoch.
	ClientIDIssuedAt int64 `json:"client_id_issued_at"`
	// ClientSecretExpiresAt is 0: secrets do not expire.
	ClientSecretExpiresAt int64 `json:"client_secret_expires_at"`
	// ETag is the ETag header of the answer (GET and PUT): give it to
	// UpdateClientIfMatch to change that version of the client only.
	ETag string `json:"-"`
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

// UserRequest is the body of POST /admin/users (create), of PUT
// /admin/users/{username} (which replaces the user's profile: an absent
// field gets its default) and of POST /admin/users/{username}/password
// (which takes only Password).
type UserRequest struct {
	// Username names the user: 1 to 150 printable characters without
	// whitespace, case-sensitive. Needed on create; elsewhere it may be
	// absent, or must equal the username of the path.
	Username string `json:"username,omitempty"`
	// Password is the new password, 8 to 1024 characters, on create and
	// set-password only. When it is absent there, the issuer generates one
	// and returns it once, in UserInfo.Password.
	Password *string `json:"password,omitempty"`
	// Disabled users cannot log in; disabling a user ends its refresh
	// tokens.
	Disabled bool `json:"disabled,omitempty"`
	// Scope lists the scopes the user may be granted, space-separated
	// scope tokens (RFC 6749 §3.3). nil (absent or null) leaves the user
	// limited by the client alone; "" allows none.
	Scope *string `json:"scope,omitempty"`
	// Claims are string claims copied into the user's access tokens: at
	// most 20, never one the issuer sets itself (iss, sub, aud, …).
	Claims map[string]string `json:"claims,omitempty"`
}

// UserInfo is a user as the admin API returns it. It never holds the
// password's hash.
type UserInfo struct {
	// UserID is the stable opaque id assigned at creation: the sub of the
	// user's access tokens.
	UserID string `json:"user_id"`
	// Username is the user's login name.
	Username string `json:"username"`
	// Disabled users cannot log in.
	Disabled bool `json:"disabled"`
	// Scope is the space-separated scopes the user may be granted; nil
	// (omitted) when the client alone limits them.
	Scope *string `json:"scope,omitempty"`
	// Claims are the extra claims of the user's access tokens; never nil.
	Claims map[string]string `json:"claims"`
	// CreatedAt is when the user was created.
	CreatedAt time.Time `json:"created_at"`
	// UpdatedAt is when its profile or password last changed.
	UpdatedAt time.Time `json:"updated_at"`
	// LockedUntil is when the lockout after too many failed logins ends;
	// zero (omitted) when the user is not locked.
	LockedUntil time.Time `json:"locked_until,omitzero"`
	// Password is present only in the answer of a create or set-password
	// that generated it: the issuer keeps only a hash.
	Password string `json:"password,omitempty"`
}

// UserList is the answer of GET /admin/users, ordered by username.
type UserList struct {
	// Users are the users.
	Users []UserInfo `json:"users"`
}

// ImportResult is the answer of POST /admin/users/import, whose body is
// the JSON of Django's `manage.py dumpdata auth.user` (or, with the query
// parameter model=app_label.model_name, of a custom user model).
type ImportResult struct {
	// Created counts the users that were new.
	Created int `json:"created"`
	// Updated counts the users whose password hash, disabled state or
	// claims changed.
	Updated int `json:"updated"`
	// Skipped counts the records that changed nothing: users already as
	// in the dump, and records of other models.
	Skipped int `json:"skipped"`
	// Errors are the records that were not imported, in input order;
	// never nil.
	Errors []ImportError `json:"errors"`
}

// ImportError is a record of an import that was not imported.
type ImportError struct {
	// Index is the record's position in the dump's list, from 0.
	Index int `json:"index"`
	// PK is the record's Django primary key, when it has one.
	PK string `json:"pk,omitempty"`
	// Error says what is wrong with the record; it never holds the
	// password hash.
	Error string `json:"error"`
}

// ErrorBody is the body of every error answer, in the shape of RFC 6749
// §5.2 (RFC 7591 §3.2.2 for registration).
type ErrorBody struct {
	// Error is the error code, e.g. invalid_client_metadata, not_found.
	Error string `json:"error"`
	// ErrorDescription says what went wrong and what to do.
	ErrorDescription string `json:"error_description"`
}

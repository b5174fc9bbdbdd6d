// Package store defines the issuer's persistent state and the operations on it.
//
// Every method is one atomic operation, so that a backend can implement it as a
// single transaction (the embedded bbolt backend) or a single Lua script or
// MULTI/EXEC (the Redis backend). Callers never read, modify and write back.
//
// Records that can expire (refresh-token families, revoked token ids) carry
// their expiry; a backend stops returning them after it and eventually frees
// their space. Backends live in sub-packages; storetest is the conformance suite
// every backend passes.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"
)

// Sentinel errors. Backends wrap them with %w; callers test with errors.Is.
var (
	// ErrNotFound means the record does not exist or has expired.
	ErrNotFound = errors.New("store: not found")
	// ErrExists means a record with the same id already exists.
	ErrExists = errors.New("store: already exists")
	// ErrReused means a refresh token that was already rotated was presented
	// again; the store has revoked its whole family.
	ErrReused = errors.New("store: refresh token reused")
	// ErrRevoked means the refresh-token family was revoked.
	ErrRevoked = errors.New("store: refresh token family revoked")
	// ErrUnavailable means the store could not be reached; the request may
	// succeed when retried.
	ErrUnavailable = errors.New("store: unavailable")
	// ErrNewerSchema means the store was written by a newer issuer, in a
	// layout this binary does not know: it refuses to start rather than
	// misread or damage it.
	ErrNewerSchema = errors.New("store: written by a newer issuer")
	// ErrConflict means a compare-and-set found the record changed since the
	// caller read it; nothing was written.
	ErrConflict = errors.New("store: conflict")
	// ErrReplayed means a single-use value was already used.
	ErrReplayed = errors.New("store: already used")
	// ErrNotReplicated means a change was made but fewer replicas than
	// required acknowledged it in time, so that a failover may still lose
	// it. It always comes with ErrUnavailable, so that callers answer it
	// as they answer a store they cannot reach (503, retry).
	ErrNotReplicated = errors.New("store: change not acknowledged by enough replicas")
)

// Client is a registered OAuth client. The secret is kept only as a keyed hash.
type Client struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	SecretHash []byte   `json:"secret_hash"`
	GrantTypes []string `json:"grant_types"`
	Scopes     []string `json:"scopes"`
	Audiences  []string `json:"audiences"`
	AuthMethod string   `json:"auth_method"`
	// IntrospectAll lets the client introspect every token, not only its
	// own (a resource server).
	IntrospectAll bool `json:"introspect_all,omitempty"`
	// DPoPBound requires a DPoP proof with every token request of the
	// client, so that all its access tokens are bound (RFC 9449 §5.2).
	DPoPBound bool      `json:"dpop_bound_access_tokens,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Version counts the changes of the stored client: UpdateClient writes
	// only over the version it was given and stores the next, and
	// SetClientSecret and SetClientDisabled increment it, so that a write
	// based on an old read fails with ErrConflict instead of undoing a
	// newer change (a rotated secret, a disabling above all). CreateClient
	// stores it as given, usually 0.
	Version int64 `json:"version,omitempty"`

	// Per-client policy (docs/client-policy.md). A zero duration or
	// quota means the server's setting.

	// Disabled clients cannot authenticate; SetClientDisabled sets it.
	Disabled bool `json:"disabled,omitempty"`
	// Generation changes whenever the client's refresh-token families must
	// end (SetClientDisabled): a refresh token records the generation its
	// family began under, and dies when it differs, so that enabling the
	// client again brings none of them back.
	Generation int64 `json:"generation,omitempty"`
	// AccessTokenTTL and RefreshTokenTTL are the lifetimes of the client's
	// tokens.
	AccessTokenTTL  time.Duration `json:"access_token_ttl,omitempty"`
	RefreshTokenTTL time.Duration `json:"refresh_token_ttl,omitempty"`
	// RefreshTokenMaxLifetime is the absolute end of a refresh-token
	// family, counted from its first token.
	RefreshTokenMaxLifetime time.Duration `json:"refresh_token_max_lifetime,omitempty"`
	// RefreshTokenReuseInterval is how long after a refresh the same
	// request with the just-rotated token gets the same answer again
	// (RotateRefreshRetry); zero is none.
	RefreshTokenReuseInterval time.Duration `json:"refresh_token_reuse_interval,omitempty"`
	// TokenQuotaPerMinute is the number of token requests per minute.
	TokenQuotaPerMinute int64 `json:"token_quota_per_minute,omitempty"`

	// Clients without a secret (private_key_jwt, federated_jwt) have no
	// SecretHash and one of the following.

	// JWKS is the inline JWK Set (RFC 7517) of a private_key_jwt client's
	// public keys, as the admin registered it.
	JWKS json.RawMessage `json:"jwks,omitempty"`
	// JWKSURI is where a private_key_jwt client publishes its JWK Set.
	JWKSURI string `json:"jwks_uri,omitempty"`
	// AuthSigningAlg, when set, is the only algorithm of the client's
	// assertions (token_endpoint_auth_signing_alg).
	AuthSigningAlg string `json:"auth_signing_alg,omitempty"`
	// Federated binds a federated_jwt client to a workload identity of a
	// trusted issuer.
	Federated *FederatedIdentity `json:"federated_identity,omitempty"`
}

// FederatedIdentity is the workload identity a federated_jwt client
// authenticates as: a token of the trusted issuer Issuer (its configured
// name) whose sub is Subject and whose claims include Claims.
type FederatedIdentity struct {
	Issuer  string            `json:"issuer"`
	Subject string            `json:"subject"`
	Claims  map[string]string `json:"claims,omitempty"`
}

// Family is the state of one chain of refresh tokens: every refresh rotates
// Current to a new token id, and presenting any other member of the family
// revokes it. The token's signature proves membership, so the family only has
// to remember which member is live.
type Family struct {
	ID       string   `json:"id"`
	ClientID string   `json:"client_id"`
	Scopes   []string `json:"scopes"`
	Audience []string `json:"audience"`
	// Current is the id (jti) of the only refresh token of the family that
	// may be used.
	Current string `json:"current"`
	// ExpiresAt is the expiry of the current token; the record disappears
	// after it.
	ExpiresAt time.Time `json:"expires_at"`
	Revoked   bool      `json:"revoked"`
	// Status are the status-list entries of the access tokens issued
	// with the family that have not expired yet, so that revoking the
	// family invalidates them too; empty when status lists are off.
	Status []StatusRef `json:"status,omitempty"`
}

// Rotation asks RotateRefresh to replace the family's current token.
type Rotation struct {
	FamilyID string
	ClientID string // the authenticated client; another client's family is ErrNotFound
	OldID    string // the jti presented
	NewID    string // the jti of the token being issued
	// ExpiresAt is the new token's expiry.
	ExpiresAt time.Time
	// Status is the status-list entry of the access token issued with
	// the new refresh token, if any: RotateRefresh adds it to the
	// family's and drops the entries that have expired.
	Status []StatusRef
}

// RetryRotation asks RotateRefreshRetry to rotate a family's current token,
// and to keep the answer for a retry of the same request.
type RetryRotation struct {
	Rotation
	// Interval is how long after this rotation OldID, presented again with
	// the same Request, gets Response back; zero keeps nothing, and such a
	// presentation is reuse, as with RotateRefresh.
	Interval time.Duration
	// Request identifies the request: a retry must present the same.
	Request string
	// Response is the answer to give a retry. The caller encrypts it: the
	// store holds access and refresh tokens only in this form.
	Response []byte
}

// Key is a signing key. Private holds the PKCS #8 private key encrypted by the
// keys package; the store never sees it in the clear.
type Key struct {
	ID        string    `json:"kid"`
	Alg       string    `json:"alg"`
	Private   []byte    `json:"private"`
	CreatedAt time.Time `json:"created_at"`
	// NotBefore is when the key starts signing; it is published before that.
	NotBefore time.Time `json:"not_before"`
}

// User is a person who signs in with the password grant (RFC 6749,
// section 4.3). Its password is kept only as a hash.
type User struct {
	// ID is the user_id, the sub of the user's access tokens: a stable
	// opaque id that the caller assigns at creation, at random, so that no
	// other user ever gets it, even once this one is deleted. The store
	// refuses an id that a stored user has; it keeps no record of the ids
	// of deleted users.
	ID string `json:"id"`
	// Username is unique and case-sensitive ("Alice" and "alice" are two
	// users), as Django's.
	Username string `json:"username"`
	// PasswordHash is an argon2id PHC string or an imported Django hash. It
	// never reaches a log: LogValue leaves it out.
	PasswordHash string `json:"password_hash"`
	Disabled     bool   `json:"disabled"`
	// Scopes are the scopes the user may be granted; nil means that only
	// the client limits them, while an empty list allows none.
	Scopes []string `json:"scopes"`
	// Claims are extra string claims copied into the user's access tokens.
	Claims map[string]string `json:"claims"`
	// Generation changes whenever the user's existing tokens must end
	// (disabling, a password change): a refresh-token family records the
	// user's ID and the generation it was issued under, and dies when
	// either differs. (A user deleted and created again under the same
	// username has a new ID, but may have the same generation.)
	Generation int64     `json:"generation"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// LogValue logs the user without its password hash.
func (u User) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("user_id", u.ID),
		slog.String("username", u.Username),
		slog.Bool("disabled", u.Disabled),
		slog.Int64("generation", u.Generation),
	)
}

// Store is the issuer's state. Implementations are safe for concurrent use.
type Store interface {
	// CreateClient stores a new client; ErrExists if the id is taken.
	CreateClient(ctx context.Context, c Client) error
	// GetClient returns a client or ErrNotFound.
	GetClient(ctx context.Context, id string) (Client, error)
	// ListClients returns every client ordered by id.
	ListClients(ctx context.Context) ([]Client, error)
	// UpdateClient replaces an existing client whose stored Version is
	// still c.Version, storing c with Version c.Version+1: a compare-and-set,
	// for the caller reads (GetClientFresh), changes and writes back.
	// ErrConflict if the stored version differs (nothing is written);
	// ErrNotFound if there is no such client.
	UpdateClient(ctx context.Context, c Client) error
	// DeleteClient removes a client; ErrNotFound if there is none.
	DeleteClient(ctx context.Context, id string) error

	// CreateFamily stores a new refresh-token family; ErrExists if the id is taken.
	CreateFamily(ctx context.Context, f Family) error
	// GetFamily returns a live (unexpired) family, revoked or not, or ErrNotFound.
	GetFamily(ctx context.Context, id string) (Family, error)
	// RotateRefresh atomically replaces the family's current token with a new one
	// and returns the updated family. It fails with ErrNotFound (no such live
	// family, or it belongs to another client), ErrRevoked (the family was
	// revoked), or ErrReused (OldID is not the current token: the family is
	// revoked in the same operation).
	RotateRefresh(ctx context.Context, r Rotation) (Family, error)
	// RevokeFamily revokes a family; ErrNotFound if there is no live one.
	RevokeFamily(ctx context.Context, id string) error

	// RevokeToken records that the token id is revoked until the given time
	// (the token's own expiry), after which the record disappears.
	RevokeToken(ctx context.Context, jti string, until time.Time) error
	// IsRevoked reports whether the token id is on the revoked list.
	IsRevoked(ctx context.Context, jti string) (bool, error)

	// InitKeys stores k only if the store holds no signing key yet, and
	// returns the keys it holds afterwards. Several instances starting at
	// once on an empty store therefore agree on one key.
	InitKeys(ctx context.Context, k Key) ([]Key, error)
	// ListKeys returns every signing key ordered by NotBefore, oldest first.
	ListKeys(ctx context.Context) ([]Key, error)
	// AddKey stores a new key; ErrExists if the id is taken.
	AddKey(ctx context.Context, k Key) error
	// AddNextKey stores k only if no stored key has a NotBefore after now
	// (no key is waiting to start signing yet), and returns the keys the
	// store holds afterwards, ordered as ListKeys orders them; ErrExists if
	// the id is taken. Several instances running scheduled rotation at once
	// therefore add exactly one next key.
	AddNextKey(ctx context.Context, k Key, now time.Time) ([]Key, error)
	// DeleteKey removes a key; ErrNotFound if there is none.
	DeleteKey(ctx context.Context, id string) error

	// CreateUser stores a new user as given, which must have an id and a
	// username; ErrExists if its username or its id is taken.
	CreateUser(ctx context.Context, u User) error
	// GetUser returns the user with the username, or ErrNotFound.
	GetUser(ctx context.Context, username string) (User, error)
	// ListUsers returns every user ordered by username (byte-wise, as Go
	// compares strings).
	ListUsers(ctx context.Context) ([]User, error)
	// UpdateUser replaces the profile of the existing user u.Username —
	// Disabled, Scopes and Claims — sets its UpdatedAt to the store's clock,
	// and returns the user afterwards. It increments Generation when the
	// user goes from enabled to disabled. It never writes the other fields
	// of u (the password hash above all, which a concurrent
	// SetUserPassword may have changed since the caller read it); ErrNotFound
	// if there is no such user.
	UpdateUser(ctx context.Context, u User) (User, error)
	// SetUserPassword replaces the user's password hash, increments its
	// Generation (ending every refresh token of the user), sets its
	// UpdatedAt to the store's clock and returns the user afterwards;
	// ErrNotFound if there is no such user.
	SetUserPassword(ctx context.Context, username, hash string) (User, error)
	// UpgradeUserPassword replaces the user's password hash with newHash
	// only if it is still oldHash: the rehash of a login, which changes
	// neither Generation nor UpdatedAt. ErrConflict if the hash is no
	// longer oldHash (a concurrent password change wins; nothing is
	// written); ErrNotFound if there is no such user.
	UpgradeUserPassword(ctx context.Context, username, oldHash, newHash string) error
	// DeleteUser removes a user; ErrNotFound if there is none.
	DeleteUser(ctx context.Context, username string) error

	// UseOnce records that the single-use value id has been used, until
	// the given time, and fails with ErrReplayed if it was already recorded
	// with a later time than now: exactly one of any number of concurrent
	// calls with one id succeeds, on every instance sharing the store. It
	// is the replay check of a client assertion's or a DPoP proof's jti;
	// callers namespace and bound id (e.g. "assertion:" + client id + jti)
	// and call it only once everything else about the value has been
	// verified, so that a forged value cannot use up a real one. The record
	// disappears after until.
	UseOnce(ctx context.Context, id string, until time.Time) error

	// Ping reports whether the store is reachable.
	Ping(ctx context.Context) error
	// Close releases the store's resources.
	Close() error

	// Client writes that never undo a concurrent change (UpdateClient is
	// the compare-and-set beside them).

	// GetClientFresh returns the client as stored now, never from a cache:
	// the read before a compare-and-set UpdateClient, or what an admin
	// sees; ErrNotFound if there is none.
	GetClientFresh(ctx context.Context, id string) (Client, error)
	// SetClientSecret replaces the client's secret hash and nothing else
	// but its UpdatedAt (set to the store's clock) and Version
	// (incremented), atomically, and returns the client afterwards; a
	// concurrent UpdateClient over the old version fails with ErrConflict.
	// ErrNotFound if there is no such client.
	SetClientSecret(ctx context.Context, id string, hash []byte) (Client, error)

	// Per-client policy and retried refreshes (docs/client-policy.md, docs/refresh.md).

	// SetClientDisabled sets the client's Disabled flag and its UpdatedAt
	// (the store's clock) in one atomic operation, and returns the client
	// afterwards. Going from enabled to disabled increments Generation,
	// which ends every refresh-token family of the client at once: none
	// comes back when the client is enabled again. Other fields are kept as
	// stored. ErrNotFound if there is no such client. (What else must end
	// with a disabled client's tokens hooks in beside this call.)
	SetClientDisabled(ctx context.Context, id string, disabled bool) (Client, error)
	// RotateRefreshRetry is RotateRefresh that answers a lost response's
	// retry, in one atomic operation. When OldID is the family's current
	// token it rotates as RotateRefresh does, keeps Response for Interval
	// (if not zero) as the answer to OldID with Request, and returns nil.
	// When OldID is the token that the family's last rotation retired,
	// within that rotation's Interval, with the same Request, it changes
	// nothing and returns the Response kept: every retry, concurrent ones
	// included, gets the one answer. Any other presentation of a token
	// that is not the current one is reuse: the family is revoked (and
	// the kept answer dropped) in the same operation, ErrReused. ErrNotFound
	// and ErrRevoked as RotateRefresh.
	RotateRefreshRetry(ctx context.Context, r RetryRotation) ([]byte, error)

	// Token Status Lists (draft-ietf-oauth-status-list): the revocation
	// bits that resource APIs read. A list is live from its first lease
	// until the latest Until of its leases; after it, it is gone (never
	// shrunk while live).

	// LeaseStatus hands out l.N consecutive indices of list l.List, that
	// no other call ever gets while the list is live, and returns the
	// first; it records them under each of l.Owners. ErrFull if the list
	// would go past l.Capacity; ErrNotFound if the list has retired (its
	// id is never live again).
	LeaseStatus(ctx context.Context, l StatusLease) (first int64, err error)
	// SetStatus sets the bits of the indices of a live list to 1
	// (invalid); ErrNotFound if the list is not live.
	SetStatus(ctx context.Context, list string, idx []int64) error
	// SetOwnerStatus sets to 1 the bit of every index leased to owner in
	// every live list, and returns how many bits changed.
	SetOwnerStatus(ctx context.Context, owner string) (int, error)
	// GetStatusList returns a live list; ErrNotFound if there is none.
	GetStatusList(ctx context.Context, id string) (StatusList, error)
	// ListStatusLists returns the live lists ordered by id, without
	// their Bits.
	ListStatusLists(ctx context.Context) ([]StatusList, error)
}

// Package admin implements the issuer's admin API: client registration in the
// shape of RFC 7591 (with the management operations of RFC 7592 under
// /admin/clients/{id}), signing-key listing, rotation, revocation and
// HS256 secret retrieval, and the users of the password grant (RFC 6749
// §4.3) under /admin/users, with their import from Django. Every call needs
// the admin bearer token.
package admin

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/issuer-oauth/issuer/internal/adminapi"
	"github.com/issuer-oauth/issuer/internal/keys"
	"github.com/issuer-oauth/issuer/internal/oauth"
	"github.com/issuer-oauth/issuer/internal/ratelimit"
	"github.com/issuer-oauth/issuer/internal/request"
	"github.com/issuer-oauth/issuer/internal/secret"
	"github.com/issuer-oauth/issuer/internal/store"
	"github.com/issuer-oauth/issuer/internal/userimport"
)

// Store is the part of the store the admin API needs.
type Store interface {
	CreateClient(ctx context.Context, c store.Client) error
	GetClient(ctx context.Context, id string) (store.Client, error)
	ListClients(ctx context.Context) ([]store.Client, error)
	UpdateClient(ctx context.Context, c store.Client) error
	DeleteClient(ctx context.Context, id string) error
	GetClientFresh(ctx context.Context, id string) (store.Client, error)
	SetClientSecret(ctx context.Context, id string, hash []byte) (store.Client, error)
	SetClientDisabled(ctx context.Context, id string, disabled bool) (store.Client, error)

	CreateUser(ctx context.Context, u store.User) error
	GetUser(ctx context.Context, username string) (store.User, error)
	ListUsers(ctx context.Context) ([]store.User, error)
	UpdateUser(ctx context.Context, u store.User) (store.User, error)
	SetUserPassword(ctx context.Context, username, hash string) (store.User, error)
	DeleteUser(ctx context.Context, username string) error
}

// KeyManager lists, rotates and revokes signing keys (keys.Keys).
type KeyManager interface {
	List() []keys.KeyInfo
	Rotate(ctx context.Context) (keys.KeyInfo, error)
	Schedule(ctx context.Context, notBefore time.Time) (keys.KeyInfo, error)
	Revoke(ctx context.Context, kid string) (revoked, current keys.KeyInfo, err error)
	Secret(kid string) (keys.Secret, error)
}

// Config configures the admin API.
type Config struct {
	// Token is the bearer token every call must present; it must not be empty.
	Token string
	// MaxBodyBytes bounds request bodies.
	MaxBodyBytes int64
	// PasswordGrant lets clients register the password grant.
	PasswordGrant bool
	// MaxImportBytes bounds the body of POST /admin/users/import, a
	// Django dump; userimport.DefaultMaxBytes (64 MiB) when 0.
	MaxImportBytes int64
	// Passwords hashes the passwords that the users calls set; a
	// password.Hasher with the default parameters when nil. Give the one
	// the password grant uses, so that both share its bound on concurrent
	// hash computations.
	Passwords PasswordHasher
	// Lockouts tells and clears the lockouts of usernames after failed
	// logins; nil means that no username is ever locked.
	Lockouts Lockouts
	// Limiter, when not nil, counts wrong admin tokens per source address
	// and refuses an address over its limit.
	Limiter Limiter
	// Backup writes a consistent copy of the store to w, calling size
	// with its length first; nil when the store cannot be copied this way
	// (Redis, which has its own persistence), and GET /admin/backup then
	// says so.
	Backup func(ctx context.Context, w io.Writer, size func(int64)) error
	// AccessTTL and RefreshTTL are the server's token lifetimes, against
	// which a client's own are checked.
	AccessTTL, RefreshTTL time.Duration
	// Now returns the current time; time.Now when nil.
	Now func() time.Time
	// CheckJWKSURI says what is wrong with a client's jwks_uri, or nil
	// (jwksfetch.Policy.Check); nil refuses every jwks_uri.
	CheckJWKSURI func(uri string) error
	// TrustedIssuers are the names of the trusted issuers that
	// federated_jwt clients may name; none turns federated_jwt off.
	TrustedIssuers []string
	// StatusLists, when not nil, sets the status-list bits of every live
	// token of a client deleted or disabled and of a user disabled,
	// deleted or given a new password.
	StatusLists StatusLists
}

// StatusLists sets the status-list bits of every live access token of a
// client or a user (statuslist.Lists).
type StatusLists interface {
	RevokeClient(ctx context.Context, clientID string) error
	RevokeUser(ctx context.Context, userID string) error
}

// Limiter limits the guessing of the admin token (ratelimit.Limiter):
// failed admin authentications per source address (request.ClientAddr).
type Limiter interface {
	AllowAdmin(ctx context.Context, addr netip.Addr) ratelimit.Decision
	AdminFailed(ctx context.Context, addr netip.Addr)
}

// Handler serves /admin/.
type Handler struct {
	tokenHash [32]byte
	cfg       Config
	st        Store
	keys      KeyManager
	hasher    *secret.Hasher
	passwords PasswordHasher
	lockouts  Lockouts
	log       *slog.Logger
	mux       *http.ServeMux
}

// New returns the admin API handler.
func New(cfg Config, st Store, km KeyManager, hasher *secret.Hasher, log *slog.Logger) *Handler {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 64 << 10
	}
	if cfg.MaxImportBytes <= 0 {
		cfg.MaxImportBytes = userimport.DefaultMaxBytes
	}
	h := &Handler{tokenHash: sha256.Sum256([]byte(cfg.Token)), cfg: cfg, st: st, keys: km, hasher: hasher,
		passwords: cfg.Passwords, lockouts: cfg.Lockouts, log: log}
	if h.passwords == nil {
		h.passwords = defaultPasswords()
	}
	if h.lockouts == nil {
		h.lockouts = noLockouts{}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /admin/clients", h.createClient)
	mux.HandleFunc("GET /admin/clients", h.listClients)
	mux.HandleFunc("GET /admin/clients/{id}", h.getClient)
	mux.HandleFunc("PUT /admin/clients/{id}", h.updateClient)
	mux.HandleFunc("DELETE /admin/clients/{id}", h.deleteClient)
	mux.HandleFunc("POST /admin/clients/{id}/secret", h.rotateSecret)
	mux.HandleFunc("GET /admin/keys", h.listKeys)
	mux.HandleFunc("POST /admin/keys/rotate", h.rotateKey)
	mux.HandleFunc("DELETE /admin/keys/{kid}", h.revokeKey)
	mux.HandleFunc("GET /admin/keys/{kid}/secret", h.keySecret)
	h.userRoutes(mux)
	mux.HandleFunc("GET /admin/backup", h.backup)
	mux.HandleFunc("/admin/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no admin endpoint at this path")
	})
	h.mux = mux
	return h
}

// ServeHTTP checks the admin token, then routes the call.
//
// With a Limiter, a call from an address that has presented too many wrong
// tokens gets 429 temporarily_unavailable with Retry-After before its
// token is looked at, the right token included: otherwise an attacker
// could go on guessing and learn from the answer when a guess is right.
// Every call that presents an Authorization header and is refused counts
// as a failure; calls without one (a CLI without its token) do not.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	addr := request.ClientAddr(r)
	if h.cfg.Limiter != nil {
		if d := h.cfg.Limiter.AllowAdmin(r.Context(), addr); d.Refused() {
			secs := int64((d.RetryAfter + time.Second - 1) / time.Second)
			w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
			writeError(w, http.StatusTooManyRequests, "temporarily_unavailable",
				fmt.Sprintf("too many failed admin authentications from this address; retry after %d seconds", secs))
			return
		}
	}
	if !h.authorized(r) {
		if h.cfg.Limiter != nil && r.Header.Get("Authorization") != "" {
			h.cfg.Limiter.AdminFailed(r.Context(), addr)
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="issuer-admin"`)
		writeError(w, http.StatusUnauthorized, "invalid_token", "the admin API needs Authorization: Bearer <ISSUER_ADMIN_TOKEN>")
		return
	}
	h.mux.ServeHTTP(w, r)
}

// authorized compares the presented token in constant time (hashing both
// sides first, so neither the content nor the length leaks).
func (h *Handler) authorized(r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		return false
	}
	sum := sha256.Sum256([]byte(tok))
	return subtle.ConstantTimeCompare(sum[:], h.tokenHash[:]) == 1
}

func response(c store.Client, sec string) adminapi.ClientInfo {
	info := adminapi.ClientInfo{
		ClientID:         c.ID,
		ClientSecret:     sec,
		ClientIDIssuedAt: c.CreatedAt.Unix(),
		ClientMetadata: adminapi.ClientMetadata{
			ClientName:              c.Name,
			GrantTypes:              c.GrantTypes,
			Scope:                   strings.Join(c.Scopes, " "),
			Audience:                c.Audiences,
			TokenEndpointAuthMethod: c.AuthMethod,
			IntrospectAll:           c.IntrospectAll,
			DPoPBoundAccessTokens:   c.DPoPBound,

			JWKS:                        c.JWKS,
			JWKSURI:                     c.JWKSURI,
			TokenEndpointAuthSigningAlg: c.AuthSigningAlg,
			FederatedIdentity:           wireFederated(c.Federated),
		},
	}
	policyMetadata(c, &info.ClientMetadata)
	return info
}

// wireFederated and storeFederated convert a federated identity between
// the wire and the store.
func wireFederated(f *store.FederatedIdentity) *adminapi.FederatedIdentity {
	if f == nil {
		return nil
	}
	return &adminapi.FederatedIdentity{Issuer: f.Issuer, Subject: f.Subject, Claims: f.Claims}
}

func storeFederated(f *adminapi.FederatedIdentity) *store.FederatedIdentity {
	if f == nil {
		return nil
	}
	return &store.FederatedIdentity{Issuer: f.Issuer, Subject: f.Subject, Claims: f.Claims}
}

// setClientAuth sets the authentication metadata of m on c.
func setClientAuth(c *store.Client, m adminapi.ClientMetadata) {
	c.AuthMethod = m.TokenEndpointAuthMethod
	c.JWKS, c.JWKSURI, c.AuthSigningAlg = m.JWKS, m.JWKSURI, m.TokenEndpointAuthSigningAlg
	c.Federated = storeFederated(m.FederatedIdentity)
}

// validate checks m and fills in defaults; the error text is for the admin.
// A client's grant_types is any non-empty subset of the enabled grants;
// refresh_token only beside a grant that issues refresh tokens.
func (h *Handler) validate(m *adminapi.ClientMetadata) error {
	var problems []string
	switch {
	case utf8.RuneCountInString(m.ClientName) > maxClientNameLen:
		problems = append(problems, fmt.Sprintf("client_name is longer than %d characters", maxClientNameLen))
	case !printable(m.ClientName, true):
		problems = append(problems, "client_name must be printable: no control characters and no Unicode bidirectional controls (U+200E, U+200F, U+202A to U+202E, U+2066 to U+2069)")
	}
	if len(m.GrantTypes) == 0 {
		m.GrantTypes = []string{oauth.GrantClientCredentials, oauth.GrantRefreshToken}
	}
	enabled := []string{oauth.GrantClientCredentials, oauth.GrantRefreshToken}
	if h.cfg.PasswordGrant {
		enabled = append(enabled, oauth.GrantPassword)
	}
	for _, g := range m.GrantTypes {
		switch {
		case g == oauth.GrantPassword && !slices.Contains(enabled, g):
			problems = append(problems, "grant_types: \"password\" is off on this issuer; an operator turns it on with ISSUER_PASSWORD_GRANT=true (password_grant)")
		case !slices.Contains(enabled, g):
			problems = append(problems, fmt.Sprintf("grant_types: %q is not supported; use %s", g, strings.Join(enabled, ", ")))
		}
	}
	m.GrantTypes = slices.Compact(slices.Sorted(slices.Values(m.GrantTypes)))
	if !slices.Contains(m.GrantTypes, oauth.GrantClientCredentials) && !slices.Contains(m.GrantTypes, oauth.GrantPassword) {
		problems = append(problems, "grant_types: refresh_token needs a grant that issues refresh tokens beside it: client_credentials or password")
	}
	scopes, bad := checkScope(m.Scope)
	problems = append(problems, bad...)
	m.Scope = strings.Join(scopes, " ")
	m.Audience, bad = checkAudiences(m.Audience)
	problems = append(problems, bad...)
	if len(m.Audience) == 0 {
		problems = append(problems, "audience: at least one allowed audience is required (RFC 9068 access tokens name their audience), e.g. [\"https://api.example.com\"]")
	}
	if m.TokenEndpointAuthMethod == "" {
		m.TokenEndpointAuthMethod = oauth.AuthClientSecretBasic
	}
	if methods := h.authMethods(); !slices.Contains(methods, m.TokenEndpointAuthMethod) {
		problems = append(problems, fmt.Sprintf("token_endpoint_auth_method: %q is not supported; use %s", m.TokenEndpointAuthMethod, strings.Join(methods, ", ")))
	} else {
		problems = append(problems, h.checkClientAuth(m)...)
	}
	_, bad = h.clientPolicy(*m)
	problems = append(problems, bad...)
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

func (h *Handler) createClient(w http.ResponseWriter, r *http.Request) {
	m, ok := h.readMetadata(w, r)
	if !ok {
		return
	}
	now := h.cfg.Now().UTC().Truncate(time.Millisecond)
	id := newID()
	c := store.Client{
		ID:            id,
		Name:          m.ClientName,
		GrantTypes:    m.GrantTypes,
		Scopes:        strings.Fields(m.Scope),
		Audiences:     m.Audience,
		IntrospectAll: m.IntrospectAll,
		DPoPBound:     m.DPoPBoundAccessTokens,
		Disabled:      m.Disabled,
		CreatedAt:     now,
		UpdatedAt:     now,
	}
	p, _ := h.clientPolicy(m) // validate checked it
	p.apply(&c)
	setClientAuth(&c, m)
	var sec string // none for the methods without a secret
	if !secretless(c.AuthMethod) {
		sec = secret.NewClientSecret()
		c.SecretHash = h.hasher.Hash(id, sec)
	}
	if err := h.st.CreateClient(r.Context(), c); err != nil {
		h.storeError(w, r, err)
		return
	}
	h.log.InfoContext(r.Context(), "client created", "client_id", id)
	writeJSON(w, http.StatusCreated, response(c, sec))
}

func (h *Handler) listClients(w http.ResponseWriter, r *http.Request) {
	cs, err := h.st.ListClients(r.Context())
	if err != nil {
		h.storeError(w, r, err)
		return
	}
	out := adminapi.ClientList{Clients: []adminapi.ClientInfo{}}
	for _, c := range cs {
		out.Clients = append(out.Clients, response(c, ""))
	}
	writeJSON(w, http.StatusOK, out)
}

// getClient answers what the store holds now, not what an instance's
// cache remembers, so that an admin sees a change made at another instance.
func (h *Handler) getClient(w http.ResponseWriter, r *http.Request) {
	c, err := h.st.GetClientFresh(r.Context(), r.PathValue("id"))
	if err != nil {
		h.storeError(w, r, err)
		return
	}
	w.Header().Set("ETag", clientETag(c))
	writeJSON(w, http.StatusOK, response(c, ""))
}

// clientETag is the entity tag of a client's metadata: its store Version,
// which every write of the client changes.
func clientETag(c store.Client) string { return `"` + strconv.FormatInt(c.Version, 10) + `"` }

// updateAttempts bounds how often updateClient reads and writes again when
// another change of the client lands between its read and its write.
const updateAttempts = 5

// updateClient replaces the client's metadata (RFC 7592 §2.2); the secret
// and the id stay. It reads the stored client (never a cached copy) and
// writes it back with the store's compare-and-set, so that it cannot undo a
// concurrent change, a secret rotation above all; when one lands in
// between, it reads again and applies the same metadata (a PUT's result
// depends on its body only), and after updateAttempts such collisions it
// answers 409. With If-Match (the ETag of a GET, RFC 9110 §13.1.1) the
// body is a change of that version only: when the client changed since,
// the answer is 412 and nothing is written, so that two admins who each
// read, changed one field and wrote the whole back do not undo each other.
func (h *Handler) updateClient(w http.ResponseWriter, r *http.Request) {
	m, ok := h.readMetadata(w, r)
	if !ok {
		return
	}
	ifMatch := strings.TrimSpace(r.Header.Get("If-Match"))
	changed := func(now string) {
		writeError(w, http.StatusPreconditionFailed, "precondition_failed",
			fmt.Sprintf("the client changed since it was read (If-Match %.40s, now %s): read it again and apply the change to what it is now", ifMatch, now))
	}
	for range updateAttempts {
		c, err := h.st.GetClientFresh(r.Context(), r.PathValue("id"))
		if err != nil {
			h.storeError(w, r, err)
			return
		}
		if ifMatch != "" && ifMatch != "*" && ifMatch != clientETag(c) {
			changed(clientETag(c))
			return
		}
		c.Name, c.GrantTypes, c.Scopes, c.Audiences = m.ClientName, m.GrantTypes, strings.Fields(m.Scope), m.Audience
		c.IntrospectAll, c.DPoPBound = m.IntrospectAll, m.DPoPBoundAccessTokens
		p, _ := h.clientPolicy(m) // validate checked it
		p.apply(&c)
		setClientAuth(&c, m)
		// A client that moves to a method without a secret loses its
		// secret; one that moves back gets a new secret, shown in this
		// answer only.
		var sec string
		switch {
		case secretless(c.AuthMethod):
			c.SecretHash = nil
		case len(c.SecretHash) == 0:
			sec = secret.NewClientSecret()
			c.SecretHash = h.hasher.Hash(c.ID, sec)
		}
		c.UpdatedAt = h.cfg.Now().UTC().Truncate(time.Millisecond)
		err = h.st.UpdateClient(r.Context(), c)
		if errors.Is(err, store.ErrConflict) {
			if ifMatch != "" && ifMatch != "*" {
				changed("newer")
				return
			}
			continue
		}
		if err != nil {
			h.storeError(w, r, err)
			return
		}
		c.Version++ // as UpdateClient stored it
		// Disabling has a store operation of its own, which ends the
		// client's refresh tokens in the same write; a PUT that leaves
		// the flag as it is does not call it.
		if m.Disabled != c.Disabled {
			if c, err = h.setDisabled(r.Context(), c.ID, m.Disabled); err != nil {
				h.storeError(w, r, err)
				return
			}
		}
		h.log.InfoContext(r.Context(), "client updated", "client_id", c.ID, "disabled", c.Disabled)
		w.Header().Set("ETag", clientETag(c))
		writeJSON(w, http.StatusOK, response(c, sec))
		return
	}
	h.log.WarnContext(r.Context(), "client update gave up: the client kept changing", "client_id", r.PathValue("id"), "attempts", updateAttempts)
	writeError(w, http.StatusConflict, "conflict", fmt.Sprintf("the client changed %d times while this update was being applied; send it again", updateAttempts))
}

func (h *Handler) deleteClient(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	err := h.st.DeleteClient(r.Context(), id)
	if err == nil || errors.Is(err, store.ErrNotFound) {
		// Also for a client already gone: a DELETE retried after the
		// bits could not be set sets them now.
		if serr := h.revokeClientStatus(r.Context(), id); serr != nil {
			err = serr
		}
	}
	if err != nil {
		h.storeError(w, r, err)
		return
	}
	h.log.InfoContext(r.Context(), "client deleted", "client_id", id)
	w.WriteHeader(http.StatusNoContent)
}

// rotateSecret gives the client a new secret; the old one stops working at
// once. The store writes the hash alone, so no concurrent update can write
// the old one back.
func (h *Handler) rotateSecret(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	c, err := h.st.GetClientFresh(r.Context(), id)
	if err != nil {
		h.storeError(w, r, err)
		return
	}
	if secretless(c.AuthMethod) {
		writeError(w, http.StatusBadRequest, "invalid_request", "the client authenticates with "+c.AuthMethod+" and has no secret; change its keys or identity with PUT /admin/clients/{id}")
		return
	}
	sec := secret.NewClientSecret()
	c, err = h.st.SetClientSecret(r.Context(), id, h.hasher.Hash(id, sec))
	if err != nil {
		h.storeError(w, r, err)
		return
	}
	h.log.InfoContext(r.Context(), "client secret rotated", "client_id", c.ID)
	writeJSON(w, http.StatusOK, response(c, sec))
}

func (h *Handler) listKeys(w http.ResponseWriter, r *http.Request) {
	infos := h.keys.List()
	out := adminapi.KeyList{Keys: make([]adminapi.Key, len(infos))}
	for i, k := range infos {
		out.Keys[i] = wireKey(k)
	}
	writeJSON(w, http.StatusOK, out)
}

// wireKey is k in the admin API's wire format.
func wireKey(k keys.KeyInfo) adminapi.Key {
	return adminapi.Key{KID: k.ID, Alg: k.Alg, State: k.State, CreatedAt: k.CreatedAt, NotBefore: k.NotBefore,
		RetiresAt: k.RetiresAt, RemovedAt: k.RemovedAt, File: k.File}
}

// rotateKey is the emergency rotation (the new key signs at once), or with
// a not_before a scheduled one.
func (h *Handler) rotateKey(w http.ResponseWriter, r *http.Request) {
	var req adminapi.RotateKeyRequest
	body, ok := h.readBody(w, r)
	if !ok {
		return
	}
	if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			writeError(w, http.StatusBadRequest, "invalid_request", `the body must be empty or {"not_before":"<RFC 3339 time>"}: `+err.Error())
			return
		}
	}
	var (
		k   keys.KeyInfo
		err error
	)
	if req.NotBefore != nil {
		k, err = h.keys.Schedule(r.Context(), *req.NotBefore)
	} else {
		k, err = h.keys.Rotate(r.Context())
	}
	if err != nil {
		h.keyError(w, r, err)
		return
	}
	if req.NotBefore != nil {
		h.log.InfoContext(r.Context(), "signing key scheduled", "kid", k.ID, "not_before", k.NotBefore)
	} else {
		h.log.InfoContext(r.Context(), "signing key rotated", "kid", k.ID)
	}
	writeJSON(w, http.StatusCreated, wireKey(k))
}

// revokeKey removes a key at once: it leaves the JWKS, and its tokens stop
// being active here at once.
func (h *Handler) revokeKey(w http.ResponseWriter, r *http.Request) {
	revoked, current, err := h.keys.Revoke(r.Context(), r.PathValue("kid"))
	if err != nil {
		h.keyError(w, r, err)
		return
	}
	h.log.WarnContext(r.Context(), "signing key revoked", "kid", revoked.ID, "state", revoked.State, "current_kid", current.ID)
	writeJSON(w, http.StatusOK, adminapi.RevokedKey{Revoked: wireKey(revoked), Current: wireKey(current)})
}

// keySecret returns an HS256 key as an RFC 7517 "oct" JWK, for the resource
// APIs that verify HS256 tokens.
func (h *Handler) keySecret(w http.ResponseWriter, r *http.Request) {
	sec, err := h.keys.Secret(r.PathValue("kid"))
	if err != nil {
		h.keyError(w, r, err)
		return
	}
	h.log.InfoContext(r.Context(), "signing key secret read", "kid", sec.Kid)
	writeJSON(w, http.StatusOK, adminapi.KeySecret{Kty: sec.Kty, Kid: sec.Kid, Alg: sec.Alg, K: sec.K})
}

// keyError answers the errors of the key operations.
func (h *Handler) keyError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, keys.ErrUnknownKey):
		writeError(w, http.StatusNotFound, "not_found", "no signing key with this kid; \"issuer keys list\" shows them")
	case errors.Is(err, keys.ErrFileKeys):
		writeError(w, http.StatusConflict, "keys_in_files", "signing keys are managed in files (ISSUER_KEYS_DIR): add a key file to rotate or remove one to revoke, then send SIGHUP to the issuer or wait for its next poll")
	case errors.Is(err, keys.ErrNotSymmetric):
		writeError(w, http.StatusConflict, "not_symmetric", "this key is asymmetric: its public key is in the JWKS, and it has no shared secret; only HS256 keys do")
	case errors.Is(err, keys.ErrNextPending):
		writeError(w, http.StatusConflict, "next_key_pending", "a next key is already waiting to start signing; revoke it first to schedule another")
	case errors.Is(err, keys.ErrTooSoon):
		writeError(w, http.StatusBadRequest, "invalid_request", "not_before must be at least the publish lead (2 × ISSUER_JWKS_MAX_AGE) from now, so that the key is published before it signs")
	default:
		h.storeError(w, r, err)
	}
}

// readBody reads the request body within the size limit, or answers the
// error.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "invalid_request", "the request body is larger than the limit")
		} else {
			writeError(w, http.StatusBadRequest, "invalid_request", "the request body could not be read")
		}
		return nil, false
	}
	return body, true
}

// readMetadata decodes and validates a JSON client-metadata body.
func (h *Handler) readMetadata(w http.ResponseWriter, r *http.Request) (adminapi.ClientMetadata, bool) {
	var m adminapi.ClientMetadata
	body, ok := h.readBody(w, r)
	if !ok {
		return m, false
	}
	// Unknown metadata is ignored, as RFC 7591 §2 requires.
	if err := json.Unmarshal(body, &m); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_client_metadata", "the body must be a JSON object of client metadata: "+err.Error())
		return m, false
	}
	if err := h.validate(&m); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_client_metadata", err.Error())
		return m, false
	}
	return m, true
}

func (h *Handler) storeError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", "no client with this id")
	case errors.Is(err, store.ErrConflict):
		writeError(w, http.StatusConflict, "conflict", "the record kept changing while this request was being applied; send it again")
	case errors.Is(err, store.ErrNotReplicated):
		h.log.ErrorContext(r.Context(), "admin request failed", "err", err)
		writeError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the change was made, but fewer Redis replicas than redis_wait_replicas acknowledged it in time, so a failover could lose it; send the request again (a rotated secret was not shown: rotate again)")
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		h.log.ErrorContext(r.Context(), "admin request failed", "err", err)
		writeError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the store cannot be reached; retry shortly")
	default:
		h.log.ErrorContext(r.Context(), "admin request failed", "err", err)
		writeError(w, http.StatusInternalServerError, "server_error", "the server failed to handle the request")
	}
}

// newID returns a random opaque id (128 bits, hex): a client_id or a
// user_id.
func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, adminapi.ErrorBody{Error: code, ErrorDescription: desc})
}

// backup streams a consistent copy of the embedded store
// (application/octet-stream), for `issuer backup FILE`. The copy can take
// longer than the server's write timeout: the deadline is lifted for it.
func (h *Handler) backup(w http.ResponseWriter, r *http.Request) {
	if h.cfg.Backup == nil {
		writeError(w, http.StatusConflict, "unsupported",
			"the store is Redis, which this call cannot copy: back it up with Redis's own persistence (RDB snapshots or AOF); see docs/operations.md")
		return
	}
	_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
	started := false
	err := h.cfg.Backup(r.Context(), w, func(n int64) {
		started = true
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", `attachment; filename="issuer.db"`)
		w.Header().Set("Content-Length", fmt.Sprint(n))
		w.WriteHeader(http.StatusOK)
	})
	if err != nil {
		h.log.ErrorContext(r.Context(), "backup failed", "err", err)
		if !started {
			writeError(w, http.StatusInternalServerError, "server_error", "the backup failed; see the server's log")
		}
		// Once the copy has started, the short body tells the client.
	}
}

// revokeClientStatus sets the status-list bits of every live token of the
// client (nothing when status lists are off). It is what disabling a
// client does too.
func (h *Handler) revokeClientStatus(ctx context.Context, clientID string) error {
	if h.cfg.StatusLists == nil {
		return nil
	}
	return h.cfg.StatusLists.RevokeClient(ctx, clientID)
}

// revokeUserStatus sets the status-list bits of every live token of the
// user (nothing when status lists are off).
func (h *Handler) revokeUserStatus(ctx context.Context, userID string) error {
	if h.cfg.StatusLists == nil {
		return nil
	}
	return h.cfg.StatusLists.RevokeUser(ctx, userID)
}

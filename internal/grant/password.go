package grant

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"time"

	"github.com/issuer-oauth/issuer/internal/oauth"
	"github.com/issuer-oauth/issuer/internal/password"
	"github.com/issuer-oauth/issuer/internal/ratelimit"
	"github.com/issuer-oauth/issuer/internal/request"
	"github.com/issuer-oauth/issuer/internal/store"
)

// Passwords verifies and hashes user passwords (password.Hasher).
type Passwords interface {
	Verify(ctx context.Context, encoded, password string) (ok, rehash bool, err error)
	DummyVerify(ctx context.Context, password string) error
	Hash(ctx context.Context, password string) (string, error)
}

// PasswordLimiter applies the brute-force limits of RFC 6749 §4.3.2
// (ratelimit.Limiter): failed logins per source address and per username.
type PasswordLimiter interface {
	AllowPassword(ctx context.Context, addr netip.Addr) ratelimit.Decision
	LockedUntil(ctx context.Context, username string) (time.Time, error)
	PasswordFailed(ctx context.Context, username string, addr netip.Addr)
}

// errBadCredentials is the one answer to every failure of a user's
// credentials: unknown username, wrong password, disabled or locked user.
// One code and one description, so that an attacker learns nothing of
// which (RFC 6749 §5.2).
var errBadCredentials = errInvalidGrant("the username or password is not valid")

// errBusy is the answer when the password hashes in flight are at their
// bound (Config.Passwords' pool) for longer than the wait allowed.
var errBusy = &Error{Code: "temporarily_unavailable", Description: "too many logins at once; retry shortly", Status: http.StatusServiceUnavailable}

// passwordGrant runs the resource owner password credentials grant (RFC
// 6749 §4.3) for an authenticated client allowed to use it. The library
// issues the tokens as for client_credentials; the user's authentication
// is ours (authenticateUser): go-oauth2's PasswordAuthorizationHandler is
// given neither the client address nor the client, so it can apply no
// brute-force limit (§4.3.2), and it has no notion of a lock, a hash
// upgrade or a bounded pool of hash computations.
func (h *Handler) passwordGrant(r *http.Request, form url.Values, c store.Client, jkt string) (*tokenResponse, error) {
	username, pw := form.Get("username"), form.Get("password")
	switch {
	case username == "":
		return nil, errInvalidRequest("username is missing")
	case pw == "":
		return nil, errInvalidRequest("password is missing")
	}
	// What the request asks is checked against the client first: it says
	// nothing of the user, and costs no hash computation.
	want, ok := oauth.ParseScope(form.Get("scope"))
	if !ok {
		return nil, errInvalidScope("scope is malformed: scope tokens are printable ASCII without spaces, quotes or backslashes")
	}
	if _, oerr := grantScopes(want, c.Scopes); oerr != nil {
		return nil, oerr
	}
	aud, oerr := grantAudience(requestedAudience(form), c.Audiences)
	if oerr != nil {
		return nil, oerr
	}
	u, err := h.authenticateUser(r.Context(), request.ClientAddr(r), username, pw)
	if err != nil {
		return nil, err
	}
	scopes, oerr := grantScopes(want, userScopes(c.Scopes, u))
	if oerr != nil {
		return nil, errInvalidScope("the requested scope is not allowed for this user")
	}
	return h.cc.token(r.Context(), c, issue{user: &u, simpleJWT: h.cfg.SimpleJWTClaims, jkt: jkt}, scopes, aud)
}

// userScopes are the scopes a user may get through client c: the client's,
// narrowed by the user's own when it has some (a nil list leaves the
// client's).
func userScopes(client []string, u store.User) []string {
	if u.Scopes == nil {
		return client
	}
	return intersect(client, u.Scopes)
}

// authenticateUser checks a user's username and password, with the
// brute-force limits of RFC 6749 §4.3.2 (Limiter.AllowPassword,
// LockedUntil): it returns the user, or errBadCredentials for every kind
// of failure. Unknown usernames cost one hash computation at the
// configured parameters, like known ones (Passwords.DummyVerify). A hash
// below the configured parameters, or imported from Django, is replaced by
// an argon2id one after a successful login.
func (h *Handler) authenticateUser(ctx context.Context, addr netip.Addr, username, pw string) (store.User, error) {
	lim := h.cfg.PasswordLimiter
	if lim != nil {
		if d := lim.AllowPassword(ctx, addr); d.Refused() {
			return store.User{}, errRateLimited("too many failed logins from this address; retry after "+seconds(d.RetryAfter), d.RetryAfter)
		}
	}
	locked := false
	if lim != nil {
		until, _ := lim.LockedUntil(ctx, username) // fails open, as client authentication does
		locked = !until.IsZero()
	}
	u, err := h.users.GetUser(ctx, username)
	found := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.User{}, err
	}
	var ok, rehash bool
	if found {
		ok, rehash, err = h.passwords.Verify(ctx, u.PasswordHash, pw)
	} else {
		err = h.passwords.DummyVerify(ctx, pw)
	}
	switch {
	case errors.Is(err, password.ErrBusy):
		return store.User{}, errBusy
	case ctx.Err() != nil:
		return store.User{}, ctx.Err()
	case err != nil:
		// A stored hash that cannot be read (an import gone wrong): the
		// user cannot log in until an admin sets a password.
		h.log.WarnContext(ctx, "a user's stored password hash is unusable; set a new password", "user_id", u.ID, "err", err)
		ok = false
	}
	if !found || !ok || u.Disabled || locked {
		if !locked && lim != nil {
			lim.PasswordFailed(ctx, username, addr)
		}
		return store.User{}, errBadCredentials
	}
	if rehash {
		h.upgradeHash(ctx, u, pw)
	}
	return u, nil
}

// upgradeHash replaces u's hash by one at the configured parameters, unless
// the hash changed meanwhile (a password change wins). A failure only
// leaves the old hash in place, to be upgraded at the next login.
func (h *Handler) upgradeHash(ctx context.Context, u store.User, pw string) {
	hash, err := h.passwords.Hash(ctx, pw)
	if err == nil {
		err = h.users.UpgradeUserPassword(ctx, u.Username, u.PasswordHash, hash)
	}
	if err != nil && !errors.Is(err, store.ErrConflict) {
		h.log.WarnContext(ctx, "upgrading a user's password hash failed; it is retried at the next login", "user_id", u.ID, "err", err)
	}
}

// userOfRefresh returns the user of a refresh token of the password grant
// (one whose claims name a user), or ErrUserEnded when the user was
// deleted, disabled or changed password since the token's family started:
// its tokens end with it. ok is false for a token of no user.
func (h *Handler) userOfRefresh(ctx context.Context, id, username string, generation int64) (u store.User, ok bool, err error) {
	if id == "" {
		return store.User{}, false, nil
	}
	if h.users == nil {
		return store.User{}, true, errUserEnded
	}
	u, err = h.users.GetUser(ctx, username)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.User{}, true, errUserEnded
	case err != nil:
		return store.User{}, true, err
	case u.ID != id || u.Generation != generation || u.Disabled:
		return store.User{}, true, errUserEnded
	}
	return u, true, nil
}

// errUserEnded means a refresh token's user was deleted, disabled or
// changed password.
var errUserEnded = errors.New("grant: the refresh token's user was deleted, disabled or changed password")

package grant

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/issuer-oauth/issuer/internal/keys"
	"github.com/issuer-oauth/issuer/internal/oauth"
	"github.com/issuer-oauth/issuer/internal/secret"
	"github.com/issuer-oauth/issuer/internal/store"
)

// issue says for whom tokens are issued: the client itself, or a user of
// the password grant.
type issue struct {
	// user is the user of the password grant; nil for the client itself.
	user *store.User
	// simpleJWT adds Django REST framework SimpleJWT's claims to a user's
	// access token: token_type "access" and the user id under
	// Config.UserIDClaim.
	simpleJWT bool
	// jkt is the thumbprint of the DPoP key the access token is bound to
	// (cnf.jkt); "" for a bearer token.
	jkt string
}

// tokenType is the token_type of the token response (RFC 9449 §5).
func (is issue) tokenType() string {
	if is.jkt != "" {
		return "DPoP"
	}
	return "Bearer"
}

// signAccess mints an access token of client cl: sub is the client, or the
// user of is. family is the id of the refresh-token family issued with it,
// if any: the token names it (fid), so that it ends with its family at
// introspection (identify). It expires at exp. With status lists on, the
// token gets its status claim, and its entry is returned for the family.
func (h *Handler) signAccess(ctx context.Context, cl store.Client, is issue, family, scope string, aud []string, now, exp time.Time) (string, []store.StatusRef, error) {
	clientID := cl.ID
	status, refs, err := h.assignStatus(ctx, cl, is, exp)
	if err != nil {
		return "", nil, err
	}
	c := keys.AccessClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   clientID,
			Audience:  aud,
			ExpiresAt: keys.NumericDate(exp),
			IssuedAt:  keys.NumericDate(now),
			ID:        secret.Random(16),
		},
		ClientID: clientID,
		Scope:    scope,
		FamilyID: family,
		Status:   status,
	}
	if is.jkt != "" {
		c.Confirmation = &keys.Confirmation{JKT: is.jkt}
	}
	if u := is.user; u != nil {
		c.Subject = u.ID
		c.Extra = h.userClaims(u, is.simpleJWT)
		if is.simpleJWT {
			c.TokenType = "access"
		}
	}
	tok, err := h.keys.SignAccess(c)
	return tok, refs, err
}

// userClaims are the extra claims of u's access tokens: its own claims in
// the order of their names, then, with simpleJWT, the user id under
// Config.UserIDClaim. A claim the issuer sets itself never comes from the
// user (the admin API refuses them too).
func (h *Handler) userClaims(u *store.User, simpleJWT bool) []keys.Claim {
	var out []keys.Claim
	for _, name := range slices.Sorted(maps.Keys(u.Claims)) {
		if oauth.ReservedClaim(name) || simpleJWT && name == h.cfg.UserIDClaim {
			continue
		}
		out = append(out, keys.Claim{Name: name, Value: u.Claims[name]})
	}
	if simpleJWT {
		out = append(out, keys.Claim{Name: h.cfg.UserIDClaim, Value: u.ID})
	}
	return out
}

// signRefresh mints the refresh token that is the current member of fam,
// a family of client that began at start; a family of the password
// grant names its user (see keys.RefreshClaims).
func (h *Handler) signRefresh(fam store.Family, client store.Client, start time.Time, u *store.User, now time.Time) (string, error) {
	c := keys.RefreshClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   fam.ClientID,
			ExpiresAt: keys.NumericDate(fam.ExpiresAt),
			IssuedAt:  keys.NumericDate(now),
			ID:        fam.Current,
		},
		ClientID: fam.ClientID,
		FamilyID: fam.ID,
		Scope:    oauth.FormatScope(fam.Scopes),
		Resource: fam.Audience,
		// The client's generation and the family's start: the family ends
		// when the client is disabled, and at refresh_token_max_lifetime.
		ClientGeneration: client.Generation,
		FamilyStart:      start.Unix(),
	}
	if u != nil {
		c.UserID, c.Username, c.UserGeneration = u.ID, u.Username, u.Generation
	}
	return h.keys.SignRefresh(c)
}

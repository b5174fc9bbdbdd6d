package grant

import (
	"context"
	"errors"
	"net/url"
	"strings"

	"github.com/issuer-oauth/issuer/internal/oauth"
	"github.com/issuer-oauth/issuer/internal/secret"
	"github.com/issuer-oauth/issuer/internal/store"
)

// refreshInvalid describes every refused refresh token that the client
// presenting it does not own, or that does not exist.
const refreshInvalid = "the refresh token is invalid or expired"

// refresh runs the refresh-token grant (RFC 6749 §6) for an authenticated
// client. Every check that can fail happens before the rotation, so a refused
// request never consumes the token; the rotation itself is one atomic store
// operation, so of concurrent refreshes of one token exactly one wins. A
// family of the password grant ends with its user (userOfRefresh); its
// access tokens carry SimpleJWT's claims when simpleJWT is true.
func (h *Handler) refresh(ctx context.Context, form url.Values, c store.Client, simpleJWT bool) (*tokenResponse, error) {
	raw := form.Get("refresh_token")
	if raw == "" {
		return nil, errInvalidRequest("refresh_token is missing")
	}
	// Another client's token is refused in the words of a forged or
	// expired one: what a client learns of a token it does not own would
	// tell whoever stole it whether it still works.
	claims, err := h.keys.ParseRefresh(raw)
	if err != nil || claims.ClientID != c.ID {
		return nil, errInvalidGrant(refreshInvalid)
	}

	u, isUser, err := h.userOfRefresh(ctx, claims.UserID, claims.Username, claims.UserGeneration)
	switch {
	case errors.Is(err, errUserEnded):
		if err := h.endFamily(ctx, claims.FamilyID); err != nil {
			return nil, err
		}
		return nil, errInvalidGrant(refreshInvalid)
	case err != nil:
		return nil, err
	}
	is := issue{simpleJWT: simpleJWT}
	allowed := c.Scopes
	if isUser {
		is.user = &u
		allowed = userScopes(c.Scopes, u)
	}

	// The family keeps its scope and audience; the access token may narrow
	// both, and never exceeds what the client (and its user) is allowed
	// today.
	famScopes := strings.Fields(claims.Scope)
	want, ok := oauth.ParseScope(form.Get("scope"))
	if !ok {
		return nil, errInvalidScope("scope is malformed")
	}
	if bad, ok := missing(want, famScopes); ok {
		return nil, errInvalidScope("scope " + quote(bad) + " was not granted to this refresh token")
	}
	scopes, oerr := grantScopes(want, intersect(famScopes, allowed))
	if oerr != nil {
		return nil, oerr
	}
	aud := intersect(claims.Resource, c.Audiences)
	if requested := requestedAudience(form); len(requested) > 0 {
		if aud, oerr = grantAudience(requested, aud); oerr != nil {
			return nil, oerr
		}
	} else if len(aud) == 0 {
		return nil, errInvalidTarget("the client is no longer allowed the audience of this refresh token")
	}

	now := h.cfg.Now()
	next := store.Family{
		ID:        claims.FamilyID,
		ClientID:  c.ID,
		Scopes:    famScopes,
		Audience:  claims.Resource,
		Current:   secret.Random(16),
		ExpiresAt: now.Add(h.cfg.RefreshTTL),
	}
	scope := oauth.FormatScope(scopes)
	access, refs, err := h.signAccess(ctx, c, is, claims.FamilyID, scope, aud, now)
	if err != nil {
		return nil, err
	}
	refresh, err := h.signRefresh(next, is.user, now)
	if err != nil {
		return nil, err
	}
	_, err = h.st.RotateRefresh(ctx, store.Rotation{
		FamilyID:  claims.FamilyID,
		ClientID:  c.ID,
		OldID:     claims.ID,
		NewID:     next.Current,
		ExpiresAt: next.ExpiresAt,
		Status:    refs,
	})
	switch {
	case errors.Is(err, store.ErrReused):
		h.log.WarnContext(ctx, "refresh token reused; family revoked", "client_id", c.ID, "family", claims.FamilyID, "jti", claims.ID)
		if err := h.revokeFamilyStatus(ctx, claims.FamilyID); err != nil {
			h.log.ErrorContext(ctx, "status list bits of a reused family not set", "client_id", c.ID, "family", claims.FamilyID, "err", err)
		}
		return nil, errInvalidGrant("the refresh token was already used; every token of its family is now revoked")
	case errors.Is(err, store.ErrRevoked):
		return nil, errInvalidGrant("the refresh token has been revoked")
	case errors.Is(err, store.ErrNotFound):
		return nil, errInvalidGrant(refreshInvalid)
	case err != nil:
		return nil, err
	}
	return &tokenResponse{
		AccessToken:  access,
		TokenType:    "Bearer",
		ExpiresIn:    int64(h.cfg.AccessTTL.Seconds()),
		RefreshToken: refresh,
		Scope:        scope,
	}, nil
}

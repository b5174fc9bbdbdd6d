package grant

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"time"

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
// operation, so of concurrent refreshes of one token exactly one wins; with
// the client's refresh_token_reuse_interval, the same operation answers a
// retry of the same request with the winner's response (docs/refresh.md).
// A family ends with its client's generation, at its
// refresh_token_max_lifetime, and (password grant) with its user
// (userOfRefresh); its access tokens carry SimpleJWT's claims when
// is.simpleJWT is true, and are bound to the DPoP key is.jkt when it is
// set. The refresh token itself is never bound: the client authenticates,
// so RFC 9449 §5 leaves it unbound, and a client may refresh with a proof
// or without.
func (h *Handler) refresh(ctx context.Context, form url.Values, c store.Client, is issue) (*tokenResponse, error) {
	raw := form.Get("refresh_token")
	if raw == "" {
		return nil, errInvalidRequest("refresh_token is missing")
	}
	// Another client's token is refused in the words of a forged or
	// expired one: what a client learns of a token it does not own would
	// tell whoever stole it whether it still works.
	claims, err := h.keys.ParseRefresh(raw)
	if err != nil {
		return nil, errInvalidGrant(refreshInvalid)
	}
	if claims.ClientID != c.ID {
		if err := h.foreignRefresh(ctx, c, claims.FamilyID, claims.ID); err != nil {
			return nil, err
		}
		return nil, errInvalidGrant(refreshInvalid)
	}
	// A family ends when its client is disabled (the generation moves),
	// and at its absolute end.
	if claims.ClientGeneration != c.Generation {
		if err := h.st.RevokeFamily(ctx, claims.FamilyID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		return nil, errInvalidGrant("the refresh token has been revoked: its client was disabled since")
	}
	now := h.cfg.Now()
	start := claims.IssuedAt.Time
	if claims.FamilyStart != 0 {
		start = time.Unix(claims.FamilyStart, 0)
	}
	if end := h.familyEnd(c, start); !end.IsZero() && !now.Before(end) {
		return nil, errInvalidGrant("the refresh token's family has reached the client's refresh_token_max_lifetime; request new tokens with the client's grant")
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

	accessExp, refreshExp := h.expiries(c, start, now)
	next := store.Family{
		ID:        claims.FamilyID,
		ClientID:  c.ID,
		Scopes:    famScopes,
		Audience:  claims.Resource,
		Current:   secret.Random(16),
		ExpiresAt: refreshExp,
	}
	scope := oauth.FormatScope(scopes)
	access, refs, err := h.signAccess(ctx, c, is, claims.FamilyID, scope, aud, now, accessExp)
	if err != nil {
		return nil, err
	}
	refresh, err := h.signRefresh(next, c, start, is.user, now)
	if err != nil {
		return nil, err
	}
	resp := &tokenResponse{
		AccessToken:  access,
		TokenType:    is.tokenType(),
		ExpiresIn:    expiresIn(accessExp, now),
		RefreshToken: refresh,
		Scope:        scope,
	}
	rot := store.Rotation{
		FamilyID:  claims.FamilyID,
		ClientID:  c.ID,
		OldID:     claims.ID,
		NewID:     next.Current,
		ExpiresAt: next.ExpiresAt,
		Status:    refs,
	}
	var kept []byte
	if c.RefreshTokenReuseInterval > 0 {
		// The rotation keeps the answer for a retry of this request, and
		// answers a retry with the answer kept, in one atomic store
		// operation.
		kept, err = h.st.RotateRefreshRetry(ctx, store.RetryRotation{
			Rotation: rot,
			Interval: c.RefreshTokenReuseInterval,
			Request:  retryRequest(want, requestedAudience(form), is.jkt),
			Response: h.retries.seal(resp, claims.FamilyID, claims.ID),
		})
	} else {
		_, err = h.st.RotateRefresh(ctx, rot)
	}
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
	case kept != nil:
		h.log.InfoContext(ctx, "refresh retried within the reuse interval; the first answer is given again", "client_id", c.ID, "family", claims.FamilyID, "jti", claims.ID)
		return h.retries.open(kept, claims.FamilyID, claims.ID)
	}
	return resp, nil
}

// foreignRefresh handles a refresh token of this issuer presented by
// another client than its own. A retired member of a family is reuse,
// whoever presents it, and ends the family; the current member is left
// alone, so that a refused request never consumes the token of the client
// that owns it (nor tells the other client which it was).
func (h *Handler) foreignRefresh(ctx context.Context, c store.Client, family, jti string) error {
	fam, err := h.st.GetFamily(ctx, family)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil
	case err != nil:
		return err
	case fam.Revoked || fam.Current == jti:
		return nil
	}
	// Revocation only ever ends a family: if it rotated since, the token
	// is still a retired one.
	if err := h.st.RevokeFamily(ctx, family); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	h.log.WarnContext(ctx, "retired refresh token presented by another client; family revoked", "client_id", c.ID, "family", family, "jti", jti)
	return nil
}

package grant

import (
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/issuer-oauth/issuer/internal/keys"
	"github.com/issuer-oauth/issuer/internal/oauth"
	"github.com/issuer-oauth/issuer/internal/secret"
	"github.com/issuer-oauth/issuer/internal/store"
)

// signAccess mints an access token.
func (h *Handler) signAccess(clientID, scope string, aud []string, now time.Time) (string, error) {
	return h.keys.SignAccess(keys.AccessClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   clientID,
			Audience:  aud,
			ExpiresAt: keys.NumericDate(now.Add(h.cfg.AccessTTL)),
			IssuedAt:  keys.NumericDate(now),
			ID:        secret.Random(16),
		},
		ClientID: clientID,
		Scope:    scope,
	})
}

// signRefresh mints the refresh token that is the current member of fam.
func (h *Handler) signRefresh(fam store.Family, now time.Time) (string, error) {
	return h.keys.SignRefresh(keys.RefreshClaims{
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
	})
}

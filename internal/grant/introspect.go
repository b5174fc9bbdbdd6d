package grant

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"

	"github.com/issuer-oauth/issuer/internal/keys"
	"github.com/issuer-oauth/issuer/internal/oauth"
	"github.com/issuer-oauth/issuer/internal/store"
)

// Introspection answers an RFC 7662 introspection request. The caller
// authenticates as a client; it may introspect the tokens issued to itself,
// or every token when an administrator registered it with introspect_all
// (a resource server). Anything else — expired, revoked, retired, malformed,
// foreign, another client's token, a token of a deleted or disabled client,
// or an access token whose refresh-token family was revoked — is
// {"active":false}.
func (h *Handler) Introspection(w http.ResponseWriter, r *http.Request) {
	caller, form, ok := h.tokenEndpointClient(w, r, "introspection")
	if !ok {
		return
	}
	resp, err := h.introspect(r.Context(), caller, form)
	if err != nil {
		h.fail(w, r, caller.ID, "introspection", err)
		return
	}
	writeJSON(w, resp)
}

// introspection is the RFC 7662 §2.2 response.
type introspection struct {
	Active    bool     `json:"active"`
	Scope     string   `json:"scope,omitempty"`
	ClientID  string   `json:"client_id,omitempty"`
	TokenType string   `json:"token_type,omitempty"`
	Exp       int64    `json:"exp,omitempty"`
	Iat       int64    `json:"iat,omitempty"`
	Sub       string   `json:"sub,omitempty"`
	Aud       []string `json:"aud,omitempty"`
	Iss       string   `json:"iss,omitempty"`
	Jti       string   `json:"jti,omitempty"`
	// Cnf is the confirmation of a DPoP-bound access token (RFC 9449
	// §6.2).
	Cnf *keys.Confirmation `json:"cnf,omitempty"`
}

var inactive = &introspection{Active: false}

func (h *Handler) introspect(ctx context.Context, caller store.Client, form url.Values) (*introspection, error) {
	raw := form.Get("token")
	if raw == "" {
		return nil, errInvalidRequest("token is missing")
	}
	tok, err := h.identify(ctx, raw)
	if err != nil || tok == nil {
		return inactive, err
	}
	if tok.clientID != caller.ID && !caller.IntrospectAll {
		return inactive, nil
	}
	// A deleted client's tokens end with it; a disabled client's are
	// inactive while it is disabled, and its refresh tokens for good (the
	// generation moved).
	owner, err := h.st.GetClient(ctx, tok.clientID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return inactive, nil
	case err != nil:
		return nil, err
	case owner.Disabled, tok.refresh != nil && tok.refresh.ClientGeneration != owner.Generation:
		return inactive, nil
	}
	return tok.resp, nil
}

// token is a live token of this issuer, as introspection reports it.
type token struct {
	clientID string
	refresh  *keys.RefreshClaims // set for refresh tokens
	access   *keys.AccessClaims  // set for access tokens
	resp     *introspection
}

// identify returns the live token raw is, or nil when it is not one
// (expired, revoked, retired, malformed or foreign; an access token whose
// refresh-token family was revoked). Only store failures are errors.
func (h *Handler) identify(ctx context.Context, raw string) (*token, error) {
	if c, err := h.keys.ParseAccess(raw); err == nil {
		revoked, err := h.st.IsRevoked(ctx, c.ID)
		if err != nil || revoked {
			return nil, err
		}
		if revoked, err := h.familyRevoked(ctx, c.FamilyID); err != nil || revoked {
			return nil, err
		}
		tokenType := "Bearer"
		if c.Confirmation != nil {
			tokenType = "DPoP"
		}
		return &token{clientID: c.ClientID, access: &c, resp: &introspection{
			Active: true, Scope: c.Scope, ClientID: c.ClientID, TokenType: tokenType,
			Exp: c.ExpiresAt.Unix(), Iat: c.IssuedAt.Unix(), Sub: c.Subject,
			Aud: c.Audience, Iss: c.Issuer, Jti: c.ID, Cnf: c.Confirmation,
		}}, nil
	}
	c, err := h.keys.ParseRefresh(raw)
	if err != nil {
		return nil, nil
	}
	fam, err := h.st.GetFamily(ctx, c.FamilyID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if fam.Revoked || fam.Current != c.ID || fam.ClientID != c.ClientID {
		return nil, nil
	}
	// A family of the password grant ends with its user.
	if _, _, err := h.userOfRefresh(ctx, c.UserID, c.Username, c.UserGeneration); errors.Is(err, errUserEnded) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	return &token{clientID: c.ClientID, refresh: &c, resp: &introspection{
		Active: true, Scope: oauth.FormatScope(fam.Scopes), ClientID: c.ClientID, TokenType: "refresh_token",
		Exp: c.ExpiresAt.Unix(), Iat: c.IssuedAt.Unix(), Sub: c.Subject,
		Aud: c.Audience, Iss: c.Issuer, Jti: c.ID,
	}}, nil
}

// familyRevoked reports whether the refresh-token family an access token
// was issued with has been revoked: by RFC 7009 revocation, by reuse of a
// rotated refresh token, or at the end of its user. A token issued without
// a family ("" — the client may not refresh) has none to end with. A
// family gone from the store has expired, which is not revocation: the
// token lives until its own exp. A revoked family's record lasts until its
// current refresh token would have expired; that token was minted with the
// family's newest access token and got refresh_token_ttl to live where the
// access token got access_token_ttl, which config.Validate keeps shorter,
// so the record outlives every access token of the family.
func (h *Handler) familyRevoked(ctx context.Context, id string) (bool, error) {
	if id == "" {
		return false, nil
	}
	fam, err := h.st.GetFamily(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return fam.Revoked, nil
}

// Revocation answers an RFC 7009 revocation request: a refresh token, the
// current member of its family or a retired one, revokes the whole family;
// an access token is put on the revoked list until it
// expires (introspection reports it inactive at once; resource APIs that
// verify offline accept it until it expires). Unknown, expired and malformed
// tokens get 200 too; another client's token is refused, whatever its
// state.
func (h *Handler) Revocation(w http.ResponseWriter, r *http.Request) {
	caller, form, ok := h.tokenEndpointClient(w, r, "revocation")
	if !ok {
		return
	}
	if err := h.revoke(r.Context(), caller, form); err != nil {
		h.fail(w, r, caller.ID, "revocation", err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// revoke revokes the token raw names. Which token it is and whose comes
// from its signature alone, and the caller's ownership is checked before
// anything about its state (RFC 7009 §2.1): revocation is of the grant, so
// a refresh token revokes its family whether it is the current member or a
// retired one, and revoking what is already revoked, retired or gone
// succeeds. A token this issuer did not sign, or that has expired, is
// invalid, which gets 200 too (RFC 7009 §2.2).
func (h *Handler) revoke(ctx context.Context, caller store.Client, form url.Values) error {
	raw := form.Get("token")
	if raw == "" {
		return errInvalidRequest("token is missing")
	}
	if c, err := h.keys.ParseAccess(raw); err == nil {
		if c.ClientID != caller.ID {
			return errUnauthorizedClient("the token was not issued to this client")
		}
		if err := h.st.RevokeToken(ctx, c.ID, c.ExpiresAt.Time); err != nil {
			return err
		}
		if h.cfg.StatusLists != nil {
			if err := h.cfg.StatusLists.RevokeToken(ctx, c.Status); err != nil {
				return err
			}
		}
		h.log.InfoContext(ctx, "access token revoked", "client_id", caller.ID, "jti", c.ID)
		return nil
	}
	c, err := h.keys.ParseRefresh(raw)
	if err != nil {
		return nil
	}
	if c.ClientID != caller.ID {
		return errUnauthorizedClient("the token was not issued to this client")
	}
	err = h.st.RevokeFamily(ctx, c.FamilyID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err == nil {
		err = h.revokeFamilyStatus(ctx, c.FamilyID)
	}
	if err == nil {
		h.log.InfoContext(ctx, "refresh token family revoked", "client_id", caller.ID, "family", c.FamilyID)
	}
	return err
}

// tokenEndpointClient does what the token, introspection and revocation
// endpoints share: POST only, a bounded form body, client authentication.
func (h *Handler) tokenEndpointClient(w http.ResponseWriter, r *http.Request, what string) (store.Client, url.Values, bool) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		WriteError(w, &Error{Code: "invalid_request", Description: "the " + what + " endpoint accepts only POST", Status: http.StatusMethodNotAllowed})
		return store.Client{}, nil, false
	}
	form, oerr := ParseForm(w, r, h.cfg.MaxBodyBytes)
	if oerr != nil {
		WriteError(w, oerr)
		return store.Client{}, nil, false
	}
	c, oerr := h.Authenticate(r, form)
	if oerr != nil {
		h.fail(w, r, "", form.Get("grant_type"), oerr)
		return store.Client{}, nil, false
	}
	return c, form, true
}

// writeJSON writes a 200 JSON response that must not be cached.
func writeJSON(w http.ResponseWriter, v any) {
	noStoreJSON(w)
	_ = json.NewEncoder(w).Encode(v)
}

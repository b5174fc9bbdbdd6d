package grant

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-oauth2/oauth2/v4"
	"github.com/go-oauth2/oauth2/v4/manage"
	"github.com/go-oauth2/oauth2/v4/server"

	"github.com/issuer-oauth/issuer/internal/oauth"
	"github.com/issuer-oauth/issuer/internal/secret"
	"github.com/issuer-oauth/issuer/internal/store"
)

// clientCredentials issues the tokens of the client-credentials grant (RFC
// 6749 §4.4) and of the password grant (§4.3) through go-oauth2's
// server.Server and manage.Manager, with this file's three hooks: a
// ClientStore, an AccessGenerate and a TokenStore.
type clientCredentials struct {
	h   *Handler
	srv *server.Server
}

var (
	_ oauth2.AccessGenerate = (*clientCredentials)(nil)
	_ oauth2.ClientInfo     = (*libClient)(nil)
	_ oauth2.ClientStore    = clientStore{}
	_ oauth2.TokenStore     = noTokenStore{}
)

func newClientCredentials(h *Handler) *clientCredentials {
	cc := &clientCredentials{h: h}
	m := manage.NewManager()
	cfg := &manage.Config{
		AccessTokenExp:    h.cfg.AccessTTL,
		RefreshTokenExp:   h.cfg.RefreshTTL,
		IsGenerateRefresh: true, // Token still issues none to a client without the refresh_token grant
	}
	m.SetClientTokenCfg(cfg)
	m.SetPasswordTokenCfg(cfg)
	m.MapClientStorage(clientStore{})
	m.MapAccessGenerate(cc)
	m.MapTokenStorage(noTokenStore{})
	cc.srv = server.NewServer(&server.Config{
		TokenType:         "Bearer",
		AllowedGrantTypes: []oauth2.GrantType{oauth2.ClientCredentials, oauth2.PasswordCredentials},
	}, m)
	return cc
}

// clientCredentialsGrant runs the client-credentials grant for c, a client
// that authenticated and may use it. It decides the scope (RFC 6749 §3.3)
// and the audience (RFC 8707) before the library runs: the library's
// ClientScopeHandler is given the request but not the client.
func (h *Handler) clientCredentialsGrant(ctx context.Context, form url.Values, c store.Client, jkt string) (*tokenResponse, error) {
	scopes, oerr := grantScope(form.Get("scope"), c.Scopes)
	if oerr != nil {
		return nil, oerr
	}
	aud, oerr := grantAudience(requestedAudience(form), c.Audiences)
	if oerr != nil {
		return nil, oerr
	}
	return h.cc.token(ctx, c, issue{jkt: jkt}, scopes, aud)
}

// token issues tokens of client c for is (the client itself or a user of
// the password grant) with the scope and audience decided. Once the
// library returns, token stores the refresh-token family that Token
// opened.
func (cc *clientCredentials) token(ctx context.Context, c store.Client, is issue, scopes, aud []string) (*tokenResponse, error) {
	lc := &libClient{Client: c, issue: is, audience: aud}
	gt, req := oauth2.ClientCredentials, &oauth2.TokenGenerateRequest{ClientID: c.ID, Scope: oauth.FormatScope(scopes)}
	if is.user != nil {
		gt, req.UserID = oauth2.PasswordCredentials, is.user.ID
	}
	// The library's one way to the client: see clientStore.
	ti, err := cc.srv.GetAccessToken(context.WithValue(ctx, libClientKey{}, lc), gt, req)
	if err != nil {
		// Token's or clientStore's: the grant is allowed and the client
		// confidential, so the library itself refuses nothing.
		return nil, err
	}
	if lc.family != nil {
		if err := cc.h.st.CreateFamily(ctx, *lc.family); err != nil {
			return nil, err
		}
	}
	// The library's expires_in is its one access_token_ttl; Token signed
	// the client's own lifetime.
	return &tokenResponse{
		AccessToken:  ti.GetAccess(),
		TokenType:    is.tokenType(),
		ExpiresIn:    expiresIn(lc.accessExp, lc.issued),
		RefreshToken: ti.GetRefresh(),
		Scope:        ti.GetScope(),
	}, nil
}

// Token is the library's AccessGenerate. data.Client is the *libClient of
// the request (clientStore returned it) and data.TokenInfo holds the scope
// token decided. Token signs the RFC 9068 access token and, when the client
// may refresh, the first refresh token of a new family, which it leaves in
// the libClient for token to store.
func (cc *clientCredentials) Token(ctx context.Context, data *oauth2.GenerateBasic, genRefresh bool) (string, string, error) {
	lc, ok := data.Client.(*libClient)
	if !ok {
		return "", "", fmt.Errorf("grant: go-oauth2 generates tokens for a %T, not the authenticated client", data.Client)
	}
	h := cc.h
	now := h.cfg.Now()
	scope := data.TokenInfo.GetScope()
	if data.UserID != lc.userID() {
		return "", "", fmt.Errorf("grant: go-oauth2 generates tokens for user %q, not the authenticated one", data.UserID)
	}
	// A new family begins now: its end counts from now.
	accessExp, refreshExp := h.expiries(lc.Client, now, now)
	lc.issued, lc.accessExp = now, accessExp
	if !genRefresh || !slices.Contains(lc.GrantTypes, oauth.GrantRefreshToken) {
		lc.accessExp = now.Add(h.accessTTL(lc.Client)) // no family to end with
		access, _, err := h.signAccess(ctx, lc.Client, lc.issue, "", scope, lc.audience, now, lc.accessExp)
		return access, "", err
	}
	// The access token names the family (fid), which the store holds only
	// once token stores it: no store round trip comes before signing.
	fam := store.Family{
		ID:        secret.Random(16),
		ClientID:  lc.ID,
		Scopes:    strings.Fields(scope),
		Audience:  lc.audience,
		Current:   secret.Random(16),
		ExpiresAt: refreshExp,
	}
	access, refs, err := h.signAccess(ctx, lc.Client, lc.issue, fam.ID, scope, lc.audience, now, accessExp)
	fam.Status = refs
	if err != nil {
		return "", "", err
	}
	refresh, err := h.signRefresh(fam, lc.Client, now, lc.user, now)
	if err != nil {
		return "", "", err
	}
	lc.family = &fam
	return access, refresh, nil
}

// libClient is the library's ClientInfo: the client Authenticate returned,
// whom the tokens are for, the audience token was given, and the family
// Token opened.
type libClient struct {
	store.Client
	issue
	audience []string
	family   *store.Family
	// issued and accessExp are when Token signed the access token and
	// when it expires.
	issued, accessExp time.Time
}

// userID is the id of the user tokens are issued for; empty for the
// client itself.
func (c *libClient) userID() string {
	if c.user == nil {
		return ""
	}
	return c.user.ID
}

// GetID is the client id.
func (c *libClient) GetID() string { return c.ID }

// GetSecret is empty, which tells manage.Manager that there is no secret
// left to compare: Authenticate verified it against the stored hash (the
// secret itself is never stored), in constant time.
func (c *libClient) GetSecret() string { return "" }

// GetDomain is empty: the grant has no redirection URI.
func (c *libClient) GetDomain() string { return "" }

// IsPublic is false: the client authenticated (RFC 6749 §2.1).
func (c *libClient) IsPublic() bool { return false }

// GetUserID is the user of the password grant; empty when the client acts
// on its own behalf (RFC 6749 §4.4).
func (c *libClient) GetUserID() string { return c.userID() }

// clientStore is the library's ClientStore. The library's
// ClientStore.GetByID receives a context and a client id, nothing else, so
// the context is the only way to hand it the client this request
// authenticated: token puts its *libClient there, under libClientKey.
type clientStore struct{}

type libClientKey struct{}

// GetByID returns the *libClient in ctx when its id is id.
func (clientStore) GetByID(ctx context.Context, id string) (oauth2.ClientInfo, error) {
	lc, ok := ctx.Value(libClientKey{}).(*libClient)
	if !ok || lc.ID != id {
		return nil, fmt.Errorf("grant: go-oauth2 asks for client %q, which the request did not authenticate", id)
	}
	return lc, nil
}

// noTokenStore is the library's TokenStore, which manage.Manager requires:
// GenerateAccessToken calls Create with every token it issues. Nothing is
// stored through it: access tokens are self-contained JWTs, and token
// stores a new refresh-token family itself, with the family in hand. The
// other six methods serve the library's authorization-code, refresh and
// bearer-token paths, which are never called.
type noTokenStore struct{}

var errNotStored = errors.New("grant: go-oauth2's token store is not used")

// Create stores nothing; see noTokenStore.
func (noTokenStore) Create(context.Context, oauth2.TokenInfo) error { return nil }

// RemoveByCode is never called; see noTokenStore.
func (noTokenStore) RemoveByCode(context.Context, string) error { return errNotStored }

// RemoveByAccess is never called; see noTokenStore.
func (noTokenStore) RemoveByAccess(context.Context, string) error { return errNotStored }

// RemoveByRefresh is never called; see noTokenStore.
func (noTokenStore) RemoveByRefresh(context.Context, string) error { return errNotStored }

// GetByCode is never called; see noTokenStore.
func (noTokenStore) GetByCode(context.Context, string) (oauth2.TokenInfo, error) {
	return nil, errNotStored
}

// GetByAccess is never called; see noTokenStore.
func (noTokenStore) GetByAccess(context.Context, string) (oauth2.TokenInfo, error) {
	return nil, errNotStored
}

// GetByRefresh is never called; see noTokenStore.
func (noTokenStore) GetByRefresh(context.Context, string) (oauth2.TokenInfo, error) {
	return nil, errNotStored
}

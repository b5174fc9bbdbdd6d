package grant

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-oauth2/oauth2/v4"
	oerrors "github.com/go-oauth2/oauth2/v4/errors"
	"github.com/go-oauth2/oauth2/v4/manage"
	"github.com/go-oauth2/oauth2/v4/server"
	"github.com/golang-jwt/jwt/v5"

	"github.com/issuer-oauth/issuer/internal/keys"
	"github.com/issuer-oauth/issuer/internal/oauth"
	"github.com/issuer-oauth/issuer/internal/secret"
	"github.com/issuer-oauth/issuer/internal/store"
)

// clientCredentials runs the client-credentials grant through go-oauth2's
// server and manager. The request is already authenticated when it arrives;
// the state of one request travels in its context as *ccRequest.
type clientCredentials struct {
	h   *Handler
	srv *server.Server
}

// ccRequest is what the library hooks of one request share.
type ccRequest struct {
	client   store.Client
	secret   string // as presented and verified
	form     url.Values
	audience []string
	family   *store.Family // set when a refresh token is issued
}

type ccKey struct{}

func newClientCredentials(h *Handler) *clientCredentials {
	cc := &clientCredentials{h: h}
	m := manage.NewManager()
	m.SetClientTokenCfg(&manage.Config{
		AccessTokenExp:    h.cfg.AccessTTL,
		RefreshTokenExp:   h.cfg.RefreshTTL,
		IsGenerateRefresh: true,
	})
	m.MapClientStorage(authenticatedClients{})
	m.MapAccessGenerate(cc)
	m.MapTokenStorage(familyStore{h.st})
	cc.srv = server.NewServer(&server.Config{
		TokenType:         "Bearer",
		AllowedGrantTypes: []oauth2.GrantType{oauth2.ClientCredentials},
	}, m)
	cc.srv.ClientScopeHandler = cc.scope
	return cc
}

// token issues tokens for an authenticated client.
func (cc *clientCredentials) token(r *http.Request, form url.Values, c store.Client, sec string) (*tokenResponse, error) {
	req := &ccRequest{client: c, secret: sec, form: form}
	ctx := context.WithValue(r.Context(), ccKey{}, req)
	tgr := &oauth2.TokenGenerateRequest{
		ClientID:     c.ID,
		ClientSecret: sec,
		Scope:        form.Get("scope"),
		Request:      r.WithContext(ctx),
	}
	ti, err := cc.srv.GetAccessToken(ctx, oauth2.ClientCredentials, tgr)
	if err != nil {
		return nil, libError(err)
	}
	return &tokenResponse{
		AccessToken:  ti.GetAccess(),
		TokenType:    "Bearer",
		ExpiresIn:    int64(ti.GetAccessExpiresIn().Seconds()),
		RefreshToken: ti.GetRefresh(),
		Scope:        ti.GetScope(),
	}, nil
}

// libError maps go-oauth2's error values onto ours; our own *Error values
// returned from hooks pass through.
func libError(err error) error {
	var oe *Error
	if errors.As(err, &oe) {
		return oe
	}
	switch err {
	case oerrors.ErrInvalidClient:
		return errInvalidClient("client authentication failed")
	case oerrors.ErrInvalidScope:
		return errInvalidScope("the requested scope is not allowed")
	case oerrors.ErrUnauthorizedClient:
		return errUnauthorizedClient("the client may not use this grant")
	}
	return err
}

func requestOf(ctx context.Context) (*ccRequest, error) {
	req, ok := ctx.Value(ccKey{}).(*ccRequest)
	if !ok {
		return nil, errors.New("grant: request state missing from context")
	}
	return req, nil
}

// scope is the library's ClientScopeHandler: it grants the requested scope
// within the client's allowance and chooses the audience (RFC 8707).
func (cc *clientCredentials) scope(tgr *oauth2.TokenGenerateRequest) (bool, error) {
	req, err := requestOf(tgr.Request.Context())
	if err != nil {
		return false, err
	}
	scopes, oerr := grantScope(tgr.Scope, req.client.Scopes)
	if oerr != nil {
		return false, oerr
	}
	aud, oerr := grantAudience(requestedAudience(req.form), req.client.Audiences)
	if oerr != nil {
		return false, oerr
	}
	tgr.Scope = oauth.FormatScope(scopes)
	req.audience = aud
	return true, nil
}

// requestedAudience collects the resource and audience parameters.
func requestedAudience(form url.Values) []string {
	return slices.Concat(form["resource"], form["audience"])
}

// Token is the library's AccessGenerate: it signs the RFC 9068 access token
// and, when the client may refresh, a refresh token opening a new family.
func (cc *clientCredentials) Token(ctx context.Context, data *oauth2.GenerateBasic, genRefresh bool) (string, string, error) {
	req, err := requestOf(ctx)
	if err != nil {
		return "", "", err
	}
	h := cc.h
	now := h.cfg.Now()
	scope := data.TokenInfo.GetScope()
	access, err := h.signAccess(req.client.ID, scope, req.audience, now)
	if err != nil {
		return "", "", err
	}
	if !genRefresh || !slices.Contains(req.client.GrantTypes, oauth.GrantRefreshToken) {
		return access, "", nil
	}
	fam := store.Family{
		ID:        secret.Random(16),
		ClientID:  req.client.ID,
		Scopes:    strings.Fields(scope),
		Audience:  req.audience,
		Current:   secret.Random(16),
		ExpiresAt: now.Add(h.cfg.RefreshTTL),
	}
	refresh, err := h.signRefresh(fam, now)
	if err != nil {
		return "", "", err
	}
	req.family = &fam
	return access, refresh, nil
}

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

// authenticatedClients is the library's ClientStore. It serves only the
// client this request authenticated (Authenticate already checked its
// secret against the stored hash), and the library's secret check goes
// through ClientPasswordVerifier: a constant-time comparison with the
// secret that was authenticated, never the library's plain !=.
type authenticatedClients struct{}

func (authenticatedClients) GetByID(ctx context.Context, id string) (oauth2.ClientInfo, error) {
	req, err := requestOf(ctx)
	if err != nil {
		return nil, err
	}
	if req.client.ID != id {
		return nil, oerrors.ErrInvalidClient
	}
	return clientInfo{req.client, req.secret}, nil
}

type clientInfo struct {
	c      store.Client
	secret string // the secret Authenticate verified
}

func (c clientInfo) GetID() string     { return c.c.ID }
func (c clientInfo) GetSecret() string { return "" } // only the hash is known
func (c clientInfo) GetDomain() string { return "" }
func (c clientInfo) IsPublic() bool    { return false }
func (c clientInfo) GetUserID() string { return "" }

// VerifyPassword implements oauth2.ClientPasswordVerifier.
func (c clientInfo) VerifyPassword(s string) bool {
	return subtle.ConstantTimeCompare([]byte(s), []byte(c.secret)) == 1
}

// familyStore is the library's TokenStore. Access tokens are self-contained
// JWTs and are not stored; Create stores the refresh-token family the
// generator opened.
type familyStore struct{ st Store }

var errNotStored = errors.New("grant: tokens are self-contained and not stored")

func (f familyStore) Create(ctx context.Context, _ oauth2.TokenInfo) error {
	req, err := requestOf(ctx)
	if err != nil {
		return err
	}
	if req.family == nil {
		return nil
	}
	return f.st.CreateFamily(ctx, *req.family)
}

func (familyStore) RemoveByCode(context.Context, string) error    { return errNotStored }
func (familyStore) RemoveByAccess(context.Context, string) error  { return errNotStored }
func (familyStore) RemoveByRefresh(context.Context, string) error { return errNotStored }
func (familyStore) GetByCode(context.Context, string) (oauth2.TokenInfo, error) {
	return nil, errNotStored
}
func (familyStore) GetByAccess(context.Context, string) (oauth2.TokenInfo, error) {
	return nil, errNotStored
}
func (familyStore) GetByRefresh(context.Context, string) (oauth2.TokenInfo, error) {
	return nil, errNotStored
}

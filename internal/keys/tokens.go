package keys

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// AccessClaims are the claims of an RFC 9068 access token.
type AccessClaims struct {
	jwt.RegisteredClaims
	ClientID string `json:"client_id"`
	Scope    string `json:"scope,omitempty"`
	// TokenType is Django REST framework SimpleJWT's "token_type" claim,
	// "access" in the tokens meant for SimpleJWT resource servers.
	TokenType string `json:"token_type,omitempty"`
	// FamilyID is the refresh-token family the token was issued with, if
	// any: a private claim (RFC 7519 §4.3) that only this issuer reads, so
	// that introspection reports the token inactive once its family is
	// revoked.
	FamilyID string `json:"fid,omitempty"`
	// Confirmation binds the token to a DPoP key (RFC 9449 §6.1): nil for
	// a bearer token.
	Confirmation *Confirmation `json:"cnf,omitempty"`
	// Status is the token's entry in a Token Status List
	// (draft-ietf-oauth-status-list), when status lists are on.
	Status *Status `json:"status,omitempty"`
	// Extra are further string claims, encoded after the others in their
	// order: a user's claims, SimpleJWT's user id claim. Their names must
	// differ from every other claim's (callers check it); parsing collects
	// every string claim that is not one of the fields above.
	Extra []Claim `json:"-"`
}

// Confirmation is the cnf claim of a DPoP-bound access token (RFC 7800
// §3.1, RFC 9449 §6.1).
type Confirmation struct {
	// JKT is the RFC 7638 SHA-256 thumbprint of the DPoP key, base64url.
	JKT string `json:"jkt"`
}

// Status is the status claim of a token: where its status bit is.
type Status struct {
	StatusList StatusListRef `json:"status_list"`
}

// StatusListRef is the status_list member of the status claim: the index
// of the token's bit in the list at URI.
type StatusListRef struct {
	Idx int64  `json:"idx"`
	URI string `json:"uri"`
}

// Claim is one string claim of Extra.
type Claim struct{ Name, Value string }

// UnmarshalJSON decodes the claims, and the string members of no field
// into Extra, ordered by name.
func (c *AccessClaims) UnmarshalJSON(b []byte) error {
	type plain AccessClaims // without this method
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	p.Extra = nil
	for _, name := range slices.Sorted(maps.Keys(all)) {
		if knownAccessClaims[name] {
			continue
		}
		var v string
		if json.Unmarshal(all[name], &v) == nil {
			p.Extra = append(p.Extra, Claim{name, v})
		}
	}
	*c = AccessClaims(p)
	return nil
}

// knownAccessClaims are the members of the fields of AccessClaims.
var knownAccessClaims = map[string]bool{
	"iss": true, "sub": true, "aud": true, "exp": true, "nbf": true, "iat": true, "jti": true,
	"client_id": true, "scope": true, "token_type": true, "fid": true, "cnf": true, "status": true,
}

// RefreshClaims are the claims of a refresh token. Its aud is the issuer, so
// no resource API accepts it.
type RefreshClaims struct {
	jwt.RegisteredClaims
	ClientID string `json:"client_id"`
	// FamilyID names the refresh-token family in the store.
	FamilyID string `json:"fid"`
	// Scope is the scope granted to the family (RFC 6749 §6: a refreshed
	// refresh token keeps it).
	Scope string `json:"scope,omitempty"`
	// Resource is the audience granted to the family.
	Resource []string `json:"resource,omitempty"`
	// UserID, Username and UserGeneration name the user of a family of
	// the password grant, and the user's generation when the family
	// started: the family ends when the user is deleted, disabled or
	// changes password (the generation moves).
	UserID         string `json:"uid,omitempty"`
	Username       string `json:"usr,omitempty"`
	UserGeneration int64  `json:"ugen,omitempty"`
	// ClientGeneration is the client's generation when the family
	// started: the family ends when the client is disabled (the
	// generation moves).
	ClientGeneration int64 `json:"cgen,omitempty"`
	// FamilyStart is when the family's first token was issued (Unix
	// seconds), from which refresh_token_max_lifetime counts; zero in
	// tokens issued before it was recorded.
	FamilyStart int64 `json:"fst,omitempty"`
}

// MaxClockSkew is how far ahead of this instance's clock the iat of a refresh
// token issued by another instance may be.
const MaxClockSkew = time.Minute

// SignAccess signs an access token with the current key; it sets iss. A
// token longer than MaxTokenLen is refused with ErrTooLong: ParseAccess
// would reject it.
func (k *Keys) SignAccess(c AccessClaims) (string, error) {
	s := k.current()
	c.Issuer = k.cfg.Issuer
	var claims [512]byte
	out, err := s.access.sign(appendAccessClaims(claims[:0], &c))
	if err != nil {
		return "", fmt.Errorf("keys: sign access token: %w", err)
	}
	if len(out) > MaxTokenLen {
		return "", tooLong("access", len(out), c.ClientID)
	}
	return out, nil
}

// SignRefresh signs a refresh token; it sets iss and aud to the issuer. A
// token longer than MaxTokenLen is refused with ErrTooLong: ParseRefresh
// would reject it.
func (k *Keys) SignRefresh(c RefreshClaims) (string, error) {
	c.Issuer = k.cfg.Issuer
	c.Audience = jwt.ClaimStrings{k.cfg.Issuer}
	var claims [512]byte
	out, err := k.refresh.sign(appendRefreshClaims(claims[:0], &c))
	if err != nil {
		return "", fmt.Errorf("keys: sign refresh token: %w", err)
	}
	if len(out) > MaxTokenLen {
		return "", tooLong("refresh", len(out), c.ClientID)
	}
	return out, nil
}

// tooLong is the ErrTooLong of a token of n bytes of the client: it says
// what to shorten, for the log of the refused request.
func tooLong(kind string, n int, clientID string) error {
	return fmt.Errorf("%w: the %s token of client %s would be %d bytes, over the %d that introspection and refresh parse; "+
		"shorten the client's scope or audiences, or the user's claims (docs/admin.md)",
		ErrTooLong, kind, clientID, n, MaxTokenLen)
}

// ParseRefresh verifies a refresh token of this issuer and returns its
// claims. The algorithm is pinned to HS256, and typ, iss, aud, exp, jti,
// fid and client_id are all required. Every failure wraps ErrInvalidToken.
func (k *Keys) ParseRefresh(token string) (RefreshClaims, error) {
	return k.parseRefresh(k.refreshParser, token)
}

// newRefreshParser returns the parser of refresh tokens: HS256 only, iss
// and aud the issuer, exp required, strict base64url, the time k.now.
func (k *Keys) newRefreshParser() *jwt.Parser {
	return jwt.NewParser(
		jwt.WithValidMethods([]string{k.refresh.method.Alg()}),
		jwt.WithIssuer(k.cfg.Issuer),
		jwt.WithAudience(k.cfg.Issuer),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(k.now),
		jwt.WithStrictDecoding(),
	)
}

func (k *Keys) parseRefresh(p *jwt.Parser, token string) (RefreshClaims, error) {
	var c RefreshClaims
	if len(token) > MaxTokenLen {
		return c, fmt.Errorf("%w: longer than %d bytes", ErrInvalidToken, MaxTokenLen)
	}
	_, err := p.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		if typ, _ := t.Header["typ"].(string); typ != TypeRefresh {
			return nil, fmt.Errorf("typ %q is not %q", typ, TypeRefresh)
		}
		if _, ok := t.Header["crit"]; ok {
			return nil, fmt.Errorf("unsupported crit header")
		}
		return k.cfg.RefreshKey, nil
	})
	if err != nil {
		return RefreshClaims{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if c.ID == "" || c.FamilyID == "" || c.ClientID == "" {
		return RefreshClaims{}, fmt.Errorf("%w: missing jti, fid or client_id", ErrInvalidToken)
	}
	// iat may be a little ahead: another instance with a faster clock may
	// have issued the token.
	if c.IssuedAt == nil || c.IssuedAt.After(k.now().Add(MaxClockSkew)) {
		return RefreshClaims{}, fmt.Errorf("%w: iat missing or in the future", ErrInvalidToken)
	}
	if c.Subject != c.ClientID {
		return RefreshClaims{}, fmt.Errorf("%w: sub differs from client_id", ErrInvalidToken)
	}
	return c, nil
}

// ParseAccess verifies an access token signed by one of this issuer's keys
// (found by kid; the algorithm is the key's, never the header's alone: an
// HS256 token verifies only with an HS256 key, never with an asymmetric
// key's public bytes as the secret) and returns its claims: typ at+jwt,
// iss, exp, iat, sub, client_id and jti are required. It is the issuer's
// own check, for introspection and revocation; resource APIs use the
// public verify package. A revoked key's tokens fail at once. Every
// failure wraps ErrInvalidToken.
func (k *Keys) ParseAccess(token string) (AccessClaims, error) {
	return k.parseAccess(k.accessParser, token)
}

// newAccessParser returns the parser of access tokens: iss the issuer, exp
// required, strict base64url, the time k.now. The key function pins the
// algorithm to the key's.
func (k *Keys) newAccessParser() *jwt.Parser {
	return jwt.NewParser(
		jwt.WithIssuer(k.cfg.Issuer),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(k.now),
		jwt.WithStrictDecoding(),
	)
}

func (k *Keys) parseAccess(p *jwt.Parser, token string) (AccessClaims, error) {
	var c AccessClaims
	if len(token) > MaxTokenLen {
		return c, fmt.Errorf("%w: longer than %d bytes", ErrInvalidToken, MaxTokenLen)
	}
	byKid := k.loaded().byKid
	var method jwt.SigningMethod
	_, err := p.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		if typ, _ := t.Header["typ"].(string); typ != TypeAccess {
			return nil, fmt.Errorf("typ %q is not %q", typ, TypeAccess)
		}
		if _, ok := t.Header["crit"]; ok {
			return nil, fmt.Errorf("unsupported crit header")
		}
		kid, _ := t.Header["kid"].(string)
		s, ok := byKid[kid]
		if !ok {
			return nil, fmt.Errorf("unknown kid")
		}
		if t.Method != s.method {
			return nil, fmt.Errorf("alg %s does not match key %s", t.Method.Alg(), s.method.Alg())
		}
		method = s.method
		return s.pub, nil
	})
	if err != nil {
		return AccessClaims{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if method == nil || c.ID == "" || c.ClientID == "" || c.Subject == "" || c.IssuedAt == nil {
		return AccessClaims{}, fmt.Errorf("%w: missing jti, client_id, sub or iat", ErrInvalidToken)
	}
	return c, nil
}

// NumericDate converts t to a JWT NumericDate (whole seconds).
func NumericDate(t time.Time) *jwt.NumericDate {
	return jwt.NewNumericDate(t.Truncate(time.Second))
}

// StatusListType is the typ of a Token Status List JWT
// (draft-ietf-oauth-status-list, section 5.1).
const StatusListType = "statuslist+jwt"

// SignStatusList signs the claims JSON of a Token Status List with the
// current key, as the access tokens are, with typ statuslist+jwt: a
// resource API checks it with the keys of the JWKS.
func (k *Keys) SignStatusList(claims []byte) (string, error) {
	s := k.current()
	out, err := newJWS(s.method, s.priv, s.kid, StatusListType).sign(claims)
	if err != nil {
		return "", fmt.Errorf("keys: sign status list: %w", err)
	}
	return out, nil
}

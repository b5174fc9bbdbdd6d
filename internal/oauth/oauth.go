// Package oauth is the OAuth 2.0 vocabulary that the token endpoint and the
// admin API share: the grant types the issuer runs (RFC 6749 §4.4 and §6),
// the client authentication methods a client registers (RFC 7591 §2, RFC
// 6749 §2.3.1), the syntax of a scope (RFC 6749 §3.3): a list of
// space-delimited, case-sensitive scope tokens, and the access-token
// claims the issuer sets itself.
package oauth

import "strings"

// Grant types: the grant_type values of the token requests the issuer
// serves, and of a client's registered grant_types.
const (
	// GrantClientCredentials is the client-credentials grant (RFC 6749 §4.4).
	GrantClientCredentials = "client_credentials"
	// GrantRefreshToken is the refresh-token grant (RFC 6749 §6).
	GrantRefreshToken = "refresh_token"
	// GrantPassword is the resource owner password credentials grant
	// (RFC 6749 §4.3), off unless the password_grant setting is on.
	GrantPassword = "password"
)

// reservedClaims are the claims of an access token that the issuer sets
// itself (RFC 9068 §2.2, RFC 7800 cnf, the Token Status List's status,
// SimpleJWT's token_type, and fid, the refresh-token family of the token).
var reservedClaims = map[string]bool{
	"iss": true, "sub": true, "aud": true, "exp": true, "iat": true, "nbf": true, "jti": true,
	"client_id": true, "scope": true, "cnf": true, "status": true, "token_type": true, "fid": true,
}

// ReservedClaim reports whether name is a claim the issuer sets itself,
// which neither a user's claims nor a setting may supply.
func ReservedClaim(name string) bool { return reservedClaims[name] }

// Client authentication methods: the token_endpoint_auth_method values of
// RFC 7591 §2 that a client may register.
const (
	// AuthClientSecretBasic is HTTP Basic with the client id and secret
	// (RFC 6749 §2.3.1).
	AuthClientSecretBasic = "client_secret_basic"
	// AuthClientSecretPost is client_id and client_secret in the form body
	// (RFC 6749 §2.3.1).
	AuthClientSecretPost = "client_secret_post"
	// AuthPrivateKeyJWT is a JWT signed with a key of the client's
	// registered JWK Set (RFC 7523 §2.2, OpenID Connect Core §9).
	AuthPrivateKeyJWT = "private_key_jwt"
	// AuthFederatedJWT (extension) is a JWT that a trusted external issuer
	// (a Kubernetes cluster, SPIRE, GitHub Actions) minted for the
	// client's workload, presented like a private_key_jwt assertion.
	AuthFederatedJWT = "federated_jwt"
)

// AssertionTypeJWTBearer is the client_assertion_type of a JWT client
// assertion (RFC 7523 §2.2).
const AssertionTypeJWTBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// maxScopeTokenLen bounds a scope token; RFC 6749 sets no limit.
const maxScopeTokenLen = 128

// ValidScopeToken reports whether s is a scope-token of RFC 6749 §3.3,
// 1*( %x21 / %x23-5B / %x5D-7E ), of at most 128 bytes.
func ValidScopeToken(s string) bool {
	if s == "" || len(s) > maxScopeTokenLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c == 0x22 || c == 0x5C || c > 0x7E {
			return false
		}
	}
	return true
}

// ParseScope splits a space-separated scope string into unique tokens in
// their first order. ok is false when a token is malformed.
func ParseScope(s string) (scopes []string, ok bool) {
	var seen map[string]bool // a set, not slices.Contains: a long scope must not cost quadratic time
	for _, tok := range strings.Split(s, " ") {
		if tok == "" {
			continue
		}
		if !ValidScopeToken(tok) {
			return nil, false
		}
		if seen == nil {
			seen = make(map[string]bool)
		}
		if !seen[tok] {
			seen[tok] = true
			scopes = append(scopes, tok)
		}
	}
	return scopes, true
}

// FormatScope joins scope tokens with single spaces, as the scope
// parameter and the scope claim carry them.
func FormatScope(scopes []string) string { return strings.Join(scopes, " ") }

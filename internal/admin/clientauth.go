package admin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/issuer-oauth/issuer/internal/adminapi"
	"github.com/issuer-oauth/issuer/internal/jwk"
	"github.com/issuer-oauth/issuer/internal/oauth"
)

// Limits of the federated identity of a client.
const (
	maxFederatedClaims   = 20
	maxFederatedValueLen = 1024 // bytes of a subject, claim name or value
)

// secretless reports whether clients of the method authenticate without a
// client secret.
func secretless(method string) bool {
	return method == oauth.AuthPrivateKeyJWT || method == oauth.AuthFederatedJWT
}

// authMethods are the token_endpoint_auth_method values a client may
// register on this issuer.
func (h *Handler) authMethods() []string {
	ms := []string{oauth.AuthClientSecretBasic, oauth.AuthClientSecretPost, oauth.AuthPrivateKeyJWT}
	if len(h.cfg.TrustedIssuers) > 0 {
		ms = append(ms, oauth.AuthFederatedJWT)
	}
	return ms
}

// checkClientAuth checks the authentication metadata of m, whose
// token_endpoint_auth_method is set, and compacts its jwks: the keys
// of private_key_jwt (RFC 7591 §2: jwks or jwks_uri, never both; public
// signature keys only, supported types and algorithms, unique kids), the
// federated identity of federated_jwt, and none of them for the secret
// methods.
func (h *Handler) checkClientAuth(m *adminapi.ClientMetadata) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if t := bytes.TrimSpace(m.JWKS); len(t) == 0 || bytes.Equal(t, []byte("null")) {
		m.JWKS = nil
	}
	method := m.TokenEndpointAuthMethod
	if method != oauth.AuthPrivateKeyJWT {
		if m.JWKS != nil || m.JWKSURI != "" || m.TokenEndpointAuthSigningAlg != "" {
			add("jwks, jwks_uri and token_endpoint_auth_signing_alg are for token_endpoint_auth_method private_key_jwt only")
		}
	}
	if method != oauth.AuthFederatedJWT && m.FederatedIdentity != nil {
		add("federated_identity is for token_endpoint_auth_method federated_jwt only")
	}
	switch method {
	case oauth.AuthPrivateKeyJWT:
		switch {
		case m.JWKS != nil && m.JWKSURI != "":
			add("jwks and jwks_uri: give one, not both (RFC 7591 §2)")
		case m.JWKS == nil && m.JWKSURI == "":
			add("private_key_jwt needs the client's public keys: jwks (a JWK Set) or jwks_uri (the https URL of one)")
		}
		var set jwk.Set
		if m.JWKS != nil {
			var err error
			if set, err = jwk.Parse(m.JWKS); err != nil {
				add("jwks: %v", err)
			} else {
				var b bytes.Buffer
				_ = json.Compact(&b, m.JWKS)
				m.JWKS = b.Bytes()
			}
		}
		if m.JWKSURI != "" {
			if h.cfg.CheckJWKSURI == nil {
				add("jwks_uri is not accepted by this issuer; give jwks")
			} else if err := h.cfg.CheckJWKSURI(m.JWKSURI); err != nil {
				add("jwks_uri: %v", err)
			}
		}
		if alg := m.TokenEndpointAuthSigningAlg; alg != "" {
			switch {
			case !slices.Contains(jwk.Algorithms, alg):
				add("token_endpoint_auth_signing_alg: %q is not supported; use %s", alg, strings.Join(jwk.Algorithms, ", "))
			case set != nil && !slices.Contains(set.Algs(), alg):
				add("token_endpoint_auth_signing_alg: no key of jwks verifies %s", alg)
			}
		}
	case oauth.AuthFederatedJWT:
		f := m.FederatedIdentity
		if f == nil {
			add(`federated_jwt needs federated_identity: {"issuer":"<trusted issuer name>","subject":"<exact sub>","claims":{…}}`)
			break
		}
		if !slices.Contains(h.cfg.TrustedIssuers, f.Issuer) {
			add("federated_identity.issuer: %q is not a trusted issuer of this issuer's configuration; use one of %s",
				f.Issuer, strings.Join(h.cfg.TrustedIssuers, ", "))
		}
		if f.Subject == "" || len(f.Subject) > maxFederatedValueLen || !utf8.ValidString(f.Subject) {
			add("federated_identity.subject: give the exact sub of the workload's tokens, 1 to %d bytes", maxFederatedValueLen)
		}
		if len(f.Claims) > maxFederatedClaims {
			add("federated_identity.claims: at most %d claims", maxFederatedClaims)
		}
		for k, v := range f.Claims {
			switch {
			case k == "" || len(k) > maxFederatedValueLen || len(v) > maxFederatedValueLen:
				add("federated_identity.claims: names and values are 1 to %d bytes", maxFederatedValueLen)
			case k == "sub" || k == "iss" || k == "aud" || k == "exp":
				add("federated_identity.claims: %q is checked by the issuer itself; use subject, or leave it out", k)
			default:
				continue
			}
			break
		}
		if len(f.Claims) == 0 {
			f.Claims = nil
		}
	}
	return problems
}

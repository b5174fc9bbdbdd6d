package admin_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/issuer-oauth/issuer/internal/admin"
	"github.com/issuer-oauth/issuer/internal/adminapi"
)

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// testJWKs are public JWKs of each supported type, and a private one.
func testJWKs(t *testing.T) (ec, rsaKey, ed, ecPrivate string) {
	t.Helper()
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pub, _ := ek.PublicKey.Bytes()
	priv, _ := ek.Bytes()
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	ec = `{"kty":"EC","crv":"P-256","kid":"ec","x":"` + b64(pub[1:33]) + `","y":"` + b64(pub[33:]) + `"}`
	ecPrivate = strings.TrimSuffix(ec, "}") + `,"d":"` + b64(priv) + `"}`
	rsaKey = `{"kty":"RSA","kid":"rsa","alg":"RS256","n":"` + b64(rk.N.Bytes()) + `","e":"AQAB"}`
	ed = `{"kty":"OKP","crv":"Ed25519","kid":"ed","x":"` + b64(edPub) + `"}`
	return
}

func TestRegisterPrivateKeyJWT(t *testing.T) {
	f := newFixture(t, nil, func(c *admin.Config) {
		c.MaxBodyBytes = 64 << 10
		c.CheckJWKSURI = func(u string) error {
			if !strings.HasPrefix(u, "https://") {
				return errors.New("must be https")
			}
			return nil
		}
		c.TrustedIssuers = []string{"cluster"}
	})
	ec, rsaKey, ed, ecPrivate := testJWKs(t)
	const aud = `"audience":["https://api.example.com"]`
	pk := func(rest string) string {
		return `{"token_endpoint_auth_method":"private_key_jwt",` + aud + `,` + rest + `}`
	}
	set := func(keys ...string) string { return `"jwks":{"keys":[` + strings.Join(keys, ",") + `]}` }

	t.Run("accepted", func(t *testing.T) {
		for _, body := range []string{
			pk(set(ec, rsaKey, ed)),
			pk(set(ec) + `,"token_endpoint_auth_signing_alg":"ES256"`),
			pk(`"jwks_uri":"https://keys.example.com/jwks.json"`),
			`{"token_endpoint_auth_method":"federated_jwt",` + aud + `,"federated_identity":{"issuer":"cluster","subject":"system:serviceaccount:ns:sa"}}`,
		} {
			var c adminapi.ClientInfo
			if code := f.call(t, "POST", "/admin/clients", body, &c); code != 201 {
				t.Fatalf("%s: %d", body, code)
			}
			if c.ClientSecret != "" {
				t.Errorf("%s: a client without secret got client_secret %q", body, c.ClientSecret)
			}
			var got adminapi.ClientInfo
			f.call(t, "GET", "/admin/clients/"+c.ClientID, nil, &got)
			want, _ := json.Marshal(c.ClientMetadata)
			have, _ := json.Marshal(got.ClientMetadata)
			if string(want) != string(have) {
				t.Errorf("GET = %s, want what registration answered, %s", have, want)
			}
			var e adminapi.ErrorBody
			if code := f.call(t, "POST", "/admin/clients/"+c.ClientID+"/secret", nil, &e); code != 400 {
				t.Errorf("rotate-secret of a client without secret: %d %+v, want 400", code, e)
			}
		}
	})

	many := make([]string, 33)
	for i := range many {
		many[i] = strings.Replace(ec, `"kid":"ec"`, `"kid":"ec`+string(rune('a'+i%26))+string(rune('a'+i/26))+`"`, 1)
	}
	for _, tc := range []struct{ body, want string }{
		{pk(set(ec) + `,"jwks_uri":"https://keys.example.com/jwks.json"`), "give one, not both"},
		{pk(`"scope":"read"`), "needs the client's public keys"},
		{pk(set(ecPrivate)), "private or symmetric key material"},
		{pk(set(`{"kty":"oct","kid":"s","k":"c2VjcmV0"}`)), "private or symmetric"},
		{pk(set(strings.Replace(ec, "P-256", "P-384", 1))), `EC curve "P-384" is not supported`},
		{pk(set(`{"kty":"EC","crv":"P-256","kid":"bad","x":"` + b64(make([]byte, 32)) + `","y":"` + b64(make([]byte, 32)) + `"}`)), "not on P-256"},
		{pk(set(strings.Replace(rsaKey, `"alg":"RS256"`, `"alg":"ES256"`, 1))), `alg "ES256" does not fit a RSA key`},
		{pk(set(`{"kty":"RSA","kid":"small","n":"` + b64(make([]byte, 1)) + `","e":"AQAB"}`)), "n must be"},
		{pk(set(strings.Replace(ec, `"kid":"ec"`, `"kid":"ec","use":"enc"`, 1))), `use "enc"`},
		{pk(set(ec, ec)), `kid "ec" is used twice`},
		{pk(set(strings.Replace(ec, `"kid":"ec",`, "", 1), rsaKey)), "has no kid"},
		{pk(set()), "no keys"},
		{pk(set(many...)), "at most 32"},
		{pk(`"jwks":{"nokeys":[]}`), `no "keys" array`},
		{pk(`"jwks":[1]`), "JSON object"},
		{pk(`"jwks":{"keys":[null]}`), "not a JSON object"},
		{pk(set(`{"kty":"XYZ","kid":"x"}`)), `kty "XYZ" is not supported`},
		{pk(`"jwks_uri":"http://keys.example.com/jwks.json"`), "jwks_uri: must be https"},
		{pk(set(ec) + `,"token_endpoint_auth_signing_alg":"HS256"`), `"HS256" is not supported`},
		{pk(set(ec) + `,"token_endpoint_auth_signing_alg":"none"`), `"none" is not supported`},
		{pk(set(ec) + `,"token_endpoint_auth_signing_alg":"RS256"`), "no key of jwks verifies RS256"},
		{`{"token_endpoint_auth_method":"client_secret_basic",` + aud + `,` + set(ec) + `}`, "for token_endpoint_auth_method private_key_jwt only"},
		{`{"token_endpoint_auth_method":"federated_jwt",` + aud + `}`, "federated_jwt needs federated_identity"},
		{`{"token_endpoint_auth_method":"federated_jwt",` + aud + `,"federated_identity":{"issuer":"other","subject":"s"}}`, `"other" is not a trusted issuer`},
		{`{"token_endpoint_auth_method":"federated_jwt",` + aud + `,"federated_identity":{"issuer":"cluster","subject":""}}`, "federated_identity.subject"},
		{`{"token_endpoint_auth_method":"federated_jwt",` + aud + `,"federated_identity":{"issuer":"cluster","subject":"s","claims":{"aud":"x"}}}`, `"aud" is checked by the issuer`},
		{pk(set(ec) + `,"federated_identity":{"issuer":"cluster","subject":"s"}`), "federated_identity is for token_endpoint_auth_method federated_jwt only"},
	} {
		var e adminapi.ErrorBody
		if code := f.call(t, "POST", "/admin/clients", tc.body, &e); code != 400 || e.Error != "invalid_client_metadata" || !strings.Contains(e.ErrorDescription, tc.want) {
			t.Errorf("%.200s: %d %+v, want 400 invalid_client_metadata saying %q", tc.body, code, e, tc.want)
		}
	}

	t.Run("federated_jwt is off without trusted issuers", func(t *testing.T) {
		g := newFixture(t, nil)
		var e adminapi.ErrorBody
		body := `{"token_endpoint_auth_method":"federated_jwt",` + aud + `,"federated_identity":{"issuer":"cluster","subject":"s"}}`
		if code := g.call(t, "POST", "/admin/clients", body, &e); code != 400 || !strings.Contains(e.ErrorDescription, "token_endpoint_auth_method") {
			t.Errorf("%d %+v, want 400 about token_endpoint_auth_method", code, e)
		}
	})

	t.Run("moving between secret and keys", func(t *testing.T) {
		var c adminapi.ClientInfo
		f.call(t, "POST", "/admin/clients", `{`+aud+`}`, &c)
		if c.ClientSecret == "" {
			t.Fatal("a client_secret_basic client got no secret")
		}
		var u adminapi.ClientInfo
		if code := f.call(t, "PUT", "/admin/clients/"+c.ClientID, pk(set(ec)), &u); code != 200 || u.ClientSecret != "" {
			t.Fatalf("to private_key_jwt: %d %+v", code, u)
		}
		if code := f.call(t, "PUT", "/admin/clients/"+c.ClientID, `{`+aud+`}`, &u); code != 200 || u.ClientSecret == "" {
			t.Fatalf("back to client_secret_basic: %d %+v, want a new secret", code, u)
		}
	})
}

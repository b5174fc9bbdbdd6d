package grant

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/issuer-oauth/issuer/internal/oauth"
	"github.com/issuer-oauth/issuer/internal/store"
)

// keyClient is a private_key_jwt client of the harness with its keys.
type keyClient struct {
	c  store.Client
	es *ecdsa.PrivateKey
	ed ed25519.PrivateKey
}

func newKeyClient(tb testing.TB, hs *harness, id string) keyClient {
	tb.Helper()
	// Fixed keys: a fuzz input signed in one worker process verifies in
	// every other one.
	d := sha256.Sum256([]byte("fuzz-client-es256-" + id))
	es, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d[:])
	if err != nil {
		tb.Fatal(err)
	}
	seed := sha256.Sum256([]byte("fuzz-client-ed25519-" + id))
	ed := ed25519.NewKeyFromSeed(seed[:])
	edPub := ed.Public().(ed25519.PublicKey)
	pub, _ := es.PublicKey.Bytes()
	enc := base64.RawURLEncoding.EncodeToString
	set := `{"keys":[{"kty":"EC","crv":"P-256","kid":"es","x":"` + enc(pub[1:33]) + `","y":"` + enc(pub[33:]) +
		`"},{"kty":"OKP","crv":"Ed25519","kid":"ed","x":"` + enc(edPub) + `"}]}`
	c := store.Client{ID: id, Name: id, GrantTypes: []string{oauth.GrantClientCredentials}, Audiences: []string{apiAudience},
		AuthMethod: oauth.AuthPrivateKeyJWT, JWKS: json.RawMessage(set), CreatedAt: testNow, UpdatedAt: testNow}
	if err := hs.st.CreateClient(context.Background(), c); err != nil {
		tb.Fatal(err)
	}
	return keyClient{c: c, es: es, ed: ed}
}

func (kc keyClient) sign(tb testing.TB, claims jwt.MapClaims, ed bool) string {
	tb.Helper()
	m, key, kid := jwt.SigningMethod(jwt.SigningMethodES256), any(kc.es), "es"
	if ed {
		m, key, kid = jwt.SigningMethodEdDSA, kc.ed, "ed"
	}
	tok := jwt.NewWithClaims(m, claims)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// FuzzClientAssertion fuzzes the private_key_jwt verification with
// untrusted assertions, seeded with good and subtly bad ones. An accepted
// assertion must be one the client signed with iss = sub = the client, the
// issuer as sole aud, a jti and a bounded lifetime; and it is accepted once.
func FuzzClientAssertion(f *testing.F) {
	hs := newHarness(f)
	kc := newKeyClient(f, hs, "svc-keys")
	good := func(mut func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"iss": kc.c.ID, "sub": kc.c.ID, "aud": testIssuer, "jti": "seed",
			"iat": testNow.Unix(), "exp": testNow.Add(time.Minute).Unix()}
		if mut != nil {
			mut(c)
		}
		return c
	}
	f.Add(kc.sign(f, good(nil), false))
	f.Add(kc.sign(f, good(func(c jwt.MapClaims) { c["jti"] = "seed-ed" }), true))
	f.Add(kc.sign(f, good(func(c jwt.MapClaims) { c["aud"] = []string{testIssuer, "x"} }), false))
	f.Add(kc.sign(f, good(func(c jwt.MapClaims) { delete(c, "exp") }), false))
	f.Add(kc.sign(f, good(func(c jwt.MapClaims) { c["exp"] = 1e300 }), false))
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("..")
	f.Fuzz(func(t *testing.T, assertion string) {
		c := kc.c
		err := hs.h.verifyClientAssertion(context.Background(), c, assertion)
		var af assertionFailure
		if err != nil {
			if !errors.As(err, &af) {
				t.Fatalf("a store failure from an assertion: %v", err)
			}
			return
		}
		var claims jwt.MapClaims
		if _, _, err := jwt.NewParser().ParseUnverified(assertion, &claims); err != nil {
			t.Fatalf("accepted an assertion that does not parse: %v", err)
		}
		aud, _ := claims.GetAudience()
		exp, _ := claims.GetExpirationTime()
		if claims["iss"] != c.ID || claims["sub"] != c.ID || len(aud) != 1 || aud[0] != testIssuer ||
			exp == nil || exp.Sub(testNow) > DefaultAssertionMaxLifetime+assertionLeeway {
			t.Fatalf("accepted %v", claims)
		}
		if err := hs.h.verifyClientAssertion(context.Background(), c, assertion); !errors.As(err, &af) {
			t.Fatalf("the same assertion accepted twice (err %v)", err)
		}
	})
}

// TestAssertionTyp lists the typ values a client assertion may carry.
func TestAssertionTyp(t *testing.T) {
	for _, tt := range []struct {
		typ any
		ok  bool
	}{
		{nil, true}, {"JWT", true}, {"jwt", true}, {"client-authentication+jwt", true},
		{"application/client-authentication+jwt", true},
		{"at+jwt", false}, {"dpop+jwt", false}, {"", false}, {1, false}, {"JWT ", false},
	} {
		h := map[string]any{"alg": "ES256"}
		if tt.typ != nil {
			h["typ"] = tt.typ
		}
		if got := checkTyp(h) == ""; got != tt.ok {
			t.Errorf("typ %#v: accepted %v, want %v", tt.typ, got, tt.ok)
		}
	}
}

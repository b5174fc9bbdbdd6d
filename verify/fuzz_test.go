package verify_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"math/big"
	"reflect"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/issuer-oauth/issuer/verify"
	"github.com/issuer-oauth/issuer/verify/verifytest"
)

// FuzzVerify feeds Verify arbitrary tokens, seeded with valid ones and the
// attacks' shapes. Nothing may panic, and a token that verifies must carry
// a signature the test key made over its first two segments, checked here
// with crypto/ecdsa directly. Each token is verified twice, the second
// time through the token cache when the first succeeded: both answers
// must agree.
func FuzzVerify(f *testing.F) {
	clk := newClock()
	iss := verifytest.NewIssuer(f, verifytest.WithClock(clk.Now))
	keys, err := verify.ParseJWKS(iss.JWKS())
	if err != nil {
		f.Fatal(err)
	}
	v, err := verify.New(iss.URL, audience, verify.WithKeys(keys...), verify.WithClock(clk.Now))
	if err != nil {
		f.Fatal(err)
	}
	pub := iss.PrivateKey().Public().(*ecdsa.PublicKey)
	kid := iss.KeyID()

	f.Add(iss.Token(f, audience, "read", "write"))
	f.Add(iss.Token(f, audience))
	f.Add(iss.Sign(f, map[string]any{"typ": "application/at+jwt"}, iss.Claims(audience, "read")))
	f.Add(iss.Sign(f, map[string]any{"typ": "rt+jwt"}, iss.Claims(audience, "read")))
	f.Add(iss.Sign(f, map[string]any{"jku": "https://evil.example.com"}, iss.Claims(audience)))
	f.Add(iss.Sign(f, map[string]any{"crit": []string{"x"}}, iss.Claims(audience)))
	f.Add(iss.Sign(f, nil, with(iss.Claims(audience), "aud", audience, "nbf", clk.Now().Unix())))
	f.Add(iss.SignBytes(f, []byte(`{"alg":"ES256","kid":"`+kid+`","typ":"at+jwt"}`),
		[]byte(`{"iss":"`+iss.URL+`","aud":"x","aud":"`+audience+`"}`)))
	none := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims(iss.Claims(audience)))
	none.Header["kid"], none.Header["typ"] = kid, "at+jwt"
	s, _ := none.SignedString(jwt.UnsafeAllowNoneSignatureType)
	f.Add(s)
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims(iss.Claims(audience)))
	hs.Header["kid"], hs.Header["typ"] = kid, "at+jwt"
	s, _ = hs.SignedString(iss.JWKS())
	f.Add(s)
	f.Add("")
	f.Add("..")
	f.Add("e30.e30.")

	f.Fuzz(func(t *testing.T, tok string) {
		c, err := v.Verify(context.Background(), tok)
		again, errAgain := v.Verify(context.Background(), tok)
		if (err == nil) != (errAgain == nil) || !reflect.DeepEqual(c, again) {
			t.Fatalf("second Verify = %+v, %v; the first was %+v, %v", again, errAgain, c, err)
		}
		if err != nil {
			if c != nil {
				t.Fatalf("claims with error %v", err)
			}
			return
		}
		dot := strings.LastIndexByte(tok, '.')
		sig, derr := b64.DecodeString(tok[dot+1:])
		if derr != nil || len(sig) != 64 {
			t.Fatalf("verified token %q has no ES256 signature", tok)
		}
		sum := sha256.Sum256([]byte(tok[:dot]))
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		if !ecdsa.Verify(pub, sum[:], r, s) {
			t.Fatalf("verified token %q not signed by the test key", tok)
		}
		if c.Issuer != iss.URL || c.ClientID == "" || c.Expiry.IsZero() {
			t.Fatalf("verified token %q has claims %+v", tok, c)
		}
	})
}

// FuzzParseJWKS checks that no JWK Set makes ParseJWKS panic or return a
// key without an algorithm that fits it.
func FuzzParseJWKS(f *testing.F) {
	f.Add(verifytest.NewIssuer(f).JWKS())
	f.Add(verifytest.NewIssuer(f, verifytest.WithAlg("EdDSA")).JWKS())
	f.Add([]byte(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"},{"kty":"oct","k":"AA"}]}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		keys, err := verify.ParseJWKS(doc)
		if err != nil {
			return
		}
		for _, k := range keys {
			if _, err := verify.NewKey(k.ID(), k.Alg(), k.Public()); err != nil {
				t.Fatalf("ParseJWKS returned key %q that NewKey refuses: %v", k.ID(), err)
			}
		}
	})
}

package verify_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/issuer-oauth/issuer/verify"
	"github.com/issuer-oauth/issuer/verify/verifytest"
)

var b64 = base64.RawURLEncoding

// forge signs header and claims with method and key (an attacker's key, or
// none), bypassing the test issuer.
func forge(t *testing.T, method jwt.SigningMethod, key any, header, claims map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, jwt.MapClaims(claims))
	for k, v := range header {
		if v == nil {
			delete(tok.Header, k)
		} else {
			tok.Header[k] = v
		}
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("forge: %v", err)
	}
	return s
}

func with(m map[string]any, kv ...any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

// TestAttacks presents tokens crafted by an attacker (or broken by
// accident) and checks that each is refused with the right sentinel error,
// by a Verifier with zero leeway on the same clock as the issuer.
func TestAttacks(t *testing.T) {
	clk := newClock()
	iss, v := setup(t, clk, verify.WithLeeway(0))
	rsaIss := verifytest.NewIssuer(t, verifytest.WithAlg("RS256"), verifytest.WithClock(clk.Now))
	vRSA, err := verify.New(rsaIss.URL, audience, verify.WithClock(clk.Now), verify.WithLeeway(0))
	if err != nil {
		t.Fatal(err)
	}
	other := verifytest.NewIssuer(t, verifytest.WithClock(clk.Now)) // another issuer

	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)

	// An attacker's key server: it must never be asked anything.
	var attackerHits atomic.Int64
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attackerHits.Add(1)
		raw, _ := ecKey.PublicKey.Bytes()
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{
			"kty": "EC", "crv": "P-256", "kid": "attacker", "alg": "ES256",
			"x": b64.EncodeToString(raw[1:33]), "y": b64.EncodeToString(raw[33:]),
		}}})
	}))
	t.Cleanup(attacker.Close)
	ecRaw, _ := ecKey.PublicKey.Bytes()
	attackerJWK := map[string]any{"kty": "EC", "crv": "P-256", "x": b64.EncodeToString(ecRaw[1:33]), "y": b64.EncodeToString(ecRaw[33:])}

	// The issuer's public key in the encodings an HS256 confusion attack
	// would try as the HMAC secret.
	pubDER, _ := x509.MarshalPKIXPublicKey(iss.PrivateKey().Public())
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	pubRaw, _ := iss.PrivateKey().Public().(*ecdsa.PublicKey).Bytes()

	kid := iss.KeyID()
	good := func() map[string]any { return iss.Claims(audience, "read") }
	hdr := func(kv ...any) map[string]any {
		return with(map[string]any{"kid": kid, "typ": "at+jwt"}, kv...)
	}
	signed := func(header, claims map[string]any) func(t *testing.T) string {
		return func(t *testing.T) string { return iss.Sign(t, header, claims) }
	}
	exp := clk.Now().Add(verifytest.TokenTTL)

	tests := []struct {
		name   string
		v      *verify.Verifier // v when nil
		token  func(t *testing.T) string
		want   error
		before func() // runs before Verify (moves the clock)
		after  func() // restores
	}{
		// Algorithm confusion.
		{name: "alg none without signature", want: verify.ErrAlgorithm, token: func(t *testing.T) string {
			return forge(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, hdr(), good())
		}},
		{name: "alg none with the issuer's signature kept", want: verify.ErrAlgorithm, token: func(t *testing.T) string {
			h, p, s := segments(t, iss.Token(t, audience, "read"))
			_ = h
			nh := b64.EncodeToString([]byte(`{"alg":"none","kid":"` + kid + `","typ":"at+jwt"}`))
			return nh + "." + p + "." + s
		}},
		{name: "alg NONE in capitals", want: verify.ErrAlgorithm, token: func(t *testing.T) string {
			nh := b64.EncodeToString([]byte(`{"alg":"NONE","kid":"` + kid + `","typ":"at+jwt"}`))
			_, p, _ := segments(t, iss.Token(t, audience, "read"))
			return nh + "." + p + "."
		}},
		{name: "alg missing", want: verify.ErrAlgorithm, token: func(t *testing.T) string {
			return iss.Sign(t, map[string]any{"alg": nil}, good())
		}},
		{name: "HS256 signed with the issuer's PEM public key as HMAC secret", want: verify.ErrAlgorithm, token: func(t *testing.T) string {
			return forge(t, jwt.SigningMethodHS256, pubPEM, hdr(), good())
		}},
		{name: "HS256 signed with the issuer's DER public key as HMAC secret", want: verify.ErrAlgorithm, token: func(t *testing.T) string {
			return forge(t, jwt.SigningMethodHS256, pubDER, hdr(), good())
		}},
		{name: "HS256 signed with the issuer's raw EC point as HMAC secret", want: verify.ErrAlgorithm, token: func(t *testing.T) string {
			return forge(t, jwt.SigningMethodHS256, pubRaw, hdr(), good())
		}},
		{name: "HS256 signed with the issuer's JWK Set as HMAC secret", want: verify.ErrAlgorithm, token: func(t *testing.T) string {
			return forge(t, jwt.SigningMethodHS256, iss.JWKS(), hdr(), good())
		}},
		{name: "RS256 token checked against the issuer's EC key", want: verify.ErrAlgorithm, token: func(t *testing.T) string {
			return forge(t, jwt.SigningMethodRS256, rsaKey, hdr(), good())
		}},
		{name: "ES256 token checked against the issuer's RSA key", v: vRSA, want: verify.ErrAlgorithm, token: func(t *testing.T) string {
			c := rsaIss.Claims(audience, "read")
			return forge(t, jwt.SigningMethodES256, ecKey, hdr("kid", rsaIss.KeyID()), c)
		}},
		{name: "PS256 token checked against the issuer's RS256 key", v: vRSA, want: verify.ErrAlgorithm, token: func(t *testing.T) string {
			return rsaIss.Sign(t, map[string]any{"alg": "PS256"}, rsaIss.Claims(audience, "read"))
		}},
		{name: "EdDSA token checked against the issuer's EC key", want: verify.ErrAlgorithm, token: func(t *testing.T) string {
			return forge(t, jwt.SigningMethodEdDSA, edKey, hdr(), good())
		}},
		{name: "ES384 header on an ES256 signature", want: verify.ErrAlgorithm, token: signed(map[string]any{"alg": "ES384"}, good())},

		// Key lookup.
		{name: "unknown kid", want: verify.ErrUnknownKey, token: func(t *testing.T) string {
			return forge(t, jwt.SigningMethodES256, ecKey, hdr("kid", "no-such-key"), good())
		}},
		{name: "kid missing", want: verify.ErrUnknownKey, token: signed(map[string]any{"kid": nil}, good())},
		{name: "kid with path traversal", want: verify.ErrUnknownKey, token: func(t *testing.T) string {
			return forge(t, jwt.SigningMethodES256, ecKey, hdr("kid", "../../../../../../dev/null"), good())
		}},
		{name: "kid with SQL injection", want: verify.ErrUnknownKey, token: func(t *testing.T) string {
			return forge(t, jwt.SigningMethodES256, ecKey, hdr("kid", "x' UNION SELECT 'secret' --"), good())
		}},
		{name: "kid with NUL and newline", want: verify.ErrUnknownKey, token: func(t *testing.T) string {
			return forge(t, jwt.SigningMethodES256, ecKey, hdr("kid", kid+"\x00\n"), good())
		}},
		{name: "kid of 1000 bytes", want: verify.ErrUnknownKey, token: func(t *testing.T) string {
			return forge(t, jwt.SigningMethodES256, ecKey, hdr("kid", strings.Repeat("k", 1000)), good())
		}},
		{name: "kid not a string", want: verify.ErrMalformed, token: signed(map[string]any{"kid": 1}, good())},

		// Keys offered by the token itself (RFC 8725 §3.10).
		{name: "forged jku to the attacker's JWK Set", want: verify.ErrHeader, token: func(t *testing.T) string {
			return forge(t, jwt.SigningMethodES256, ecKey, hdr("kid", "attacker", "jku", attacker.URL), good())
		}},
		{name: "jku on a token the issuer signed", want: verify.ErrHeader, token: signed(map[string]any{"jku": attacker.URL}, good())},
		{name: "forged x5u to the attacker's certificate", want: verify.ErrHeader, token: func(t *testing.T) string {
			return forge(t, jwt.SigningMethodES256, ecKey, hdr("x5u", attacker.URL+"/cert.pem"), good())
		}},
		{name: "forged embedded jwk", want: verify.ErrHeader, token: func(t *testing.T) string {
			return forge(t, jwt.SigningMethodES256, ecKey, hdr("kid", nil, "jwk", attackerJWK), good())
		}},
		{name: "forged embedded jwk with the issuer's kid", want: verify.ErrHeader, token: func(t *testing.T) string {
			return forge(t, jwt.SigningMethodES256, ecKey, hdr("jwk", attackerJWK), good())
		}},
		{name: "forged x5c chain", want: verify.ErrHeader, token: func(t *testing.T) string {
			return forge(t, jwt.SigningMethodES256, ecKey, hdr("x5c", []string{b64.EncodeToString(pubDER)}), good())
		}},
		{name: "unknown crit extension", want: verify.ErrHeader, token: signed(map[string]any{"crit": []string{"exp"}, "exp": 1}, good())},
		{name: "crit b64 unencoded payload", want: verify.ErrHeader, token: signed(map[string]any{"crit": []string{"b64"}, "b64": false}, good())},

		// Token type.
		{name: "refresh token presented as access token", want: verify.ErrType, token: func(t *testing.T) string {
			c := with(good(), "aud", []string{iss.URL}, "fid", "family")
			return forge(t, jwt.SigningMethodHS256, []byte("the issuer's refresh secret 0123"), map[string]any{"typ": "rt+jwt"}, c)
		}},
		{name: "refresh token relabelled at+jwt", want: verify.ErrAlgorithm, token: func(t *testing.T) string {
			c := with(good(), "aud", []string{iss.URL}, "fid", "family")
			return forge(t, jwt.SigningMethodHS256, []byte("the issuer's refresh secret 0123"), map[string]any{"typ": "at+jwt"}, c)
		}},
		{name: "ID token (typ JWT) signed by the issuer", want: verify.ErrType, token: signed(map[string]any{"typ": "JWT"}, good())},
		{name: "missing typ", want: verify.ErrType, token: signed(map[string]any{"typ": nil}, good())},
		{name: "typ not a string", want: verify.ErrType, token: signed(map[string]any{"typ": []string{"at+jwt"}}, good())},

		// Issuer and audience.
		{name: "token from another issuer re-using the kid", want: verify.ErrIssuer, token: func(t *testing.T) string {
			return other.Sign(t, map[string]any{"kid": kid}, other.Claims(audience, "read"))
		}},
		{name: "another issuer's key signing our iss under our kid", want: verify.ErrSignature, token: func(t *testing.T) string {
			return other.Sign(t, map[string]any{"kid": kid}, good())
		}},
		{name: "issuer with a trailing slash", want: verify.ErrIssuer, token: signed(nil, with(good(), "iss", iss.URL+"/"))},
		{name: "wrong audience", want: verify.ErrAudience, token: signed(nil, with(good(), "aud", "https://other.example.com"))},
		{name: "audience with a suffix", want: verify.ErrAudience, token: signed(nil, with(good(), "aud", audience+".evil.com"))},
		{name: "audience empty list", want: verify.ErrMissingClaim, token: signed(nil, with(good(), "aud", []string{}))},
		{name: "audience of the issuer itself", want: verify.ErrAudience, token: signed(nil, with(good(), "aud", iss.URL))},

		// Time.
		{name: "expired", want: verify.ErrExpired, token: signed(nil, with(good(), "exp", clk.Now().Add(-time.Minute).Unix()))},
		{name: "not yet valid (nbf)", want: verify.ErrNotYetValid, token: signed(nil, with(good(), "nbf", clk.Now().Add(time.Minute).Unix()))},
		{name: "issued in the future (iat)", want: verify.ErrNotYetValid, token: signed(nil, with(good(), "iat", clk.Now().Add(time.Minute).Unix()))},
		{name: "one second past expiry with zero leeway", want: verify.ErrExpired, token: signed(nil, good()),
			before: func() { clk.Advance(verifytest.TokenTTL + time.Second) },
			after:  func() { clk.Advance(-verifytest.TokenTTL - time.Second) }},
		{name: "at the second of expiry with zero leeway", want: verify.ErrExpired, token: signed(nil, good()),
			before: func() { clk.Advance(verifytest.TokenTTL) },
			after:  func() { clk.Advance(-verifytest.TokenTTL) }},
		{name: "exp far in the future as a float", want: nil, token: signed(nil, with(good(), "exp", float64(exp.Unix())+0.5))},

		// Required claims.
		{name: "missing exp", want: verify.ErrMissingClaim, token: signed(nil, with(good(), "exp", nil))},
		{name: "exp null", want: verify.ErrMissingClaim, token: signed(nil, with(good(), "exp", json.RawMessage("null")))},
		{name: "missing iss", want: verify.ErrMissingClaim, token: signed(nil, with(good(), "iss", nil))},
		{name: "missing sub", want: verify.ErrMissingClaim, token: signed(nil, with(good(), "sub", nil))},
		{name: "missing aud", want: verify.ErrMissingClaim, token: signed(nil, with(good(), "aud", nil))},
		{name: "missing iat", want: verify.ErrMissingClaim, token: signed(nil, with(good(), "iat", nil))},
		{name: "missing jti", want: verify.ErrMissingClaim, token: signed(nil, with(good(), "jti", nil))},
		{name: "missing client_id", want: verify.ErrMissingClaim, token: signed(nil, with(good(), "client_id", nil))},
		{name: "exp as a string", want: verify.ErrMalformed, token: signed(nil, with(good(), "exp", "9999999999"))},
		{name: "scope as an array", want: verify.ErrMalformed, token: signed(nil, with(good(), "scope", []string{"read", "admin"}))},
		{name: "iss as a number", want: verify.ErrMalformed, token: signed(nil, with(good(), "iss", 1))},
		{name: "aud as a number", want: verify.ErrMalformed, token: signed(nil, with(good(), "aud", 1))},
		{name: "aud array holding a number", want: verify.ErrMalformed, token: signed(nil, with(good(), "aud", []any{audience, 1}))},
		{name: "exp out of range", want: verify.ErrMalformed, token: signed(nil, with(good(), "exp", 1e300))},

		// Signature.
		{name: "signature stripped", want: verify.ErrSignature, token: func(t *testing.T) string {
			h, p, _ := segments(t, iss.Token(t, audience, "read"))
			return h + "." + p + "."
		}},
		{name: "signature segment removed", want: verify.ErrMalformed, token: func(t *testing.T) string {
			h, p, _ := segments(t, iss.Token(t, audience, "read"))
			return h + "." + p
		}},
		{name: "signature truncated", want: verify.ErrSignature, token: func(t *testing.T) string {
			h, p, s := segments(t, iss.Token(t, audience, "read"))
			sig, _ := b64.DecodeString(s)
			return h + "." + p + "." + b64.EncodeToString(sig[:len(sig)-3])
		}},
		{name: "signature truncated to invalid base64", want: verify.ErrMalformed, token: func(t *testing.T) string {
			tok := iss.Token(t, audience, "read")
			return tok[:len(tok)-1]
		}},
		{name: "signature bit flipped", want: verify.ErrSignature, token: func(t *testing.T) string {
			h, p, s := segments(t, iss.Token(t, audience, "read"))
			sig, _ := b64.DecodeString(s)
			sig[10] ^= 1
			return h + "." + p + "." + b64.EncodeToString(sig)
		}},
		{name: "signature of another token", want: verify.ErrSignature, token: func(t *testing.T) string {
			h, p, _ := segments(t, iss.Token(t, audience, "read"))
			_, _, s := segments(t, iss.Token(t, audience, "write"))
			return h + "." + p + "." + s
		}},
		{name: "payload swapped under a valid signature", want: verify.ErrSignature, token: func(t *testing.T) string {
			h, _, s := segments(t, iss.Token(t, audience, "read"))
			_, p, _ := segments(t, iss.Token(t, audience, "read write admin"))
			return h + "." + p + "." + s
		}},
		{name: "payload edited to add a scope", want: verify.ErrSignature, token: func(t *testing.T) string {
			h, _, s := segments(t, iss.Token(t, audience, "read"))
			c, _ := json.Marshal(with(good(), "scope", "read admin"))
			return h + "." + b64.EncodeToString(c) + "." + s
		}},
		{name: "ECDSA signature (r, n-s) malleated", want: verify.ErrSignature, token: func(t *testing.T) string {
			h, p, s := segments(t, iss.Token(t, audience, "read"))
			sig, _ := b64.DecodeString(s)
			for i := range sig[32:] {
				sig[32+i] = 0
			}
			return h + "." + p + "." + b64.EncodeToString(sig)
		}},

		// Encoding and JSON.
		{name: "duplicate aud claim", want: verify.ErrMalformed, token: func(t *testing.T) string {
			c, _ := json.Marshal(good())
			c = []byte(strings.Replace(string(c), `{`, `{"aud":"https://evil.example.com",`, 1))
			return iss.SignBytes(t, []byte(`{"alg":"ES256","kid":"`+kid+`","typ":"at+jwt"}`), c)
		}},
		{name: "duplicate scope claim differing in case", want: verify.ErrMalformed, token: func(t *testing.T) string {
			c, _ := json.Marshal(good())
			c = []byte(strings.Replace(string(c), `}`, `,"SCOPE":"admin"}`, 1))
			return iss.SignBytes(t, []byte(`{"alg":"ES256","kid":"`+kid+`","typ":"at+jwt"}`), c)
		}},
		{name: "duplicate scope claim with an escaped name", want: verify.ErrMalformed, token: func(t *testing.T) string {
			c, _ := json.Marshal(good())
			c = []byte(strings.Replace(string(c), `}`, `,"sc\u006fpe":"admin"}`, 1))
			return iss.SignBytes(t, []byte(`{"alg":"ES256","kid":"`+kid+`","typ":"at+jwt"}`), c)
		}},
		{name: "duplicate typ header", want: verify.ErrMalformed, token: func(t *testing.T) string {
			c, _ := json.Marshal(good())
			return iss.SignBytes(t, []byte(`{"alg":"ES256","kid":"`+kid+`","typ":"JWT","typ":"at+jwt"}`), c)
		}},
		{name: "duplicate alg header", want: verify.ErrMalformed, token: func(t *testing.T) string {
			c, _ := json.Marshal(good())
			return iss.SignBytes(t, []byte(`{"alg":"none","kid":"`+kid+`","typ":"at+jwt","alg":"ES256"}`), c)
		}},
		{name: "claims set not an object", want: verify.ErrMalformed, token: func(t *testing.T) string {
			return iss.SignBytes(t, []byte(`{"alg":"ES256","kid":"`+kid+`","typ":"at+jwt"}`), []byte(`null`))
		}},
		{name: "claims set not JSON", want: verify.ErrMalformed, token: func(t *testing.T) string {
			return iss.SignBytes(t, []byte(`{"alg":"ES256","kid":"`+kid+`","typ":"at+jwt"}`), []byte(`{"iss":`))
		}},
		{name: "padded base64", want: verify.ErrMalformed, token: func(t *testing.T) string {
			h, p, s := segments(t, iss.Token(t, audience, "read"))
			return h + "==." + p + "." + s
		}},
		{name: "JWE with five segments", want: verify.ErrMalformed, token: func(t *testing.T) string {
			return iss.Token(t, audience, "read") + ".e30.e30"
		}},
		{name: "oversized token", want: verify.ErrTooLarge, token: signed(nil, with(good(), "pad", strings.Repeat("A", 9<<10)))},
		{name: "empty token", want: verify.ErrMalformed, token: func(*testing.T) string { return "" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := tc.token(t)
			if tc.before != nil {
				tc.before()
			}
			if tc.after != nil {
				defer tc.after()
			}
			vv := v
			if tc.v != nil {
				vv = tc.v
			}
			c, err := vv.Verify(context.Background(), tok)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v, want success", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify error = %v, want %v", err, tc.want)
			}
			if c != nil {
				t.Errorf("Verify returned claims with an error")
			}
		})
	}
	if n := attackerHits.Load(); n != 0 {
		t.Errorf("the attacker's key server got %d requests, want 0", n)
	}
}

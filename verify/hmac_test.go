package verify_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/issuer-oauth/issuer/verify"
	"github.com/issuer-oauth/issuer/verify/verifytest"
)

var hmacSecret = bytes.Repeat([]byte("0123456789abcdef"), 2) // 32 bytes

// TestHMACKey verifies HS256 tokens with a shared secret given by WithKeys.
func TestHMACKey(t *testing.T) {
	clk := newClock()
	iss := verifytest.NewIssuer(t, verifytest.WithClock(clk.Now)) // for its claims
	key, err := verify.NewHMACKey("hs", hmacSecret)
	if err != nil {
		t.Fatal(err)
	}
	if key.Alg() != "HS256" || key.ID() != "hs" || key.Public() != nil {
		t.Errorf("key = %s %s %v, want hs HS256 without a public key", key.ID(), key.Alg(), key.Public())
	}
	v, err := verify.New(iss.URL, audience, verify.WithKeys(key), verify.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	hdr := map[string]any{"kid": "hs", "typ": "at+jwt"}
	good := forge(t, jwt.SigningMethodHS256, hmacSecret, hdr, iss.Claims(audience, "read"))
	c, err := v.Verify(context.Background(), good)
	if err != nil {
		t.Fatalf("Verify(HS256 token) = %v", err)
	}
	if !c.HasScope("read") {
		t.Errorf("scopes = %v", c.Scopes)
	}

	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"wrong secret", forge(t, jwt.SigningMethodHS256, bytes.Repeat([]byte("x"), 32), hdr, iss.Claims(audience, "read")), verify.ErrSignature},
		{"HS384 with the secret", forge(t, jwt.SigningMethodHS384, hmacSecret, hdr, iss.Claims(audience, "read")), verify.ErrAlgorithm},
		{"HS512 with the secret", forge(t, jwt.SigningMethodHS512, hmacSecret, hdr, iss.Claims(audience, "read")), verify.ErrAlgorithm},
		{"unknown kid", forge(t, jwt.SigningMethodHS256, hmacSecret, map[string]any{"kid": "other", "typ": "at+jwt"}, iss.Claims(audience, "read")), verify.ErrUnknownKey},
		{"ES256 token under the HMAC kid", iss.Sign(t, map[string]any{"kid": "hs"}, iss.Claims(audience, "read")), verify.ErrAlgorithm},
		{"refresh token type", forge(t, jwt.SigningMethodHS256, hmacSecret, map[string]any{"kid": "hs", "typ": "rt+jwt"}, iss.Claims(audience, "read")), verify.ErrType},
		{"wrong audience", forge(t, jwt.SigningMethodHS256, hmacSecret, hdr, iss.Claims("https://other.example.com", "read")), verify.ErrAudience},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := v.Verify(context.Background(), tc.token); !errors.Is(err, tc.want) {
				t.Errorf("Verify = %v, want %v", err, tc.want)
			}
		})
	}

	for _, n := range []int{0, 16, 31} {
		if _, err := verify.NewHMACKey("k", make([]byte, n)); err == nil {
			t.Errorf("NewHMACKey with a %d-byte secret succeeded", n)
		}
	}
}

// TestHMACAttacks: no public key is ever used as an HMAC secret, and no key
// set fetched over the network can supply HMAC material.
func TestHMACAttacks(t *testing.T) {
	clk := newClock()
	iss := verifytest.NewIssuer(t, verifytest.WithClock(clk.Now))
	ctx := context.Background()

	// A resource API that verifies both an issuer's ES256 key and an HS256
	// secret, all given with WithKeys.
	remote, err := verify.ParseJWKS(iss.JWKS())
	if err != nil {
		t.Fatal(err)
	}
	hk, _ := verify.NewHMACKey("hs", hmacSecret)
	v, err := verify.New(iss.URL, audience, verify.WithKeys(append(remote, hk)...), verify.WithClock(clk.Now), verify.WithLeeway(0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(ctx, iss.Token(t, audience, "read")); err != nil {
		t.Fatalf("Verify(ES256 token) = %v", err)
	}

	pub := iss.PrivateKey().Public()
	der, _ := x509.MarshalPKIXPublicKey(pub)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	point, _ := pub.(*ecdsa.PublicKey).Bytes()
	claims := iss.Claims(audience, "read", "admin")
	esKid := iss.KeyID()
	for name, secret := range map[string][]byte{
		"PEM public key": pubPEM, "DER public key": der, "raw EC point": point, "JWK Set": iss.JWKS(),
	} {
		t.Run("HS256 keyed with the "+name+" under the ES256 kid", func(t *testing.T) {
			tok := forge(t, jwt.SigningMethodHS256, secret, map[string]any{"kid": esKid, "typ": "at+jwt"}, claims)
			if _, err := v.Verify(ctx, tok); !errors.Is(err, verify.ErrAlgorithm) {
				t.Errorf("Verify = %v, want ErrAlgorithm", err)
			}
		})
		t.Run("HS256 keyed with the "+name+" under the HMAC kid", func(t *testing.T) {
			tok := forge(t, jwt.SigningMethodHS256, secret, map[string]any{"kid": "hs", "typ": "at+jwt"}, claims)
			if _, err := v.Verify(ctx, tok); !errors.Is(err, verify.ErrSignature) {
				t.Errorf("Verify = %v, want ErrSignature", err)
			}
		})
	}

	t.Run("HMAC key with WithJWKSURL is refused", func(t *testing.T) {
		_, err := verify.New(iss.URL, audience, verify.WithKeys(hk), verify.WithJWKSURL(iss.URL+"/jwks"))
		if !errors.Is(err, verify.ErrOptionConflict) || !strings.Contains(err.Error(), "WithJWKSURL") {
			t.Errorf("New(WithKeys(hmac), WithJWKSURL) = %v, want ErrOptionConflict naming WithJWKSURL", err)
		}
	})

	// A JWK Set (an attacker's, or an issuer's by mistake) that offers an
	// oct key: the key is skipped, and tokens signed with its secret fail.
	oct := map[string]any{"kty": "oct", "kid": "oct-key", "alg": "HS256", "use": "sig", "k": b64.EncodeToString(hmacSecret)}
	var withOct map[string][]any
	if err := json.Unmarshal(iss.JWKS(), &withOct); err != nil {
		t.Fatal(err)
	}
	withOct["keys"] = append(withOct["keys"], oct)
	octSet, _ := json.Marshal(withOct)
	onlyOct, _ := json.Marshal(map[string]any{"keys": []any{oct}})
	serve := func(body []byte) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(body)
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	t.Run("oct key in a fetched JWK Set is ignored", func(t *testing.T) {
		fetched, err := verify.New(iss.URL, audience, verify.WithJWKSURL(serve(octSet)), verify.WithClock(clk.Now))
		if err != nil {
			t.Fatal(err)
		}
		tok := forge(t, jwt.SigningMethodHS256, hmacSecret, map[string]any{"kid": "oct-key", "typ": "at+jwt"}, claims)
		if _, err := fetched.Verify(ctx, tok); !errors.Is(err, verify.ErrAlgorithm) {
			t.Errorf("Verify(token signed with the oct key) = %v, want ErrAlgorithm", err)
		}
		if _, err := fetched.Verify(ctx, iss.Token(t, audience, "read")); err != nil {
			t.Errorf("Verify(ES256 token) = %v", err)
		}
	})
	t.Run("JWK Set of only oct keys is unusable", func(t *testing.T) {
		only, err := verify.New(iss.URL, audience, verify.WithJWKSURL(serve(onlyOct)), verify.WithClock(clk.Now))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := only.Verify(ctx, iss.Token(t, audience, "read")); !errors.Is(err, verify.ErrUnknownKey) || !strings.Contains(err.Error(), "no usable verification key") {
			t.Errorf("Verify = %v, want ErrUnknownKey (no usable key)", err)
		}
	})
	t.Run("HMAC key from a custom KeySet is refused", func(t *testing.T) {
		custom, err := verify.New(iss.URL, audience, verify.WithKeySet(keySetFunc(func(string) *verify.Key { return hk })), verify.WithClock(clk.Now))
		if err != nil {
			t.Fatal(err)
		}
		tok := forge(t, jwt.SigningMethodHS256, hmacSecret, map[string]any{"kid": "hs", "typ": "at+jwt"}, claims)
		if _, err := custom.Verify(ctx, tok); !errors.Is(err, verify.ErrAlgorithm) {
			t.Errorf("Verify = %v, want ErrAlgorithm", err)
		}
	})
}

// keySetFunc is a KeySet that returns what its function returns.
type keySetFunc func(kid string) *verify.Key

func (f keySetFunc) Key(_ context.Context, kid string) (*verify.Key, error) { return f(kid), nil }

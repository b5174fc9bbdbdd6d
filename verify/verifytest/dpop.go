package verifytest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"
)

// DPoPKey is a client's DPoP key pair (RFC 9449): it makes the proofs
// that go with DPoP-bound access tokens, valid ones (Proof) and, for
// tests of refusals, any other (Sign).
//
//	key := verifytest.NewDPoPKey(t, "ES256")
//	tok := iss.DPoPToken(t, key.Thumbprint(), "https://api.example.com", "read")
//	req.Header.Set("Authorization", "DPoP "+tok)
//	req.Header.Set("DPoP", key.Proof(t, "GET", "https://api.example.com/v1/items", tok, ""))
type DPoPKey struct {
	// Now is the clock of the proofs' iat; time.Now when nil.
	Now func() time.Time

	k   *signingKey
	jwk map[string]string
	jkt string
}

// NewDPoPKey returns a new DPoP key of alg: ES256, EdDSA, RS256 or PS256.
func NewDPoPKey(tb testing.TB, alg string) *DPoPKey {
	tb.Helper()
	k, err := newKey(alg)
	if err != nil {
		tb.Fatalf("verifytest: %v", err)
	}
	j := publicJWK(k)
	return &DPoPKey{k: k, jwk: j, jkt: thumbprint(j)}
}

// Thumbprint returns the RFC 7638 SHA-256 thumbprint of the public key:
// the cnf.jkt of the tokens bound to it.
func (k *DPoPKey) Thumbprint() string { return k.jkt }

// JWK returns the members of the public key's JWK.
func (k *DPoPKey) JWK() map[string]string {
	out := make(map[string]string, len(k.jwk))
	for n, v := range k.jwk {
		out[n] = v
	}
	return out
}

func (k *DPoPKey) now() time.Time {
	if k.Now != nil {
		return k.Now()
	}
	return time.Now()
}

// Claims returns the claims of a valid proof for a request of method to
// url: a random jti, htm, htu and iat; with accessToken, its hash as ath;
// with nonce, the nonce. Tests change them and pass them to Sign.
func (k *DPoPKey) Claims(method, url, accessToken, nonce string) map[string]any {
	var id [16]byte
	_, _ = rand.Read(id[:])
	c := map[string]any{
		"jti": base64.RawURLEncoding.EncodeToString(id[:]),
		"htm": method,
		"htu": url,
		"iat": k.now().Unix(),
	}
	if accessToken != "" {
		sum := sha256.Sum256([]byte(accessToken))
		c["ath"] = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	if nonce != "" {
		c["nonce"] = nonce
	}
	return c
}

// Proof returns a valid proof for a request of method to url, with the
// access token presented (or "" at the token endpoint) and the server's
// nonce (or "").
func (k *DPoPKey) Proof(tb testing.TB, method, url, accessToken, nonce string) string {
	tb.Helper()
	return k.Sign(tb, nil, k.Claims(method, url, accessToken, nonce))
}

// Sign signs claims with the key. The header is typ "dpop+jwt", alg and
// the public jwk, then header's members: a member set to nil is removed,
// others replace or add (an alg given here is written as is, but the
// signature stays the key's).
func (k *DPoPKey) Sign(tb testing.TB, header, claims map[string]any) string {
	tb.Helper()
	h := map[string]any{"typ": "dpop+jwt", "alg": k.k.method.Alg(), "jwk": k.jwk}
	for name, v := range header {
		if v == nil {
			delete(h, name)
		} else {
			h[name] = v
		}
	}
	hb, err := json.Marshal(h)
	if err != nil {
		tb.Fatalf("verifytest: header: %v", err)
	}
	cb, err := json.Marshal(claims)
	if err != nil {
		tb.Fatalf("verifytest: claims: %v", err)
	}
	return k.SignBytes(tb, hb, cb)
}

// Header returns the JSON header of a valid proof of the key.
func (k *DPoPKey) Header() []byte {
	b, _ := json.Marshal(map[string]any{"typ": "dpop+jwt", "alg": k.k.method.Alg(), "jwk": k.jwk})
	return b
}

// SignBytes signs the JSON header and claims, byte for byte, with the key
// (for proofs no encoder would write).
func (k *DPoPKey) SignBytes(tb testing.TB, hb, cb []byte) string {
	tb.Helper()
	b64 := base64.RawURLEncoding
	s := b64.EncodeToString(hb) + "." + b64.EncodeToString(cb)
	sig, err := k.k.method.Sign(s, k.k.priv)
	if err != nil {
		tb.Fatalf("verifytest: sign: %v", err)
	}
	return s + "." + b64.EncodeToString(sig)
}

// DPoPToken mints a valid access token for audience with scopes, bound to
// the DPoP key whose thumbprint is jkt (cnf.jkt, RFC 9449 §6.1).
func (i *Issuer) DPoPToken(tb testing.TB, jkt, audience string, scopes ...string) string {
	tb.Helper()
	c := i.Claims(audience, scopes...)
	c["cnf"] = map[string]string{"jkt": jkt}
	return i.Sign(tb, nil, c)
}

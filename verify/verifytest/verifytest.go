// Package verifytest is a stand-in authorization server for tests of
// resource APIs: it serves RFC 8414 metadata and a JWK Set over httptest
// and mints RFC 9068 access tokens (and deliberately broken ones) with its
// keys, so that code using package verify can be tested without a running
// issuer.
//
//	iss := verifytest.NewIssuer(t)
//	v, err := verify.New(iss.URL, "https://api.example.com")
//	…
//	req.Header.Set("Authorization", "Bearer "+iss.Token(t, "https://api.example.com", "read"))
package verifytest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Paths the test server serves.
const (
	MetadataPath = "/.well-known/oauth-authorization-server"
	JWKSPath     = "/.well-known/jwks.json"
)

// TokenTTL is the lifetime of the tokens Token and Claims make.
const TokenTTL = 5 * time.Minute

// Issuer is a test authorization server. Its methods are safe for
// concurrent use.
type Issuer struct {
	// URL is the issuer identifier: the server's base URL, the iss of its
	// tokens and the issuer of its metadata.
	URL string

	srv    *httptest.Server
	alg    string
	now    func() time.Time
	maxAge time.Duration

	mu      sync.Mutex
	keys    []*signingKey // every published key; the last one signs
	jwks    []byte
	fetches atomic.Int64
	down    atomic.Bool
	seq     atomic.Int64
}

type signingKey struct {
	kid    string
	method jwt.SigningMethod
	priv   crypto.Signer
}

// Option configures NewIssuer.
type Option func(*Issuer)

// WithAlg sets the signing algorithm: ES256 (the default), EdDSA, RS256 or
// PS256.
func WithAlg(alg string) Option { return func(i *Issuer) { i.alg = alg } }

// WithClock sets the clock of iat and exp (time.Now when not set).
func WithClock(now func() time.Time) Option { return func(i *Issuer) { i.now = now } }

// WithMaxAge sets the Cache-Control max-age of the JWK Set (5 minutes when
// not set).
func WithMaxAge(d time.Duration) Option { return func(i *Issuer) { i.maxAge = d } }

// NewIssuer starts a test issuer with one signing key; it stops when the
// test ends.
func NewIssuer(tb testing.TB, opts ...Option) *Issuer {
	tb.Helper()
	i := &Issuer{alg: "ES256", now: time.Now, maxAge: 5 * time.Minute}
	for _, o := range opts {
		o(i)
	}
	i.srv = httptest.NewServer(http.HandlerFunc(i.serve))
	i.URL = i.srv.URL
	tb.Cleanup(i.srv.Close)
	i.Rotate(tb)
	return i
}

// Close stops the server (tests call it to make the issuer unreachable).
func (i *Issuer) Close() { i.srv.Close() }

// SetDown makes every request fail with 503 while down is true.
func (i *Issuer) SetDown(down bool) { i.down.Store(down) }

// JWKSFetches returns how many times the JWK Set was requested.
func (i *Issuer) JWKSFetches() int { return int(i.fetches.Load()) }

// Rotate adds a new key of the issuer's algorithm, which signs from now on;
// older keys stay published. It returns the new kid.
func (i *Issuer) Rotate(tb testing.TB) string {
	tb.Helper()
	k, err := newKey(i.alg)
	if err != nil {
		tb.Fatalf("verifytest: %v", err)
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	i.keys = append(i.keys, k)
	i.renderJWKS()
	return k.kid
}

// Retire stops publishing every key but the current one.
func (i *Issuer) Retire() {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.keys = i.keys[len(i.keys)-1:]
	i.renderJWKS()
}

// KeyID returns the kid of the current signing key.
func (i *Issuer) KeyID() string { return i.current().kid }

// Alg returns the signing algorithm.
func (i *Issuer) Alg() string { return i.alg }

// PrivateKey returns the current signing key.
func (i *Issuer) PrivateKey() crypto.Signer { return i.current().priv }

// JWKS returns the JWK Set document the server publishes.
func (i *Issuer) JWKS() []byte {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.jwks
}

func (i *Issuer) current() *signingKey {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.keys[len(i.keys)-1]
}

// Claims returns the claims of a valid access token for audience with
// scopes, as the issuer would mint it; tests change them and pass them to
// Sign.
func (i *Issuer) Claims(audience string, scopes ...string) map[string]any {
	now := i.now().Truncate(time.Second)
	c := map[string]any{
		"iss":       i.URL,
		"sub":       "test-client",
		"client_id": "test-client",
		"aud":       []string{audience},
		"iat":       now.Unix(),
		"exp":       now.Add(TokenTTL).Unix(),
		"jti":       "jti-" + strconv.FormatInt(i.seq.Add(1), 10),
	}
	if len(scopes) > 0 {
		s := scopes[0]
		for _, x := range scopes[1:] {
			s += " " + x
		}
		c["scope"] = s
	}
	return c
}

// Token mints a valid access token for audience with scopes.
func (i *Issuer) Token(tb testing.TB, audience string, scopes ...string) string {
	tb.Helper()
	return i.Sign(tb, nil, i.Claims(audience, scopes...))
}

// Sign signs claims with the current key. The header is alg, kid and typ
// "at+jwt", then header's members: a member set to nil is removed, others
// replace or add (an alg given here is written as is, but the signature
// stays the key's).
func (i *Issuer) Sign(tb testing.TB, header, claims map[string]any) string {
	tb.Helper()
	k := i.current()
	h := map[string]any{"alg": k.method.Alg(), "kid": k.kid, "typ": "at+jwt"}
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
	return i.SignBytes(tb, hb, cb)
}

// SignBytes signs the JSON header and claims, byte for byte, with the
// current key (for tokens no encoder would write).
func (i *Issuer) SignBytes(tb testing.TB, header, claims []byte) string {
	tb.Helper()
	k := i.current()
	b64 := base64.RawURLEncoding
	s := b64.EncodeToString(header) + "." + b64.EncodeToString(claims)
	sig, err := k.method.Sign(s, k.priv)
	if err != nil {
		tb.Fatalf("verifytest: sign: %v", err)
	}
	return s + "." + b64.EncodeToString(sig)
}

func (i *Issuer) serve(w http.ResponseWriter, r *http.Request) {
	if i.down.Load() {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	switch r.URL.Path {
	case MetadataPath:
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer":                i.URL,
			"jwks_uri":              i.URL + JWKSPath,
			"grant_types_supported": []string{"client_credentials"},
		})
	case JWKSPath:
		i.fetches.Add(1)
		body := i.JWKS()
		sum := sha256.Sum256(body)
		etag := `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age="+strconv.Itoa(int(i.maxAge.Seconds())))
		w.Header().Set("ETag", etag)
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		_, _ = w.Write(body)
	default:
		http.NotFound(w, r)
	}
}

func newKey(alg string) (*signingKey, error) {
	var (
		priv crypto.Signer
		err  error
	)
	switch alg {
	case "ES256":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "EdDSA":
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case "RS256", "PS256":
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		return nil, fmt.Errorf("unsupported algorithm %q; use ES256, EdDSA, RS256 or PS256", alg)
	}
	if err != nil {
		return nil, err
	}
	k := &signingKey{method: jwt.GetSigningMethod(alg), priv: priv}
	j := publicJWK(k)
	k.kid = thumbprint(j)
	return k, nil
}

// renderJWKS renders the published keys; i.mu is held.
func (i *Issuer) renderJWKS() {
	set := struct {
		Keys []map[string]string `json:"keys"`
	}{}
	for _, k := range i.keys {
		j := publicJWK(k)
		j["kid"], j["use"], j["alg"] = k.kid, "sig", k.method.Alg()
		set.Keys = append(set.Keys, j)
	}
	i.jwks, _ = json.Marshal(set)
}

// publicJWK returns the members of k's public JWK that its RFC 7638
// thumbprint covers.
func publicJWK(k *signingKey) map[string]string {
	b64 := base64.RawURLEncoding
	switch pub := k.priv.Public().(type) {
	case *ecdsa.PublicKey:
		raw, _ := pub.Bytes()
		n := (len(raw) - 1) / 2
		return map[string]string{"kty": "EC", "crv": "P-256", "x": b64.EncodeToString(raw[1 : 1+n]), "y": b64.EncodeToString(raw[1+n:])}
	case ed25519.PublicKey:
		return map[string]string{"kty": "OKP", "crv": "Ed25519", "x": b64.EncodeToString(pub)}
	case *rsa.PublicKey:
		return map[string]string{"kty": "RSA", "n": b64.EncodeToString(pub.N.Bytes()), "e": b64.EncodeToString(big.NewInt(int64(pub.E)).Bytes())}
	}
	panic("verifytest: unsupported key")
}

// thumbprint is the RFC 7638 thumbprint of j (json.Marshal sorts map keys
// and adds no whitespace, as RFC 7638 requires).
func thumbprint(j map[string]string) string {
	b, _ := json.Marshal(j)
	sum := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

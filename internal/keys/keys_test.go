package keys

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"github.com/issuer-oauth/issuer/internal/store"
	"github.com/issuer-oauth/issuer/internal/testutil"
)

// memStore is a minimal in-memory Store for unit tests of this package; the
// real backends run their own conformance suite.
type memStore struct {
	mu   sync.Mutex
	keys []store.Key
}

var _ Store = (*memStore)(nil)

func (m *memStore) InitKeys(_ context.Context, k store.Key) ([]store.Key, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.keys) == 0 {
		m.keys = append(m.keys, cloneKey(k))
	}
	return m.sortedLocked(), nil
}

func (m *memStore) ListKeys(context.Context) ([]store.Key, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sortedLocked(), nil
}

func (m *memStore) AddKey(_ context.Context, k store.Key) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, have := range m.keys {
		if have.ID == k.ID {
			return store.ErrExists
		}
	}
	m.keys = append(m.keys, cloneKey(k))
	return nil
}

func (m *memStore) AddNextKey(_ context.Context, k store.Key, now time.Time) ([]store.Key, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, have := range m.keys {
		if have.ID == k.ID {
			return nil, store.ErrExists
		}
	}
	if !slices.ContainsFunc(m.keys, func(h store.Key) bool { return h.NotBefore.After(now) }) {
		m.keys = append(m.keys, cloneKey(k))
	}
	return m.sortedLocked(), nil
}

func (m *memStore) DeleteKey(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	i := slices.IndexFunc(m.keys, func(k store.Key) bool { return k.ID == id })
	if i < 0 {
		return store.ErrNotFound
	}
	m.keys = slices.Delete(m.keys, i, i+1)
	return nil
}

// sortedLocked returns copies ordered by NotBefore, then id, like the real stores.
func (m *memStore) sortedLocked() []store.Key {
	out := make([]store.Key, len(m.keys))
	for i, k := range m.keys {
		out[i] = cloneKey(k)
	}
	slices.SortFunc(out, func(a, b store.Key) int {
		if c := a.NotBefore.Compare(b.NotBefore); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

func cloneKey(k store.Key) store.Key {
	k.Private = slices.Clone(k.Private)
	return k
}

const testIssuer = "https://issuer.example"

var (
	t0            = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	testEncKey    = bytes.Repeat([]byte{0x11}, 32)
	testRefreshKy = bytes.Repeat([]byte{0x22}, 32)
)

func testConfig(alg string, c *testutil.Clock) Config {
	return Config{
		Issuer:        testIssuer,
		Alg:           alg,
		EncryptionKey: testEncKey,
		RefreshKey:    testRefreshKy,
		JWKSMaxAge:    time.Minute,
		Now:           c.Now,
	}
}

func mustNew(t testing.TB, st Store, cfg Config) *Keys {
	t.Helper()
	k, err := New(context.Background(), st, cfg)
	if err != nil {
		t.Fatalf("New(%s): %v", cfg.Alg, err)
	}
	return k
}

var algs = []struct {
	alg  string
	jose jose.SignatureAlgorithm
	kty  string
	// the public members whose raw value must not appear in the stored
	// private key blob
	pubMember string
}{
	{"ES256", jose.ES256, "EC", "x"},
	{"EdDSA", jose.EdDSA, "OKP", "x"},
	{"RS256", jose.RS256, "RSA", "n"},
	{"PS256", jose.PS256, "RSA", "n"},
}

func joseAlgOf(t testing.TB, alg string) jose.SignatureAlgorithm {
	t.Helper()
	for _, a := range algs {
		if a.alg == alg {
			return a.jose
		}
	}
	t.Fatalf("no jose algorithm for %q", alg)
	return ""
}

// decodeSegment decodes one base64url segment of a compact JWS into a map.
func decodeSegment(t testing.TB, token string, i int) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d segments, want 3", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Fatalf("decode segment %d: %v", i, err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("unmarshal segment %d: %v", i, err)
	}
	return m
}

// parseJWKS parses the JWKS body as a resource API would, and also as raw
// maps so that members go-jose would ignore can be inspected.
func parseJWKS(t testing.TB, body []byte) (jose.JSONWebKeySet, []map[string]any) {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		t.Fatalf("parse JWKS %s: %v", body, err)
	}
	var raw struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatalf("parse JWKS as maps: %v", err)
	}
	if len(raw.Keys) != len(set.Keys) {
		t.Fatalf("JWKS: go-jose kept %d keys of %d", len(set.Keys), len(raw.Keys))
	}
	return set, raw.Keys
}

// verifyWithJWKS verifies token using only the JWK Set document, with the
// algorithm pinned to alg, and returns the payload claims.
func verifyWithJWKS(t testing.TB, token string, jwks []byte, alg jose.SignatureAlgorithm) map[string]any {
	t.Helper()
	set, _ := parseJWKS(t, jwks)
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{alg})
	if err != nil {
		t.Fatalf("jose.ParseSignedCompact(alg %s): %v", alg, err)
	}
	kid := jws.Signatures[0].Header.KeyID
	found := set.Key(kid)
	if len(found) != 1 {
		t.Fatalf("JWKS has %d keys with kid %q, want 1", len(found), kid)
	}
	payload, err := jws.Verify(found[0])
	if err != nil {
		t.Fatalf("verify with JWKS key %q: %v", kid, err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatalf("unmarshal payload: %v", err)
	}
	return claims
}

func accessClaims(now time.Time) AccessClaims {
	return AccessClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   "client-1",
			Audience:  jwt.ClaimStrings{"https://api.example"},
			ExpiresAt: NumericDate(now.Add(5 * time.Minute)),
			IssuedAt:  NumericDate(now),
			ID:        "jti-1",
		},
		ClientID: "client-1",
		Scope:    "read write",
	}
}

func TestNewSignAccessVerifiesWithJWKS(t *testing.T) {
	for _, tc := range algs {
		t.Run(tc.alg, func(t *testing.T) {
			t.Parallel()
			c := testutil.NewClock(t0)
			st := &memStore{}
			k := mustNew(t, st, testConfig(tc.alg, c))

			if got, want := k.Alg(), tc.alg; got != want {
				t.Errorf("Alg() = %q, want %q", got, want)
			}
			infos := k.List()
			if got, want := len(infos), 1; got != want {
				t.Fatalf("len(List()) = %d, want %d", got, want)
			}
			info := infos[0]
			if info.Alg != tc.alg || info.State != "current" {
				t.Errorf("List()[0] = %+v, want alg %s, state current", info, tc.alg)
			}
			if got, want := len(st.keys), 1; got != want {
				t.Errorf("store holds %d keys, want %d", got, want)
			}

			tok, err := k.SignAccess(accessClaims(c.Now()))
			if err != nil {
				t.Fatalf("SignAccess: %v", err)
			}
			hdr := decodeSegment(t, tok, 0)
			for name, want := range map[string]string{"alg": tc.alg, "kid": info.ID, "typ": TypeAccess} {
				if got, _ := hdr[name].(string); got != want {
					t.Errorf("header %s = %v, want %q", name, hdr[name], want)
				}
			}

			body, etag, maxAge := k.JWKS()
			if etag == "" || !strings.HasPrefix(etag, `"`) || !strings.HasSuffix(etag, `"`) {
				t.Errorf("ETag = %q, want a quoted string", etag)
			}
			if got, want := maxAge, time.Minute; got != want {
				t.Errorf("max-age = %v, want %v", got, want)
			}
			set, raw := parseJWKS(t, body)
			if got, want := len(set.Keys), 1; got != want {
				t.Fatalf("JWKS has %d keys, want %d", got, want)
			}
			jwk := set.Keys[0]
			if !jwk.IsPublic() {
				t.Errorf("JWK is not public")
			}
			if jwk.KeyID != info.ID || jwk.Algorithm != tc.alg || jwk.Use != "sig" {
				t.Errorf("JWK kid/alg/use = %q/%q/%q, want %q/%q/sig", jwk.KeyID, jwk.Algorithm, jwk.Use, info.ID, tc.alg)
			}
			if got, _ := raw[0]["kty"].(string); got != tc.kty {
				t.Errorf("JWK kty = %q, want %q", got, tc.kty)
			}
			for _, m := range []string{"d", "p", "q", "dp", "dq", "qi", "k", "oth"} {
				if _, ok := raw[0][m]; ok {
					t.Errorf("JWK has private member %q", m)
				}
			}

			tp, err := jwk.Thumbprint(crypto.SHA256)
			if err != nil {
				t.Fatalf("Thumbprint: %v", err)
			}
			if got, want := info.ID, base64.RawURLEncoding.EncodeToString(tp); got != want {
				t.Errorf("kid = %q, want RFC 7638 thumbprint %q", got, want)
			}

			claims := verifyWithJWKS(t, tok, body, tc.jose)
			for name, want := range map[string]string{"iss": testIssuer, "sub": "client-1", "client_id": "client-1", "scope": "read write", "jti": "jti-1"} {
				if got, _ := claims[name].(string); got != want {
					t.Errorf("claim %s = %v, want %q", name, claims[name], want)
				}
			}
			if got, want := claims["exp"], float64(t0.Add(5*time.Minute).Unix()); got != want {
				t.Errorf("claim exp = %v, want %v", got, want)
			}

			// Pinned to another algorithm, the token must not parse.
			for _, other := range algs {
				if other.alg == tc.alg {
					continue
				}
				if _, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{other.jose}); err == nil {
					t.Errorf("token parsed with algorithm pinned to %s", other.alg)
				}
			}
		})
	}
}

func TestNewReusesStoredKey(t *testing.T) {
	for _, tc := range algs {
		t.Run(tc.alg, func(t *testing.T) {
			t.Parallel()
			c := testutil.NewClock(t0)
			st := &memStore{}
			k1 := mustNew(t, st, testConfig(tc.alg, c))
			c.Advance(time.Hour)
			k2 := mustNew(t, st, testConfig(tc.alg, c))

			if got, want := len(st.keys), 1; got != want {
				t.Fatalf("store holds %d keys after second New, want %d", got, want)
			}
			if got, want := k2.List()[0].ID, k1.List()[0].ID; got != want {
				t.Errorf("second New kid = %q, want %q", got, want)
			}
			body1, etag1, _ := k1.JWKS()
			body2, etag2, _ := k2.JWKS()
			if !bytes.Equal(body1, body2) || etag1 != etag2 {
				t.Errorf("JWKS differs between instances on one store:\n%s %s\n%s %s", body1, etag1, body2, etag2)
			}
			// A token from one instance verifies with the other's JWKS.
			tok, err := k2.SignAccess(accessClaims(c.Now()))
			if err != nil {
				t.Fatalf("SignAccess: %v", err)
			}
			verifyWithJWKS(t, tok, body1, tc.jose)
		})
	}
}

func TestNewAlgChange(t *testing.T) {
	tests := []struct {
		name     string
		from, to string
		advance  time.Duration
	}{
		{"ES256 to EdDSA", "ES256", "EdDSA", time.Hour},
		{"EdDSA to ES256", "EdDSA", "ES256", time.Hour},
		{"ES256 to RS256", "ES256", "RS256", time.Hour},
		{"RS256 to PS256 (same key type)", "RS256", "PS256", time.Hour},
		// Both instances start within the same millisecond.
		{"ES256 to EdDSA at the same instant", "ES256", "EdDSA", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := testutil.NewClock(t0)
			st := &memStore{}
			old := mustNew(t, st, testConfig(tc.from, c))
			oldKid := old.List()[0].ID
			oldTok, err := old.SignAccess(accessClaims(c.Now()))
			if err != nil {
				t.Fatalf("SignAccess: %v", err)
			}

			c.Advance(tc.advance)
			k := mustNew(t, st, testConfig(tc.to, c))
			if got, want := k.Alg(), tc.to; got != want {
				t.Errorf("Alg() = %q, want %q", got, want)
			}
			infos := k.List()
			if got, want := len(infos), 2; got != want {
				t.Fatalf("len(List()) = %d, want %d: %+v", got, want, infos)
			}
			if infos[0].ID != oldKid || infos[0].State != "retired" || infos[0].Alg != tc.from {
				t.Errorf("List()[0] = %+v, want kid %s retired %s", infos[0], oldKid, tc.from)
			}
			if infos[1].ID == oldKid || infos[1].State != "current" || infos[1].Alg != tc.to {
				t.Errorf("List()[1] = %+v, want a new current %s key", infos[1], tc.to)
			}

			body, _, _ := k.JWKS()
			set, _ := parseJWKS(t, body)
			if got, want := len(set.Keys), 2; got != want {
				t.Fatalf("JWKS has %d keys, want %d", got, want)
			}
			for _, in := range infos {
				ks := set.Key(in.ID)
				if len(ks) != 1 || ks[0].Algorithm != in.Alg {
					t.Errorf("JWKS key %s = %+v, want one key with alg %s", in.ID, ks, in.Alg)
				}
			}

			tok, err := k.SignAccess(accessClaims(c.Now()))
			if err != nil {
				t.Fatalf("SignAccess: %v", err)
			}
			hdr := decodeSegment(t, tok, 0)
			if hdr["alg"] != tc.to || hdr["kid"] != infos[1].ID {
				t.Errorf("header alg/kid = %v/%v, want %s/%s", hdr["alg"], hdr["kid"], tc.to, infos[1].ID)
			}
			verifyWithJWKS(t, tok, body, joseAlgOf(t, tc.to))
			// Tokens of the old key still verify.
			verifyWithJWKS(t, oldTok, body, joseAlgOf(t, tc.from))
		})
	}
}

func TestNewRejectsAlg(t *testing.T) {
	for _, alg := range []string{"", "none", "es256", "hs256", "RS512", "ES384", "Ed25519"} {
		t.Run(alg, func(t *testing.T) {
			st := &memStore{}
			_, err := New(context.Background(), st, testConfig(alg, testutil.NewClock(t0)))
			if err == nil {
				t.Fatalf("New(%q) succeeded, want an error", alg)
			}
			if !errors.Is(err, ErrUnsupportedAlg) {
				t.Errorf("New(%q) error = %q, want ErrUnsupportedAlg", alg, err)
			}
			if got := len(st.keys); got != 0 {
				t.Errorf("store holds %d keys after a failed New, want 0", got)
			}
		})
	}
}

func TestNewRejectsKeyLengths(t *testing.T) {
	tests := []struct {
		name     string
		enc, ref []byte
	}{
		{"nil encryption key", nil, testRefreshKy},
		{"short encryption key", make([]byte, 16), testRefreshKy},
		{"nil refresh key", testEncKey, nil},
		{"long refresh key", testEncKey, make([]byte, 33)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig("ES256", testutil.NewClock(t0))
			cfg.EncryptionKey, cfg.RefreshKey = tc.enc, tc.ref
			if _, err := New(context.Background(), &memStore{}, cfg); err == nil {
				t.Errorf("New succeeded, want an error")
			}
		})
	}
}

func TestPrivateKeyAtRest(t *testing.T) {
	for _, tc := range algs {
		t.Run(tc.alg, func(t *testing.T) {
			t.Parallel()
			st := &memStore{}
			k := mustNew(t, st, testConfig(tc.alg, testutil.NewClock(t0)))
			sk := st.keys[0]

			if _, err := x509.ParsePKCS8PrivateKey(sk.Private); err == nil {
				t.Errorf("stored Private parses as a PKCS #8 private key")
			}

			body, _, _ := k.JWKS()
			_, raw := parseJWKS(t, body)
			member, _ := raw[0][tc.pubMember].(string)
			pub, err := base64.RawURLEncoding.DecodeString(member)
			if err != nil || len(pub) < 32 {
				t.Fatalf("JWK %s = %q: %v", tc.pubMember, member, err)
			}
			if bytes.Contains(sk.Private, pub) {
				t.Errorf("stored Private contains the public %s value in the clear", tc.pubMember)
			}

			// Decrypting with the package's key gives the PKCS #8 DER, which
			// is not in the stored bytes.
			n := k.aead.NonceSize()
			der, err := k.aead.Open(nil, sk.Private[:n], sk.Private[n:], []byte(sk.ID+"."+sk.Alg))
			if err != nil {
				t.Fatalf("decrypt stored key: %v", err)
			}
			if _, err := x509.ParsePKCS8PrivateKey(der); err != nil {
				t.Fatalf("decrypted key is not PKCS #8: %v", err)
			}
			if bytes.Contains(sk.Private, der) || bytes.Contains(sk.Private, der[len(der)-32:]) {
				t.Errorf("stored Private contains the PKCS #8 DER in the clear")
			}
		})
	}
}

func TestWrongEncryptionKey(t *testing.T) {
	c := testutil.NewClock(t0)
	st := &memStore{}
	mustNew(t, st, testConfig("ES256", c))

	cfg := testConfig("ES256", c)
	cfg.EncryptionKey = bytes.Repeat([]byte{0x33}, 32)
	_, err := New(context.Background(), st, cfg)
	if err == nil {
		t.Fatal("New with another encryption key succeeded, want an error")
	}
	if !errors.Is(err, ErrWrongEncryptionKey) {
		t.Errorf("error = %q, want ErrWrongEncryptionKey", err)
	}
	if got, want := len(st.keys), 1; got != want {
		t.Errorf("store holds %d keys, want %d (no key added on failure)", got, want)
	}
}

func TestTamperedStoredKey(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(*store.Key)
	}{
		{"flipped ciphertext bit", func(k *store.Key) { k.Private[len(k.Private)-1] ^= 1 }},
		{"truncated", func(k *store.Key) { k.Private = k.Private[:5] }},
		{"empty", func(k *store.Key) { k.Private = nil }},
		{"alg relabelled", func(k *store.Key) { k.Alg = "EdDSA" }}, // AAD binds kid and alg
		{"kid relabelled", func(k *store.Key) { k.ID = "other" }},
		{"unsupported alg", func(k *store.Key) { k.Alg = "HS256" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := testutil.NewClock(t0)
			st := &memStore{}
			mustNew(t, st, testConfig("ES256", c))
			tc.tamper(&st.keys[0])
			if _, err := New(context.Background(), st, testConfig("ES256", c)); err == nil {
				t.Errorf("New on a tampered key succeeded, want an error")
			}
		})
	}
}

func TestRotate(t *testing.T) {
	for _, advance := range []time.Duration{time.Hour, 0} {
		t.Run("after "+advance.String(), func(t *testing.T) {
			ctx := context.Background()
			c := testutil.NewClock(t0)
			st := &memStore{}
			k := mustNew(t, st, testConfig("ES256", c))
			oldKid := k.List()[0].ID
			oldTok, err := k.SignAccess(accessClaims(c.Now()))
			if err != nil {
				t.Fatalf("SignAccess: %v", err)
			}
			body0, etag0, _ := k.JWKS()

			// Stable while the set does not change.
			c.Advance(advance)
			if err := k.Reload(ctx); err != nil {
				t.Fatalf("Reload: %v", err)
			}
			if body, etag, _ := k.JWKS(); etag != etag0 || !bytes.Equal(body, body0) {
				t.Errorf("after Reload ETag = %s, want %s (unchanged)", etag, etag0)
			}

			info, err := k.Rotate(ctx)
			if err != nil {
				t.Fatalf("Rotate: %v", err)
			}
			if info.ID == oldKid || info.State != "current" || info.Alg != "ES256" {
				t.Errorf("Rotate() = %+v, want a new current ES256 key", info)
			}
			infos := k.List()
			if got, want := len(infos), 2; got != want {
				t.Fatalf("len(List()) = %d, want %d", got, want)
			}
			wantStates := map[string]string{oldKid: "retired", info.ID: "current"}
			for _, in := range infos {
				if got, want := in.State, wantStates[in.ID]; got != want {
					t.Errorf("key %s state = %q, want %q", in.ID, got, want)
				}
			}

			body1, etag1, _ := k.JWKS()
			if etag1 == etag0 {
				t.Errorf("ETag unchanged after Rotate: %s", etag1)
			}
			set, _ := parseJWKS(t, body1)
			if got, want := len(set.Keys), 2; got != want {
				t.Fatalf("JWKS has %d keys, want %d", got, want)
			}
			for _, kid := range []string{oldKid, info.ID} {
				if len(set.Key(kid)) != 1 {
					t.Errorf("JWKS lacks key %s", kid)
				}
			}

			tok, err := k.SignAccess(accessClaims(c.Now()))
			if err != nil {
				t.Fatalf("SignAccess: %v", err)
			}
			if got, want := decodeSegment(t, tok, 0)["kid"], info.ID; got != want {
				t.Errorf("kid after Rotate = %v, want %v", got, want)
			}
			verifyWithJWKS(t, tok, body1, jose.ES256)
			verifyWithJWKS(t, oldTok, body1, jose.ES256)

			// Stable again, on this instance and on a fresh one.
			c.Advance(time.Second)
			if err := k.Reload(ctx); err != nil {
				t.Fatalf("Reload: %v", err)
			}
			if _, etag, _ := k.JWKS(); etag != etag1 {
				t.Errorf("ETag after Reload = %s, want %s", etag, etag1)
			}
			other := mustNew(t, st, testConfig("ES256", c))
			if body, etag, _ := other.JWKS(); etag != etag1 || !bytes.Equal(body, body1) {
				t.Errorf("another instance's ETag = %s, want %s", etag, etag1)
			}
			if got, want := other.List()[1].State, "current"; got != want {
				t.Errorf("another instance sees the rotated key as %q, want %q", got, want)
			}
		})
	}
}

func TestRotateTwiceAtOneInstant(t *testing.T) {
	ctx := context.Background()
	c := testutil.NewClock(t0)
	k := mustNew(t, &memStore{}, testConfig("EdDSA", c))
	seen := map[string]bool{k.List()[0].ID: true}
	for i := range 3 {
		info, err := k.Rotate(ctx)
		if err != nil {
			t.Fatalf("Rotate %d: %v", i, err)
		}
		if seen[info.ID] || info.State != "current" {
			t.Errorf("Rotate %d = %+v, want a new current key", i, info)
		}
		seen[info.ID] = true
		tok, err := k.SignAccess(accessClaims(c.Now()))
		if err != nil {
			t.Fatalf("SignAccess: %v", err)
		}
		if got, want := decodeSegment(t, tok, 0)["kid"], info.ID; got != want {
			t.Errorf("kid after Rotate %d = %v, want %v", i, got, want)
		}
	}
	infos := k.List()
	for i, in := range infos {
		want := "retired"
		if i == len(infos)-1 {
			want = "current"
		}
		if in.State != want {
			t.Errorf("List()[%d].State = %q, want %q", i, in.State, want)
		}
		if i > 0 && !in.NotBefore.After(infos[i-1].NotBefore) {
			t.Errorf("List()[%d].NotBefore = %v, not after %v", i, in.NotBefore, infos[i-1].NotBefore)
		}
	}
}

// A key published ahead of use (by another instance's scheduled rotation)
// is in the JWKS as "next" and signs once its NotBefore has passed.
func TestNextKey(t *testing.T) {
	ctx := context.Background()
	c := testutil.NewClock(t0)
	st := &memStore{}
	k := mustNew(t, st, testConfig("ES256", c))
	curKid := k.List()[0].ID
	_, etag0, _ := k.JWKS()

	next, err := k.generate("ES256", t0.Add(time.Hour))
	if err != nil {
		t.Fatalf("generate: %v", err)
	}
	if err := st.AddKey(ctx, next); err != nil {
		t.Fatalf("AddKey: %v", err)
	}
	if err := k.Reload(ctx); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	states := func() map[string]string {
		m := map[string]string{}
		for _, in := range k.List() {
			m[in.ID] = in.State
		}
		return m
	}
	if got, want := states(), map[string]string{curKid: "current", next.ID: "next"}; !maps.Equal(got, want) {
		t.Errorf("states = %v, want %v", got, want)
	}
	body, etag1, _ := k.JWKS()
	if etag1 == etag0 {
		t.Errorf("ETag unchanged after a key was published")
	}
	if set, _ := parseJWKS(t, body); len(set.Key(next.ID)) != 1 {
		t.Errorf("next key %s not published", next.ID)
	}
	tok, _ := k.SignAccess(accessClaims(c.Now()))
	if got := decodeSegment(t, tok, 0)["kid"]; got != curKid {
		t.Errorf("signing kid before NotBefore = %v, want %v", got, curKid)
	}

	c.Set(t0.Add(time.Hour))
	if err := k.Reload(ctx); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if got, want := states(), map[string]string{curKid: "retired", next.ID: "current"}; !maps.Equal(got, want) {
		t.Errorf("states at NotBefore = %v, want %v", got, want)
	}
	tok, _ = k.SignAccess(accessClaims(c.Now()))
	if got := decodeSegment(t, tok, 0)["kid"]; got != next.ID {
		t.Errorf("signing kid at NotBefore = %v, want %v", got, next.ID)
	}
	if _, etag, _ := k.JWKS(); etag != etag1 {
		t.Errorf("ETag changed with states only: %s, want %s", etag, etag1)
	}
}

type failingStore struct{ memStore }

var errStoreDown = errors.New("store down")

func (f *failingStore) AddKey(context.Context, store.Key) error { return errStoreDown }

func TestRotateStoreError(t *testing.T) {
	c := testutil.NewClock(t0)
	st := &failingStore{}
	k := mustNew(t, st, testConfig("ES256", c))
	before := k.List()
	c.Advance(time.Hour)
	if _, err := k.Rotate(context.Background()); !errors.Is(err, errStoreDown) {
		t.Errorf("Rotate error = %v, want it to wrap %v", err, errStoreDown)
	}
	if got := k.List(); len(got) != len(before) || got[0] != before[0] {
		t.Errorf("List() after failed Rotate = %+v, want %+v", got, before)
	}
}

func BenchmarkSignAccess(b *testing.B) {
	for _, alg := range benchAlgs {
		b.Run(alg, func(b *testing.B) {
			c := testutil.NewClock(t0)
			k := mustNew(b, &memStore{}, testConfig(alg, c))
			claims := accessClaims(c.Now())
			b.ReportAllocs()
			for b.Loop() {
				if _, err := k.SignAccess(claims); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestWatch: an instance learns of a rotation made by another instance on the
// same store when the store signals a change, without waiting for the ticker.
func TestWatch(t *testing.T) {
	c := testutil.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	st := &memStore{}
	a := mustNew(t, st, testConfig("ES256", c))
	b := mustNew(t, st, testConfig("ES256", c))
	changes := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		b.Watch(ctx, time.Hour, changes, nil, slog.New(slog.DiscardHandler))
		close(done)
	}()
	defer func() { cancel(); <-done }()

	c.Advance(time.Second)
	rotated, err := a.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	changes <- struct{}{}
	// b reloads in its own goroutine.
	testutil.Eventually(t, 5*time.Second, func() bool { return b.current().kid == rotated.ID })
	ja, _, _ := a.JWKS()
	jb, _, _ := b.JWKS()
	if string(ja) != string(jb) {
		t.Errorf("JWKS differ between instances:\n%s\n%s", ja, jb)
	}
}

package verify_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/issuer-oauth/issuer/verify"
	"github.com/issuer-oauth/issuer/verify/verifytest"
)

// statsDelta is what happened in the cache since before.
func statsDelta(v *verify.Verifier, before verify.CacheStats) (hits, misses uint64) {
	now := v.CacheStats()
	return now.Hits - before.Hits, now.Misses - before.Misses
}

// wantDelta fails the test unless the cache saw hits and misses since before.
func wantDelta(t *testing.T, v *verify.Verifier, before verify.CacheStats, hits, misses uint64, what string) {
	t.Helper()
	if h, m := statsDelta(v, before); h != hits || m != misses {
		t.Fatalf("%s: cache hits, misses = %d, %d; want %d, %d", what, h, m, hits, misses)
	}
}

// TestTokenCacheHit checks that a token verified before is answered from
// the cache, on by default, with the same claims in a copy of its own,
// and that Middleware still checks the scopes of each request.
func TestTokenCacheHit(t *testing.T) {
	clk := newClock()
	iss, v := setup(t, clk)
	if got, want := v.CacheStats().Size, verify.DefaultTokenCacheSize; got != want {
		t.Fatalf("cache size = %d, want %d (on by default)", got, want)
	}
	ctx := context.Background()
	claims := iss.Claims(audience, "read")
	claims["tenant"] = "acme"
	tok := iss.Sign(t, nil, claims)

	before := v.CacheStats()
	first, err := v.Verify(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	wantDelta(t, v, before, 0, 1, "first Verify")
	second, err := v.Verify(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	wantDelta(t, v, before, 1, 1, "second Verify")
	if !reflect.DeepEqual(first, second) {
		t.Errorf("claims of the hit = %+v, want %+v", second, first)
	}
	var extra struct {
		Tenant string `json:"tenant"`
	}
	if err := second.Decode(&extra); err != nil || extra.Tenant != "acme" {
		t.Errorf("Decode of the hit: tenant %q, %v; want acme", extra.Tenant, err)
	}
	// A caller that changes its claims changes no one else's.
	second.Scopes[0], second.Audience[0] = "admin", "https://evil.example.com"
	third, err := v.Verify(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(third.Scopes, []string{"read"}) || !slices.Equal(third.Audience, []string{audience}) {
		t.Errorf("claims after a caller changed its copy: scopes %q, audience %q", third.Scopes, third.Audience)
	}

	// The scopes are checked on every request, cached token or not.
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	for _, tc := range []struct {
		scope string
		want  int
	}{{"read", http.StatusOK}, {"write", http.StatusForbidden}, {"read", http.StatusOK}} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		v.Middleware(tc.scope)(ok).ServeHTTP(w, r)
		if w.Code != tc.want {
			t.Errorf("Middleware(%q) of a cached token: status %d, want %d", tc.scope, w.Code, tc.want)
		}
	}
	wantDelta(t, v, before, 5, 1, "three requests through Middleware")
}

// TestTokenCacheExpiry checks that a cached token is never served past
// exp (plus the leeway), and that the expired entry is dropped.
func TestTokenCacheExpiry(t *testing.T) {
	clk := newClock()
	iss, v := setup(t, clk)
	ctx := context.Background()
	tok := iss.Token(t, audience)
	exp := clk.Now().Add(verifytest.TokenTTL)
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	clk.Advance(exp.Add(verify.DefaultLeeway - time.Second).Sub(clk.Now()))
	before := v.CacheStats()
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatalf("Verify a second before exp+leeway: %v", err)
	}
	wantDelta(t, v, before, 1, 0, "Verify a second before exp+leeway")
	clk.Advance(time.Second)
	for range 2 {
		if _, err := v.Verify(ctx, tok); !errors.Is(err, verify.ErrExpired) {
			t.Fatalf("Verify at exp+leeway: %v, want ErrExpired", err)
		}
	}
	wantDelta(t, v, before, 1, 2, "Verify at exp+leeway")
	if got, want := v.CacheStats().Entries, before.Entries-1; got != want {
		t.Errorf("entries = %d, want %d (the expired one dropped)", got, want)
	}
}

// TestTokenCacheOtherBytes checks that no token but the exact one hits an
// entry: one bit changed in the signature, or the same signature bytes
// encoded differently, fail in full and are never cached.
func TestTokenCacheOtherBytes(t *testing.T) {
	clk := newClock()
	iss, v := setup(t, clk)
	ctx := context.Background()
	tok := iss.Token(t, audience)
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	h, p, s := segments(t, tok)
	sig, err := b64.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	sig[len(sig)/2] ^= 1
	flipped := h + "." + p + "." + b64.EncodeToString(sig)
	// The last of 86 characters of a 64-byte signature carries 4 padding
	// bits: changing one keeps the decoded bytes under a lax decoder.
	last := strings.IndexByte(b64Alphabet, s[len(s)-1])
	padded := h + "." + p + "." + s[:len(s)-1] + string(b64Alphabet[last^1])

	entries := v.CacheStats().Entries
	before := v.CacheStats()
	for _, tc := range []struct {
		name, tok string
		want      error
	}{
		{"one bit of the signature", flipped, verify.ErrSignature},
		{"a padding bit of the signature", padded, verify.ErrMalformed},
	} {
		for range 2 {
			if _, err := v.Verify(ctx, tc.tok); !errors.Is(err, tc.want) {
				t.Errorf("%s: Verify: %v, want %v", tc.name, err, tc.want)
			}
		}
	}
	wantDelta(t, v, before, 0, 4, "four Verify of altered tokens")
	if got := v.CacheStats().Entries; got != entries {
		t.Errorf("entries = %d, want %d (failures are not cached)", got, entries)
	}
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	wantDelta(t, v, before, 1, 4, "Verify of the original token")
}

// b64Alphabet is the base64url alphabet, in order.
const b64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// TestTokenCacheKeyRemoved checks that cached tokens signed by a key the
// JWK Set still publishes stay cached across a refetch, and that those of
// a key it no longer publishes fail as soon as a refetch has seen that.
func TestTokenCacheKeyRemoved(t *testing.T) {
	clk := newClock()
	iss, v := setup(t, clk)
	ctx := context.Background()
	old := iss.Token(t, audience)
	if _, err := v.Verify(ctx, old); err != nil {
		t.Fatal(err)
	}

	iss.Rotate(t) // the old key stays published
	clk.Advance(verify.DefaultRefreshInterval)
	if _, err := v.Verify(ctx, iss.Token(t, audience)); err != nil { // refetch for the new kid
		t.Fatal(err)
	}
	before := v.CacheStats()
	if _, err := v.Verify(ctx, old); err != nil {
		t.Fatalf("Verify of a cached token whose key is still published: %v", err)
	}
	wantDelta(t, v, before, 1, 0, "after a refetch that kept the key")

	iss.Retire() // the old key is no longer published
	clk.Advance(verify.DefaultRefreshInterval)
	unknown := iss.Sign(t, map[string]any{"kid": "unknown"}, iss.Claims(audience))
	if _, err := v.Verify(ctx, unknown); !errors.Is(err, verify.ErrUnknownKey) { // refetch
		t.Fatalf("Verify of an unknown kid: %v", err)
	}
	if got, want := iss.JWKSFetches(), 3; got != want {
		t.Fatalf("JWKS fetches = %d, want %d", got, want)
	}
	before = v.CacheStats()
	for range 2 {
		if _, err := v.Verify(ctx, old); !errors.Is(err, verify.ErrUnknownKey) {
			t.Fatalf("Verify of a cached token whose key was removed: %v, want ErrUnknownKey", err)
		}
	}
	wantDelta(t, v, before, 0, 2, "after a refetch that removed the key")
}

// swapKeySet is a KeySet whose one key the test replaces.
type swapKeySet struct {
	mu  sync.Mutex
	key *verify.Key
}

func (s *swapKeySet) Key(_ context.Context, kid string) (*verify.Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.key.ID() != kid {
		return nil, verify.ErrUnknownKey
	}
	return s.key, nil
}

func (s *swapKeySet) set(k *verify.Key) {
	s.mu.Lock()
	s.key = k
	s.mu.Unlock()
}

// TestTokenCacheKeyReplaced checks that a cached token whose kid now names
// another key is verified in full again: with equal key material it
// passes, with another key it fails.
func TestTokenCacheKeyReplaced(t *testing.T) {
	clk := newClock()
	iss := verifytest.NewIssuer(t, verifytest.WithClock(clk.Now))
	parse := func(doc []byte) *verify.Key {
		t.Helper()
		keys, err := verify.ParseJWKS(doc)
		if err != nil {
			t.Fatal(err)
		}
		return keys[0]
	}
	ks := &swapKeySet{key: parse(iss.JWKS())}
	v, err := verify.New(iss.URL, audience, verify.WithKeySet(ks), verify.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tok := iss.Token(t, audience)
	for range 2 {
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	wantDelta(t, v, verify.CacheStats{}, 1, 1, "two Verify")

	ks.set(parse(iss.JWKS())) // the same key, another *Key
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	wantDelta(t, v, verify.CacheStats{}, 1, 2, "Verify with an equal key")

	other := parse(verifytest.NewIssuer(t).JWKS()) // another key under the same kid
	imposter, err := verify.NewKey(iss.KeyID(), other.Alg(), other.Public())
	if err != nil {
		t.Fatal(err)
	}
	ks.set(imposter)
	if _, err := v.Verify(ctx, tok); !errors.Is(err, verify.ErrSignature) {
		t.Fatalf("Verify after the kid changed keys: %v, want ErrSignature", err)
	}
	wantDelta(t, v, verify.CacheStats{}, 1, 3, "Verify with another key")
}

// TestTokenCacheStaleKeys checks that cached tokens fail closed too once
// the key set is past its maximum staleness.
func TestTokenCacheStaleKeys(t *testing.T) {
	clk := newClock()
	iss, v := setup(t, clk)
	ctx := context.Background()
	claims := iss.Claims(audience)
	claims["exp"] = clk.Now().Add(2 * verify.DefaultMaxStaleness).Unix()
	tok := iss.Sign(t, nil, claims)
	for range 2 {
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	iss.SetDown(true)
	clk.Advance(verify.DefaultMaxStaleness + verify.DefaultRefreshInterval)
	before := v.CacheStats()
	if _, err := v.Verify(ctx, tok); !errors.Is(err, verify.ErrKeySetStale) {
		t.Fatalf("Verify of a cached token with stale keys: %v, want ErrKeySetStale", err)
	}
	wantDelta(t, v, before, 0, 1, "Verify with stale keys")
}

// TestTokenCacheBound checks that the cache never holds more than its size,
// and that tokens in use survive a stream of tokens seen once.
func TestTokenCacheBound(t *testing.T) {
	clk := newClock()
	iss := verifytest.NewIssuer(t, verifytest.WithClock(clk.Now))
	keys, err := verify.ParseJWKS(iss.JWKS())
	if err != nil {
		t.Fatal(err)
	}
	const size = 8
	v, err := verify.New(iss.URL, audience, verify.WithKeys(keys...), verify.WithClock(clk.Now), verify.WithTokenCache(size))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	hot := iss.Token(t, audience)
	if _, err := v.Verify(ctx, hot); err != nil {
		t.Fatal(err)
	}
	const n = 100
	for i := range n {
		if _, err := v.Verify(ctx, iss.Token(t, audience)); err != nil {
			t.Fatal(err)
		}
		if _, err := v.Verify(ctx, hot); err != nil {
			t.Fatal(err)
		}
		if got := v.CacheStats().Entries; got > size {
			t.Fatalf("after %d tokens: %d entries, more than the size %d", i+1, got, size)
		}
	}
	st := v.CacheStats()
	want := verify.CacheStats{Size: size, Entries: size, Hits: n, Misses: n + 1, Evictions: n + 1 - size}
	if st != want {
		t.Errorf("CacheStats = %+v, want %+v", st, want)
	}
}

// TestTokenCacheOff checks the off switch.
func TestTokenCacheOff(t *testing.T) {
	clk := newClock()
	iss, v := setup(t, clk, verify.WithTokenCache(0))
	tok := iss.Token(t, audience)
	for range 3 {
		if _, err := v.Verify(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
	}
	if got := v.CacheStats(); got != (verify.CacheStats{}) {
		t.Errorf("CacheStats with the cache off = %+v, want zero", got)
	}
}

// TestTokenCacheConcurrent verifies a mix of good and bad tokens from many
// goroutines through a small cache, while the key set is refetched; each
// changes its own claims. Run with -race.
func TestTokenCacheConcurrent(t *testing.T) {
	clk := newClock()
	iss, v := setup(t, clk, verify.WithTokenCache(8), verify.WithRefreshInterval(0))
	ctx := context.Background()
	var good []string
	for range 20 {
		good = append(good, iss.Token(t, audience, "read"))
	}
	bad := iss.Sign(t, nil, with(iss.Claims(audience, "read"), "aud", "https://other.example.com"))
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 200 {
				tok := good[(g+i)%len(good)]
				c, err := v.Verify(ctx, tok)
				if err != nil {
					t.Errorf("Verify: %v", err)
					return
				}
				if !c.HasScope("read") {
					t.Errorf("claims of a good token lack scope read: %q", c.Scopes)
					return
				}
				c.Scopes[0] = fmt.Sprint("changed-", g)
				if _, err := v.Verify(ctx, bad); !errors.Is(err, verify.ErrAudience) {
					t.Errorf("Verify of a bad token: %v, want ErrAudience", err)
					return
				}
				if i%50 == 0 { // an unknown kid refetches the key set
					unknown := iss.Sign(t, map[string]any{"kid": "unknown"}, iss.Claims(audience))
					_, _ = v.Verify(ctx, unknown)
				}
			}
		})
	}
	wg.Wait()
	st := v.CacheStats()
	if st.Entries > 8 || st.Hits == 0 {
		t.Errorf("CacheStats = %+v, want at most 8 entries and some hits", st)
	}
}

// aliasKeySet serves one key under another kid than its own.
type aliasKeySet struct {
	kid string
	key *verify.Key
}

func (s aliasKeySet) Key(_ context.Context, kid string) (*verify.Key, error) {
	if kid != s.kid {
		return nil, verify.ErrUnknownKey
	}
	return s.key, nil
}

// TestTokenCacheLooksUpTheTokensKid checks that a hit looks up the kid the
// token names, which a KeySet may map to a key with another ID.
func TestTokenCacheLooksUpTheTokensKid(t *testing.T) {
	clk := newClock()
	iss := verifytest.NewIssuer(t, verifytest.WithClock(clk.Now))
	keys, err := verify.ParseJWKS(iss.JWKS())
	if err != nil {
		t.Fatal(err)
	}
	v, err := verify.New(iss.URL, audience, verify.WithKeySet(aliasKeySet{"alias", keys[0]}), verify.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	tok := iss.Sign(t, map[string]any{"kid": "alias"}, iss.Claims(audience))
	for i := range 2 {
		if _, err := v.Verify(context.Background(), tok); err != nil {
			t.Fatalf("Verify %d: %v", i+1, err)
		}
	}
	wantDelta(t, v, verify.CacheStats{}, 1, 1, "two Verify")
}

package verify_test

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/issuer-oauth/issuer/verify"
	"github.com/issuer-oauth/issuer/verify/verifytest"
)

// listServer serves Token Status Lists signed by a verifytest.Issuer's key,
// at its own origin, which is the issuer identifier of the tokens.
type listServer struct {
	t   testing.TB
	iss *verifytest.Issuer
	clk *clock
	srv *httptest.Server

	mu       sync.Mutex
	bits     []byte
	ttl      int64
	validFor time.Duration
	// mangle, when set, changes the header and claims before signing.
	mangle  func(header, claims map[string]any)
	body    []byte // when set, served instead of a list
	down    bool
	fetches atomic.Int64
	gate    chan struct{} // when set, each fetch waits for it
}

func newListServer(t testing.TB, clk *clock) *listServer {
	l := &listServer{t: t, clk: clk, bits: make([]byte, 16), ttl: 30, validFor: 5 * time.Minute}
	l.iss = verifytest.NewIssuer(t, verifytest.WithClock(clk.Now))
	l.srv = httptest.NewServer(http.HandlerFunc(l.serve))
	t.Cleanup(l.srv.Close)
	return l
}

func (l *listServer) uri() string { return l.srv.URL + "/statuslists/1" }

func (l *listServer) set(idx int) {
	l.mu.Lock()
	l.bits[idx/8] |= 1 << (idx % 8)
	l.mu.Unlock()
}

func zlibBytes(b []byte) string {
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return base64.RawURLEncoding.EncodeToString(z.Bytes())
}

func (l *listServer) serve(w http.ResponseWriter, r *http.Request) {
	l.fetches.Add(1)
	l.mu.Lock()
	gate, down, body := l.gate, l.down, l.body
	l.mu.Unlock()
	if gate != nil {
		<-gate
	}
	if down {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	if body != nil {
		_, _ = w.Write(body)
		return
	}
	l.mu.Lock()
	now := l.clk.Now()
	header := map[string]any{"alg": l.iss.Alg(), "kid": l.iss.KeyID(), "typ": "statuslist+jwt"}
	claims := map[string]any{
		"sub": l.srv.URL + r.URL.Path, "iat": now.Unix(), "exp": now.Add(l.validFor).Unix(), "ttl": l.ttl,
		"status_list": map[string]any{"bits": 1, "lst": zlibBytes(l.bits)},
	}
	if l.mangle != nil {
		l.mangle(header, claims)
	}
	l.mu.Unlock()
	w.Header().Set("Content-Type", "application/statuslist+jwt")
	_, _ = w.Write([]byte(l.iss.Sign(l.t, header, claims)))
}

// token mints an access token of the list server's issuer with a status
// entry at idx in uri.
func (l *listServer) token(uri string, idx int) string {
	c := l.iss.Claims(audience, "read")
	c["iss"] = l.srv.URL
	c["status"] = map[string]any{"status_list": map[string]any{"idx": idx, "uri": uri}}
	return l.iss.Sign(l.t, map[string]any{"alg": l.iss.Alg(), "kid": l.iss.KeyID(), "typ": "at+jwt"}, c)
}

func (l *listServer) verifier(t testing.TB, cfg verify.StatusListConfig) *verify.Verifier {
	t.Helper()
	v, err := verify.New(l.srv.URL, audience, verify.WithJWKSURL(l.iss.URL+verifytest.JWKSPath),
		verify.WithClock(l.clk.Now), verify.WithStatusLists(cfg))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestStatusListRevoked(t *testing.T) {
	clk := newClock()
	l := newListServer(t, clk)
	l.set(3)
	v := l.verifier(t, verify.StatusListConfig{})
	ctx := context.Background()
	if _, err := v.Verify(ctx, l.token(l.uri(), 2)); err != nil {
		t.Errorf("token with status 0: %v", err)
	}
	if _, err := v.Verify(ctx, l.token(l.uri(), 3)); !errors.Is(err, verify.ErrRevoked) {
		t.Errorf("token with status 1: %v, want ErrRevoked", err)
	}
	// A revocation after the fetch is seen once the ttl has passed, not
	// before: the list is cached for its ttl.
	l.set(2)
	clk.Advance(29 * time.Second)
	if _, err := v.Verify(ctx, l.token(l.uri(), 2)); err != nil {
		t.Errorf("within the ttl of the cached list: %v, want nil", err)
	}
	clk.Advance(time.Second)
	if _, err := v.Verify(ctx, l.token(l.uri(), 2)); !errors.Is(err, verify.ErrRevoked) {
		t.Errorf("once the ttl has passed: %v, want ErrRevoked", err)
	}
	if got := l.fetches.Load(); got != 2 {
		t.Errorf("%d fetches, want 2 (one per ttl)", got)
	}
	// No status claim: accepted unless Required.
	plain := l.iss.Claims(audience)
	plain["iss"] = l.srv.URL
	raw := l.iss.Sign(t, map[string]any{"alg": l.iss.Alg(), "kid": l.iss.KeyID(), "typ": "at+jwt"}, plain)
	if _, err := v.Verify(ctx, raw); err != nil {
		t.Errorf("token without status: %v, want nil", err)
	}
	strict := l.verifier(t, verify.StatusListConfig{Required: true})
	if _, err := strict.Verify(ctx, raw); !errors.Is(err, verify.ErrStatusList) {
		t.Errorf("token without status, Required: %v, want ErrStatusList", err)
	}
}

// TestStatusListSharedFetch: concurrent verifications of tokens of one
// list share one fetch.
func TestStatusListSharedFetch(t *testing.T) {
	clk := newClock()
	l := newListServer(t, clk)
	gate := make(chan struct{})
	l.gate = gate
	v := l.verifier(t, verify.StatusListConfig{})
	const n = 20
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		tok := l.token(l.uri(), i)
		wg.Go(func() { _, errs[i] = v.Verify(context.Background(), tok) })
	}
	for l.fetches.Load() == 0 {
		time.Sleep(time.Millisecond) // until the fetch has reached the server
	}
	close(gate)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("verification %d: %v", i, err)
		}
	}
	if got := l.fetches.Load(); got != 1 {
		t.Errorf("%d fetches for %d concurrent verifications, want 1", got, n)
	}
}

// TestStatusListFailsClosed: while the list cannot be refetched the cached
// one is used until its exp, and then nothing is accepted.
func TestStatusListFailsClosed(t *testing.T) {
	clk := newClock()
	l := newListServer(t, clk)
	var ages []time.Duration
	var mu sync.Mutex
	v := l.verifier(t, verify.StatusListConfig{OnCheck: func(uri string, age time.Duration) {
		mu.Lock()
		ages = append(ages, age)
		mu.Unlock()
	}})
	ctx := context.Background()
	tok := func() string { return l.token(l.uri(), 1) }
	if _, err := v.Verify(ctx, tok()); err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	l.down = true
	l.mu.Unlock()
	clk.Advance(time.Minute) // past the ttl: a refetch fails
	if _, err := v.Verify(ctx, tok()); err != nil {
		t.Errorf("stale list within its exp, issuer down: %v, want nil", err)
	}
	clk.Advance(4 * time.Minute) // the list's exp
	if _, err := v.Verify(ctx, tok()); !errors.Is(err, verify.ErrStatusList) {
		t.Errorf("list past its exp, issuer down: %v, want ErrStatusList", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(ages) != 2 || ages[0] != 0 || ages[1] != time.Minute {
		t.Errorf("OnCheck ages = %v, want [0s 1m0s]", ages)
	}
}

// TestStatusListRefused: lists that are not what the draft says, or not
// the issuer's, fail closed.
func TestStatusListRefused(t *testing.T) {
	bomb := make([]byte, 17<<20)
	tests := []struct {
		name   string
		mangle func(header, claims map[string]any)
		body   []byte
		uri    func(l *listServer) string
		idx    int
	}{
		{name: "typ JWT", mangle: func(h, _ map[string]any) { h["typ"] = "JWT" }},
		{name: "no typ", mangle: func(h, _ map[string]any) { delete(h, "typ") }},
		{name: "sub another list", mangle: func(_, c map[string]any) { c["sub"] = c["sub"].(string) + "0" }},
		{name: "no exp", mangle: func(_, c map[string]any) { delete(c, "exp") }},
		{name: "expired", mangle: func(_, c map[string]any) { c["exp"] = c["iat"].(int64) - 1 }},
		{name: "bits 3", mangle: func(_, c map[string]any) { c["status_list"].(map[string]any)["bits"] = 3 }},
		{name: "lst not zlib", mangle: func(_, c map[string]any) { c["status_list"].(map[string]any)["lst"] = "AAAA" }},
		{name: "decompression bomb", mangle: func(_, c map[string]any) { c["status_list"].(map[string]any)["lst"] = zlibBytes(bomb) }},
		{name: "jwk header", mangle: func(h, _ map[string]any) { h["jwk"] = map[string]any{"kty": "EC"} }},
		{name: "unknown kid", mangle: func(h, _ map[string]any) { h["kid"] = "nope" }},
		{name: "body too large", body: bytes.Repeat([]byte("a"), 1<<20+1)},
		{name: "not a JWT", body: []byte("hello")},
		{name: "index outside the list", idx: 16 * 8},
		{name: "list at another origin", uri: func(l *listServer) string { return l.iss.URL + "/statuslists/1" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			l := newListServer(t, clk)
			l.mangle, l.body = tt.mangle, tt.body
			v := l.verifier(t, verify.StatusListConfig{})
			uri := l.uri()
			if tt.uri != nil {
				uri = tt.uri(l)
			}
			_, err := v.Verify(context.Background(), l.token(uri, tt.idx))
			if !errors.Is(err, verify.ErrStatusList) {
				t.Errorf("Verify: %v, want ErrStatusList", err)
			}
		})
	}
}

// TestStatusListSignedByOtherKey: a list signed by a key the issuer never
// published fails closed.
func TestStatusListSignedByOtherKey(t *testing.T) {
	clk := newClock()
	l := newListServer(t, clk)
	other := verifytest.NewIssuer(t)
	l.mangle = func(h, c map[string]any) {}
	v := l.verifier(t, verify.StatusListConfig{})
	l.mu.Lock()
	l.body = []byte(other.Sign(t, map[string]any{"alg": "ES256", "kid": l.iss.KeyID(), "typ": "statuslist+jwt"}, map[string]any{
		"sub": l.uri(), "iat": clk.Now().Unix(), "exp": clk.Now().Add(time.Hour).Unix(),
		"status_list": map[string]any{"bits": 1, "lst": zlibBytes(make([]byte, 16))},
	}))
	l.mu.Unlock()
	if _, err := v.Verify(context.Background(), l.token(l.uri(), 1)); !errors.Is(err, verify.ErrStatusList) {
		t.Errorf("Verify: %v, want ErrStatusList", err)
	}
}

func TestWithStatusListsInvalid(t *testing.T) {
	_, err := verify.New("https://issuer.example", audience, verify.WithStatusLists(verify.StatusListConfig{MaxAge: -time.Second}))
	if !errors.Is(err, verify.ErrInvalidConfig) {
		t.Errorf("negative MaxAge: %v, want ErrInvalidConfig", err)
	}
}

// TestStatusListTTLZero: a list with ttl 0 is still used for a second,
// not fetched for every verification.
func TestStatusListTTLZero(t *testing.T) {
	clk := newClock()
	l := newListServer(t, clk)
	l.ttl = 0
	v := l.verifier(t, verify.StatusListConfig{})
	for i := range 5 {
		if _, err := v.Verify(context.Background(), l.token(l.uri(), i)); err != nil {
			t.Fatalf("Verify: %v", err)
		}
	}
	if got := l.fetches.Load(); got != 1 {
		t.Errorf("%d fetches within one second, want 1", got)
	}
}

// TestStatusClaimOfAnotherShape: a status claim that is not the draft's
// object is malformed for a Verifier honouring status lists, and no
// concern of one that does not.
func TestStatusClaimOfAnotherShape(t *testing.T) {
	clk := newClock()
	l := newListServer(t, clk)
	c := l.iss.Claims(audience, "read")
	c["iss"] = l.srv.URL
	c["status"] = "active"
	raw := l.iss.Sign(t, map[string]any{"alg": l.iss.Alg(), "kid": l.iss.KeyID(), "typ": "at+jwt"}, c)
	if _, err := l.verifier(t, verify.StatusListConfig{}).Verify(context.Background(), raw); !errors.Is(err, verify.ErrStatusList) {
		t.Errorf("with WithStatusLists: %v, want ErrStatusList", err)
	}
	plain, err := verify.New(l.srv.URL, audience, verify.WithJWKSURL(l.iss.URL+verifytest.JWKSPath), verify.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plain.Verify(context.Background(), raw); err != nil {
		t.Errorf("without WithStatusLists: %v, want nil", err)
	}
}

// BenchmarkVerifyStatusList verifies one token with and without the
// status check (its list cached), side by side: the check's cost is the
// ratio of the two in one run.
func BenchmarkVerifyStatusList(b *testing.B) {
	clk := newClock()
	l := newListServer(b, clk)
	tok := l.token(l.uri(), 5)
	plain, err := verify.New(l.srv.URL, audience, verify.WithJWKSURL(l.iss.URL+verifytest.JWKSPath), verify.WithClock(clk.Now))
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		v    *verify.Verifier
	}{{"status_lists=off", plain}, {"status_lists=on", l.verifier(b, verify.StatusListConfig{})}} {
		b.Run(bc.name, func(b *testing.B) {
			if _, err := bc.v.Verify(context.Background(), tok); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bc.v.Verify(context.Background(), tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

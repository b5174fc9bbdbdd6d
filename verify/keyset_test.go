package verify_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/issuer-oauth/issuer/verify"
	"github.com/issuer-oauth/issuer/verify/verifytest"
)

func TestKeyRotationRefetches(t *testing.T) {
	clk := newClock()
	iss, v := setup(t, clk)
	ctx := context.Background()
	old := iss.Token(t, audience)
	if got, want := iss.JWKSFetches(), 1; got != want {
		t.Fatalf("JWKS fetches after the first token = %d, want %d", got, want)
	}
	iss.Rotate(t)
	fresh := iss.Token(t, audience)

	// Within the refresh interval of the first fetch, an unknown kid
	// fails without a fetch.
	if _, err := v.Verify(ctx, fresh); !errors.Is(err, verify.ErrUnknownKey) {
		t.Fatalf("Verify right after the first fetch: %v, want ErrUnknownKey", err)
	}
	if got, want := iss.JWKSFetches(), 1; got != want {
		t.Fatalf("JWKS fetches = %d, want %d", got, want)
	}
	clk.Advance(verify.DefaultRefreshInterval)
	if _, err := v.Verify(ctx, fresh); err != nil {
		t.Fatalf("Verify after the refresh interval: %v", err)
	}
	if _, err := v.Verify(ctx, old); err != nil {
		t.Fatalf("Verify of a token of the previous key: %v", err)
	}
	if got, want := iss.JWKSFetches(), 2; got != want {
		t.Errorf("JWKS fetches = %d, want %d", got, want)
	}
}

// TestRandomKidsDoNotFlood sends many tokens with made-up kids: they cause
// at most one fetch per refresh interval.
func TestRandomKidsDoNotFlood(t *testing.T) {
	clk := newClock()
	iss, v := setup(t, clk)
	ctx := context.Background()
	for round := 1; round <= 3; round++ {
		clk.Advance(verify.DefaultRefreshInterval)
		var wg sync.WaitGroup
		for i := range 200 {
			wg.Go(func() {
				tok := iss.Sign(t, map[string]any{"kid": fmt.Sprintf("random-%d-%d", round, i)}, iss.Claims(audience))
				if _, err := v.Verify(ctx, tok); !errors.Is(err, verify.ErrUnknownKey) {
					t.Errorf("Verify: %v, want ErrUnknownKey", err)
				}
			})
		}
		wg.Wait()
		if got, want := iss.JWKSFetches(), 1+round; got != want {
			t.Fatalf("round %d: JWKS fetches = %d, want %d", round, got, want)
		}
	}
}

// TestConcurrentRefreshIsShared holds the JWK Set response until many
// requests wait for the new key: they share the one fetch.
func TestConcurrentRefreshIsShared(t *testing.T) {
	clk := newClock()
	iss := verifytest.NewIssuer(t, verifytest.WithClock(clk.Now))
	var (
		fetches atomic.Int64
		hold    atomic.Bool
		release = make(chan struct{})
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		if hold.Load() {
			<-release
		}
		_, _ = w.Write(iss.JWKS())
	}))
	t.Cleanup(srv.Close)
	// A zero refresh interval: only the sharing limits the fetches.
	v, err := verify.New(iss.URL, audience, verify.WithJWKSURL(srv.URL),
		verify.WithClock(clk.Now), verify.WithRefreshInterval(0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), iss.Token(t, audience)); err != nil {
		t.Fatalf("Verify of a first token: %v", err)
	}
	iss.Rotate(t)
	tok := iss.Token(t, audience)
	hold.Store(true)

	const n = 50
	var started, done sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		started.Add(1)
		done.Go(func() {
			started.Done()
			_, err := v.Verify(context.Background(), tok)
			errs <- err
		})
	}
	started.Wait()
	eventually(t, 5*time.Second, func() bool { return fetches.Load() == 2 })
	// A caller that gives up does not cancel the fetch for the others.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := v.Verify(ctx, tok); !errors.Is(err, verify.ErrUnknownKey) || !errors.Is(err, context.Canceled) {
		t.Errorf("Verify with a cancelled context: %v, want ErrUnknownKey and context.Canceled", err)
	}
	close(release)
	done.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Verify: %v", err)
		}
	}
	if got, want := fetches.Load(), int64(2); got != want {
		t.Errorf("JWKS fetches = %d, want %d (the first and one shared refresh)", got, want)
	}
}

// TestCacheLifetime checks that the cached keys live as long as the JWK
// Set's max-age says: a key the issuer removed works until then.
func TestCacheLifetime(t *testing.T) {
	clk := newClock()
	iss := verifytest.NewIssuer(t, verifytest.WithClock(clk.Now), verifytest.WithMaxAge(3*time.Minute))
	v, err := verify.New(iss.URL, audience, verify.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	warm(t, iss, v)
	ctx := context.Background()
	old := iss.Token(t, audience)
	iss.Rotate(t)
	iss.Retire() // the old key is no longer published

	clk.Advance(3*time.Minute - time.Second)
	if _, err := v.Verify(ctx, old); err != nil {
		t.Fatalf("Verify before max-age: %v", err)
	}
	if got, want := iss.JWKSFetches(), 1; got != want {
		t.Fatalf("JWKS fetches before max-age = %d, want %d", got, want)
	}
	clk.Advance(time.Second)
	// Stale: this request still uses the cached key and starts a
	// background refresh.
	if _, err := v.Verify(ctx, old); err != nil {
		t.Fatalf("Verify at max-age: %v", err)
	}
	eventually(t, 5*time.Second, func() bool {
		_, err := v.Verify(ctx, old)
		return errors.Is(err, verify.ErrUnknownKey)
	})
	if got, want := iss.JWKSFetches(), 2; got != want {
		t.Errorf("JWKS fetches = %d, want %d", got, want)
	}
}

// TestIssuerUnreachable checks that verification goes on with the cached
// keys while the issuer is down or gone.
func TestIssuerUnreachable(t *testing.T) {
	for _, tc := range []struct {
		name string
		stop func(*verifytest.Issuer)
	}{
		{"503", func(i *verifytest.Issuer) { i.SetDown(true) }},
		{"closed", func(i *verifytest.Issuer) { i.Close() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			iss, v := setup(t, clk)
			ctx := context.Background()
			tc.stop(iss)
			for range 3 {
				clk.Advance(verify.DefaultMaxCacheAge) // stale: every call tries a refresh
				tok := iss.Token(t, audience, "read")
				if _, err := v.Verify(ctx, tok); err != nil {
					t.Fatalf("Verify with the issuer unreachable: %v", err)
				}
			}
			clk.Advance(verify.DefaultRefreshInterval)
			unknown := iss.Sign(t, map[string]any{"kid": "rotated-while-down"}, iss.Claims(audience))
			if _, err := v.Verify(ctx, unknown); !errors.Is(err, verify.ErrUnknownKey) {
				t.Fatalf("Verify of an unknown kid: %v, want ErrUnknownKey", err)
			}
			if _, err := v.Verify(ctx, iss.Token(t, audience)); err != nil {
				t.Fatalf("Verify after a failed refresh: %v", err)
			}
		})
	}
}

// TestCacheControl checks how the lifetime follows Cache-Control and Age,
// within the bounds, and that refreshes revalidate with the ETag.
func TestCacheControl(t *testing.T) {
	tests := []struct {
		header, age string
		want        time.Duration
	}{
		{"public, max-age=300", "", 300 * time.Second},
		{"max-age=300", "100", 200 * time.Second},
		{"max-age=0", "", verify.DefaultMinCacheAge},
		{"no-store", "", verify.DefaultMinCacheAge},
		{"no-cache, max-age=600", "", verify.DefaultMinCacheAge},
		{"max-age=999999", "", verify.DefaultMaxCacheAge},
		{"", "", 5 * time.Minute},
		{"max-age=junk", "", 5 * time.Minute},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%q age %q", tc.header, tc.age), func(t *testing.T) {
			clk := newClock()
			iss := verifytest.NewIssuer(t, verifytest.WithClock(clk.Now))
			var fetches, revalidated atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				fetches.Add(1)
				if tc.header != "" {
					w.Header().Set("Cache-Control", tc.header)
				}
				if tc.age != "" {
					w.Header().Set("Age", tc.age)
				}
				w.Header().Set("ETag", `"v1"`)
				if r.Header.Get("If-None-Match") == `"v1"` {
					revalidated.Add(1)
					w.WriteHeader(http.StatusNotModified)
					return
				}
				_, _ = w.Write(iss.JWKS())
			}))
			defer srv.Close()
			v, err := verify.New(iss.URL, audience, verify.WithJWKSURL(srv.URL), verify.WithClock(clk.Now))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := v.Verify(context.Background(), iss.Token(t, audience)); err != nil {
				t.Fatal(err)
			}
			clk.Advance(tc.want - time.Second)
			tok := iss.Token(t, audience)
			if _, err := v.Verify(context.Background(), tok); err != nil {
				t.Fatal(err)
			}
			if got := fetches.Load(); got != 1 {
				t.Fatalf("fetches a second before %v = %d, want 1", tc.want, got)
			}
			clk.Advance(time.Second)
			if _, err := v.Verify(context.Background(), tok); err != nil {
				t.Fatal(err)
			}
			eventually(t, 5*time.Second, func() bool { return revalidated.Load() == 1 })
			if _, err := v.Verify(context.Background(), tok); err != nil {
				t.Fatalf("Verify after a 304: %v", err)
			}
		})
	}
}

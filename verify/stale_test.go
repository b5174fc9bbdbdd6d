package verify_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/issuer-oauth/issuer/verify"
	"github.com/issuer-oauth/issuer/verify/verifytest"
)

// hookEvents returns a fetch hook and the channel it sends every event to.
func hookEvents() (func(verify.FetchEvent), chan verify.FetchEvent) {
	events := make(chan verify.FetchEvent, 16)
	return func(ev verify.FetchEvent) { events <- ev }, events
}

// nextEvent returns the next event of the hook; the timeout only keeps a
// broken test from hanging.
func nextEvent(t *testing.T, events chan verify.FetchEvent) verify.FetchEvent {
	t.Helper()
	select {
	case ev := <-events:
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("the fetch hook was not called")
		return verify.FetchEvent{}
	}
}

// TestMaxStaleness cuts a Verifier off from its issuer: the cached keys
// verify until the last successful fetch is DefaultMaxStaleness old, then
// verification fails closed with ErrKeySetStale, and the fetch hook says
// so. When the issuer comes back, verification resumes.
func TestMaxStaleness(t *testing.T) {
	for _, tc := range []struct {
		name string
		stop func(*verifytest.Issuer)
	}{
		{"closed", func(i *verifytest.Issuer) { i.Close() }},
		{"503", func(i *verifytest.Issuer) { i.SetDown(true) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			hook, events := hookEvents()
			iss, v := setup(t, clk, verify.WithFetchHook(hook))
			ev := nextEvent(t, events)
			if ev.Err != nil || !ev.LastSuccess.Equal(clk.Now()) || ev.Stale || ev.Age != 0 ||
				ev.URL != iss.URL+verifytest.JWKSPath {
				t.Fatalf("event of the first fetch = %+v, want a success at %v", ev, clk.Now())
			}
			fetchedAt := clk.Now()
			ctx := context.Background()
			tc.stop(iss)

			// At the limit the cached keys still verify; the refresh
			// this starts in the background fails.
			clk.Advance(verify.DefaultMaxStaleness)
			if _, err := v.Verify(ctx, iss.Token(t, audience)); err != nil {
				t.Fatalf("Verify at the maximum staleness: %v", err)
			}
			ev = nextEvent(t, events)
			if ev.Err == nil || ev.Stale || ev.Age != verify.DefaultMaxStaleness || !ev.LastSuccess.Equal(fetchedAt) {
				t.Fatalf("event of a failed refresh = %+v, want an error, not stale, age %v", ev, verify.DefaultMaxStaleness)
			}

			// Past it, the request waits for a fetch, which fails: closed.
			clk.Advance(verify.DefaultRefreshInterval)
			tok := iss.Token(t, audience, "read")
			_, err := v.Verify(ctx, tok)
			if !errors.Is(err, verify.ErrKeySetStale) || errors.Is(err, verify.ErrUnknownKey) {
				t.Fatalf("Verify past the maximum staleness: %v, want ErrKeySetStale only", err)
			}
			if !strings.Contains(err.Error(), "last fetched at") {
				t.Errorf("error %q does not say when the keys were fetched", err)
			}
			ev = nextEvent(t, events)
			if ev.Err == nil || !ev.Stale || ev.Age != verify.DefaultMaxStaleness+verify.DefaultRefreshInterval {
				t.Fatalf("event of the failed fetch past the limit = %+v, want an error, stale", ev)
			}
			// Within the refresh interval no fetch starts: still closed.
			if _, err := v.Verify(ctx, tok); !errors.Is(err, verify.ErrKeySetStale) {
				t.Fatalf("second Verify past the maximum staleness: %v, want ErrKeySetStale", err)
			}

			// Middleware refuses the token with a description that
			// names the keys, not the token.
			h := v.Middleware("read")(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
				t.Error("handler reached with stale keys")
			}))
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.Header.Set("Authorization", "Bearer "+tok)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if got, want := w.Code, http.StatusUnauthorized; got != want {
				t.Errorf("Middleware status = %d, want %d", got, want)
			}
			if ch := w.Header().Get("WWW-Authenticate"); !strings.Contains(ch, `error="invalid_token"`) || !strings.Contains(ch, "keys are out of date") {
				t.Errorf("WWW-Authenticate = %q, want invalid_token with a description of stale keys", ch)
			}

			if tc.name == "closed" {
				return
			}
			iss.SetDown(false)
			clk.Advance(verify.DefaultRefreshInterval)
			if _, err := v.Verify(ctx, tok); err != nil {
				t.Fatalf("Verify once the issuer is back: %v", err)
			}
			if ev := nextEvent(t, events); ev.Err != nil || ev.Stale || !ev.LastSuccess.Equal(clk.Now()) {
				t.Fatalf("event of the fetch once the issuer is back = %+v, want a success", ev)
			}
		})
	}
}

// TestMaxStalenessOption sets a shorter limit on a shared RemoteKeySet.
func TestMaxStalenessOption(t *testing.T) {
	clk := newClock()
	iss := verifytest.NewIssuer(t, verifytest.WithClock(clk.Now))
	ks, err := verify.NewRemoteKeySet(iss.URL+verifytest.JWKSPath, verify.WithClock(clk.Now),
		verify.WithMaxStaleness(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	v, err := verify.New(iss.URL, audience, verify.WithKeySet(ks), verify.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	warm(t, iss, v)
	iss.SetDown(true)
	ctx := context.Background()
	clk.Advance(2 * time.Hour)
	if _, err := v.Verify(ctx, iss.Token(t, audience)); err != nil {
		t.Fatalf("Verify at the limit: %v", err)
	}
	clk.Advance(verify.DefaultRefreshInterval)
	if _, err := v.Verify(ctx, iss.Token(t, audience)); !errors.Is(err, verify.ErrKeySetStale) {
		t.Fatalf("Verify past the limit: %v, want ErrKeySetStale", err)
	}
	// A revalidation (304) counts as a successful fetch.
	iss.SetDown(false)
	clk.Advance(verify.DefaultRefreshInterval)
	before := iss.JWKSFetches()
	if _, err := v.Verify(ctx, iss.Token(t, audience)); err != nil {
		t.Fatalf("Verify once the issuer is back: %v", err)
	}
	if got, want := iss.JWKSFetches()-before, 1; got != want {
		t.Fatalf("fetches = %d, want %d", got, want)
	}
	iss.SetDown(true)
	clk.Advance(2 * time.Hour)
	if _, err := v.Verify(ctx, iss.Token(t, audience)); err != nil {
		t.Fatalf("Verify two hours after a revalidation: %v", err)
	}
}

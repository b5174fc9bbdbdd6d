package verify_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/issuer-oauth/issuer/verify"
	"github.com/issuer-oauth/issuer/verify/verifytest"
)

const audience = "https://api.example.com"

// clock is a test clock that moves only when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().Truncate(time.Second)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// eventually calls cond until it returns true, and fails the test if it
// has not within timeout, polling every 1 ms up to every 10 ms. It waits
// for goroutines to reach a state, not for time to pass (a clock moves
// that). verify is a module of its own and its tests import nothing of the
// issuer's, so this is a small copy of the issuer's internal/testutil
// helper.
func eventually(t testing.TB, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for wait := time.Millisecond; !cond(); wait = min(2*wait, 10*time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", timeout)
			return
		}
		time.Sleep(wait)
	}
}

// setup starts a test issuer and a Verifier of its tokens that discovers
// its keys; both run on clk. The Verifier has verified one token, so it
// holds the issuer's keys, fetched once.
func setup(t testing.TB, clk *clock, opts ...verify.Option) (*verifytest.Issuer, *verify.Verifier) {
	t.Helper()
	iss := verifytest.NewIssuer(t, verifytest.WithClock(clk.Now))
	v, err := verify.New(iss.URL, audience, append([]verify.Option{verify.WithClock(clk.Now)}, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	warm(t, iss, v)
	return iss, v
}

// warm verifies a token of iss with v, which fetches v's keys (New does
// not), and checks that it took one fetch.
func warm(t testing.TB, iss *verifytest.Issuer, v *verify.Verifier) {
	t.Helper()
	before := iss.JWKSFetches()
	if _, err := v.Verify(context.Background(), iss.Token(t, v.Audience())); err != nil {
		t.Fatalf("Verify of a first token: %v", err)
	}
	if got, want := iss.JWKSFetches()-before, 1; got != want {
		t.Fatalf("JWK Set fetches for the first token = %d, want %d", got, want)
	}
}

// segments splits a compact JWS.
func segments(t testing.TB, tok string) (h, p, s string) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d segments", len(parts))
	}
	return parts[0], parts[1], parts[2]
}

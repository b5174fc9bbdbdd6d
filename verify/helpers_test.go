package verify_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/issuer-oauth/issuer/internal/testutil"
	"github.com/issuer-oauth/issuer/verify"
	"github.com/issuer-oauth/issuer/verify/verifytest"
)

const audience = "https://api.example.com"

// newClock returns a fake clock at the current second.
func newClock() *testutil.Clock { return testutil.NewClock(time.Now().Truncate(time.Second)) }

// setup starts a test issuer and a Verifier of its tokens that discovers
// its keys; both run on clk.
func setup(t testing.TB, clk *testutil.Clock, opts ...verify.Option) (*verifytest.Issuer, *verify.Verifier) {
	t.Helper()
	iss := verifytest.NewIssuer(t, verifytest.WithClock(clk.Now))
	v, err := verify.New(context.Background(), iss.URL, audience, append([]verify.Option{verify.WithClock(clk.Now)}, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return iss, v
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

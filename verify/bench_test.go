package verify_test

import (
	"context"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/issuer-oauth/issuer/verify"
	"github.com/issuer-oauth/issuer/verify/verifytest"
)

// benchClaims is what a bare jwt.ParseWithClaims call would decode an
// access token into (the issuer's own claims type).
type benchClaims struct {
	jwt.RegisteredClaims
	ClientID string `json:"client_id"`
	Scope    string `json:"scope"`
}

var benchAlgs = []string{"ES256", "EdDSA", "RS256"}

func benchSetup(b *testing.B, alg string) (*verifytest.Issuer, *verify.Verifier, string) {
	iss := verifytest.NewIssuer(b, verifytest.WithAlg(alg))
	v, err := verify.New(iss.URL, audience)
	if err != nil {
		b.Fatal(err)
	}
	warm(b, iss, v) // the keys are fetched at the first verification
	return iss, v, iss.Token(b, audience, "read", "write")
}

// BenchmarkVerify is Verify on the cached path: discovered keys, warm
// cache.
func BenchmarkVerify(b *testing.B) {
	for _, alg := range benchAlgs {
		b.Run(alg, func(b *testing.B) {
			_, v, tok := benchSetup(b, alg)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(ctx, tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerifyParallel is BenchmarkVerify from every CPU at once.
func BenchmarkVerifyParallel(b *testing.B) {
	_, v, tok := benchSetup(b, "ES256")
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Verify(ctx, tok); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkParseWithClaims is the baseline: bare jwt.ParseWithClaims of the
// same token with the same key, into a struct.
func BenchmarkParseWithClaims(b *testing.B) {
	for _, alg := range benchAlgs {
		b.Run(alg, func(b *testing.B) {
			iss, _, tok := benchSetup(b, alg)
			pub := iss.PrivateKey().Public()
			keyfunc := func(*jwt.Token) (any, error) { return pub, nil }
			b.ReportAllocs()
			for b.Loop() {
				var c benchClaims
				if _, err := jwt.ParseWithClaims(tok, &c, keyfunc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkParseWithClaimsMap is the baseline with jwt.MapClaims.
func BenchmarkParseWithClaimsMap(b *testing.B) {
	for _, alg := range benchAlgs {
		b.Run(alg, func(b *testing.B) {
			iss, _, tok := benchSetup(b, alg)
			pub := iss.PrivateKey().Public()
			keyfunc := func(*jwt.Token) (any, error) { return pub, nil }
			b.ReportAllocs()
			for b.Loop() {
				if _, err := jwt.ParseWithClaims(tok, jwt.MapClaims{}, keyfunc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerifyVsParseWithClaims runs Verify and the bare
// jwt.ParseWithClaims baseline alternately on the same token and key, so
// that both see the same machine load, and reports the ratio of their
// times (verify/jwt).
func BenchmarkVerifyVsParseWithClaims(b *testing.B) {
	for _, alg := range benchAlgs {
		b.Run(alg, func(b *testing.B) {
			iss, v, tok := benchSetup(b, alg)
			pub := iss.PrivateKey().Public()
			keyfunc := func(*jwt.Token) (any, error) { return pub, nil }
			ctx := context.Background()
			var tv, tj time.Duration
			verifyOnce := func() {
				start := time.Now()
				if _, err := v.Verify(ctx, tok); err != nil {
					b.Fatal(err)
				}
				tv += time.Since(start)
			}
			parseOnce := func() {
				start := time.Now()
				var c benchClaims
				if _, err := jwt.ParseWithClaims(tok, &c, keyfunc); err != nil {
					b.Fatal(err)
				}
				tj += time.Since(start)
			}
			n := 0
			for b.Loop() {
				if n%2 == 0 {
					verifyOnce()
					parseOnce()
				} else {
					parseOnce()
					verifyOnce()
				}
				n++
			}
			b.ReportMetric(float64(tv.Nanoseconds())/float64(n), "verify-ns/op")
			b.ReportMetric(float64(tj.Nanoseconds())/float64(n), "jwt-ns/op")
			b.ReportMetric(float64(tv)/float64(tj), "ratio")
		})
	}
}

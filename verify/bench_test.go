package verify_test

import (
	"context"
	"slices"
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

// benchSetup returns a test issuer, a Verifier of its tokens with the
// given options (its keys fetched) and a token.
func benchSetup(b *testing.B, alg string, opts ...verify.Option) (*verifytest.Issuer, *verify.Verifier, string) {
	iss := verifytest.NewIssuer(b, verifytest.WithAlg(alg))
	v, err := verify.New(iss.URL, audience, opts...)
	if err != nil {
		b.Fatal(err)
	}
	warm(b, iss, v) // the keys are fetched at the first verification
	return iss, v, iss.Token(b, audience, "read", "write")
}

// BenchmarkVerify is Verify in full (the token cache off) with
// discovered keys, cached.
func BenchmarkVerify(b *testing.B) {
	for _, alg := range benchAlgs {
		b.Run(alg, func(b *testing.B) {
			_, v, tok := benchSetup(b, alg, verify.WithTokenCache(0))
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
	_, v, tok := benchSetup(b, "ES256", verify.WithTokenCache(0))
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
// times (verify/jwt). The token cache is off: this is the cost of a token
// seen for the first time.
func BenchmarkVerifyVsParseWithClaims(b *testing.B) {
	for _, alg := range benchAlgs {
		b.Run(alg, func(b *testing.B) {
			iss, v, tok := benchSetup(b, alg, verify.WithTokenCache(0))
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

// BenchmarkTokenCache verifies one token over and over with the token
// cache on (every call after the first a hit) and off (every call in
// full), alternately in one loop so that both see the same machine load,
// and reports each one's median time and allocations per verification
// and the speed-up (uncached/cached).
func BenchmarkTokenCache(b *testing.B) {
	for _, alg := range benchAlgs {
		b.Run(alg, func(b *testing.B) {
			iss, cached, tok := benchSetup(b, alg) // the cache is on by default
			uncached, err := verify.New(iss.URL, audience, verify.WithTokenCache(0))
			if err != nil {
				b.Fatal(err)
			}
			warm(b, iss, uncached)
			ctx := context.Background()
			verifyWith := func(v *verify.Verifier) {
				if _, err := v.Verify(ctx, tok); err != nil {
					b.Fatal(err)
				}
			}
			verifyWith(cached)
			// The cached calls are timed in batches: a hit is fast enough
			// that reading the clock around each one would weigh. Medians,
			// not means: on a shared machine a preempted call would weigh
			// on one side only.
			const batch = 16
			var tc, tu []time.Duration
			for b.Loop() {
				start := time.Now()
				verifyWith(uncached)
				tu = append(tu, time.Since(start))
				start = time.Now()
				for range batch {
					verifyWith(cached)
				}
				tc = append(tc, time.Since(start)/batch)
			}
			mc, mu := median(tc), median(tu)
			b.ReportMetric(float64(mc.Nanoseconds()), "cached-median-ns")
			b.ReportMetric(float64(mu.Nanoseconds()), "uncached-median-ns")
			b.ReportMetric(float64(mu)/float64(mc), "speedup")
			b.ReportMetric(testing.AllocsPerRun(100, func() { verifyWith(cached) }), "cached-allocs/op")
			b.ReportMetric(testing.AllocsPerRun(100, func() { verifyWith(uncached) }), "uncached-allocs/op")
		})
	}
}

// median returns the median of d, which it sorts.
func median(d []time.Duration) time.Duration {
	slices.Sort(d)
	return d[len(d)/2]
}

// BenchmarkTokenCacheFirstSeen verifies tokens the cache has not seen:
// 1024 distinct tokens in turn through a cache of 256, so that every call
// is a miss that evicts an entry, beside a Verifier without a cache on
// the same tokens, alternately. It reports the cost of the cache on a
// first-seen token (ratio of the median times, cached/uncached), and that
// the cache stays within its size.
func BenchmarkTokenCacheFirstSeen(b *testing.B) {
	const distinct, size = 1024, 256
	iss := verifytest.NewIssuer(b)
	cached, err := verify.New(iss.URL, audience, verify.WithTokenCache(size))
	if err != nil {
		b.Fatal(err)
	}
	uncached, err := verify.New(iss.URL, audience, verify.WithTokenCache(0))
	if err != nil {
		b.Fatal(err)
	}
	warm(b, iss, cached)
	warm(b, iss, uncached)
	toks := make([]string, distinct)
	for i := range toks {
		toks[i] = iss.Token(b, audience, "read", "write")
	}
	ctx := context.Background()
	timed := func(v *verify.Verifier, tok string) time.Duration {
		start := time.Now()
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	// Medians, not means: on a shared machine a preempted call would
	// weigh on one side only.
	before := cached.CacheStats()
	var tc, tu []time.Duration
	n := 0
	for b.Loop() {
		tok := toks[n%distinct]
		if n%2 == 0 {
			tc = append(tc, timed(cached, tok))
			tu = append(tu, timed(uncached, tok))
		} else {
			tu = append(tu, timed(uncached, tok))
			tc = append(tc, timed(cached, tok))
		}
		n++
	}
	st := cached.CacheStats()
	if st.Entries > size || st.Hits != before.Hits {
		b.Fatalf("CacheStats = %+v: more than %d entries, or hits", st, size)
	}
	mc, mu := median(tc), median(tu)
	b.ReportMetric(float64(mc.Nanoseconds()), "cached-median-ns")
	b.ReportMetric(float64(mu.Nanoseconds()), "uncached-median-ns")
	b.ReportMetric(float64(mc)/float64(mu), "ratio")
	b.ReportMetric(float64(st.Entries), "entries")
	b.ReportMetric(float64(st.Evictions-before.Evictions)/float64(n), "evictions/op")
}

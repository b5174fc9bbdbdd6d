package bolt

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/issuer-oauth/issuer/internal/store"
)

// The write benchmarks run each operation on a real file, most of them from
// many goroutines at once as the token endpoint does under load, with group
// commit ("group") and without it ("each": a transaction per call, as
// db.Update alone gives). The machine is shared and noisy, so compare the two
// in the same run rather than with figures from another:
//
//	go test -run '^$' -bench . -count 5 ./internal/store/bolt/

// parallelism is the number of goroutines per GOMAXPROCS in the parallel
// benchmarks: with 2 CPUs, 64 goroutines, like the 64 connections of the
// load test.
const parallelism = 32

var commitModes = []struct {
	name string
	opts []Option
}{
	{"each", []Option{withoutGroupCommit()}},
	{"group", nil},
}

func openBench(b *testing.B, opts ...Option) *Store {
	b.Helper()
	opts = append([]Option{WithNow(func() time.Time { return testNow })}, opts...)
	s, err := Open(filepath.Join(b.TempDir(), "issuer.db"), opts...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := s.Close(); err != nil {
			b.Error(err)
		}
	})
	return s
}

func BenchmarkCreateFamily(b *testing.B) {
	for _, m := range commitModes {
		b.Run(m.name, func(b *testing.B) {
			s := openBench(b, m.opts...)
			benchCreateFamily(b, s)
		})
	}
}

func benchCreateFamily(b *testing.B, s *Store) {
	ctx := context.Background()
	var n atomic.Int64
	b.SetParallelism(parallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.CreateFamily(ctx, family(fmt.Sprint(n.Add(1)))); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkCreateFamilySerial is a lone writer: group commit must not make
// it slower than a transaction of its own.
func BenchmarkCreateFamilySerial(b *testing.B) {
	for _, m := range commitModes {
		b.Run(m.name, func(b *testing.B) {
			ctx := context.Background()
			s := openBench(b, m.opts...)
			b.ResetTimer()
			for i := range b.N {
				if err := s.CreateFamily(ctx, family(fmt.Sprint(i))); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkRotateRefresh(b *testing.B) {
	for _, m := range commitModes {
		b.Run(m.name, func(b *testing.B) {
			ctx := context.Background()
			s := openBench(b, m.opts...)
			// One family per goroutine, rotated over and over.
			goroutines := parallelism * runtime.GOMAXPROCS(0)
			for i := range goroutines {
				if err := s.CreateFamily(ctx, family(fmt.Sprint(i))); err != nil {
					b.Fatal(err)
				}
			}
			var next atomic.Int64
			b.SetParallelism(parallelism)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				id := fmt.Sprint(next.Add(1) - 1)
				for r := 0; pb.Next(); r++ {
					if _, err := s.RotateRefresh(ctx, rotate(id, r, r+1)); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

func BenchmarkGetClient(b *testing.B) {
	for _, m := range []struct {
		name string
		size int
	}{
		{"uncached", 0},
		{"cached", clientCacheSize},
	} {
		b.Run(m.name, func(b *testing.B) {
			ctx := context.Background()
			s := openBench(b, withClientCacheSize(m.size))
			c := store.Client{
				ID:         "client",
				Name:       "A client",
				SecretHash: make([]byte, 32),
				GrantTypes: []string{"client_credentials", "refresh_token"},
				Scopes:     []string{"read", "write"},
				Audiences:  []string{"https://api.example.com"},
				AuthMethod: "client_secret_basic",
				CreatedAt:  testNow,
				UpdatedAt:  testNow,
			}
			if err := s.CreateClient(ctx, c); err != nil {
				b.Fatal(err)
			}
			b.SetParallelism(parallelism)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := s.GetClient(ctx, c.ID); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

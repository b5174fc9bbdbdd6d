package redis_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/issuer-oauth/issuer/internal/redistest"
	"github.com/issuer-oauth/issuer/internal/store"
	"github.com/issuer-oauth/issuer/internal/store/redis"
)

// benchStore returns a store on a new redis-server, with a real clock.
func benchStore(b *testing.B, opts ...redis.Option) *redis.Store {
	b.Helper()
	srv := redistest.Start(b)
	return open(b, srv.URL(), opts...)
}

func benchClient() store.Client {
	return store.Client{
		ID:         "bench-client",
		Name:       "Bench",
		SecretHash: make([]byte, 32),
		GrantTypes: []string{"client_credentials", "refresh_token"},
		Scopes:     []string{"read", "write"},
		Audiences:  []string{"https://api.example.com"},
		AuthMethod: "client_secret_basic",
		CreatedAt:  time.Now(),
		UpdatedAt:  time.Now(),
	}
}

func benchmarkGetClient(b *testing.B, opts ...redis.Option) {
	s := benchStore(b, opts...)
	ctx := b.Context()
	if err := s.CreateClient(ctx, benchClient()); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.GetClient(ctx, "bench-client"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGetClientCached(b *testing.B) {
	benchmarkGetClient(b, redis.WithClientCacheTTL(time.Hour))
}

func BenchmarkGetClientUncached(b *testing.B) { benchmarkGetClient(b, redis.WithClientCacheTTL(0)) }

func benchFamily(id string) store.Family {
	return store.Family{
		ID:        id,
		ClientID:  "bench-client",
		Scopes:    []string{"read", "write"},
		Audience:  []string{"https://api.example.com"},
		Current:   id + "-0",
		ExpiresAt: time.Now().Add(time.Hour),
	}
}

func BenchmarkCreateFamily(b *testing.B) {
	s := benchStore(b)
	ctx := b.Context()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if err := s.CreateFamily(ctx, benchFamily("fam-"+strconv.Itoa(i))); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGetFamily(b *testing.B) {
	s := benchStore(b)
	ctx := b.Context()
	if err := s.CreateFamily(ctx, benchFamily("fam")); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.GetFamily(ctx, "fam"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRotateRefresh(b *testing.B) {
	s := benchStore(b)
	ctx := b.Context()
	f := benchFamily("fam")
	if err := s.CreateFamily(ctx, f); err != nil {
		b.Fatal(err)
	}
	r := store.Rotation{FamilyID: f.ID, ClientID: f.ClientID, OldID: f.Current, ExpiresAt: f.ExpiresAt}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		r.NewID = "jti-" + strconv.Itoa(i)
		if _, err := s.RotateRefresh(ctx, r); err != nil {
			b.Fatal(err)
		}
		r.OldID = r.NewID
	}
}

func BenchmarkRevokeToken(b *testing.B) {
	s := benchStore(b)
	ctx := b.Context()
	until := time.Now().Add(time.Hour)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if err := s.RevokeToken(ctx, "jti-"+strconv.Itoa(i), until); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkIsRevoked(b *testing.B) {
	s := benchStore(b)
	ctx := b.Context()
	if err := s.RevokeToken(ctx, "revoked", time.Now().Add(time.Hour)); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		jti := "revoked" // every other call asks about an unknown id
		if i%2 == 0 {
			jti = "unknown"
		}
		if _, err := s.IsRevoked(ctx, jti); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkListKeys(b *testing.B) {
	s := benchStore(b)
	ctx := b.Context()
	now := time.Now()
	for i := range 3 {
		k := store.Key{ID: "k" + strconv.Itoa(i), Alg: "ES256", Private: make([]byte, 200), CreatedAt: now, NotBefore: now.Add(time.Duration(i) * time.Hour)}
		if err := s.AddKey(ctx, k); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		keys, err := s.ListKeys(ctx)
		if err != nil || len(keys) != 3 {
			b.Fatalf("ListKeys() = %d keys, %v", len(keys), err)
		}
	}
}

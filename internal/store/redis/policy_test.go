package redis_test

import (
	"errors"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/issuer-oauth/issuer/internal/redistest"
	"github.com/issuer-oauth/issuer/internal/store"
	"github.com/issuer-oauth/issuer/internal/store/redis"
)

// TestRetryKeyExpiry checks that the answer kept for a retry lives in a key
// that Redis frees when the interval ends, and that reuse deletes it.
func TestRetryKeyExpiry(t *testing.T) {
	srv := redistest.Start(t)
	admin := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { admin.Close() })
	s := open(t, srv.URL(), redis.WithNow(fixedNow()))
	ctx := t.Context()
	now := time.Now()
	if err := s.CreateFamily(ctx, store.Family{ID: "f", ClientID: "c", Current: "f-0", ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	r := store.RetryRotation{
		Rotation: store.Rotation{FamilyID: "f", ClientID: "c", OldID: "f-0", NewID: "f-1", ExpiresAt: now.Add(time.Hour)},
		Interval: 20 * time.Second, Request: "req", Response: []byte("sealed"),
	}
	if _, err := s.RotateRefreshRetry(ctx, r); err != nil {
		t.Fatalf("RotateRefreshRetry: %v", err)
	}
	pttl, err := admin.PTTL(ctx, "issuer:famretry:{f}").Result()
	if err != nil {
		t.Fatal(err)
	}
	if pttl <= 0 || pttl > 20*time.Second {
		t.Errorf("PTTL of the retry key = %v, want within (0, 20s]", pttl)
	}
	r.OldID, r.Request = "f-0", "another request"
	if _, err := s.RotateRefreshRetry(ctx, r); !errors.Is(err, store.ErrReused) {
		t.Fatalf("RotateRefreshRetry(another request): got error %v, want %v", err, store.ErrReused)
	}
	if n, err := admin.Exists(ctx, "issuer:famretry:{f}").Result(); err != nil || n != 0 {
		t.Errorf("EXISTS retry key after reuse = %d, %v; want 0", n, err)
	}
}

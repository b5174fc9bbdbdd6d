package redis_test

import (
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/issuer-oauth/issuer/internal/redistest"
	"github.com/issuer-oauth/issuer/internal/store"
	"github.com/issuer-oauth/issuer/internal/store/redis"
)

// TestStatusListIndexedByEveryInstance: a list whose first lease could not
// add it to the index of lists (Redis failed in between) is added by the
// next instance that leases from it, before it hands out an index: no
// token's list escapes SetOwnerStatus.
func TestStatusListIndexedByEveryInstance(t *testing.T) {
	srv := redistest.Start(t)
	admin := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { admin.Close() })
	now := func() time.Time { return time.Date(2031, 1, 2, 3, 4, 5, 0, time.UTC) }
	open := func() *redis.Store {
		s, err := redis.Open(t.Context(), srv.URL(), redis.WithNow(now))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a, b := open(), open()
	l := store.StatusLease{List: "x", N: 4, Capacity: 1 << 10, Until: now().Add(time.Hour), Owners: []string{"client:c"}}
	if _, err := a.LeaseStatus(t.Context(), l); err != nil {
		t.Fatal(err)
	}
	// As if a's ZADD had failed after its script ran.
	if err := admin.Del(t.Context(), "issuer:{statuslists}").Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.LeaseStatus(t.Context(), l); err != nil {
		t.Fatal(err)
	}
	n, err := b.SetOwnerStatus(t.Context(), "client:c")
	if err != nil || n != 8 {
		t.Errorf("SetOwnerStatus after the other instance's lease = %d, %v, want 8 (both blocks), nil", n, err)
	}
}

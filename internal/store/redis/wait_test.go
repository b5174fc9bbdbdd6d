package redis_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/issuer-oauth/issuer/internal/redistest"
	"github.com/issuer-oauth/issuer/internal/store"
	"github.com/issuer-oauth/issuer/internal/store/redis"
	"github.com/issuer-oauth/issuer/internal/store/storetest"
	"github.com/issuer-oauth/issuer/internal/testutil"
)

// TestConformanceWaitReplicas runs the suite on a store that waits for one
// replica after every change that must survive a failover, on a master
// with a real replica: every operation behaves as without waiting.
func TestConformanceWaitReplicas(t *testing.T) {
	master := redistest.Start(t, redistest.WithArgs("--repl-diskless-sync-delay", "0"))
	_, port, _ := strings.Cut(master.Addr(), ":")
	replica := redistest.Start(t, redistest.WithArgs("--replicaof", "127.0.0.1", port))
	testutil.Eventually(t, 20*time.Second, func() bool {
		info, err := replica.Do("INFO", "replication")
		return err == nil && strings.Contains(info, "master_link_status:up")
	})
	admin := goredis.NewClient(&goredis.Options{Addr: master.Addr()})
	t.Cleanup(func() { admin.Close() })
	storetest.Run(t, func(t *testing.T, now func() time.Time) store.Store {
		if err := admin.FlushDB(t.Context()).Err(); err != nil {
			t.Fatalf("FLUSHDB: %v", err)
		}
		s, err := redis.Open(t.Context(), master.URL(), redis.WithNow(now), redis.WithWaitReplicas(1, 5*time.Second))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s
	})
}

// TestWaitReplicasOnCluster: on Redis Cluster the WAIT goes to the master
// that made the change. The test cluster has no replicas, so a change is
// never acknowledged: it fails with store.ErrNotReplicated (and
// store.ErrUnavailable), and stands on its master.
func TestWaitReplicasOnCluster(t *testing.T) {
	cl := redistest.StartCluster(t, 3)
	s := open(t, cl.URL(), redis.WithWaitReplicas(1, 20*time.Millisecond))
	ctx := t.Context()
	for _, id := range []string{"a", "b", "c"} {
		err := s.CreateFamily(ctx, store.Family{ID: id, ClientID: "c", Current: "1", ExpiresAt: time.Now().Add(time.Hour)})
		if err != nil {
			t.Fatalf("CreateFamily (which does not wait): %v", err)
		}
		err = s.RevokeFamily(ctx, id)
		if !errors.Is(err, store.ErrNotReplicated) || !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("RevokeFamily(%s) without replicas = %v, want store.ErrNotReplicated and store.ErrUnavailable", id, err)
		}
		if f, err := s.GetFamily(ctx, id); err != nil || !f.Revoked {
			t.Errorf("GetFamily(%s) = %+v, %v; want the revocation standing on the master", id, f, err)
		}
	}
}

// BenchmarkRotateRefreshWait measures what waiting for a replica costs a
// refresh-token rotation: the same store operation on one master with a
// real replica, without and with WithWaitReplicas(1, …). Compare the two
// in one run (the ratio), not with other machines.
func BenchmarkRotateRefreshWait(b *testing.B) {
	master := redistest.Start(b, redistest.WithArgs("--repl-diskless-sync-delay", "0"))
	_, port, _ := strings.Cut(master.Addr(), ":")
	replica := redistest.Start(b, redistest.WithArgs("--replicaof", "127.0.0.1", port))
	testutil.Eventually(b, 20*time.Second, func() bool {
		info, err := replica.Do("INFO", "replication")
		return err == nil && strings.Contains(info, "master_link_status:up")
	})
	for _, bc := range []struct {
		name string
		opts []redis.Option
	}{
		{"no wait", nil},
		{"wait 1 replica", []redis.Option{redis.WithWaitReplicas(1, 5*time.Second)}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := open(b, master.URL(), bc.opts...)
			ctx := b.Context()
			f := benchFamily("wait-" + strconv.FormatInt(time.Now().UnixNano(), 36))
			if err := s.CreateFamily(ctx, f); err != nil {
				b.Fatal(err)
			}
			cur := f.Current
			n := 0
			for b.Loop() {
				n++
				next := f.ID + "-" + strconv.Itoa(n)
				if _, err := s.RotateRefresh(ctx, store.Rotation{FamilyID: f.ID, ClientID: f.ClientID,
					OldID: cur, NewID: next, ExpiresAt: f.ExpiresAt}); err != nil {
					b.Fatal(err)
				}
				cur = next
			}
		})
	}
}

package redis_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/issuer-oauth/issuer/internal/redistest"
	"github.com/issuer-oauth/issuer/internal/store"
	"github.com/issuer-oauth/issuer/internal/store/redis"
	"github.com/issuer-oauth/issuer/internal/store/storetest"
	"github.com/issuer-oauth/issuer/internal/testutil"
)

// open opens a store on urls and closes it when t ends.
func open(t testing.TB, urls string, opts ...redis.Option) *redis.Store {
	t.Helper()
	s, err := redis.Open(context.Background(), urls, opts...)
	if err != nil {
		t.Fatalf("Open(%q): %v", urls, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close() = %v, want nil", err)
		}
	})
	return s
}

// fixedNow returns a clock stopped at the current time, in whole
// milliseconds, so that Redis expiries are near.
func fixedNow() func() time.Time {
	now := time.Now().Truncate(time.Millisecond)
	return func() time.Time { return now }
}

// waitSubscribed waits until s's subscriber is listening, which it reports
// on KeyChanges.
func waitSubscribed(t *testing.T, s *redis.Store) {
	t.Helper()
	select {
	case <-s.KeyChanges():
	case <-time.After(5 * time.Second):
		t.Fatal("no KeyChanges signal from the initial subscription within 5s")
	}
}

func TestConformance(t *testing.T) {
	srv := redistest.Start(t)
	admin := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { admin.Close() })
	storetest.Run(t, func(t *testing.T, now func() time.Time) store.Store {
		if err := admin.FlushDB(t.Context()).Err(); err != nil {
			t.Fatalf("FLUSHDB: %v", err)
		}
		s, err := redis.Open(t.Context(), srv.URL(), redis.WithNow(now))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s
	})
}

// TestConformanceNew runs the suite on stores made by New on one shared
// client, each with its own prefix.
func TestConformanceNew(t *testing.T) {
	srv := redistest.Start(t)
	client := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { client.Close() })
	n := 0
	storetest.Run(t, func(t *testing.T, now func() time.Time) store.Store {
		n++
		return redis.New(client, redis.WithNow(now), redis.WithPrefix(fmt.Sprintf("test%d", n)))
	})
	if err := client.Ping(t.Context()).Err(); err != nil {
		t.Errorf("shared client after the stores were closed: Ping() = %v, want nil", err)
	}
}

// TestCluster runs on a three-master Redis Cluster: the conformance suite
// (every script's keys share one slot, or Redis refuses it), opening by a
// single seed, and cache invalidation across nodes.
func TestCluster(t *testing.T) {
	cl := redistest.StartCluster(t, 3)
	admin := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: cl.Addrs()})
	t.Cleanup(func() { admin.Close() })

	t.Run("Conformance", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T, now func() time.Time) store.Store {
			err := admin.ForEachMaster(t.Context(), func(ctx context.Context, c *goredis.Client) error {
				return c.FlushDB(ctx).Err()
			})
			if err != nil {
				t.Fatalf("FLUSHDB: %v", err)
			}
			s, err := redis.Open(t.Context(), cl.URL(), redis.WithNow(now))
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			return s
		})
	})

	t.Run("SingleSeedURL", func(t *testing.T) {
		// One URL of a cluster node opens a cluster client: families
		// land on every node, where a plain client would get MOVED.
		s := open(t, cl.Nodes[0].URL(), redis.WithPrefix("single-seed"))
		ctx := t.Context()
		now := time.Now()
		for i := range 30 {
			id := fmt.Sprintf("fam-%d", i)
			f := store.Family{ID: id, ClientID: "c", Current: "j", ExpiresAt: now.Add(time.Hour)}
			if err := s.CreateFamily(ctx, f); err != nil {
				t.Fatalf("CreateFamily(%q): %v", id, err)
			}
			if _, err := s.RotateRefresh(ctx, store.Rotation{FamilyID: id, ClientID: "c", OldID: "j", NewID: "k", ExpiresAt: now.Add(time.Hour)}); err != nil {
				t.Fatalf("RotateRefresh(%q): %v", id, err)
			}
		}
		var (
			mu    sync.Mutex
			nodes int
		)
		err := admin.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
			keys, err := c.Keys(ctx, "single-seed:fam:*").Result()
			mu.Lock()
			defer mu.Unlock()
			if len(keys) > 0 {
				nodes++
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if nodes < 2 {
			t.Errorf("30 families landed on %d node(s), want several", nodes)
		}
		if err := s.Ping(ctx); err != nil {
			t.Errorf("Ping() = %v, want nil", err)
		}
	})

	t.Run("CacheInvalidation", func(t *testing.T) {
		testCacheInvalidation(t, cl.URL())
	})
}

// TestKeyExpiry checks that every key that can expire has a Redis expiry
// at the record's own expiry, and that only the clients, keys and user keys
// have none.
func TestKeyExpiry(t *testing.T) {
	srv := redistest.Start(t)
	admin := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { admin.Close() })
	now := fixedNow()
	s := open(t, srv.URL(), redis.WithNow(now))
	ctx := t.Context()
	t0 := now()

	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	must("CreateClient", s.CreateClient(ctx, store.Client{ID: "c"}))
	_, err := s.InitKeys(ctx, store.Key{ID: "k1", NotBefore: t0})
	must("InitKeys", err)
	must("AddKey", s.AddKey(ctx, store.Key{ID: "k2", NotBefore: t0}))
	fam := func(id string) store.Family {
		return store.Family{ID: id, ClientID: "c", Current: id + "-0", ExpiresAt: t0.Add(time.Hour)}
	}
	for _, id := range []string{"live", "revoked", "rotated", "reused"} {
		must("CreateFamily", s.CreateFamily(ctx, fam(id)))
	}
	must("RevokeFamily", s.RevokeFamily(ctx, "revoked"))
	_, err = s.RotateRefresh(ctx, store.Rotation{FamilyID: "rotated", ClientID: "c", OldID: "rotated-0", NewID: "rotated-1", ExpiresAt: t0.Add(2 * time.Hour)})
	must("RotateRefresh", err)
	_, err = s.RotateRefresh(ctx, store.Rotation{FamilyID: "reused", ClientID: "c", OldID: "stale", NewID: "x", ExpiresAt: t0.Add(2 * time.Hour)})
	if !errors.Is(err, store.ErrReused) {
		t.Fatalf("RotateRefresh(stale): got error %v, want %v", err, store.ErrReused)
	}
	must("RevokeToken", s.RevokeToken(ctx, "jti", t0.Add(30*time.Minute)))
	must("RevokeToken(longer)", s.RevokeToken(ctx, "jti", t0.Add(45*time.Minute)))
	must("RevokeToken(shorter)", s.RevokeToken(ctx, "jti", t0.Add(10*time.Minute)))
	must("RevokeToken(past)", s.RevokeToken(ctx, "old", t0.Add(-time.Second)))
	must("CreateUser", s.CreateUser(ctx, store.User{ID: "u1", Username: "alice"}))
	_, err = s.SetUserPassword(ctx, "alice", "hash")
	must("SetUserPassword", err)

	// The expiry each key should have; -1 is none.
	want := map[string]time.Duration{
		"issuer:{clients}":     -1,
		"issuer:{keys}":        -1,
		"issuer:fam:{live}":    time.Hour,
		"issuer:fam:{revoked}": time.Hour,
		"issuer:fam:{rotated}": 2 * time.Hour,
		"issuer:fam:{reused}":  time.Hour,
		"issuer:rev:{jti}":     45 * time.Minute,

		"issuer:{users}:user:alice": -1,
		"issuer:{users}:ids":        -1,
		"issuer:schema_version":     -1,
	}
	got := map[string]bool{}
	iter := admin.Scan(ctx, 0, "*", 100).Iterator()
	for iter.Next(ctx) {
		key := iter.Val()
		got[key] = true
		ttl, ok := want[key]
		if !ok {
			t.Errorf("unexpected key %q", key)
			continue
		}
		pttl, err := admin.PTTL(ctx, key).Result()
		must("PTTL", err)
		if ttl < 0 {
			if pttl != -1 {
				t.Errorf("PTTL %s = %v, want none", key, pttl)
			}
			continue
		}
		// The expiry is at t0+ttl in real time; t0 was a moment ago.
		if remaining := time.Until(t0.Add(ttl)); pttl <= 0 || pttl > remaining+time.Second || pttl < remaining-10*time.Second {
			t.Errorf("PTTL %s = %v, want about %v", key, pttl, remaining)
		}
	}
	must("SCAN", iter.Err())
	for key := range want {
		if !got[key] {
			t.Errorf("key %q missing", key)
		}
	}
}

// TestUserIndex checks that the user-id index and the user hashes agree
// after racing creations and deletions: the index maps the id of every user
// hash to its username, and holds nothing else.
func TestUserIndex(t *testing.T) {
	srv := redistest.Start(t)
	admin := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { admin.Close() })
	s := open(t, srv.URL())
	ctx := t.Context()

	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			// Ten usernames and ten ids, each wanted by four callers,
			// paired differently; every other caller then deletes the
			// user it asked for, whoever created it.
			u := store.User{ID: fmt.Sprintf("id-%d", i%10), Username: fmt.Sprintf("user-%d", (i/4)%10)}
			_ = s.CreateUser(ctx, u)
			if i%2 == 0 {
				_ = s.DeleteUser(ctx, u.Username)
			}
		})
	}
	wg.Wait()

	index, err := admin.HGetAll(ctx, "issuer:{users}:ids").Result()
	if err != nil {
		t.Fatal(err)
	}
	records := map[string]string{} // id → username, from the user hashes
	iter := admin.Scan(ctx, 0, "issuer:{users}:user:*", 100).Iterator()
	for iter.Next(ctx) {
		key := iter.Val()
		h, err := admin.HGetAll(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if want := "issuer:{users}:user:" + h["username"]; key != want {
			t.Errorf("user %q is kept at key %q, want %q", h["username"], key, want)
		}
		if other, ok := records[h["id"]]; ok {
			t.Errorf("users %q and %q have the same id %q", other, h["username"], h["id"])
		}
		records[h["id"]] = h["username"]
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(index, records) {
		t.Errorf("user-id index = %v, want %v (the user hashes)", index, records)
	}
	users, err := s.ListUsers(ctx)
	if err != nil {
		t.Fatalf("ListUsers: %v", err)
	}
	if len(users) != len(records) {
		t.Errorf("ListUsers() = %d users, want %d", len(users), len(records))
	}
}

func TestCacheInvalidation(t *testing.T) {
	srv := redistest.Start(t)
	testCacheInvalidation(t, srv.URL())
}

// testCacheInvalidation checks that a change on one instance reaches the
// client cache of another at once.
func testCacheInvalidation(t *testing.T, urls string) {
	ctx := t.Context()
	a, b := open(t, urls), open(t, urls)
	waitSubscribed(t, a)
	waitSubscribed(t, b)
	admin := goredis.NewUniversalClient(&goredis.UniversalOptions{
		Addrs: strings.Split(strings.NewReplacer("redis://", "", "/0", "").Replace(urls), ","),
	})
	t.Cleanup(func() { admin.Close() })

	// Written directly, so that no message of A's races with B's first
	// read.
	c := store.Client{ID: "c", Name: "v1"}
	v1, _ := json.Marshal(c)
	if err := admin.HSet(ctx, "issuer:{clients}", "c", v1).Err(); err != nil {
		t.Fatal(err)
	}
	name := func(s *redis.Store, id string) string {
		got, err := s.GetClient(ctx, id)
		if err != nil {
			return err.Error()
		}
		return got.Name
	}
	if got := name(b, "c"); got != "v1" {
		t.Fatalf("B: GetClient name = %q, want v1", got)
	}

	// A write that bypasses the store (no message) shows that B caches.
	sneaky, _ := json.Marshal(store.Client{ID: "c", Name: "sneaky"})
	if err := admin.HSet(ctx, "issuer:{clients}", "c", sneaky).Err(); err != nil {
		t.Fatal(err)
	}
	if got := name(b, "c"); got != "v1" {
		t.Fatalf("B: GetClient name right after a direct write = %q, want the cached v1", got)
	}

	c.Name = "v2"
	if err := a.UpdateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	if got := name(a, "c"); got != "v2" {
		t.Errorf("A: GetClient name after its own update = %q, want v2", got)
	}
	testutil.Eventually(t, 2*time.Second, func() bool { return name(b, "c") == "v2" })

	if err := a.DeleteClient(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 2*time.Second, func() bool {
		_, err := b.GetClient(ctx, "c")
		return errors.Is(err, store.ErrNotFound)
	})

	// Unknown ids are cached too: a direct write (no message) stays
	// unseen, and a CreateClient at A, which publishes the id, makes it
	// known at B at once.
	if _, err := b.GetClient(ctx, "later"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("B: GetClient(later): got error %v, want %v", err, store.ErrNotFound)
	}
	later, _ := json.Marshal(store.Client{ID: "later", Name: "sneaky"})
	if err := admin.HSet(ctx, "issuer:{clients}", "later", later).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.GetClient(ctx, "later"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("B: GetClient(later) right after a direct write: got error %v, want the cached %v", err, store.ErrNotFound)
	}
	if err := admin.HDel(ctx, "issuer:{clients}", "later").Err(); err != nil {
		t.Fatal(err)
	}
	if err := a.CreateClient(ctx, store.Client{ID: "later", Name: "later"}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 2*time.Second, func() bool { return name(b, "later") == "later" })

	// Keys: a change on A is reported by B's KeyChanges.
	if err := a.AddKey(ctx, store.Key{ID: "k"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-b.KeyChanges():
	case <-time.After(2 * time.Second):
		t.Fatal("B: no KeyChanges signal within 2s of A's AddKey")
	}
	if err := a.DeleteKey(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-b.KeyChanges():
	case <-time.After(2 * time.Second):
		t.Fatal("B: no KeyChanges signal within 2s of A's DeleteKey")
	}
	// Later than any key an earlier test may have left on the server.
	future := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
	ks, err := a.AddNextKey(ctx, store.Key{ID: "next", NotBefore: future.Add(time.Hour)}, future)
	if err != nil || !slices.ContainsFunc(ks, func(k store.Key) bool { return k.ID == "next" }) {
		t.Fatalf("AddNextKey = %+v, %v; want the key stored", ks, err)
	}
	select {
	case <-b.KeyChanges():
	case <-time.After(2 * time.Second):
		t.Fatal("B: no KeyChanges signal within 2s of A's AddNextKey")
	}
}

// TestClientCacheTTL checks the bound on staleness when no message comes.
func TestClientCacheTTL(t *testing.T) {
	srv := redistest.Start(t)
	admin := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { admin.Close() })
	ctx := t.Context()
	const ttl = 100 * time.Millisecond
	s := open(t, srv.URL(), redis.WithClientCacheTTL(ttl))
	waitSubscribed(t, s)
	if err := s.CreateClient(ctx, store.Client{ID: "c", Name: "v1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetClient(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	v2, _ := json.Marshal(store.Client{ID: "c", Name: "v2"})
	if err := admin.HSet(ctx, "issuer:{clients}", "c", v2).Err(); err != nil {
		t.Fatal(err)
	}
	written := time.Now()
	testutil.Eventually(t, 2*time.Second, func() bool {
		c, err := s.GetClient(ctx, "c")
		return err == nil && c.Name == "v2"
	})
	if d := time.Since(written); d > ttl+500*time.Millisecond {
		t.Errorf("stale client served for %v, want at most about %v", d, ttl)
	}

	// Callers cannot change the cached client.
	c, _ := s.GetClient(ctx, "c")
	c.Scopes = append(c.Scopes, "admin")
	if c2, _ := s.GetClient(ctx, "c"); len(c2.Scopes) != 0 {
		t.Errorf("GetClient scopes = %v after the caller changed its copy, want none", c2.Scopes)
	}
}

// calls are one call of every store method, each failing or succeeding as
// a whole.
func calls(s store.Store) []struct {
	name string
	call func(ctx context.Context) error
} {
	now := time.Now()
	return []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"CreateClient", func(ctx context.Context) error { return s.CreateClient(ctx, store.Client{ID: "new-" + now.String()}) }},
		{"GetClient", func(ctx context.Context) error { _, err := s.GetClient(ctx, "c"); return err }},
		{"ListClients", func(ctx context.Context) error { _, err := s.ListClients(ctx); return err }},
		{"UpdateClient", func(ctx context.Context) error { return s.UpdateClient(ctx, store.Client{ID: "c", Name: "updated"}) }},
		{"CreateFamily", func(ctx context.Context) error {
			return s.CreateFamily(ctx, store.Family{ID: "new-" + now.String(), ClientID: "c", ExpiresAt: now.Add(time.Hour)})
		}},
		{"GetFamily", func(ctx context.Context) error { _, err := s.GetFamily(ctx, "f"); return err }},
		{"RevokeToken", func(ctx context.Context) error { return s.RevokeToken(ctx, "jti", now.Add(time.Hour)) }},
		{"IsRevoked", func(ctx context.Context) error { _, err := s.IsRevoked(ctx, "jti"); return err }},
		{"InitKeys", func(ctx context.Context) error { _, err := s.InitKeys(ctx, store.Key{ID: "k"}); return err }},
		{"ListKeys", func(ctx context.Context) error { _, err := s.ListKeys(ctx); return err }},
		{"AddKey", func(ctx context.Context) error { return s.AddKey(ctx, store.Key{ID: "k-" + now.String()}) }},
		{"AddNextKey", func(ctx context.Context) error {
			_, err := s.AddNextKey(ctx, store.Key{ID: "n-" + now.String(), NotBefore: now.Add(time.Hour)}, now)
			return err
		}},
		{"RotateRefresh", func(ctx context.Context) error {
			f, err := s.GetFamily(ctx, "f")
			if err != nil {
				return err
			}
			_, err = s.RotateRefresh(ctx, store.Rotation{FamilyID: "f", ClientID: "c", OldID: f.Current, NewID: f.Current + "+", ExpiresAt: now.Add(time.Hour)})
			return err
		}},
		{"RevokeFamily", func(ctx context.Context) error { return s.RevokeFamily(ctx, "f") }},
		{"DeleteKey", func(ctx context.Context) error { return s.DeleteKey(ctx, "k") }},
		{"DeleteClient", func(ctx context.Context) error { return s.DeleteClient(ctx, "c") }},
		{"Ping", func(ctx context.Context) error { return s.Ping(ctx) }},
	}
}

// TestRedisGoesAway stops Redis under a store: every call fails soon with
// store.ErrUnavailable, and works again once Redis is back, without a new
// store.
func TestRedisGoesAway(t *testing.T) {
	srv := redistest.Start(t, redistest.WithAOF())
	s := open(t, srv.URL())
	ctx := t.Context()
	if err := s.CreateClient(ctx, store.Client{ID: "c"}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateFamily(ctx, store.Family{ID: "f", ClientID: "c", Current: "j", ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}

	waitSubscribed(t, s)

	srv.Stop()
	for _, c := range calls(s) {
		start := time.Now()
		err := c.call(ctx)
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("%s with Redis down took %v, want under 3s", c.name, d)
		}
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s with Redis down: got error %v, want %v", c.name, err, store.ErrUnavailable)
		}
	}

	srv.Restart()
	testutil.Eventually(t, 5*time.Second, func() bool { return s.Ping(ctx) == nil })
	for _, c := range calls(s) {
		if err := c.call(ctx); err != nil {
			t.Errorf("%s after Redis came back: %v", c.name, err)
		}
	}
	// The subscriber is back too, and says that key changes may have been
	// missed.
	select {
	case <-s.KeyChanges():
	case <-time.After(5 * time.Second):
		t.Error("no KeyChanges signal within 5s of Redis coming back")
	}
}

// TestAOFDurability checks that an acknowledged rotation survives a crash
// of a Redis with appendfsync always.
func TestAOFDurability(t *testing.T) {
	srv := redistest.Start(t, redistest.WithAOF())
	ctx := t.Context()
	now := time.Now()
	s := open(t, srv.URL())
	f := store.Family{ID: "f", ClientID: "c", Scopes: []string{"read"}, Current: "jti-0", ExpiresAt: now.Add(time.Hour)}
	if err := s.CreateFamily(ctx, f); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RotateRefresh(ctx, store.Rotation{FamilyID: "f", ClientID: "c", OldID: "jti-0", NewID: "jti-1", ExpiresAt: now.Add(2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}

	srv.Stop() // SIGKILL
	srv.Restart()

	s2 := open(t, srv.URL())
	got, err := s2.GetFamily(ctx, "f")
	if err != nil {
		t.Fatalf("GetFamily after restart: %v", err)
	}
	if got.Current != "jti-1" || !got.ExpiresAt.Equal(now.Add(2*time.Hour).Truncate(time.Millisecond)) {
		t.Errorf("GetFamily after restart = %+v, want current jti-1 expiring at %v", got, now.Add(2*time.Hour))
	}
	// The old store reconnects too.
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := s.GetFamily(ctx, "f")
		if err == nil {
			if got.Current != "jti-1" {
				t.Errorf("old store: GetFamily after restart = %+v, want current jti-1", got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("old store: GetFamily after restart: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestOpenErrors(t *testing.T) {
	srv := redistest.Start(t, redistest.WithPassword("s3cret"))
	ctx := t.Context()
	wrongPassword := strings.Replace(srv.URL(), "s3cret", "hunter2", 1)
	tests := []struct {
		name            string
		urls            string
		wantUnavailable bool
		wantInMessage   string
	}{
		{"nothing", " , ", false, "no Redis URL"},
		{"bad scheme", "http://:hunter2@localhost:6379", false, "invalid URL scheme"},
		{"bad port", "redis://:hunter2@localhost:port", false, "bad Redis URL redis://xxxxx@localhost:port"},
		{"unreachable", "redis://:hunter2@127.0.0.1:1/0", true, "127.0.0.1:1"},
		{"unreachable cluster", "redis://:hunter2@127.0.0.1:1,redis://127.0.0.1:2", true, "127.0.0.1:2"},
		{"mixed schemes", "redis://127.0.0.1:1,rediss://:hunter2@127.0.0.1:2", false, "mix redis:// and rediss://"},
		{"wrong password", wrongPassword, false, srv.Addr()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			s, err := redis.Open(ctx, tt.urls)
			if err == nil {
				s.Close()
				t.Fatalf("Open(%q) succeeded, want an error", tt.urls)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("Open took %v, want under 3s", d)
			}
			msg := err.Error()
			if strings.Contains(msg, "hunter2") {
				t.Errorf("Open error %q contains the password", msg)
			}
			if !strings.Contains(msg, tt.wantInMessage) {
				t.Errorf("Open error %q does not contain %q", msg, tt.wantInMessage)
			}
			if got := errors.Is(err, store.ErrUnavailable); got != tt.wantUnavailable {
				t.Errorf("Open error %q: errors.Is(err, ErrUnavailable) = %t, want %t", msg, got, tt.wantUnavailable)
			}
		})
	}

	t.Run("right password", func(t *testing.T) {
		s := open(t, srv.URL())
		if err := s.Ping(ctx); err != nil {
			t.Errorf("Ping() = %v, want nil", err)
		}
	})
}

func TestCloseTwice(t *testing.T) {
	srv := redistest.Start(t)
	s, err := redis.Open(t.Context(), srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := s.Close(); err != nil {
			t.Errorf("Close() = %v, want nil", err)
		}
	}
	if err := s.Ping(t.Context()); err == nil {
		t.Error("Ping() after Close = nil, want an error")
	}
}

// TestReadOnlyReplica runs a store on a replica (of a master that is not
// there): the READONLY reply to its writes is store.ErrUnavailable, as a
// failover in progress should be.
func TestReadOnlyReplica(t *testing.T) {
	srv := redistest.Start(t, redistest.WithArgs("--replicaof", "127.0.0.1", "1"))
	s := open(t, srv.URL())
	ctx := t.Context()
	err := s.CreateFamily(ctx, store.Family{ID: "f", ClientID: "c", ExpiresAt: time.Now().Add(time.Hour)})
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("CreateFamily on a read-only replica: got error %v, want %v", err, store.ErrUnavailable)
	}
	if !strings.Contains(fmt.Sprint(err), "READONLY") {
		t.Errorf("CreateFamily on a read-only replica: error %v does not carry the READONLY reply", err)
	}
	if _, err := s.GetFamily(ctx, "f"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetFamily on a read-only replica: got error %v, want %v", err, store.ErrNotFound)
	}
}

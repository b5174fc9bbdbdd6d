package redis

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/issuer-oauth/issuer/internal/redistest"
	"github.com/issuer-oauth/issuer/internal/store"
	"github.com/issuer-oauth/issuer/internal/testutil"
)

// subscribedStore returns a store on a new redis-server, with opts and a
// logger writing to logs, once its subscriber listens, and a client of its
// own on the server.
func subscribedStore(t *testing.T, logs *testutil.Buffer, opts ...Option) (*Store, *redistest.Server, *goredis.Client) {
	t.Helper()
	srv := redistest.Start(t)
	client := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { client.Close() })
	s := New(client, append(opts, WithLogger(slog.New(slog.NewTextHandler(logs, nil))))...)
	t.Cleanup(func() { s.Close() })
	select {
	case <-s.KeyChanges():
	case <-time.After(5 * time.Second):
		t.Fatal("not subscribed within 5s")
	}
	return s, srv, client
}

// cacheStale caches client "c" as v1, then writes v2 directly: no
// invalidation is sent (as if it was lost), and no message races with the
// caching read.
func cacheStale(t *testing.T, s *Store, client *goredis.Client) {
	t.Helper()
	ctx := t.Context()
	v1, _ := json.Marshal(store.Client{ID: "c", Name: "v1"})
	if err := client.HSet(ctx, s.clientsKey, "c", v1).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetClient(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	v2, _ := json.Marshal(store.Client{ID: "c", Name: "v2"})
	if err := client.HSet(ctx, s.clientsKey, "c", v2).Err(); err != nil {
		t.Fatal(err)
	}
}

// TestSubscriberIdle checks that an idle subscription is kept with pings,
// without dropping the cache or reporting an outage.
func TestSubscriberIdle(t *testing.T) {
	old := subscriberPing
	subscriberPing = 20 * time.Millisecond
	t.Cleanup(func() { subscriberPing = old })

	var logs testutil.Buffer
	s, _, client := subscribedStore(t, &logs)
	cacheStale(t, s, client)

	time.Sleep(10 * subscriberPing) // several ping rounds
	if c, err := s.GetClient(t.Context(), "c"); err != nil || c.Name != "v1" {
		t.Errorf("GetClient after idle pings = %+v, %v; want the cached v1 (cache was dropped)", c, err)
	}
	select {
	case <-s.KeyChanges():
		t.Error("KeyChanges fired while idle, want no resubscription")
	default:
	}
	if l := logs.String(); l != "" {
		t.Errorf("subscriber logged while idle:\n%s", l)
	}
}

// TestSubscriberResubscribeDropsCache checks that a lost subscription, once
// back, drops the whole cache (invalidations sent meanwhile were lost) and
// reports a key change.
func TestSubscriberResubscribeDropsCache(t *testing.T) {
	var logs testutil.Buffer
	s, srv, client := subscribedStore(t, &logs, WithClientCacheTTL(time.Hour))
	cacheStale(t, s, client)
	ctx := t.Context()
	if c, err := s.GetClient(ctx, "c"); err != nil || c.Name != "v1" {
		t.Fatalf("GetClient before the subscription broke = %+v, %v; want the cached v1", c, err)
	}

	if _, err := srv.Do("CLIENT", "KILL", "TYPE", "pubsub"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.KeyChanges():
	case <-time.After(5 * time.Second):
		t.Fatal("no KeyChanges signal within 5s of the subscription breaking")
	}
	if c, err := s.GetClient(ctx, "c"); err != nil || c.Name != "v2" {
		t.Errorf("GetClient after the subscription came back = %+v, %v; want v2 (cache dropped)", c, err)
	}
	testutil.Eventually(t, 5*time.Second, func() bool { return strings.Contains(logs.String(), "re-established") })
	if l := logs.String(); !strings.Contains(l, "redis: cache invalidation subscription lost; retrying") {
		t.Errorf("logs do not report the outage:\n%s", l)
	}
}

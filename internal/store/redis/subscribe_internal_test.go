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

// TestSubscriberIdle checks that an idle subscription is kept with pings,
// without dropping the cache or reporting an outage.
func TestSubscriberIdle(t *testing.T) {
	old := subscriberPing
	subscriberPing = 20 * time.Millisecond
	t.Cleanup(func() { subscriberPing = old })

	srv := redistest.Start(t)
	client := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { client.Close() })
	var logs testutil.Buffer
	s := New(client, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	t.Cleanup(func() { s.Close() })
	ctx := t.Context()
	select {
	case <-s.KeyChanges():
	case <-time.After(5 * time.Second):
		t.Fatal("not subscribed within 5s")
	}

	// Written directly: no message races with the caching read.
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

	time.Sleep(10 * subscriberPing) // several ping rounds
	if c, err := s.GetClient(ctx, "c"); err != nil || c.Name != "v1" {
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
	srv := redistest.Start(t)
	client := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { client.Close() })
	var logs testutil.Buffer
	s := New(client, WithClientCacheTTL(time.Hour), WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	t.Cleanup(func() { s.Close() })
	ctx := t.Context()
	select {
	case <-s.KeyChanges():
	case <-time.After(5 * time.Second):
		t.Fatal("not subscribed within 5s")
	}

	// Written directly: the update sends no invalidation, as if it was lost.
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

package ratelimit_test

import (
	"context"
	"log/slog"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/issuer-oauth/issuer/internal/ratelimit"
	"github.com/issuer-oauth/issuer/internal/redistest"
	"github.com/issuer-oauth/issuer/internal/testutil"
)

// commands counts the commands a go-redis client sends.
type commands struct{ n atomic.Int64 }

func (h *commands) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (h *commands) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}

func (h *commands) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		h.n.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

// sent returns the number of commands sent since its last call.
func (h *commands) sent() int64 { return h.n.Swap(0) }

// instance is the limiter of one issuer instance, on its own Redis client.
type instance struct {
	counter *ratelimit.Redis
	limiter *ratelimit.Limiter
	cmds    *commands
	clock   *testutil.Clock // of the hot keys; Redis windows run on real time
	window  time.Duration
}

func newInstance(t testing.TB, client goredis.UniversalClient, cfg ratelimit.Config, opts ...ratelimit.RedisOption) *instance {
	t.Helper()
	cmds := &commands{}
	client.AddHook(cmds)
	clk := newClock()
	c := ratelimit.NewRedis(client, "", append([]ratelimit.RedisOption{ratelimit.WithClock(clk.Now)}, opts...)...)
	t.Cleanup(func() { c.Close() })
	return &instance{counter: c, limiter: ratelimit.New(c, cfg), cmds: cmds, clock: clk, window: cfg.Window}
}

// settle waits until in is subscribed, then moves its clock one window on,
// past the time after a subscription when every read goes to Redis.
func (in *instance) settle(t testing.TB) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, func() bool { return ratelimit.Subscribed(in.counter) })
	in.clock.Advance(in.window)
	in.cmds.sent()
}

func newClient(t testing.TB, addr string) *goredis.Client {
	client := goredis.NewClient(&goredis.Options{Addr: addr})
	t.Cleanup(func() { client.Close() })
	return client
}

func addrKey(a netip.Addr) string { return ratelimit.DefaultRedisPrefix + "auth:addr:" + a.String() }

// TestRedisCleanAddressCostsNothing: authentications from an address with
// no failures send nothing to Redis; after a failure its reads do.
func TestRedisCleanAddressCostsNothing(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	in := newInstance(t, newClient(t, srv.Addr()), ratelimit.Config{Window: time.Minute, AddressFailures: 3, ClientFailures: 5})

	in.limiter.AllowAuth(ctx, "c", legit)
	if n := in.cmds.sent(); n == 0 {
		t.Errorf("read before the subscription or in the window after it: no command sent, want a read from Redis")
	}
	in.settle(t)
	for range 100 {
		if d := in.limiter.AllowAuth(ctx, "c", legit); d.Refused() {
			t.Fatalf("clean address: %+v", d)
		}
	}
	if n := in.cmds.sent(); n != 0 {
		t.Errorf("100 authentications from a clean address sent %d commands to Redis, want 0", n)
	}

	in.limiter.AuthFailed(ctx, "c", attacker)
	in.cmds.sent()
	if d := in.limiter.AllowAuth(ctx, "c", attacker); d.Refused() {
		t.Errorf("after one failure: %+v, want allowed", d)
	}
	if n := in.cmds.sent(); n < 2 {
		t.Errorf("after one failure: %d commands sent, want the address and the client id read from Redis", n)
	}
	in.limiter.AuthFailed(ctx, "c", attacker)
	in.limiter.AuthFailed(ctx, "c", attacker)
	if d := in.limiter.AllowAuth(ctx, "c", attacker); d.Limit != ratelimit.LimitAddress || d.RetryAfter <= 0 || d.RetryAfter > time.Minute {
		t.Errorf("after three failures: %+v, want the address limit", d)
	}
	in.cmds.sent()
	if d := in.limiter.AllowAuth(ctx, "c", legit); d.Refused() {
		t.Errorf("clean address: %+v", d)
	}
	if n := in.cmds.sent(); n != 0 {
		t.Errorf("clean address after another one failed: %d commands sent, want 0", n)
	}
}

// TestRedisHintsAcrossInstances: failures counted at one instance are
// refused at another, which reads nothing for clean addresses.
func TestRedisHintsAcrossInstances(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	cfg := ratelimit.Config{Window: time.Minute, AddressFailures: 3, ClientFailures: 3}
	a := newInstance(t, newClient(t, srv.Addr()), cfg)
	b := newInstance(t, newClient(t, srv.Addr()), cfg)
	a.settle(t)
	b.settle(t)
	testHintsAcrossInstances(t, ctx, a, b)
}

func testHintsAcrossInstances(t *testing.T, ctx context.Context, a, b *instance) {
	t.Run("address", func(t *testing.T) {
		if d := b.limiter.AllowAuth(ctx, "victim", attacker); d.Refused() {
			t.Fatalf("B before any failure: %+v", d)
		}
		for range 3 {
			a.limiter.AuthFailed(ctx, "", attacker)
		}
		testutil.Eventually(t, 10*time.Second, func() bool {
			return b.limiter.AllowAuth(ctx, "victim", attacker).Limit == ratelimit.LimitAddress
		})
		if d := b.limiter.AllowAuth(ctx, "another", attacker); d.Limit != ratelimit.LimitAddress || d.RetryAfter <= 0 || d.RetryAfter > time.Minute {
			t.Errorf("B: %+v, want the address limit, retry within 1m", d)
		}
		b.cmds.sent()
		if d := b.limiter.AllowAuth(ctx, "victim", legit); d.Refused() {
			t.Errorf("B, clean address: %+v", d)
		}
		if n := b.cmds.sent(); n != 0 {
			t.Errorf("B, clean address: %d commands sent, want 0", n)
		}
	})
	t.Run("client id", func(t *testing.T) {
		var bots []netip.Addr
		for i := range 3 {
			bots = append(bots, netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)}))
		}
		for _, bot := range bots {
			a.limiter.AuthFailed(ctx, "victim", bot)
		}
		testutil.Eventually(t, 10*time.Second, func() bool {
			for _, bot := range bots {
				if b.limiter.AllowAuth(ctx, "victim", bot).Limit != ratelimit.LimitClient {
					return false
				}
			}
			return true
		})
		if d := b.limiter.AllowAuth(ctx, "bystander", bots[0]); d.Refused() {
			t.Errorf("B, a failed address for another client: %+v, want allowed", d)
		}
		b.cmds.sent()
		if d := b.limiter.AllowAuth(ctx, "victim", legit); d.Refused() {
			t.Errorf("B, clean address for the attacked client: %+v, want allowed", d)
		}
		if n := b.cmds.sent(); n != 0 {
			t.Errorf("B, clean address for the attacked client: %d commands sent, want 0", n)
		}
	})
}

// TestRedisClusterHints: the hints cross a Redis Cluster, whatever node
// the counters and the subscriptions are on.
func TestRedisClusterHints(t *testing.T) {
	ctx := context.Background()
	cl := redistest.StartCluster(t, 3)
	newCluster := func() *goredis.ClusterClient {
		c := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: cl.Addrs()})
		t.Cleanup(func() { c.Close() })
		return c
	}
	cfg := ratelimit.Config{Window: time.Minute, AddressFailures: 3, ClientFailures: 3}
	a, b := newInstance(t, newCluster(), cfg), newInstance(t, newCluster(), cfg)
	a.settle(t)
	b.settle(t)
	testHintsAcrossInstances(t, ctx, a, b)

	// Keys on every node.
	var addrs []netip.Addr
	for i := range 30 {
		addrs = append(addrs, netip.AddrFrom4([4]byte{198, 18, 0, byte(i + 1)}))
	}
	for _, addr := range addrs {
		for range 3 {
			a.limiter.AuthFailed(ctx, "", addr)
		}
	}
	testutil.Eventually(t, 10*time.Second, func() bool {
		for _, addr := range addrs {
			if !b.limiter.AllowAuth(ctx, "", addr).Refused() {
				return false
			}
		}
		return true
	})
}

// TestRedisFailsTowardsChecking: where hints may have been missed — before
// the subscription, while it is down, in the window after it is back — every
// read goes to Redis.
func TestRedisFailsTowardsChecking(t *testing.T) {
	ctx := context.Background()
	cfg := ratelimit.Config{Window: time.Minute, AddressFailures: 3}

	t.Run("before the subscription", func(t *testing.T) {
		srv := redistest.Start(t)
		a := newInstance(t, newClient(t, srv.Addr()), cfg)
		a.settle(t)
		third := netip.MustParseAddr("203.0.113.68")
		for _, addr := range []netip.Addr{attacker, other, third} {
			for range 3 {
				a.limiter.AuthFailed(ctx, "", addr)
			}
		}
		b := newInstance(t, newClient(t, srv.Addr()), cfg) // has missed the hints
		if d := b.limiter.AllowAuth(ctx, "", attacker); d.Limit != ratelimit.LimitAddress {
			t.Errorf("B, just started: %+v, want the address limit", d)
		}
		testutil.Eventually(t, 10*time.Second, func() bool { return ratelimit.Subscribed(b.counter) })
		b.clock.Advance(cfg.Window - time.Second)
		if d := b.limiter.AllowAuth(ctx, "", other); d.Limit != ratelimit.LimitAddress {
			t.Errorf("B, subscribed for less than a window: %+v, want the address limit", d)
		}
		// A read that finds a count remembers the key.
		b.clock.Advance(time.Second)
		if d := b.limiter.AllowAuth(ctx, "", other); d.Limit != ratelimit.LimitAddress {
			t.Errorf("B, subscribed for a window, key read before: %+v, want the address limit", d)
		}
		// What a missed hint costs: one check, whose failure B counts in
		// Redis and learns the count from.
		if d := b.limiter.AllowAuth(ctx, "", third); d.Refused() {
			t.Errorf("B, subscribed for a window, missed hint: %+v, want checked", d)
		}
		b.limiter.AuthFailed(ctx, "", third)
		if d := b.limiter.AllowAuth(ctx, "", third); d.Limit != ratelimit.LimitAddress {
			t.Errorf("B, after its own failure: %+v, want the address limit", d)
		}
	})

	for _, tc := range []struct {
		name     string
		breakSub func(*testing.T, *redistest.Server) // breaks the subscription
	}{
		{"connection killed", func(t *testing.T, srv *redistest.Server) {
			if _, err := srv.Do("CLIENT", "KILL", "TYPE", "pubsub"); err != nil {
				t.Fatal(err)
			}
		}},
		{"redis restarted", func(_ *testing.T, srv *redistest.Server) { srv.Restart() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := redistest.Start(t)
			b := newInstance(t, newClient(t, srv.Addr()), cfg)
			b.settle(t)
			if ratelimit.MustRead(b.counter, "auth:addr:"+other.String(), cfg.Window) {
				t.Fatal("a clean key is read from Redis before the subscription broke")
			}
			tc.breakSub(t, srv)
			testutil.Eventually(t, 10*time.Second, func() bool {
				return ratelimit.MustRead(b.counter, "auth:addr:"+other.String(), cfg.Window)
			})
			// A count whose hint B missed.
			if _, err := srv.Do("SET", addrKey(other), "3", "PX", "60000"); err != nil {
				t.Fatal(err)
			}
			if d := b.limiter.AllowAuth(ctx, "", other); d.Limit != ratelimit.LimitAddress {
				t.Errorf("B, subscription broken: %+v, want the address limit", d)
			}
			testutil.Eventually(t, 10*time.Second, func() bool { return ratelimit.Subscribed(b.counter) })
			if d := b.limiter.AllowAuth(ctx, "", other); d.Limit != ratelimit.LimitAddress {
				t.Errorf("B, subscribed again: %+v, want the address limit", d)
			}
			b.clock.Advance(cfg.Window)
			b.cmds.sent()
			b.limiter.AllowAuth(ctx, "", legit)
			if n := b.cmds.sent(); n != 0 {
				t.Errorf("B, a window after it subscribed again: %d commands for a clean address, want 0", n)
			}
		})
	}

	t.Run("silent", func(t *testing.T) {
		srv := redistest.Start(t)
		b := newInstance(t, newClient(t, srv.Addr()), cfg, ratelimit.WithPingIdle(50*time.Millisecond))
		b.settle(t)
		// Idle, the subscription is pinged, answers, and stays: a new one
		// would start a window of reads from Redis.
		time.Sleep(10 * 50 * time.Millisecond)
		if !ratelimit.Subscribed(b.counter) || ratelimit.MustRead(b.counter, "auth:addr:"+other.String(), cfg.Window) {
			t.Fatal("an idle subscription that answers its pings was replaced")
		}
		// The server stops answering (as behind a broken network) but the
		// connection stays up.
		if _, err := srv.Do("CLIENT", "PAUSE", "1000", "ALL"); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, 10*time.Second, func() bool { return !ratelimit.Subscribed(b.counter) })
		testutil.Eventually(t, 10*time.Second, func() bool { return ratelimit.Subscribed(b.counter) })
		if !ratelimit.MustRead(b.counter, "auth:addr:"+other.String(), cfg.Window) {
			t.Error("B, subscribed again: a clean key is not read from Redis")
		}
	})

	t.Run("closed", func(t *testing.T) {
		srv := redistest.Start(t)
		b := newInstance(t, newClient(t, srv.Addr()), cfg)
		b.settle(t)
		b.counter.Close()
		if !ratelimit.MustRead(b.counter, "auth:addr:"+other.String(), cfg.Window) {
			t.Error("after Close: a clean key is not read from Redis")
		}
		if err := b.counter.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
	})
}

// TestRedisHotKeysBounded: the hot keys stay within their bound; while
// hints do not fit, every read goes to Redis.
func TestRedisHotKeysBounded(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	cfg := ratelimit.Config{Window: time.Minute, AddressFailures: 1}
	a := newInstance(t, newClient(t, srv.Addr()), cfg)
	b := newInstance(t, newClient(t, srv.Addr()), cfg, ratelimit.WithMaxHotKeys(3))
	a.settle(t)
	b.settle(t)

	var bots []netip.Addr
	for i := range 10 {
		bots = append(bots, netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)}))
	}
	for _, bot := range bots {
		a.limiter.AuthFailed(ctx, "", bot)
	}
	testutil.Eventually(t, 10*time.Second, func() bool {
		return ratelimit.HotLen(b.counter) == 3 && ratelimit.MustRead(b.counter, "auth:addr:"+legit.String(), cfg.Window)
	})
	for _, bot := range bots {
		if d := b.limiter.AllowAuth(ctx, "", bot); d.Limit != ratelimit.LimitAddress {
			t.Errorf("B, %v: %+v, want the address limit", bot, d)
		}
	}
	b.cmds.sent()
	b.limiter.AllowAuth(ctx, "", legit)
	if n := b.cmds.sent(); n == 0 {
		t.Error("B, hot keys full: a clean address is not read from Redis")
	}
	if n := ratelimit.HotLen(b.counter); n > 3 {
		t.Errorf("B keeps %d hot keys, want at most 3", n)
	}

	// Every window ends: reads are free again, ended keys go.
	b.clock.Advance(2 * time.Minute)
	b.limiter.AllowAuth(ctx, "", legit)
	if n := b.cmds.sent(); n != 0 {
		t.Errorf("B, every window ended: %d commands for a clean address, want 0", n)
	}
	a.limiter.AuthFailed(ctx, "", attacker)
	testutil.Eventually(t, 10*time.Second, func() bool { return ratelimit.HotLen(b.counter) == 1 })
	if d := b.limiter.AllowAuth(ctx, "", attacker); d.Limit != ratelimit.LimitAddress {
		t.Errorf("B, new hint: %+v, want the address limit", d)
	}
}

// TestRedisBadHints: hints that are not the counter's are ignored.
func TestRedisBadHints(t *testing.T) {
	srv := redistest.Start(t)
	b := newInstance(t, newClient(t, srv.Addr()), ratelimit.Config{Window: time.Minute})
	b.settle(t)
	for _, p := range []string{"", "x", "60000", "abc " + ratelimit.DefaultRedisPrefix + "k", "-5 " + ratelimit.DefaultRedisPrefix + "k", "60000 other:k"} {
		srv.Do("PUBLISH", ratelimit.DefaultRedisPrefix+"hot", p)
	}
	srv.Do("PUBLISH", ratelimit.DefaultRedisPrefix+"hot", "60000 "+ratelimit.DefaultRedisPrefix+"last")
	testutil.Eventually(t, 10*time.Second, func() bool { return ratelimit.HotLen(b.counter) > 0 })
	if n := ratelimit.HotLen(b.counter); n != 1 {
		t.Errorf("%d hot keys, want 1", n)
	}
	if !ratelimit.MustRead(b.counter, "last", time.Minute) {
		t.Error("the hinted key is not read from Redis")
	}
}

// BenchmarkAllowAuthCleanAddress compares AllowAuth from a clean address on
// the Redis counter reading every key (as before the hints; a closed
// counter does) and with the hints.
func BenchmarkAllowAuthCleanAddress(b *testing.B) {
	ctx := context.Background()
	srv := redistest.Start(b)
	client := newClient(b, srv.Addr())
	cfg := ratelimit.Config{Window: time.Minute, AddressFailures: 20, ClientFailures: 50}
	before := ratelimit.NewRedis(client, "")
	before.Close()
	after := newInstance(b, client, cfg)
	after.settle(b)
	for _, bc := range []struct {
		name string
		c    ratelimit.Counter
	}{{"read-every-time", before}, {"hinted", after.counter}} {
		l := ratelimit.New(bc.c, cfg)
		b.Run(bc.name, func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				addr := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
				if d := l.AllowAuth(ctx, "client", addr); d.Refused() {
					b.Fatal(d)
				}
			}
		})
	}
}

// TestRedisPubSubForbidden: with a Redis user that may not publish or
// subscribe, counting works and every read goes to Redis.
func TestRedisPubSubForbidden(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	if _, err := srv.Do("ACL", "SETUSER", "nopubsub", "on", ">pw", "~*", "+@all", "resetchannels"); err != nil {
		t.Fatal(err)
	}
	client := goredis.NewClient(&goredis.Options{Addr: srv.Addr(), Username: "nopubsub", Password: "pw"})
	t.Cleanup(func() { client.Close() })
	cfg := ratelimit.Config{Window: time.Minute, AddressFailures: 2}
	var logs testutil.Buffer
	in := newInstance(t, client, cfg, ratelimit.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	for range 2 {
		in.limiter.AuthFailed(ctx, "", attacker)
	}
	if n, _ := srv.Do("GET", addrKey(attacker)); n != "2" {
		t.Errorf("count in Redis = %q, want 2", n)
	}
	testutil.Eventually(t, 10*time.Second, func() bool {
		l := logs.String()
		return strings.Contains(l, "subscription failed") && strings.Contains(l, "cannot be published")
	})
	in.clock.Advance(time.Hour)
	if ratelimit.Subscribed(in.counter) {
		t.Error("subscribed without the right to")
	}
	if !ratelimit.MustRead(in.counter, "auth:addr:"+legit.String(), cfg.Window) {
		t.Error("not subscribed: a clean key is not read from Redis")
	}
	if d := in.limiter.AllowAuth(ctx, "", attacker); d.Limit != ratelimit.LimitAddress {
		t.Errorf("%+v, want the address limit", d)
	}
}

// TestRedisReadOnceAfterSubscribing: in the window after the subscription
// is established, when hints published before it may have been missed, a
// key is read from Redis until a read finds it clean, and then no more: the
// subscription reports any later addition. A restarted instance pays one
// read per address, not one per request.
func TestRedisReadOnceAfterSubscribing(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	cfg := ratelimit.Config{Window: time.Minute, AddressFailures: 3}
	a := newInstance(t, newClient(t, srv.Addr()), cfg)
	a.settle(t)
	b := newInstance(t, newClient(t, srv.Addr()), cfg)
	testutil.Eventually(t, 10*time.Second, func() bool { return ratelimit.Subscribed(b.counter) })
	b.cmds.sent()

	// (A first command may count more: a new connection's handshake.)
	b.limiter.AllowAuth(ctx, "", legit)
	if n := b.cmds.sent(); n == 0 {
		t.Errorf("B, first read of a clean address after subscribing: no command, want a read from Redis")
	}
	for range 10 {
		if d := b.limiter.AllowAuth(ctx, "", legit); d.Refused() {
			t.Fatalf("clean address: %+v", d)
		}
	}
	if n := b.cmds.sent(); n != 0 {
		t.Errorf("B, the same clean address again: %d commands, want 0", n)
	}
	if !ratelimit.MustRead(b.counter, "auth:addr:"+other.String(), cfg.Window) {
		t.Errorf("B, in the window after subscribing: an address never read is not read from Redis")
	}

	// The address fails at A: B takes the hint and reads it again.
	for range 3 {
		a.limiter.AuthFailed(ctx, "", legit)
	}
	testutil.Eventually(t, 10*time.Second, func() bool {
		return ratelimit.MustRead(b.counter, "auth:addr:"+legit.String(), cfg.Window)
	})
	if d := b.limiter.AllowAuth(ctx, "", legit); d.Limit != ratelimit.LimitAddress {
		t.Errorf("B, after A's failures: %+v, want the address limit", d)
	}

	// A new subscription forgets what was read clean under the old one.
	if _, err := srv.Do("CLIENT", "KILL", "TYPE", "pubsub"); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() bool { return !ratelimit.Subscribed(b.counter) })
	testutil.Eventually(t, 10*time.Second, func() bool { return ratelimit.Subscribed(b.counter) })
	b.cmds.sent()
	b.limiter.AllowAuth(ctx, "", other)
	if n := b.cmds.sent(); n == 0 {
		t.Errorf("B, a clean address after subscribing again: no command, want a read from Redis")
	}
	b.limiter.AllowAuth(ctx, "", other)
	if n := b.cmds.sent(); n != 0 {
		t.Errorf("B, the same clean address again: %d commands, want 0", n)
	}
}

// TestRedisPasswordLocksAcrossInstances: a username locked by failures at
// one instance is locked at the other, an unlock at either ends it for
// both, and an address refused at one is refused at the other.
func TestRedisPasswordLocksAcrossInstances(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	cfg := ratelimit.Config{PasswordWindow: time.Minute, UserFailures: 3, PasswordAddressFailures: 4}
	a := newInstance(t, newClient(t, srv.Addr()), cfg)
	b := newInstance(t, newClient(t, srv.Addr()), cfg)
	a.settle(t)
	b.settle(t)
	for range 3 {
		a.limiter.PasswordFailed(ctx, "alice", attacker)
	}
	testutil.Eventually(t, 5*time.Second, func() bool {
		until, err := b.limiter.LockedUntil(ctx, "alice")
		return err == nil && !until.IsZero()
	})
	if until, _ := b.limiter.LockedUntil(ctx, "bob"); !until.IsZero() {
		t.Errorf("another username is locked at B")
	}
	if err := b.limiter.Unlock(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	for _, in := range []*instance{a, b} {
		if until, err := in.limiter.LockedUntil(ctx, "alice"); !until.IsZero() || err != nil {
			t.Errorf("after the unlock at B: locked until %v (%v)", until, err)
		}
	}
	b.limiter.PasswordFailed(ctx, "carol", attacker)
	testutil.Eventually(t, 5*time.Second, func() bool { return a.limiter.AllowPassword(ctx, attacker).Refused() })
	if d := a.limiter.AllowPassword(ctx, other); d.Refused() {
		t.Errorf("another address at A: %+v", d)
	}
}

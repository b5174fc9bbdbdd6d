package ratelimit_test

import (
	"context"
	"errors"
	"net/netip"
	"strconv"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/issuer-oauth/issuer/internal/ratelimit"
	"github.com/issuer-oauth/issuer/internal/redistest"
	"github.com/issuer-oauth/issuer/internal/testutil"
)

// newClock returns a fake clock at a fixed time.
func newClock() *testutil.Clock {
	return testutil.NewClock(time.Date(2031, 1, 2, 3, 4, 5, 0, time.UTC))
}

func TestMemoryCounter(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	m := ratelimit.NewMemory(clk.Now, 0)
	if n, left, err := m.Add(ctx, "k", 0, time.Minute); n != 0 || left != 0 || err != nil {
		t.Fatalf("read of a missing counter = %d, %v, %v; want 0, 0, nil", n, left, err)
	}
	if m.Len() != 0 {
		t.Fatalf("a read created a counter")
	}
	for i := 1; i <= 3; i++ {
		if n, left, _ := m.Add(ctx, "k", 1, time.Minute); n != int64(i) || left != time.Minute {
			t.Fatalf("add %d = %d, %v; want %d, 1m", i, n, left, i)
		}
	}
	clk.Advance(40 * time.Second)
	if n, left, _ := m.Add(ctx, "k", 0, time.Minute); n != 3 || left != 20*time.Second {
		t.Errorf("after 40s: %d, %v; want 3, 20s (the window starts at the first hit)", n, left)
	}
	clk.Advance(20 * time.Second)
	if n, _, _ := m.Add(ctx, "k", 0, time.Minute); n != 0 {
		t.Errorf("after the window: %d, want 0", n)
	}
	if n, left, _ := m.Add(ctx, "k", 2, time.Minute); n != 2 || left != time.Minute {
		t.Errorf("new window: %d, %v; want 2, 1m", n, left)
	}
}

func TestMemoryCounterBounded(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	m := ratelimit.NewMemory(clk.Now, 100)
	for i := range 1000 {
		m.Add(ctx, strconv.Itoa(i), 1, time.Minute)
		if m.Len() > 100 {
			t.Fatalf("after %d keys: %d counters kept, want at most 100", i+1, m.Len())
		}
	}
	clk.Advance(time.Hour)
	m.Add(ctx, "new", 1, time.Minute)
	if m.Len() != 1 {
		t.Errorf("after every window ended: %d counters kept, want 1", m.Len())
	}
}

func TestRedisCounter(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	client := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { client.Close() })
	a, b := ratelimit.NewRedis(client, ""), ratelimit.NewRedis(client, "")
	t.Cleanup(func() { a.Close(); b.Close() })

	if n, _, err := a.Add(ctx, "k", 0, time.Minute); n != 0 || err != nil {
		t.Fatalf("read of a missing counter = %d, %v", n, err)
	}
	if got, _ := srv.Do("EXISTS", ratelimit.DefaultRedisPrefix+"k"); got != "0" {
		t.Errorf("a read created the key")
	}
	a.Add(ctx, "k", 1, time.Minute)
	n, left, err := b.Add(ctx, "k", 1, time.Minute)
	if err != nil || n != 2 || left <= 0 || left > time.Minute {
		t.Fatalf("second instance's add = %d, %v, %v; want 2 and a time left within 1m", n, left, err)
	}
	if ttl, _ := srv.Do("PTTL", ratelimit.DefaultRedisPrefix+"k"); ttl == "-1" {
		t.Errorf("the counter key has no time to live")
	}

	// A window ends with its key.
	a.Add(ctx, "short", 1, 50*time.Millisecond)
	testutil.Eventually(t, 5*time.Second, func() bool {
		n, _, _ := a.Add(ctx, "short", 0, time.Minute)
		return n == 0
	})

	// A key left without a time to live gets one.
	srv.Do("SET", ratelimit.DefaultRedisPrefix+"stuck", "7")
	if n, left, _ := a.Add(ctx, "stuck", 0, time.Minute); n != 7 || left != time.Minute {
		t.Errorf("stuck key: %d, %v; want 7, 1m", n, left)
	}
	if ttl, _ := srv.Do("PTTL", ratelimit.DefaultRedisPrefix+"stuck"); ttl == "-1" {
		t.Errorf("the stuck key still has no time to live")
	}

	srv.Stop()
	if _, _, err := a.Add(ctx, "k", 1, time.Minute); err == nil {
		t.Error("Add with Redis down: no error")
	}
}

var (
	attacker = netip.MustParseAddr("203.0.113.66")
	other    = netip.MustParseAddr("203.0.113.67")
	legit    = netip.MustParseAddr("198.51.100.10")
)

func TestAddressLimit(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	var limited []string
	l := ratelimit.New(ratelimit.NewMemory(clk.Now, 0), ratelimit.Config{
		Window: time.Minute, AddressFailures: 3, ClientFailures: 100,
		OnLimited: func(limit string) { limited = append(limited, limit) },
	})
	for range 3 {
		if d := l.AllowAuth(ctx, "victim", attacker); d.Refused() {
			t.Fatalf("refused before the limit: %+v", d)
		}
		l.AuthFailed(ctx, "victim", attacker)
	}
	clk.Advance(10 * time.Second)
	for _, id := range []string{"victim", "another", ""} {
		d := l.AllowAuth(ctx, id, attacker)
		if d.Limit != ratelimit.LimitAddress || d.RetryAfter != 50*time.Second {
			t.Errorf("client %q from the address over its limit: %+v, want address limit, retry after 50s", id, d)
		}
	}
	if d := l.AllowAuth(ctx, "victim", other); d.Refused() {
		t.Errorf("another address: %+v, want allowed", d)
	}
	if len(limited) != 3 || limited[0] != ratelimit.LimitAddress {
		t.Errorf("OnLimited calls = %v", limited)
	}
	clk.Advance(50 * time.Second)
	if d := l.AllowAuth(ctx, "victim", attacker); d.Refused() {
		t.Errorf("after the window: %+v, want allowed", d)
	}
}

func TestIPv6AddressesCountPer64(t *testing.T) {
	ctx := context.Background()
	l := ratelimit.New(ratelimit.NewMemory(nil, 0), ratelimit.Config{Window: time.Minute, AddressFailures: 2})
	l.AuthFailed(ctx, "", netip.MustParseAddr("2001:db8:1:2::1"))
	l.AuthFailed(ctx, "", netip.MustParseAddr("2001:db8:1:2:ffff::9"))
	if d := l.AllowAuth(ctx, "", netip.MustParseAddr("2001:db8:1:2::77")); d.Limit != ratelimit.LimitAddress {
		t.Errorf("same /64: %+v, want refused", d)
	}
	if d := l.AllowAuth(ctx, "", netip.MustParseAddr("2001:db8:1:3::1")); d.Refused() {
		t.Errorf("another /64: %+v, want allowed", d)
	}
}

// TestClientLimitDoesNotLockOut: attackers from many addresses exceed the
// client id's limit; addresses that failed are refused for it, the
// legitimate client from a clean address still gets in, and its success
// clears nothing.
func TestClientLimitDoesNotLockOut(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	l := ratelimit.New(ratelimit.NewMemory(clk.Now, 0), ratelimit.Config{
		Window: time.Minute, AddressFailures: 10, ClientFailures: 3,
	})
	bots := []netip.Addr{
		netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.3"),
	}
	for _, a := range bots {
		l.AuthFailed(ctx, "victim", a)
	}
	for _, a := range bots {
		if d := l.AllowAuth(ctx, "victim", a); d.Limit != ratelimit.LimitClient || d.RetryAfter <= 0 {
			t.Errorf("failed address %v for the attacked client: %+v, want client limit", a, d)
		}
		if d := l.AllowAuth(ctx, "bystander", a); d.Refused() {
			t.Errorf("failed address %v for another client: %+v, want allowed (its own limit is 10)", a, d)
		}
	}
	if d := l.AllowAuth(ctx, "victim", legit); d.Refused() {
		t.Errorf("clean address for the attacked client: %+v, want allowed", d)
	}
	// The legitimate client authenticated (nothing to record); the bots stay refused.
	if d := l.AllowAuth(ctx, "victim", bots[0]); d.Limit != ratelimit.LimitClient {
		t.Errorf("bot after the legitimate success: %+v, want still refused", d)
	}
	// A fresh attacker address gets one check, then joins the refused.
	fresh := netip.MustParseAddr("192.0.2.99")
	if d := l.AllowAuth(ctx, "victim", fresh); d.Refused() {
		t.Errorf("fresh address: %+v, want checked", d)
	}
	l.AuthFailed(ctx, "victim", fresh)
	if d := l.AllowAuth(ctx, "victim", fresh); d.Limit != ratelimit.LimitClient {
		t.Errorf("fresh address after one failure: %+v, want refused", d)
	}
	clk.Advance(time.Minute)
	if d := l.AllowAuth(ctx, "victim", bots[0]); d.Refused() {
		t.Errorf("after the window: %+v, want allowed", d)
	}
}

// TestClientLimitAlone: with the address limit off, the client-id limit
// still tells failed addresses from clean ones.
func TestClientLimitAlone(t *testing.T) {
	ctx := context.Background()
	l := ratelimit.New(ratelimit.NewMemory(nil, 0), ratelimit.Config{Window: time.Minute, ClientFailures: 2})
	l.AuthFailed(ctx, "victim", attacker)
	l.AuthFailed(ctx, "victim", other)
	for _, a := range []netip.Addr{attacker, other} {
		if d := l.AllowAuth(ctx, "victim", a); d.Limit != ratelimit.LimitClient {
			t.Errorf("failed address %v: %+v, want client limit", a, d)
		}
	}
	for range 10 {
		l.AuthFailed(ctx, "", attacker)
	}
	if d := l.AllowAuth(ctx, "another", attacker); d.Refused() {
		t.Errorf("no address limit, another client: %+v, want allowed", d)
	}
	if d := l.AllowAuth(ctx, "victim", legit); d.Refused() {
		t.Errorf("clean address: %+v, want allowed", d)
	}
}

func TestQuota(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	l := ratelimit.New(ratelimit.NewMemory(clk.Now, 0), ratelimit.Config{QuotaPerMinute: 2})
	for i := range 2 {
		if d := l.AllowToken(ctx, "c", 0); d.Refused() {
			t.Fatalf("request %d: %+v", i+1, d)
		}
	}
	clk.Advance(15 * time.Second)
	if d := l.AllowToken(ctx, "c", 0); d.Limit != ratelimit.LimitQuota || d.RetryAfter != 45*time.Second {
		t.Errorf("over the quota: %+v, want quota, retry after 45s", d)
	}
	if d := l.AllowToken(ctx, "other", 0); d.Refused() {
		t.Errorf("another client: %+v", d)
	}
	clk.Advance(45 * time.Second)
	if d := l.AllowToken(ctx, "c", 0); d.Refused() {
		t.Errorf("next minute: %+v", d)
	}
}

func TestLimitsOff(t *testing.T) {
	ctx := context.Background()
	l := ratelimit.New(failing{}, ratelimit.Config{})
	for range 5 {
		l.AuthFailed(ctx, "c", attacker)
	}
	if d := l.AllowAuth(ctx, "c", attacker); d.Refused() {
		t.Errorf("AllowAuth with no limits: %+v", d)
	}
	if d := l.AllowToken(ctx, "c", 0); d.Refused() {
		t.Errorf("AllowToken with no quota: %+v", d)
	}
	var nilLimiter *ratelimit.Limiter
	if d := nilLimiter.AllowAuth(ctx, "c", attacker); d.Refused() {
		t.Errorf("nil limiter: %+v", d)
	}
}

// failing is a Counter that always fails.
type failing struct{}

func (failing) Add(context.Context, string, int64, time.Duration) (int64, time.Duration, error) {
	return 0, 0, errors.New("counter down")
}

func (failing) Reset(context.Context, string) error { return errors.New("counter down") }

func TestFailsOpen(t *testing.T) {
	ctx := context.Background()
	l := ratelimit.New(failing{}, ratelimit.Config{Window: time.Minute, AddressFailures: 1, ClientFailures: 1, QuotaPerMinute: 1})
	for range 3 {
		l.AuthFailed(ctx, "c", attacker)
		if d := l.AllowAuth(ctx, "c", attacker); d.Refused() {
			t.Errorf("AllowAuth with the counter down: %+v, want allowed", d)
		}
		if d := l.AllowToken(ctx, "c", 0); d.Refused() {
			t.Errorf("AllowToken with the counter down: %+v, want allowed", d)
		}
	}
	p := ratelimit.New(failing{}, ratelimit.Config{PasswordWindow: time.Minute, UserFailures: 1, PasswordAddressFailures: 1})
	for range 3 {
		p.PasswordFailed(ctx, "alice", attacker)
		if d := p.AllowPassword(ctx, attacker); d.Refused() {
			t.Errorf("AllowPassword with the counter down: %+v, want allowed", d)
		}
		if until, err := p.LockedUntil(ctx, "alice"); !until.IsZero() || err == nil {
			t.Errorf("LockedUntil with the counter down = %v, %v; want not locked and the error", until, err)
		}
	}
}

// TestPasswordLimits: a username is locked after UserFailures failed logins
// until its window ends, or until Unlock; an address is refused after
// PasswordAddressFailures; other usernames and addresses are not touched.
func TestPasswordLimits(t *testing.T) {
	testPasswordLimits(t, func(clk *testutil.Clock) ratelimit.Counter { return ratelimit.NewMemory(clk.Now, 0) })
}

func testPasswordLimits(t *testing.T, counter func(*testutil.Clock) ratelimit.Counter) {
	ctx := context.Background()
	clk := newClock()
	var limited []string
	l := ratelimit.New(counter(clk), ratelimit.Config{
		PasswordWindow: 15 * time.Minute, UserFailures: 3, PasswordAddressFailures: 5, Now: clk.Now,
		OnLimited: func(limit string) { limited = append(limited, limit) },
	})
	start := clk.Now()
	for i := range 3 {
		if until, err := l.LockedUntil(ctx, "alice"); !until.IsZero() || err != nil {
			t.Fatalf("after %d failures: locked until %v (%v)", i, until, err)
		}
		l.PasswordFailed(ctx, "alice", attacker)
		clk.Advance(time.Minute)
	}
	until, err := l.LockedUntil(ctx, "alice")
	if err != nil || !until.Equal(start.Add(15*time.Minute)) {
		t.Errorf("after 3 failures: locked until %v (%v), want the end of the window, %v", until, err, start.Add(15*time.Minute))
	}
	if until, _ := l.LockedUntil(ctx, "Alice"); !until.IsZero() {
		t.Errorf("another username (case differs) is locked too")
	}
	if d := l.AllowPassword(ctx, attacker); d.Refused() {
		t.Errorf("the address after 3 failures: %+v, want allowed (limit 5)", d)
	}
	l.PasswordFailed(ctx, "bob", attacker)
	l.PasswordFailed(ctx, "carol", attacker)
	if d := l.AllowPassword(ctx, attacker); d.Limit != ratelimit.LimitPasswordAddress || d.RetryAfter != 12*time.Minute {
		t.Errorf("the address after 5 failures: %+v, want refused for the 12m left of its window", d)
	}
	if d := l.AllowPassword(ctx, other); d.Refused() {
		t.Errorf("another address: %+v", d)
	}
	if len(limited) != 1 || limited[0] != ratelimit.LimitPasswordAddress {
		t.Errorf("OnLimited calls = %v", limited)
	}
	if err := l.Unlock(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if until, _ := l.LockedUntil(ctx, "alice"); !until.IsZero() {
		t.Errorf("after Unlock: locked until %v", until)
	}
	for range 3 {
		l.PasswordFailed(ctx, "bob", other)
	}
	// bob's window started with his first failure, 3 minutes in.
	if until, _ := l.LockedUntil(ctx, "bob"); !until.Equal(start.Add(18 * time.Minute)) {
		t.Errorf("bob after 4 failures: locked until %v, want %v", until, start.Add(18*time.Minute))
	}
	clk.Advance(12 * time.Minute)
	if d := l.AllowPassword(ctx, attacker); d.Refused() {
		t.Errorf("the address after its window: %+v", d)
	}
	clk.Advance(3 * time.Minute)
	if until, _ := l.LockedUntil(ctx, "bob"); !until.IsZero() {
		t.Errorf("bob after his window: locked until %v", until)
	}
}

// TestAdminLimit: an address is refused for admin calls after AdminFailures
// wrong admin tokens, until its window ends; the admin counters and the
// client-authentication counters of one address do not mix.
func TestAdminLimit(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	var limited []string
	l := ratelimit.New(ratelimit.NewMemory(clk.Now, 0), ratelimit.Config{
		Window: time.Minute, AddressFailures: 3, AdminFailures: 2,
		OnLimited: func(limit string) { limited = append(limited, limit) },
	})
	for range 2 {
		if d := l.AllowAdmin(ctx, attacker); d.Refused() {
			t.Fatalf("refused before the limit: %+v", d)
		}
		l.AdminFailed(ctx, attacker)
	}
	clk.Advance(15 * time.Second)
	if d := l.AllowAdmin(ctx, attacker); d.Limit != ratelimit.LimitAdminAddress || d.RetryAfter != 45*time.Second {
		t.Errorf("over the admin limit: %+v, want admin_address, retry after 45s", d)
	}
	if d := l.AllowAuth(ctx, "c", attacker); d.Refused() {
		t.Errorf("client authentication from the address refused by admin failures: %+v", d)
	}
	for range 3 {
		l.AuthFailed(ctx, "c", other)
	}
	if d := l.AllowAdmin(ctx, other); d.Refused() {
		t.Errorf("admin call refused by client-authentication failures: %+v", d)
	}
	if len(limited) != 1 || limited[0] != ratelimit.LimitAdminAddress {
		t.Errorf("OnLimited calls = %v", limited)
	}
	clk.Advance(45 * time.Second)
	if d := l.AllowAdmin(ctx, attacker); d.Refused() {
		t.Errorf("after the window: %+v", d)
	}
	off := ratelimit.New(ratelimit.NewMemory(clk.Now, 0), ratelimit.Config{Window: time.Minute})
	for range 100 {
		off.AdminFailed(ctx, attacker)
	}
	if d := off.AllowAdmin(ctx, attacker); d.Refused() {
		t.Errorf("AdminFailures 0 (off): %+v", d)
	}
}

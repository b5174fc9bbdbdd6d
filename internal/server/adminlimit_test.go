package server

import (
	"net/http"
	"testing"
	"time"

	"github.com/issuer-oauth/issuer/internal/config"
	"github.com/issuer-oauth/issuer/internal/redistest"
	"github.com/issuer-oauth/issuer/internal/secret"
)

// adminFrom calls GET /admin/clients with token (none when empty) from the
// address xff, forwarded by a trusted proxy (none when empty).
func (ti *testIssuer) adminFrom(t *testing.T, xff, token string) (*http.Response, map[string]any) {
	t.Helper()
	h := map[string]string{}
	if xff != "" {
		h["X-Forwarded-For"] = xff
	}
	if token != "" {
		h["Authorization"] = "Bearer " + token
	}
	return ti.send(t, "GET", "/admin/clients", nil, h)
}

const wrongAdminToken = "wrong-admin-token-0123456789abcdef0123"

// TestAdminTokenGuessing: with the default limit (10 wrong admin tokens per
// address per window), the 11th call from a guessing address gets 429 with
// Retry-After, and so does the right token from it until the window ends:
// guessing cannot go on, and a lucky guess is not told apart. Another
// address is still served, calls without a token do not count, and client
// authentication from the guessing address is not affected.
func TestAdminTokenGuessing(t *testing.T) {
	ti := startIssuer(t, trustProxies("127.0.0.0/8,::1"))
	if ti.cfg.AdminFailuresPerAddress != 10 {
		t.Fatalf("default admin_failures_per_address = %d, want 10", ti.cfg.AdminFailuresPerAddress)
	}
	const attacker, admin = "203.0.113.66", "198.51.100.20"
	id, sec := ti.createClient(t, map[string]any{"token_endpoint_auth_method": "client_secret_post"})
	for range 20 {
		if resp, _ := ti.adminFrom(t, attacker, ""); resp.StatusCode != 401 {
			t.Fatalf("no token: %d, want 401", resp.StatusCode)
		}
	}
	for i := range 10 {
		if resp, body := ti.adminFrom(t, attacker, wrongAdminToken); resp.StatusCode != 401 {
			t.Fatalf("wrong token %d: %d %v, want 401", i+1, resp.StatusCode, body)
		}
	}
	ti.clock.Advance(15 * time.Second)
	resp, body := ti.adminFrom(t, attacker, wrongAdminToken)
	checkLimited(t, "the 11th wrong token", resp, body, 45*time.Second)
	resp, body = ti.adminFrom(t, attacker, adminToken)
	checkLimited(t, "the right token from the guessing address", resp, body, 45*time.Second)
	if resp, _ := ti.adminFrom(t, admin, adminToken); resp.StatusCode != 200 {
		t.Errorf("the right token from another address: %d, want 200", resp.StatusCode)
	}
	if resp, body := ti.tokenFrom(t, attacker, id, sec); resp.StatusCode != 200 {
		t.Errorf("client authentication from the guessing address: %d %v, want 200", resp.StatusCode, body)
	}
	fams, _ := ti.scrape(t)
	if n := metricSum(fams, "issuer_rate_limited_total", map[string]string{"limit": "admin_address"}); n != 2 {
		t.Errorf("issuer_rate_limited_total{limit=admin_address} = %v, want 2", n)
	}
	ti.clock.Advance(45 * time.Second)
	if resp, _ := ti.adminFrom(t, attacker, adminToken); resp.StatusCode != 200 {
		t.Errorf("the right token after the window: %d, want 200", resp.StatusCode)
	}
}

// TestAdminLimitOff: admin_failures_per_address 0 keeps today's behaviour:
// every wrong token is a 401.
func TestAdminLimitOff(t *testing.T) {
	ti := startIssuer(t, func(c *config.Config) { c.AdminFailuresPerAddress = 0 })
	for range 30 {
		if resp, _ := ti.adminFrom(t, "", wrongAdminToken); resp.StatusCode != 401 {
			t.Fatalf("wrong token with the limit off: %d, want 401", resp.StatusCode)
		}
	}
	if resp, _ := ti.adminFrom(t, "", adminToken); resp.StatusCode != 200 {
		t.Errorf("right token: %d, want 200", resp.StatusCode)
	}
}

// TestAdminLimitSharedThroughRedis: two instances on one redis-server
// share the count, so spreading guesses over instances does not help.
func TestAdminLimitSharedThroughRedis(t *testing.T) {
	srv := redistest.Start(t)
	master := secret.Random(32)
	opts := []func(*config.Config){onRedis(srv.URL(), master), trustProxies("127.0.0.0/8,::1"),
		func(c *config.Config) { c.AdminFailuresPerAddress = 4 }}
	a := startIssuer(t, opts...)
	b := startIssuer(t, append(opts, sameURL(a.URL))...)
	const attacker = "203.0.113.66"
	for i, ti := range []*testIssuer{a, b, a, b} {
		if resp, _ := ti.adminFrom(t, attacker, wrongAdminToken); resp.StatusCode != 401 {
			t.Fatalf("wrong token %d: %d, want 401", i+1, resp.StatusCode)
		}
	}
	for name, ti := range map[string]*testIssuer{"A": a, "B": b} {
		resp, body := ti.adminFrom(t, attacker, adminToken)
		checkLimited(t, "the right token at instance "+name, resp, body, time.Minute)
	}
	if ttl, _ := srv.Do("PTTL", "issuer:ratelimit:admin:addr:203.0.113.66"); ttl == "-1" || ttl == "-2" {
		t.Errorf("admin counter PTTL = %s, want a time to live", ttl)
	}
}

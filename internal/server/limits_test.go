package server

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/issuer-oauth/issuer/internal/config"
	"github.com/issuer-oauth/issuer/internal/metrics/metricstest"
	"github.com/issuer-oauth/issuer/internal/redistest"
	"github.com/issuer-oauth/issuer/internal/secret"
)

// limits sets the abuse limits of an issuer.
func limits(perAddress, perClient, quota int64) func(*config.Config) {
	return func(c *config.Config) {
		c.AuthFailuresPerAddress, c.AuthFailuresPerClient, c.TokenQuotaPerMinute = perAddress, perClient, quota
	}
}

// checkLimited checks a 429 answer: Retry-After in whole seconds within
// max, and an RFC 6749 error body.
func checkLimited(t *testing.T, what string, resp *http.Response, body map[string]any, max time.Duration) {
	t.Helper()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("%s: status %d %v, want 429", what, resp.StatusCode, body)
		return
	}
	ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || ra < 1 || time.Duration(ra)*time.Second > max {
		t.Errorf("%s: Retry-After %q, want 1 to %v in seconds", what, resp.Header.Get("Retry-After"), max)
	}
	if body["error"] != "temporarily_unavailable" || !strings.Contains(body["error_description"].(string), "retry after") {
		t.Errorf("%s: body %v, want error temporarily_unavailable and a description", what, body)
	}
	if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("WWW-Authenticate") != "" {
		t.Errorf("%s: headers %v", what, resp.Header)
	}
}

func TestAddressLimit(t *testing.T) {
	ti := startIssuer(t, trustProxies("127.0.0.0/8,::1"), limits(3, 0, 0))
	id, sec := ti.createClient(t, map[string]any{"token_endpoint_auth_method": "client_secret_post"})
	const attacker, bystander = "203.0.113.66", "198.51.100.20"
	for range 3 {
		if resp, _ := ti.tokenFrom(t, attacker, id, "wrong"); resp.StatusCode != 401 {
			t.Fatalf("wrong secret: %d, want 401", resp.StatusCode)
		}
	}
	ti.clock.Advance(20 * time.Second)
	resp, body := ti.tokenFrom(t, attacker, id, sec)
	checkLimited(t, "the right secret from the address over its limit", resp, body, 40*time.Second)
	resp, body = ti.tokenFrom(t, attacker, "unknown-client", "x")
	checkLimited(t, "another client id from that address", resp, body, 40*time.Second)
	resp, body = ti.send(t, "POST", "/oauth2/introspect",
		url.Values{"token": {"x"}, "client_id": {id}, "client_secret": {sec}},
		map[string]string{"X-Forwarded-For": attacker})
	checkLimited(t, "introspection from that address", resp, body, 40*time.Second)

	if resp, body := ti.tokenFrom(t, bystander, id, sec); resp.StatusCode != 200 {
		t.Errorf("another address: %d %v, want 200", resp.StatusCode, body)
	}
	ti.clock.Advance(40 * time.Second)
	if resp, body := ti.tokenFrom(t, attacker, id, sec); resp.StatusCode != 200 {
		t.Errorf("after the window: %d %v, want 200", resp.StatusCode, body)
	}

	fams, _ := ti.scrape(t)
	if got, _ := metricstest.Value(fams, "issuer_rate_limited_total", map[string]string{"limit": "address"}); got != 3 {
		t.Errorf("issuer_rate_limited_total{limit=address} = %v, want 3", got)
	}
	if got, _ := metricstest.Value(fams, "issuer_token_requests_total",
		map[string]string{"grant_type": "client_credentials", "outcome": "temporarily_unavailable"}); got != 2 {
		t.Errorf("token requests refused by the limit = %v, want 2", got)
	}
	if !strings.Contains(ti.logs.String(), "too many failed client authentications from one address") {
		t.Errorf("no warning logged when the limit tripped")
	}
}

// TestClientLimitDoesNotLockOut: attackers from several addresses push a
// client id over its limit. The addresses that failed are refused even with
// the right secret; the legitimate client, from an address that did not
// fail, keeps getting tokens, and its success clears nothing.
func TestClientLimitDoesNotLockOut(t *testing.T) {
	ti := startIssuer(t, trustProxies("127.0.0.0/8,::1"), limits(100, 3, 0))
	id, sec := ti.createClient(t, map[string]any{"token_endpoint_auth_method": "client_secret_post"})
	bots := []string{"203.0.113.1", "203.0.113.2", "203.0.113.3"}
	for _, a := range bots {
		if resp, _ := ti.tokenFrom(t, a, id, "guess"); resp.StatusCode != 401 {
			t.Fatalf("guess from %s: %d, want 401", a, resp.StatusCode)
		}
	}
	for _, a := range bots {
		resp, body := ti.tokenFrom(t, a, id, sec)
		checkLimited(t, "the right secret from a failed address "+a, resp, body, time.Minute)
	}
	const legit = "198.51.100.10"
	for range 3 {
		if resp, body := ti.tokenFrom(t, legit, id, sec); resp.StatusCode != 200 {
			t.Fatalf("the legitimate client during the attack: %d %v, want 200", resp.StatusCode, body)
		}
	}
	resp, body := ti.tokenFrom(t, bots[0], id, sec)
	checkLimited(t, "a bot after the legitimate client's successes", resp, body, time.Minute)

	// Another client is not affected by the attack on this one.
	otherID, otherSec := ti.createClient(t, map[string]any{"token_endpoint_auth_method": "client_secret_post"})
	if resp, body := ti.tokenFrom(t, bots[0], otherID, otherSec); resp.StatusCode != 200 {
		t.Errorf("another client from a bot's address: %d %v, want 200", resp.StatusCode, body)
	}
	ti.clock.Advance(time.Minute)
	if resp, body := ti.tokenFrom(t, bots[0], id, sec); resp.StatusCode != 200 {
		t.Errorf("after the window: %d %v, want 200", resp.StatusCode, body)
	}
}

func TestTokenQuota(t *testing.T) {
	ti := startIssuer(t, limits(0, 0, 3))
	id, sec := ti.createClient(t, map[string]any{})
	otherID, otherSec := ti.createClient(t, map[string]any{})
	rt := ti.issue(t, id, sec)["refresh_token"].(string)
	if status, m := ti.refresh(t, id, sec, rt); status != 200 {
		t.Fatalf("refresh: %d %v", status, m)
	}
	ti.issue(t, id, sec)
	ti.clock.Advance(15 * time.Second)
	resp, body := ti.token(t, id, sec, true, ccForm)
	checkLimited(t, "the fourth token request in a minute", resp, body, 45*time.Second)
	if !strings.Contains(body["error_description"].(string), "quota") {
		t.Errorf("description %q does not name the quota", body["error_description"])
	}
	ti.issue(t, otherID, otherSec)
	ti.clock.Advance(45 * time.Second)
	ti.issue(t, id, sec)

	fams, _ := ti.scrape(t)
	if got, _ := metricstest.Value(fams, "issuer_rate_limited_total", map[string]string{"limit": "quota"}); got != 1 {
		t.Errorf("issuer_rate_limited_total{limit=quota} = %v, want 1", got)
	}
}

// TestLimitsSharedThroughRedis: two instances on one Redis share the
// failure counts and the quota.
func TestLimitsSharedThroughRedis(t *testing.T) {
	srv := redistest.Start(t)
	master := secret.Random(32)
	opts := []func(*config.Config){onRedis(srv.URL(), master), trustProxies("127.0.0.0/8,::1"), limits(3, 0, 4)}
	a := startIssuer(t, opts...)
	b := startIssuer(t, append(opts, sameURL(a.URL))...)
	id, sec := a.createClient(t, map[string]any{"token_endpoint_auth_method": "client_secret_post"})

	t.Run("failed authentications", func(t *testing.T) {
		const attacker = "203.0.113.66"
		a.tokenFrom(t, attacker, id, "wrong")
		b.tokenFrom(t, attacker, id, "wrong")
		if resp, _ := a.tokenFrom(t, attacker, id, "wrong"); resp.StatusCode != 401 {
			t.Fatalf("third failure: %d, want 401", resp.StatusCode)
		}
		for name, ti := range map[string]*testIssuer{"A": a, "B": b} {
			resp, body := ti.tokenFrom(t, attacker, id, sec)
			checkLimited(t, "instance "+name+" after failures at both", resp, body, time.Minute)
		}
		if resp, _ := b.tokenFrom(t, "198.51.100.1", id, sec); resp.StatusCode != 200 {
			t.Errorf("another address at B: %d, want 200", resp.StatusCode)
		}
	})
	t.Run("quota", func(t *testing.T) {
		qid, qsec := a.createClient(t, map[string]any{"token_endpoint_auth_method": "client_secret_post"})
		for i, ti := range []*testIssuer{a, b, a, b} {
			if resp, body := ti.tokenFrom(t, "198.51.100.2", qid, qsec); resp.StatusCode != 200 {
				t.Fatalf("request %d: %d %v", i+1, resp.StatusCode, body)
			}
		}
		resp, body := a.tokenFrom(t, "198.51.100.2", qid, qsec)
		checkLimited(t, "fifth request over both instances", resp, body, time.Minute)
	})
	if n, err := srv.Do("EXISTS", "issuer:ratelimit:auth:addr:203.0.113.66"); n != "1" {
		t.Errorf("the address counter is not in Redis: %q %v", n, err)
	}
	if ttl, _ := srv.Do("PTTL", "issuer:ratelimit:auth:addr:203.0.113.66"); ttl == "-1" || ttl == "-2" {
		t.Errorf("address counter PTTL = %s, want a time to live", ttl)
	}
}

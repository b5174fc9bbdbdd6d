package server

import (
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/issuer-oauth/issuer/internal/config"
	"github.com/issuer-oauth/issuer/internal/redistest"
	"github.com/issuer-oauth/issuer/internal/secret"
	"github.com/issuer-oauth/issuer/internal/testutil"
)

// onRedis configures an issuer for a Redis store with a shared master secret.
func onRedis(redisURL, master string) func(*config.Config) {
	return func(c *config.Config) {
		c.RedisURL = redisURL
		c.Secret = master
	}
}

// sameURL makes an instance share another's issuer identifier, as instances
// behind one load balancer do.
func sameURL(u string) func(*config.Config) {
	return func(c *config.Config) { c.URL = u }
}

func (ti *testIssuer) jwksBytes(t *testing.T) string {
	t.Helper()
	resp, err := http.Get(ti.base + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestTwoInstancesOnOneRedis: two issuer processes' worth of state (each its
// own store client, keys and caches) on one real redis-server.
func TestTwoInstancesOnOneRedis(t *testing.T) {
	srv := redistest.Start(t)
	master := secret.Random(32)
	a := startIssuer(t, onRedis(srv.URL(), master))
	b := startIssuer(t, onRedis(srv.URL(), master), sameURL(a.URL))

	if ja, jb := a.jwksBytes(t), b.jwksBytes(t); ja != jb {
		t.Fatalf("instances publish different JWKS:\n%s\n%s", ja, jb)
	}
	id, sec := a.createClient(t, map[string]any{"scope": "read write"})

	t.Run("refresh at the other instance, reuse at the first", func(t *testing.T) {
		rt1 := a.issue(t, id, sec)["refresh_token"].(string)
		status, m := b.refresh(t, id, sec, rt1)
		if status != 200 {
			t.Fatalf("refresh at B: %d %v", status, m)
		}
		b.verifyAccess(t, m["access_token"].(string), "https://api.example.com")
		rt2 := m["refresh_token"].(string)
		if status, m := a.refresh(t, id, sec, rt1); status != 400 || m["error"] != "invalid_grant" {
			t.Fatalf("reuse at A: %d %v, want invalid_grant", status, m)
		}
		if status, m := b.refresh(t, id, sec, rt2); status != 400 || m["error"] != "invalid_grant" {
			t.Fatalf("family member after reuse, at B: %d %v, want invalid_grant", status, m)
		}
	})

	t.Run("50 concurrent refreshes over both instances", func(t *testing.T) {
		refreshRace(t, a.issue(t, id, sec)["refresh_token"].(string), id, sec, a, b)
	})

	t.Run("a deleted client stops at the other instance at once", func(t *testing.T) {
		did, dsec := a.createClient(t, map[string]any{})
		b.issue(t, did, dsec) // B caches the client
		if resp, _ := a.admin(t, "DELETE", "/admin/clients/"+did, nil); resp.StatusCode != 204 {
			t.Fatalf("delete: %d", resp.StatusCode)
		}
		testutil.Eventually(t, time.Second, func() bool {
			resp, _ := b.token(t, did, dsec, true, url.Values{"grant_type": {"client_credentials"}})
			return resp.StatusCode == 401
		})
	})

	t.Run("a rotated secret stops at the other instance at once", func(t *testing.T) {
		rid, rsec := a.createClient(t, map[string]any{})
		b.issue(t, rid, rsec)
		if resp, _ := a.admin(t, "POST", "/admin/clients/"+rid+"/secret", nil); resp.StatusCode != 200 {
			t.Fatalf("rotate secret: %d", resp.StatusCode)
		}
		testutil.Eventually(t, time.Second, func() bool {
			resp, _ := b.token(t, rid, rsec, true, url.Values{"grant_type": {"client_credentials"}})
			return resp.StatusCode == 401
		})
	})

	t.Run("an emergency key rotation reaches the other instance", func(t *testing.T) {
		a.clock.Advance(time.Second)
		b.clock.Advance(time.Second)
		resp, k := a.admin(t, "POST", "/admin/keys/rotate", nil)
		if resp.StatusCode != 201 {
			t.Fatalf("rotate: %d %v", resp.StatusCode, k)
		}
		testutil.Eventually(t, 2*time.Second, func() bool {
			h, _ := decodeJWT(t, b.issue(t, id, sec)["access_token"].(string))
			return h["kid"] == k["kid"]
		})
		if ja, jb := a.jwksBytes(t), b.jwksBytes(t); ja != jb {
			t.Fatalf("JWKS differ after rotation:\n%s\n%s", ja, jb)
		}
	})

	t.Run("an outstanding refresh token survives restarting both", func(t *testing.T) {
		rt := a.issue(t, id, sec)["refresh_token"].(string)
		kid := a.jwksBytes(t)
		a.srv.Close()
		a.app.Close()
		b.srv.Close()
		b.app.Close()
		a2 := startIssuer(t, onRedis(srv.URL(), master), sameURL(a.URL))
		b2 := startIssuer(t, onRedis(srv.URL(), master), sameURL(a.URL))
		a2.clock.Advance(time.Second) // the test clocks went on while the old instances ran
		b2.clock.Advance(time.Second)
		if got := b2.jwksBytes(t); got != kid {
			t.Errorf("JWKS changed across the restart")
		}
		status, m := b2.refresh(t, id, sec, rt)
		if status != 200 {
			t.Fatalf("refresh after restart: %d %v", status, m)
		}
		if h, _ := decodeJWT(t, m["access_token"].(string)); !strings.Contains(a2.jwksBytes(t), `"kid":"`+h["kid"].(string)+`"`) {
			t.Errorf("the new access token's kid %v is not in the JWKS", h["kid"])
		}
	})
}

// TestTwoInstancesStartTogether: instances starting at once on an empty Redis
// agree on one signing key.
func TestTwoInstancesStartTogether(t *testing.T) {
	srv := redistest.Start(t)
	master := secret.Random(32)
	var (
		wg  sync.WaitGroup
		tis [4]*testIssuer
	)
	for i := range tis {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tis[i] = startIssuer(t, onRedis(srv.URL(), master))
		}()
	}
	wg.Wait()
	first := tis[0].jwksBytes(t)
	for _, ti := range tis[1:] {
		if got := ti.jwksBytes(t); got != first {
			t.Fatalf("instances disagree on keys:\n%s\n%s", first, got)
		}
	}
	if n := strings.Count(first, `"kid"`); n != 1 {
		t.Fatalf("%d keys after a simultaneous start, want 1: %s", n, first)
	}
}

// TestRedisCluster runs the token flow on a 3-master Redis Cluster: every
// script's keys share one hash slot.
func TestRedisCluster(t *testing.T) {
	cluster := redistest.StartCluster(t, 3)
	master := secret.Random(32)
	a := startIssuer(t, onRedis(cluster.URL(), master))
	b := startIssuer(t, onRedis(cluster.URL(), master), sameURL(a.URL))
	id, sec := a.createClient(t, map[string]any{"scope": "read write"})
	// Several families, so their keys land on different nodes.
	for i := range 10 {
		rt := a.issue(t, id, sec)["refresh_token"].(string)
		status, m := b.refresh(t, id, sec, rt, "scope", "read")
		if status != 200 || m["scope"] != "read" {
			t.Fatalf("family %d: refresh at B: %d %v", i, status, m)
		}
		if status, m := a.refresh(t, id, sec, rt); status != 400 || m["error"] != "invalid_grant" {
			t.Fatalf("family %d: reuse: %d %v", i, status, m)
		}
		if status, _ := a.refresh(t, id, sec, m["refresh_token"].(string)); status != 400 {
			t.Fatalf("family %d: member after reuse: %d, want 400", i, status)
		}
	}
	if ja, jb := a.jwksBytes(t), b.jwksBytes(t); ja != jb {
		t.Fatal("instances on the cluster publish different JWKS")
	}
}

// TestRedisGoesAway stops the real redis-server under a running issuer:
// requests that need state fail fast with 503 and a JSON body, /readyz turns
// not ready, and everything recovers when Redis returns.
func TestRedisGoesAway(t *testing.T) {
	srv := redistest.Start(t, redistest.WithAOF()) // Redis keeps its data across the outage
	ti := startIssuer(t, onRedis(srv.URL(), secret.Random(32)))
	id, sec := ti.createClient(t, map[string]any{})
	rt := ti.issue(t, id, sec)["refresh_token"].(string)

	srv.Stop()
	client := &http.Client{Timeout: 15 * time.Second} // a hang fails the test
	check := func(name string, req *http.Request, want int) {
		t.Helper()
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s with Redis down: %v", name, err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s with Redis down: %d, want %d", name, resp.StatusCode, want)
		}
		if want == 503 && !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Errorf("%s: 503 without a JSON body", name)
		}
		t.Logf("%s answered %d after %v", name, resp.StatusCode, time.Since(start).Round(time.Millisecond))
	}
	form := func(v url.Values) *http.Request {
		req, _ := http.NewRequest("POST", ti.base+"/oauth2/token", strings.NewReader(v.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(id, sec)
		return req
	}
	check("client_credentials", form(url.Values{"grant_type": {"client_credentials"}}), 503)
	check("refresh", form(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}), 503)
	adminReq, _ := http.NewRequest("POST", ti.base+"/admin/clients", strings.NewReader(`{"audience":["https://x"]}`))
	adminReq.Header.Set("Authorization", "Bearer "+adminToken)
	check("admin create", adminReq, 503)
	ready, _ := http.NewRequest("GET", ti.base+"/readyz", nil)
	check("readyz", ready, 503)
	live, _ := http.NewRequest("GET", ti.base+"/healthz", nil)
	check("healthz", live, 200)

	srv.Restart()
	testutil.Eventually(t, 10*time.Second, func() bool {
		resp, err := http.Get(ti.base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	// The refresh token refused while Redis was down was not consumed.
	if status, m := ti.refresh(t, id, sec, rt); status != 200 {
		t.Fatalf("refresh after Redis returned: %d %v", status, m)
	}
}

// TestRedisRestartWithAOF: an acknowledged rotation survives a Redis restart
// with appendonly yes and appendfsync always (deploy/ sets both).
func TestRedisRestartWithAOF(t *testing.T) {
	srv := redistest.Start(t, redistest.WithAOF())
	ti := startIssuer(t, onRedis(srv.URL(), secret.Random(32)))
	id, sec := ti.createClient(t, map[string]any{})
	rt1 := ti.issue(t, id, sec)["refresh_token"].(string)
	status, m := ti.refresh(t, id, sec, rt1)
	if status != 200 {
		t.Fatalf("refresh: %d %v", status, m)
	}
	rt2 := m["refresh_token"].(string)

	srv.Restart()
	testutil.Eventually(t, 10*time.Second, func() bool {
		resp, err := http.Get(ti.base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	if status, m := ti.refresh(t, id, sec, rt2); status != 200 {
		t.Fatalf("the rotated token after the restart: %d %v", status, m)
	}
	if status, _ := ti.refresh(t, id, sec, rt1); status != 400 {
		t.Fatalf("the retired token after the restart: %d, want 400", status)
	}
}

// TestRedisKeysExpire: refresh-token state has TTLs, so after the tokens
// expire the number of keys returns to its baseline (no unbounded growth).
func TestRedisKeysExpire(t *testing.T) {
	srv := redistest.Start(t)
	ti := startIssuer(t, onRedis(srv.URL(), secret.Random(32)), func(c *config.Config) {
		c.AccessTokenTTL = time.Second
		c.RefreshTokenTTL = 2 * time.Second
	})
	id, sec := ti.createClient(t, map[string]any{})
	dbsize := func() int {
		out, err := srv.Do("DBSIZE")
		if err != nil {
			t.Fatal(err)
		}
		n, err := strconv.Atoi(strings.TrimSpace(out))
		if err != nil {
			t.Fatalf("DBSIZE = %q", out)
		}
		return n
	}
	baseline := dbsize()
	for range 20 {
		m := ti.issue(t, id, sec)
		ti.refresh(t, id, sec, m["refresh_token"].(string))
	}
	if grown := dbsize(); grown < baseline+20 {
		t.Fatalf("DBSIZE %d after 20 families, baseline %d: families not stored?", grown, baseline)
	}
	testutil.Eventually(t, 15*time.Second, func() bool {
		return dbsize() == baseline
	})
}

package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/issuer-oauth/issuer/internal/config"
	"github.com/issuer-oauth/issuer/internal/redistest"
	"github.com/issuer-oauth/issuer/internal/secret"
	"github.com/issuer-oauth/issuer/internal/testutil"
)

// Per-client policy and retried refreshes (docs/client-policy.md, docs/refresh.md).

// twoOnRedis starts two instances on one real redis-server behind one
// issuer URL, each with its own store client, keys, caches and clock.
func twoOnRedis(t *testing.T, mutate ...func(*config.Config)) (a, b *testIssuer) {
	t.Helper()
	srv := redistest.Start(t)
	master := secret.Random(32)
	a = startIssuer(t, append([]func(*config.Config){onRedis(srv.URL(), master)}, mutate...)...)
	b = startIssuer(t, append([]func(*config.Config){onRedis(srv.URL(), master), sameURL(a.URL)}, mutate...)...)
	return a, b
}

// advance moves the clocks of every instance.
func advance(d time.Duration, instances ...*testIssuer) {
	for _, ti := range instances {
		ti.clock.Advance(d)
	}
}

// rawToken posts a token request with HTTP Basic and returns the status
// and the body's bytes.
func (ti *testIssuer) rawToken(t *testing.T, id, sec string, form url.Values) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("POST", ti.base+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(sec))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("token request: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode == 200 && resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("token response without Cache-Control: no-store")
	}
	return resp.StatusCode, body
}

// rawRefresh refreshes rt and returns the status and the body's bytes.
func (ti *testIssuer) rawRefresh(t *testing.T, id, sec, rt string, extra ...string) (int, []byte) {
	t.Helper()
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
	for i := 0; i < len(extra); i += 2 {
		form.Add(extra[i], extra[i+1])
	}
	return ti.rawToken(t, id, sec, form)
}

// decode decodes a token response body.
func decode(t *testing.T, body []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("not JSON: %v: %s", err, body)
	}
	return m
}

// setClient changes fields of a client with a PUT of its whole metadata,
// as the CLI does.
func (ti *testIssuer) setClient(t *testing.T, id string, changes map[string]any) map[string]any {
	t.Helper()
	resp, m := ti.admin(t, "GET", "/admin/clients/"+id, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("get client: %d %v", resp.StatusCode, m)
	}
	for k, v := range changes {
		m[k] = v
	}
	resp, m = ti.admin(t, "PUT", "/admin/clients/"+id, m)
	if resp.StatusCode != 200 {
		t.Fatalf("update client: %d %v", resp.StatusCode, m)
	}
	return m
}

// TestDisabledClient: a disabled client cannot authenticate, its tokens
// introspect as inactive, and its refresh tokens stay dead once it is
// enabled again.
func TestDisabledClient(t *testing.T) {
	onBothStores(t, func(t *testing.T, ti *testIssuer) {
		id, sec := ti.createClient(t, map[string]any{"scope": "read"})
		rsID, rsSec := ti.createClient(t, map[string]any{"introspect_all": true})
		tok := ti.issue(t, id, sec)
		access, rt := tok["access_token"].(string), tok["refresh_token"].(string)
		if m := ti.introspect(t, rsID, rsSec, access); m["active"] != true {
			t.Fatalf("access token before disabling: %v, want active", m)
		}

		if m := ti.setClient(t, id, map[string]any{"disabled": true}); m["disabled"] != true {
			t.Fatalf("update answer = %v, want disabled", m)
		}
		resp, m := ti.token(t, id, sec, true, url.Values{"grant_type": {"client_credentials"}})
		if resp.StatusCode != 401 || m["error"] != "invalid_client" || !strings.Contains(m["error_description"].(string), "disabled") {
			t.Errorf("client_credentials while disabled: %d %v, want 401 invalid_client saying disabled", resp.StatusCode, m)
		}
		if status, m := ti.refresh(t, id, sec, rt); status != 401 {
			t.Errorf("refresh while disabled: %d %v, want 401", status, m)
		}
		for name, raw := range map[string]string{"access": access, "refresh": rt} {
			if m := ti.introspect(t, rsID, rsSec, raw); m["active"] != false || len(m) != 1 {
				t.Errorf("%s token of a disabled client: %v, want only active:false", name, m)
			}
		}
		// The wrong secret of a disabled client is the usual failure:
		// only the holder of the secret learns that it is disabled.
		resp, m = ti.token(t, id, "wrong", true, url.Values{"grant_type": {"client_credentials"}})
		if resp.StatusCode != 401 || strings.Contains(m["error_description"].(string), "disabled") {
			t.Errorf("wrong secret of a disabled client: %d %v", resp.StatusCode, m)
		}

		ti.setClient(t, id, map[string]any{"disabled": false})
		if m := ti.introspect(t, rsID, rsSec, rt); m["active"] != false {
			t.Errorf("refresh token from before, once enabled: %v, want inactive", m)
		}
		if status, m := ti.refresh(t, id, sec, rt); status != 400 || m["error"] != "invalid_grant" {
			t.Errorf("refresh token from before, once enabled: %d %v, want 400 invalid_grant", status, m)
		}
		fresh := ti.issue(t, id, sec)["refresh_token"].(string)
		if status, m := ti.refresh(t, id, sec, fresh); status != 200 {
			t.Errorf("a new family once enabled: %d %v, want 200", status, m)
		}
	})
}

// TestDisabledClientAcrossInstances: disabling at one instance stops the
// client at the other at once (the other had it cached).
func TestDisabledClientAcrossInstances(t *testing.T) {
	a, b := twoOnRedis(t)
	id, sec := a.createClient(t, map[string]any{})
	rt := b.issue(t, id, sec)["refresh_token"].(string) // B caches the client
	a.setClient(t, id, map[string]any{"disabled": true})
	testutil.Eventually(t, time.Second, func() bool {
		resp, _ := b.token(t, id, sec, true, url.Values{"grant_type": {"client_credentials"}})
		return resp.StatusCode == 401
	})
	a.setClient(t, id, map[string]any{"disabled": false})
	testutil.Eventually(t, time.Second, func() bool {
		resp, _ := b.token(t, id, sec, true, url.Values{"grant_type": {"client_credentials"}})
		return resp.StatusCode == 200
	})
	if status, m := b.refresh(t, id, sec, rt); status != 400 || m["error"] != "invalid_grant" {
		t.Errorf("refresh token from before the disabling, at B: %d %v, want 400 invalid_grant", status, m)
	}
}

// lifetimes returns expires_in and the lifetimes (exp - iat) of the access
// and refresh tokens of a token response.
func lifetimes(t *testing.T, m map[string]any) (expiresIn, access, refresh time.Duration) {
	t.Helper()
	_, ac := decodeJWT(t, m["access_token"].(string))
	_, rc := decodeJWT(t, m["refresh_token"].(string))
	secs := func(v any) time.Duration { return time.Duration(v.(float64)) * time.Second }
	return secs(m["expires_in"]), secs(ac["exp"]) - secs(ac["iat"]), secs(rc["exp"]) - secs(rc["iat"])
}

// TestClientLifetimes: a client's own lifetimes show in expires_in and in
// the tokens' exp, at both instances; a client without them gets the
// server's.
func TestClientLifetimes(t *testing.T) {
	a, b := twoOnRedis(t)
	own, ownSec := a.createClient(t, map[string]any{"access_token_ttl": "10m", "refresh_token_ttl": "36h"})
	plain, plainSec := a.createClient(t, map[string]any{})
	tests := []struct {
		name                            string
		id, sec                         string
		expiresIn, access, refreshToken time.Duration
	}{
		{"own lifetimes", own, ownSec, 10 * time.Minute, 10 * time.Minute, 36 * time.Hour},
		{"server lifetimes", plain, plainSec, 5 * time.Minute, 5 * time.Minute, 24 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first := a.issue(t, tt.id, tt.sec)
			status, body := b.rawRefresh(t, tt.id, tt.sec, first["refresh_token"].(string))
			if status != 200 {
				t.Fatalf("refresh at B: %d %s", status, body)
			}
			for step, m := range map[string]map[string]any{"client_credentials at A": first, "refresh at B": decode(t, body)} {
				e, ac, rf := lifetimes(t, m)
				if e != tt.expiresIn || ac != tt.access || rf != tt.refreshToken {
					t.Errorf("%s: expires_in %v, access %v, refresh %v; want %v, %v, %v", step, e, ac, rf, tt.expiresIn, tt.access, tt.refreshToken)
				}
			}
		})
	}
}

// TestFamilyCap: refresh_token_max_lifetime ends a family at an absolute
// time from its first token, however often it is refreshed; the tokens
// issued near the end expire with it.
func TestFamilyCap(t *testing.T) {
	a, b := twoOnRedis(t)
	id, sec := a.createClient(t, map[string]any{"refresh_token_max_lifetime": "36h"})
	first := a.issue(t, id, sec)
	if _, _, rf := lifetimes(t, first); rf != 24*time.Hour {
		t.Fatalf("first refresh token lives %v, want refresh_token_ttl 24h (the earlier end)", rf)
	}
	advance(20*time.Hour, a, b)
	status, body := b.rawRefresh(t, id, sec, first["refresh_token"].(string))
	if status != 200 {
		t.Fatalf("refresh after 20h: %d %s", status, body)
	}
	second := decode(t, body)
	if e, _, rf := lifetimes(t, second); rf != 16*time.Hour || e != 5*time.Minute {
		t.Errorf("after 20h: refresh token lives %v, expires_in %v; want 16h (to the cap) and 5m", rf, e)
	}
	advance(16*time.Hour-2*time.Minute, a, b)
	status, body = a.rawRefresh(t, id, sec, second["refresh_token"].(string))
	if status != 200 {
		t.Fatalf("refresh 2m before the cap: %d %s", status, body)
	}
	third := decode(t, body)
	if e, ac, rf := lifetimes(t, third); e != 2*time.Minute || ac != 2*time.Minute || rf != 2*time.Minute {
		t.Errorf("2m before the cap: expires_in %v, access %v, refresh %v; want 2m each", e, ac, rf)
	}
	advance(2*time.Minute, a, b)
	if status, m := b.refresh(t, id, sec, third["refresh_token"].(string)); status != 400 || m["error"] != "invalid_grant" {
		t.Errorf("refresh at the cap: %d %v, want 400 invalid_grant", status, m)
	}

	t.Run("server setting", func(t *testing.T) {
		ti := startIssuer(t, func(c *config.Config) { c.RefreshTokenMaxLifetime = 2 * time.Hour })
		id, sec := ti.createClient(t, map[string]any{})
		if _, _, rf := lifetimes(t, ti.issue(t, id, sec)); rf != 2*time.Hour {
			t.Errorf("refresh token lives %v, want the server's refresh_token_max_lifetime 2h", rf)
		}
		own, ownSec := ti.createClient(t, map[string]any{"refresh_token_max_lifetime": "48h"})
		if _, _, rf := lifetimes(t, ti.issue(t, own, ownSec)); rf != 24*time.Hour {
			t.Errorf("refresh token of a client with its own cap lives %v, want 24h", rf)
		}
	})
}

// TestClientQuota: a client's token_quota_per_minute applies across
// instances when the server has none, and other clients are not limited.
func TestClientQuota(t *testing.T) {
	a, b := twoOnRedis(t)
	id, sec := a.createClient(t, map[string]any{"token_quota_per_minute": 3})
	other, otherSec := a.createClient(t, map[string]any{})
	cc := url.Values{"grant_type": {"client_credentials"}}
	for i, ti := range []*testIssuer{a, b, a} {
		if resp, m := ti.token(t, id, sec, true, cc); resp.StatusCode != 200 {
			t.Fatalf("request %d: %d %v", i+1, resp.StatusCode, m)
		}
	}
	resp, m := b.token(t, id, sec, true, cc)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" || !strings.Contains(fmt.Sprint(m["error_description"]), "quota") {
		t.Errorf("4th request in the minute: %d %v (Retry-After %q), want 429 naming the quota", resp.StatusCode, m, resp.Header.Get("Retry-After"))
	}
	for i := range 5 {
		if resp, m := a.token(t, other, otherSec, true, cc); resp.StatusCode != 200 {
			t.Fatalf("another client, request %d: %d %v", i+1, resp.StatusCode, m)
		}
	}
}

// TestRefreshRetry: with refresh_token_reuse_interval, a refresh whose
// response was lost, retried at the other instance, gets a byte-identical
// copy; concurrent duplicates too; anything else ends the family.
func TestRefreshRetry(t *testing.T) {
	a, b := twoOnRedis(t)
	id, sec := a.createClient(t, map[string]any{"scope": "read write", "refresh_token_reuse_interval": "30s"})
	otherID, otherSec := a.createClient(t, map[string]any{"scope": "read write"})

	// ended checks that the family of a refresh token ended: its newest
	// token is refused.
	ended := func(t *testing.T, newest string) {
		t.Helper()
		if status, m := a.refresh(t, id, sec, newest); status != 400 || m["error"] != "invalid_grant" {
			t.Errorf("newest token of the family: %d %v, want 400 invalid_grant (family ended)", status, m)
		}
	}

	t.Run("lost response retried at the other instance", func(t *testing.T) {
		rt1 := a.issue(t, id, sec)["refresh_token"].(string)
		status, first := a.rawRefresh(t, id, sec, rt1)
		if status != 200 {
			t.Fatalf("refresh at A: %d %s", status, first)
		}
		advance(10*time.Second, a, b)
		for name, ti := range map[string]*testIssuer{"retry at B": b, "retry at A": a} {
			if status, again := ti.rawRefresh(t, id, sec, rt1); status != 200 || !bytes.Equal(again, first) {
				t.Errorf("%s: %d\n%s\nwant 200 and the first answer byte for byte\n%s", name, status, again, first)
			}
		}
		rt2 := decode(t, first)["refresh_token"].(string)
		status, next := b.rawRefresh(t, id, sec, rt2)
		if status != 200 || bytes.Equal(next, first) {
			t.Fatalf("refresh of the new token at B: %d %s, want new tokens", status, next)
		}
		// rt1 is now the grandparent of the newest token.
		if status, m := b.refresh(t, id, sec, rt1); status != 400 || m["error"] != "invalid_grant" {
			t.Errorf("grandparent: %d %v, want 400 invalid_grant", status, m)
		}
		ended(t, decode(t, next)["refresh_token"].(string))
	})

	t.Run("concurrent duplicates across instances", func(t *testing.T) {
		rt := a.issue(t, id, sec)["refresh_token"].(string)
		const n = 20
		var (
			wg     sync.WaitGroup
			bodies [n][]byte
			codes  [n]int
		)
		start := make(chan struct{})
		for i := range n {
			ti := []*testIssuer{a, b}[i%2]
			wg.Go(func() {
				<-start
				codes[i], bodies[i] = ti.rawRefresh(t, id, sec, rt, "scope", "read")
			})
		}
		close(start)
		wg.Wait()
		for i := range n {
			if codes[i] != 200 || !bytes.Equal(bodies[i], bodies[0]) {
				t.Errorf("duplicate %d: %d %s, want 200 and the body of duplicate 0: %s", i, codes[i], bodies[i], bodies[0])
			}
		}
		if status, m := b.refresh(t, id, sec, decode(t, bodies[0])["refresh_token"].(string)); status != 200 {
			t.Errorf("the one new token: %d %v, want 200", status, m)
		}
	})

	reuse := []struct {
		name  string
		retry func(t *testing.T, rt string) (int, map[string]any)
	}{
		{"another scope", func(t *testing.T, rt string) (int, map[string]any) { return b.refresh(t, id, sec, rt, "scope", "read") }},
		{"another audience", func(t *testing.T, rt string) (int, map[string]any) {
			return b.refresh(t, id, sec, rt, "resource", "https://api.example.com")
		}},
		{"another client", func(t *testing.T, rt string) (int, map[string]any) { return b.refresh(t, otherID, otherSec, rt) }},
		{"after the interval", func(t *testing.T, rt string) (int, map[string]any) {
			advance(30*time.Second, a, b)
			return b.refresh(t, id, sec, rt)
		}},
	}
	for _, tt := range reuse {
		t.Run(tt.name+" ends the family", func(t *testing.T) {
			rt1 := a.issue(t, id, sec)["refresh_token"].(string)
			status, m := a.refresh(t, id, sec, rt1)
			if status != 200 {
				t.Fatalf("refresh: %d %v", status, m)
			}
			if status, m := tt.retry(t, rt1); status != 400 || m["error"] != "invalid_grant" {
				t.Errorf("retry: %d %v, want 400 invalid_grant", status, m)
			}
			ended(t, m["refresh_token"].(string))
		})
	}

	t.Run("no interval: a retry is reuse", func(t *testing.T) {
		plain, plainSec := a.createClient(t, map[string]any{})
		rt1 := a.issue(t, plain, plainSec)["refresh_token"].(string)
		status, m := a.refresh(t, plain, plainSec, rt1)
		if status != 200 {
			t.Fatalf("refresh: %d %v", status, m)
		}
		if status, m := b.refresh(t, plain, plainSec, rt1); status != 400 || m["error"] != "invalid_grant" {
			t.Errorf("retry without an interval: %d %v, want 400 invalid_grant", status, m)
		}
		if status, m := a.refresh(t, plain, plainSec, m["refresh_token"].(string)); status != 400 {
			t.Errorf("newest token after reuse: %d %v, want 400", status, m)
		}
	})
}

// TestRefreshRetryKeptEncrypted: what Redis holds for a retry names no
// token in the clear, and is gone when the family ends by reuse.
func TestRefreshRetryKeptEncrypted(t *testing.T) {
	srv := redistest.Start(t)
	ti := startIssuer(t, onRedis(srv.URL(), secret.Random(32)))
	rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { rdb.Close() })
	id, sec := ti.createClient(t, map[string]any{"refresh_token_reuse_interval": "45s"})
	rt1 := ti.issue(t, id, sec)["refresh_token"].(string)
	status, body := ti.rawRefresh(t, id, sec, rt1)
	if status != 200 {
		t.Fatalf("refresh: %d %s", status, body)
	}
	m := decode(t, body)
	_, claims := decodeJWT(t, rt1)
	key := "issuer:famretry:{" + claims["fid"].(string) + "}"
	kept, err := rdb.HGetAll(t.Context(), key).Result()
	if err != nil || len(kept) == 0 {
		t.Fatalf("HGETALL %s = %v, %v; want the kept answer", key, kept, err)
	}
	for field, v := range kept {
		for _, tok := range []string{m["access_token"].(string), m["refresh_token"].(string)} {
			if strings.Contains(v, tok) || strings.Contains(v, strings.Split(tok, ".")[2]) {
				t.Errorf("field %s holds a token in the clear", field)
			}
		}
	}
	if pttl := rdb.PTTL(t.Context(), key).Val(); pttl <= 0 || pttl > 45*time.Second {
		t.Errorf("PTTL %s = %v, want within the 45s interval", key, pttl)
	}
	if status, m := ti.refresh(t, id, sec, rt1, "resource", "https://api.example.com"); status != 400 || m["error"] != "invalid_grant" {
		t.Fatalf("retry asking for another audience: %d %v, want 400 invalid_grant", status, m)
	}
	if n := rdb.Exists(t.Context(), key).Val(); n != 0 {
		t.Errorf("the kept answer outlives the family's end by reuse")
	}
}

// TestSimpleJWTDisabledClient: the SimpleJWT endpoints of a disabled
// client refuse logins and refreshes, in SimpleJWT's words.
func TestSimpleJWTDisabledClient(t *testing.T) {
	ti, _ := startCompat(t)
	if resp, m := ti.admin(t, "POST", "/admin/users", map[string]any{"username": "alice", "password": "correct horse battery"}); resp.StatusCode != 201 {
		t.Fatalf("create user: %d %v", resp.StatusCode, m)
	}
	_, refresh := ti.sjLogin(t, "alice", "correct horse battery")
	ti.setClient(t, compatClientID, map[string]any{"disabled": true})
	ti.sjPost(t, "", map[string]any{"username": "alice", "password": "correct horse battery"}).check(t, "login", 401, sjNoAccount)
	ti.sjPost(t, "refresh/", map[string]any{"refresh": refresh}).check(t, "refresh", 401, sjTokenNotValid)
	ti.setClient(t, compatClientID, map[string]any{"disabled": false})
	ti.sjPost(t, "refresh/", map[string]any{"refresh": refresh}).check(t, "refresh once enabled", 401, sjTokenNotValid)
	ti.sjLogin(t, "alice", "correct horse battery")
}

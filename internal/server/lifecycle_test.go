package server

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/issuer-oauth/issuer/internal/config"
	"github.com/issuer-oauth/issuer/internal/redistest"
	"github.com/issuer-oauth/issuer/internal/secret"
)

// endpoint posts a client-authenticated form to an endpoint the metadata
// advertises (introspection_endpoint, revocation_endpoint).
func (ti *testIssuer) endpoint(t *testing.T, name, id, sec string, form url.Values) (*http.Response, map[string]any) {
	t.Helper()
	u, _ := ti.metadata(t)[name].(string)
	if !strings.HasPrefix(u, ti.URL+"/") {
		t.Fatalf("metadata %s = %q", name, u)
	}
	req, _ := http.NewRequest("POST", ti.base+strings.TrimPrefix(u, ti.URL), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, sec)
	return ti.do(t, req)
}

func (ti *testIssuer) introspect(t *testing.T, id, sec, token string) map[string]any {
	t.Helper()
	resp, m := ti.endpoint(t, "introspection_endpoint", id, sec, url.Values{"token": {token}})
	if resp.StatusCode != 200 {
		t.Fatalf("introspection: %d %v", resp.StatusCode, m)
	}
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("introspection response without Cache-Control: no-store")
	}
	return m
}

func (ti *testIssuer) revoke(t *testing.T, id, sec, token string) (int, map[string]any) {
	t.Helper()
	resp, m := ti.endpoint(t, "revocation_endpoint", id, sec, url.Values{"token": {token}})
	return resp.StatusCode, m
}

func TestIntrospectionAndRevocation(t *testing.T) {
	for _, backend := range []string{"embedded", "redis"} {
		t.Run(backend, func(t *testing.T) {
			var opts []func(*config.Config)
			if backend == "redis" {
				opts = append(opts, onRedis(redistest.Start(t).URL(), secret.Random(32)))
			}
			testLifecycle(t, startIssuer(t, opts...))
		})
	}
}

func testLifecycle(t *testing.T, ti *testIssuer) {
	id, sec := ti.createClient(t, map[string]any{"scope": "read write"})
	otherID, otherSec := ti.createClient(t, map[string]any{})
	rsID, rsSec := ti.createClient(t, map[string]any{"introspect_all": true})
	other := startIssuer(t)
	fid, fsec := other.createClient(t, map[string]any{})
	foreign := other.issue(t, fid, fsec)

	m := ti.issue(t, id, sec)
	at, rt := m["access_token"].(string), m["refresh_token"].(string)

	t.Run("active tokens and their claims", func(t *testing.T) {
		got := ti.introspect(t, id, sec, at)
		if got["active"] != true || got["client_id"] != id || got["sub"] != id || got["scope"] != "read write" ||
			got["token_type"] != "Bearer" || got["iss"] != ti.URL || got["jti"] == nil || got["exp"] == nil || got["iat"] == nil {
			t.Errorf("access token introspection = %v", got)
		}
		if aud := toStrings(got["aud"]); len(aud) != 1 || aud[0] != "https://api.example.com" {
			t.Errorf("aud = %v", got["aud"])
		}
		got = ti.introspect(t, id, sec, rt)
		if got["active"] != true || got["token_type"] != "refresh_token" || got["client_id"] != id {
			t.Errorf("refresh token introspection = %v", got)
		}
	})

	t.Run("who may introspect", func(t *testing.T) {
		if got := ti.introspect(t, otherID, otherSec, at); got["active"] != false || len(got) != 1 {
			t.Errorf("another client introspecting = %v, want only active:false", got)
		}
		if got := ti.introspect(t, rsID, rsSec, at); got["active"] != true {
			t.Errorf("an introspect_all client = %v, want active", got)
		}
		resp, _ := ti.endpoint(t, "introspection_endpoint", id, "wrong", url.Values{"token": {at}})
		if resp.StatusCode != 401 {
			t.Errorf("unauthenticated introspection: %d, want 401", resp.StatusCode)
		}
		resp, body := ti.endpoint(t, "introspection_endpoint", id, sec, url.Values{})
		if resp.StatusCode != 400 || body["error"] != "invalid_request" {
			t.Errorf("no token: %d %v", resp.StatusCode, body)
		}
	})

	t.Run("inactive tokens", func(t *testing.T) {
		for name, tok := range map[string]string{
			"malformed":              "not.a.token",
			"empty-ish":              "x",
			"foreign access token":   foreign["access_token"].(string),
			"foreign refresh token":  foreign["refresh_token"].(string),
			"tampered access token":  at[:len(at)-4] + "AAAA",
			"access token as header": strings.Split(at, ".")[0],
		} {
			if got := ti.introspect(t, rsID, rsSec, tok); got["active"] != false {
				t.Errorf("%s: %v, want inactive", name, got)
			}
		}
	})

	t.Run("rotation retires the old refresh token", func(t *testing.T) {
		m := ti.issue(t, id, sec)
		status, next := ti.refresh(t, id, sec, m["refresh_token"].(string))
		if status != 200 {
			t.Fatalf("refresh: %d", status)
		}
		if got := ti.introspect(t, id, sec, m["refresh_token"].(string)); got["active"] != false {
			t.Errorf("retired refresh token: %v", got)
		}
		if got := ti.introspect(t, id, sec, next["refresh_token"].(string)); got["active"] != true {
			t.Errorf("current refresh token: %v", got)
		}
	})

	t.Run("revoking an access token", func(t *testing.T) {
		m := ti.issue(t, id, sec)
		a := m["access_token"].(string)
		if status, body := ti.revoke(t, otherID, otherSec, a); status != 400 || body["error"] != "unauthorized_client" {
			t.Errorf("another client revoking: %d %v, want 400 unauthorized_client", status, body)
		}
		if got := ti.introspect(t, id, sec, a); got["active"] != true {
			t.Fatalf("after a refused revocation: %v", got)
		}
		if status, _ := ti.revoke(t, id, sec, a); status != 200 {
			t.Fatalf("revoke: %d", status)
		}
		if got := ti.introspect(t, rsID, rsSec, a); got["active"] != false {
			t.Errorf("revoked access token: %v", got)
		}
		// Revoking an access token leaves its refresh token alone.
		if got := ti.introspect(t, id, sec, m["refresh_token"].(string)); got["active"] != true {
			t.Errorf("refresh token after revoking the access token: %v", got)
		}
		if status, _ := ti.revoke(t, id, sec, a); status != 200 {
			t.Errorf("revoking twice: %d, want 200", status)
		}
	})

	t.Run("revoking a refresh token revokes its family", func(t *testing.T) {
		m := ti.issue(t, id, sec)
		r1 := m["refresh_token"].(string)
		_, next := ti.refresh(t, id, sec, r1)
		r2 := next["refresh_token"].(string)
		if status, body := ti.revoke(t, otherID, otherSec, r2); status != 400 {
			t.Errorf("another client revoking a refresh token: %d %v", status, body)
		}
		if status, _ := ti.revoke(t, id, sec, r2); status != 200 {
			t.Fatalf("revoke: %d", status)
		}
		if got := ti.introspect(t, id, sec, r2); got["active"] != false {
			t.Errorf("revoked refresh token: %v", got)
		}
		if status, body := ti.refresh(t, id, sec, r2); status != 400 || body["error"] != "invalid_grant" {
			t.Errorf("refresh with a revoked token: %d %v", status, body)
		}
	})

	t.Run("unknown and malformed tokens revoke with 200", func(t *testing.T) {
		for _, tok := range []string{"garbage", foreign["refresh_token"].(string), foreign["access_token"].(string)} {
			if status, body := ti.revoke(t, id, sec, tok); status != 200 {
				t.Errorf("revoke %.20s…: %d %v", tok, status, body)
			}
		}
	})

	t.Run("a deleted client's tokens are inactive", func(t *testing.T) {
		did, dsec := ti.createClient(t, map[string]any{})
		m := ti.issue(t, did, dsec)
		if resp, _ := ti.admin(t, "DELETE", "/admin/clients/"+did, nil); resp.StatusCode != 204 {
			t.Fatal("delete failed")
		}
		for _, tok := range []string{m["access_token"].(string), m["refresh_token"].(string)} {
			if got := ti.introspect(t, rsID, rsSec, tok); got["active"] != false {
				t.Errorf("deleted client's token: %v", got)
			}
		}
	})

	t.Run("expired access token", func(t *testing.T) {
		a := ti.issue(t, id, sec)["access_token"].(string)
		ti.clock.Advance(5*time.Minute + time.Second)
		defer ti.clock.Advance(-(5*time.Minute + time.Second))
		if got := ti.introspect(t, id, sec, a); got["active"] != false {
			t.Errorf("expired access token: %v", got)
		}
		if status, _ := ti.revoke(t, id, sec, a); status != 200 {
			t.Errorf("revoking an expired token: %d, want 200", status)
		}
	})
}

package server

import (
	"slices"
	"testing"
	"time"

	"github.com/issuer-oauth/issuer/internal/config"
	"github.com/issuer-oauth/issuer/internal/redistest"
	"github.com/issuer-oauth/issuer/internal/secret"
)

// TestRefreshRefusalsLookAlike checks that the refresh grant tells another
// client nothing about a token it does not own: a live refresh token of
// another client is refused with the words of a forged or expired one, so
// a stolen token cannot be tested for liveness by a second client.
func TestRefreshRefusalsLookAlike(t *testing.T) {
	ti := startIssuer(t)
	id, sec := ti.createClient(t, map[string]any{"scope": "read"})
	otherID, otherSec := ti.createClient(t, map[string]any{"scope": "read"})
	live := ti.issue(t, id, sec)["refresh_token"].(string)
	expired := ti.issue(t, otherID, otherSec)["refresh_token"].(string)

	_, forged := ti.refresh(t, otherID, otherSec, live[:len(live)-4]+"AAAA")
	_, foreign := ti.refresh(t, otherID, otherSec, live)
	ti.clock.Advance(24*time.Hour + time.Second)
	_, old := ti.refresh(t, otherID, otherSec, expired)

	for name, m := range map[string]map[string]any{"another client's live token": foreign, "an expired token": old} {
		if m["error"] != "invalid_grant" || m["error_description"] != forged["error_description"] {
			t.Errorf("%s: %v, want %v", name, m, forged)
		}
	}
}

// onBothStores runs test against an issuer on the embedded store and one on
// Redis.
func onBothStores(t *testing.T, test func(t *testing.T, ti *testIssuer), mutate ...func(*config.Config)) {
	for _, backend := range []string{"embedded", "redis"} {
		t.Run(backend, func(t *testing.T) {
			opts := slices.Clone(mutate)
			if backend == "redis" {
				opts = append(opts, onRedis(redistest.Start(t).URL(), secret.Random(32)))
			}
			test(t, startIssuer(t, opts...))
		})
	}
}

// TestRevokingARetiredRefreshToken checks RFC 7009 §2.1 for a refresh token
// that rotation retired: revocation is of the grant, so any validly signed
// refresh token of the caller, current or retired, revokes its family, and
// another client's is refused whether it is current or not.
func TestRevokingARetiredRefreshToken(t *testing.T) {
	onBothStores(t, func(t *testing.T, ti *testIssuer) {
		id, sec := ti.createClient(t, map[string]any{"scope": "read"})
		otherID, otherSec := ti.createClient(t, map[string]any{"scope": "read"})
		r1 := ti.issue(t, id, sec)["refresh_token"].(string)
		status, m := ti.refresh(t, id, sec, r1)
		if status != 200 {
			t.Fatalf("refresh: %d %v", status, m)
		}
		r2 := m["refresh_token"].(string)

		if status, body := ti.revoke(t, otherID, otherSec, r1); status != 400 || body["error"] != "unauthorized_client" {
			t.Errorf("another client revoking a retired token: %d %v, want 400 unauthorized_client", status, body)
		}
		if got := ti.introspect(t, id, sec, r2); got["active"] != true {
			t.Fatalf("current token after a refused revocation: %v", got)
		}
		if status, body := ti.revoke(t, id, sec, r1); status != 200 {
			t.Fatalf("revoking the retired token: %d %v", status, body)
		}
		if got := ti.introspect(t, id, sec, r2); got["active"] != false {
			t.Errorf("current token after its retired predecessor was revoked: %v, want inactive", got)
		}
		if status, body := ti.refresh(t, id, sec, r2); status != 400 || body["error"] != "invalid_grant" {
			t.Errorf("refresh after revocation: %d %v, want 400 invalid_grant", status, body)
		}
	})
}

// TestRevokedFamilyEndsItsAccessTokens checks that introspection reports
// the access tokens of a revoked refresh-token family inactive, however
// the family was revoked (reuse of a rotated token, RFC 7009 revocation),
// for as long as they would have lived, and that tokens of other families
// and tokens without one are untouched.
func TestRevokedFamilyEndsItsAccessTokens(t *testing.T) {
	onBothStores(t, func(t *testing.T, ti *testIssuer) {
		id, sec := ti.createClient(t, map[string]any{"scope": "read"})
		rsID, rsSec := ti.createClient(t, map[string]any{"introspect_all": true})
		ccID, ccSec := ti.createClient(t, map[string]any{"grant_types": []string{"client_credentials"}})

		inactive := func(t *testing.T, what string, tokens ...string) {
			t.Helper()
			for i, tok := range tokens {
				for _, who := range [][2]string{{id, sec}, {rsID, rsSec}} {
					if got := ti.introspect(t, who[0], who[1], tok); got["active"] != false || len(got) != 1 {
						t.Errorf("%s: access token %d introspected by %s: %v, want only active:false", what, i, who[0], got)
					}
				}
			}
		}
		active := func(t *testing.T, what string, tokens ...string) {
			t.Helper()
			for i, tok := range tokens {
				if got := ti.introspect(t, rsID, rsSec, tok); got["active"] != true {
					t.Errorf("%s: access token %d: %v, want active", what, i, got)
				}
			}
		}

		bystander := ti.issue(t, id, sec)
		noFamily := ti.issue(t, ccID, ccSec)
		if noFamily["refresh_token"] != nil {
			t.Fatalf("a client_credentials-only client got a refresh token: %v", noFamily)
		}

		t.Run("reuse of a rotated refresh token", func(t *testing.T) {
			first := ti.issue(t, id, sec)
			status, next := ti.refresh(t, id, sec, first["refresh_token"].(string))
			if status != 200 {
				t.Fatalf("refresh: %d %v", status, next)
			}
			active(t, "before reuse", first["access_token"].(string), next["access_token"].(string))
			if status, m := ti.refresh(t, id, sec, first["refresh_token"].(string)); status != 400 || m["error"] != "invalid_grant" {
				t.Fatalf("reuse: %d %v, want 400 invalid_grant", status, m)
			}
			inactive(t, "after reuse", first["access_token"].(string), next["access_token"].(string))
		})

		t.Run("RFC 7009 revocation of the refresh token", func(t *testing.T) {
			m := ti.issue(t, id, sec)
			if status, body := ti.revoke(t, id, sec, m["refresh_token"].(string)); status != 200 {
				t.Fatalf("revoke: %d %v", status, body)
			}
			inactive(t, "after revocation", m["access_token"].(string))
			// The revoked family's record lives as long as its refresh
			// token would have, longer than any of its access tokens.
			ti.clock.Advance(ti.cfg.AccessTokenTTL - time.Second)
			defer ti.clock.Advance(-(ti.cfg.AccessTokenTTL - time.Second))
			inactive(t, "a second before its expiry", m["access_token"].(string))
		})

		active(t, "another family's", bystander["access_token"].(string))
		active(t, "without a family", noFamily["access_token"].(string))
	})
}

// TestAccessTokenOutlivesItsExpiredFamily checks that a family that is gone
// from the store is not taken for a revoked one: its access tokens stay
// active until their own exp. Validate keeps refresh_token_ttl above
// access_token_ttl, so that a family outlives its access tokens; this
// issuer breaks the rule to stand for a family record lost early (evicted
// by Redis, or expired by a Redis clock ahead of the issuer's).
func TestAccessTokenOutlivesItsExpiredFamily(t *testing.T) {
	onBothStores(t, func(t *testing.T, ti *testIssuer) {
		id, sec := ti.createClient(t, map[string]any{"scope": "read"})
		m := ti.issue(t, id, sec)
		ti.clock.Advance(30*time.Minute + time.Second)
		if status, body := ti.refresh(t, id, sec, m["refresh_token"].(string)); status != 400 || body["error"] != "invalid_grant" {
			t.Fatalf("refresh of the expired family: %d %v, want 400 invalid_grant", status, body)
		}
		if got := ti.introspect(t, id, sec, m["access_token"].(string)); got["active"] != true {
			t.Errorf("access token of an expired family, before its own exp: %v, want active", got)
		}
		ti.clock.Advance(30 * time.Minute)
		if got := ti.introspect(t, id, sec, m["access_token"].(string)); got["active"] != false {
			t.Errorf("access token after its own exp: %v, want inactive", got)
		}
	}, func(c *config.Config) { c.AccessTokenTTL, c.RefreshTokenTTL = time.Hour, 30*time.Minute })
}

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

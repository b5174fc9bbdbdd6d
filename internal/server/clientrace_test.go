package server

import (
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/issuer-oauth/issuer/internal/config"
	"github.com/issuer-oauth/issuer/internal/redistest"
	"github.com/issuer-oauth/issuer/internal/secret"
	"github.com/issuer-oauth/issuer/internal/testutil"
)

// noAuthLimits turns the failed-authentication limits off, for tests that
// present wrong secrets on purpose many times.
func noAuthLimits(c *config.Config) {
	c.AuthFailuresPerAddress, c.AuthFailuresPerClient = 0, 0
}

// tokenStatus asks ti for a client_credentials token and returns the
// status code.
func (ti *testIssuer) tokenStatus(t *testing.T, id, sec string) int {
	t.Helper()
	resp, _ := ti.token(t, id, sec, true, url.Values{"grant_type": {"client_credentials"}})
	return resp.StatusCode
}

// TestSecretRotationRacingAnUpdate: two instances on one Redis; in each of
// 200 rounds a secret rotation at one races a PUT of the same metadata at
// the other, through the admin API. Whatever the interleaving, the secret
// the rotation returned works at both instances (as soon as the other
// instance's cache has dropped the client), and the one before it never
// works again: no update writes an old secret hash back.
func TestSecretRotationRacingAnUpdate(t *testing.T) {
	srv := redistest.Start(t)
	master := secret.Random(32)
	a := startIssuer(t, onRedis(srv.URL(), master), noAuthLimits)
	b := startIssuer(t, onRedis(srv.URL(), master), sameURL(a.URL), noAuthLimits)
	meta := map[string]any{"client_name": "racer", "grant_types": []string{"client_credentials"},
		"audience": []string{"https://api.example.com"}, "scope": "read"}
	id, sec := a.createClient(t, meta)

	for round := range 200 {
		rotator, updater := a, b
		if round%2 == 1 {
			rotator, updater = b, a
		}
		// Both instances cache the client with the current secret first.
		for _, ti := range []*testIssuer{a, b} {
			if got := ti.tokenStatus(t, id, sec); got != http.StatusOK {
				t.Fatalf("round %d: the current secret at %s: %d, want 200", round, ti.base, got)
			}
		}
		var (
			wg              sync.WaitGroup
			rotated         map[string]any
			rotStatus, upSt int
		)
		wg.Go(func() {
			resp, m := rotator.admin(t, "POST", "/admin/clients/"+id+"/secret", nil)
			rotStatus, rotated = resp.StatusCode, m
		})
		wg.Go(func() {
			resp, _ := updater.admin(t, "PUT", "/admin/clients/"+id, meta)
			upSt = resp.StatusCode
		})
		wg.Wait()
		if rotStatus != http.StatusOK || upSt != http.StatusOK {
			t.Fatalf("round %d: rotate-secret %d, PUT %d; want 200 and 200", round, rotStatus, upSt)
		}
		old := sec
		sec = rotated["client_secret"].(string)
		for _, ti := range []*testIssuer{a, b} {
			testutil.Eventually(t, 3*time.Second, func() bool { return ti.tokenStatus(t, id, sec) == http.StatusOK })
			if got := ti.tokenStatus(t, id, old); got != http.StatusUnauthorized {
				t.Fatalf("round %d: the secret before the rotation at %s: %d, want 401", round, ti.base, got)
			}
		}
	}
}

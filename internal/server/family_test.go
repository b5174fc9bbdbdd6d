package server

import (
	"testing"
	"time"
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

package server

import (
	"testing"
	"time"
)

// TestNodeStatusListInterop runs interop/statuslist.mjs against a real
// issuer with status_list on: @sd-jwt/jwt-status-list (an implementation
// of the draft nobody here wrote) reads a token's status claim and decodes
// its list, which jose verifies against the JWKS; a valid token reads 0
// and a revoked one 1.
func TestNodeStatusListInterop(t *testing.T) {
	node := requireNode(t, "@sd-jwt/jwt-status-list", "jose")
	ti := startIssuer(t, withStatusList)
	id, sec := ti.createClient(t, map[string]any{})
	valid, _ := ti.ccToken(t, id, sec)
	revoked, _ := ti.ccToken(t, id, sec)
	ti.revoked(t, id, sec, revoked)
	ti.clock.Advance(time.Second) // the served list reads the store again

	runNode(t, node, "statuslist.mjs", func() string { return "issuer logs:\n" + ti.logs.String() },
		"ISSUER_URL="+ti.URL, "VALID="+valid, "REVOKED="+revoked, "TTL=30")
}

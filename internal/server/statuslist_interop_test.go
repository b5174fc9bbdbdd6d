package server

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestNodeStatusListInterop runs interop/statuslist.mjs against a real
// issuer with status_list on: @sd-jwt/jwt-status-list (an implementation
// of the draft nobody here wrote) reads a token's status claim and decodes
// its list, which jose verifies against the JWKS; a valid token reads 0
// and a revoked one 1.
func TestNodeStatusListInterop(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		nodeMissing(t, "node is not on PATH")
	}
	for _, dep := range []string{"@sd-jwt/jwt-status-list", "jose"} {
		if _, err := os.Stat(filepath.Join(interopDir, "node_modules", dep, "package.json")); err != nil {
			nodeMissing(t, "interop/node_modules/"+dep+" is missing")
		}
	}
	ti := startIssuer(t, withStatusList)
	id, sec := ti.createClient(t, map[string]any{})
	valid, _ := ti.ccToken(t, id, sec)
	revoked, _ := ti.ccToken(t, id, sec)
	ti.revoked(t, id, sec, revoked)
	ti.clock.Advance(time.Second) // the served list reads the store again

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "statuslist.mjs")
	cmd.Dir = interopDir
	cmd.Env = append(os.Environ(), "ISSUER_URL="+ti.URL, "VALID="+valid, "REVOKED="+revoked, "TTL=30")
	out, err := cmd.CombinedOutput()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("node statuslist.mjs did not finish in time:\n%s", out)
	}
	if err != nil {
		t.Fatalf("node statuslist.mjs: %v\n%s\nissuer logs:\n%s", err, out, ti.logs)
	}
	t.Logf("node statuslist.mjs: %s", out)
}

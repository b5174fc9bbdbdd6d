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

// interopDir is the npm project of the interop check, relative to this package.
const interopDir = "../../interop"

// TestNodeInterop runs interop/check.mjs against a real issuer: discovery and
// both grants with oauth4webapi, access-token verification with jose against
// the served JWKS (libraries nobody here wrote, and strict ones). It needs
// node and interop/node_modules, which `make test` installs; without them it
// fails, unless ISSUER_SKIP_NODE=1 asks to skip it.
func TestNodeInterop(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		nodeMissing(t, "node is not on PATH")
	}
	for _, dep := range []string{"oauth4webapi", "jose"} {
		if _, err := os.Stat(filepath.Join(interopDir, "node_modules", dep, "package.json")); err != nil {
			nodeMissing(t, "interop/node_modules/"+dep+" is missing")
		}
	}

	ti := startIssuer(t)
	const audience = "https://api.example.com"
	id, sec := ti.createClient(t, map[string]any{
		"client_name": "node-interop",
		"scope":       "read write",
		"audience":    []string{audience},
	})

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "check.mjs")
	cmd.Dir = interopDir
	cmd.Env = append(os.Environ(),
		"ISSUER_URL="+ti.URL,
		"CLIENT_ID="+id,
		"CLIENT_SECRET="+sec,
		"AUDIENCE="+audience,
	)
	out, err := cmd.CombinedOutput()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("node check.mjs did not finish in time:\n%s\nissuer logs:\n%s", out, ti.logs)
	}
	if err != nil {
		t.Fatalf("node check.mjs: %v\n%s\nissuer logs:\n%s", err, out, ti.logs)
	}
	t.Logf("node check.mjs: %s", out)
}

// nodeMissing fails the test (or skips it when ISSUER_SKIP_NODE=1) because
// the Node.js side of the interop check cannot run.
func nodeMissing(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("ISSUER_SKIP_NODE") == "1" {
		t.Skipf("skipping the Node.js interop check (ISSUER_SKIP_NODE=1): %s", why)
	}
	t.Fatalf("%s: run `make test`, which installs Node.js dependencies (npm ci in interop/), or set ISSUER_SKIP_NODE=1 to skip this test", why)
}

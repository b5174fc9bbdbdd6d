package server

import (
	"context"
	"crypto/x509"
	"encoding/pem"
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

// TestNodeInteropPrivateKeyJWT runs interop/private_key_jwt.mjs: a
// private_key_jwt client authenticates with oauth4webapi's PrivateKeyJwt
// (ES256) and with a jose-signed EdDSA assertion.
func TestNodeInteropPrivateKeyJWT(t *testing.T) {
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
	es, ed := newClientKey(t, "es", "ES256"), newClientKey(t, "ed", "EdDSA")
	id := ti.registerKeyClient(t, map[string]any{"client_name": "node-pkjwt", "scope": "read", "audience": []string{audience}, "jwks": jwksOf(es, ed)})

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "private_key_jwt.mjs")
	cmd.Dir = interopDir
	cmd.Env = append(os.Environ(), "ISSUER_URL="+ti.URL, "CLIENT_ID="+id, "AUDIENCE="+audience,
		"ES256_KEY="+pkcs8PEM(t, es), "EDDSA_KEY="+pkcs8PEM(t, ed))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node private_key_jwt.mjs: %v\n%s\nissuer logs:\n%s", err, out, ti.logs)
	}
	t.Logf("node private_key_jwt.mjs: %s", out)
}

// pkcs8PEM is k's private key as PKCS #8 PEM.
func pkcs8PEM(t *testing.T, k clientKey) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k.signer)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
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

package server

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/issuer-oauth/issuer/internal/config"
	"github.com/issuer-oauth/issuer/internal/testutil"
)

// interopDir is the npm project of the interop check, relative to this package.
const interopDir = "../../interop"

// TestNodeInterop runs interop/check.mjs against a real issuer: discovery and
// both grants with oauth4webapi, access-token verification with jose against
// the served JWKS (libraries nobody here wrote, and strict ones). It needs
// node and interop/node_modules, which `make test` installs; without them it
// fails, unless ISSUER_SKIP_NODE=1 asks to skip it.
func TestNodeInterop(t *testing.T) {
	node := requireNode(t, "oauth4webapi", "jose")

	ti := startIssuer(t)
	const audience = "https://api.example.com"
	id, sec := ti.createClient(t, map[string]any{
		"client_name": "node-interop",
		"scope":       "read write",
		"audience":    []string{audience},
	})

	runNode(t, node, "check.mjs", func() string { return "issuer logs:\n" + ti.logs.String() },
		"ISSUER_URL="+ti.URL,
		"CLIENT_ID="+id,
		"CLIENT_SECRET="+sec,
		"AUDIENCE="+audience,
	)
}

// TestNodeInteropPrivateKeyJWT runs interop/private_key_jwt.mjs: a
// private_key_jwt client authenticates with oauth4webapi's PrivateKeyJwt
// (ES256) and with a jose-signed EdDSA assertion.
func TestNodeInteropPrivateKeyJWT(t *testing.T) {
	node := requireNode(t, "oauth4webapi", "jose")
	ti := startIssuer(t)
	const audience = "https://api.example.com"
	es, ed := newClientKey(t, "es", "ES256"), newClientKey(t, "ed", "EdDSA")
	id := ti.registerKeyClient(t, map[string]any{"client_name": "node-pkjwt", "scope": "read", "audience": []string{audience}, "jwks": jwksOf(es, ed)})

	runNode(t, node, "private_key_jwt.mjs", func() string { return "issuer logs:\n" + ti.logs.String() },
		"ISSUER_URL="+ti.URL, "CLIENT_ID="+id, "AUDIENCE="+audience,
		"ES256_KEY="+pkcs8PEM(t, es), "EDDSA_KEY="+pkcs8PEM(t, ed))
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

// requireNode returns the node command once the npm packages deps are
// installed in interop/, and otherwise fails the test (see nodeMissing).
func requireNode(t *testing.T, deps ...string) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		nodeMissing(t, "node is not on PATH")
	}
	for _, dep := range deps {
		if _, err := os.Stat(filepath.Join(interopDir, "node_modules", dep, "package.json")); err != nil {
			nodeMissing(t, "interop/node_modules/"+dep+" is missing")
		}
	}
	return node
}

// runNode runs the interop script with env added to the environment, for
// at most a minute, and fails the test with the script's output and what
// more says (the logs of the programs it talked to) when it fails.
func runNode(t *testing.T, node, script string, more func() string, env ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, script)
	cmd.Dir = interopDir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("node %s did not finish in time:\n%s\n%s", script, out, more())
	}
	if err != nil {
		t.Fatalf("node %s: %v\n%s\n%s", script, err, out, more())
	}
	t.Logf("node %s: %s", script, out)
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

// TestNodeDPoPInterop runs interop/dpop.mjs: oauth4webapi's DPoP() against
// a real issuer with dpop_nonce on (client credentials and refresh, the
// nonce retry), and its protectedResourceRequest against the real
// examples/resource-api program, built and started here.
func TestNodeDPoPInterop(t *testing.T) {
	node := requireNode(t, "oauth4webapi", "jose")
	ti := startIssuer(t, func(c *config.Config) { c.DPoPNonce = true })
	const audience = "https://api.example.com"
	id, sec := ti.createClient(t, map[string]any{"scope": "read", "audience": []string{audience}})

	bin := filepath.Join(t.TempDir(), "resource-api")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/issuer-oauth/issuer/examples/resource-api").CombinedOutput(); err != nil {
		t.Fatalf("go build resource-api: %v\n%s", err, out)
	}
	addr := testutil.FreeAddr(t)
	apiURL := "http://" + addr
	api, err := testutil.StartProcess("resource-api", bin, nil, []string{
		"PATH=" + os.Getenv("PATH"),
		"ISSUER_URL=" + ti.URL,
		"RESOURCE_AUDIENCE=" + audience,
		"RESOURCE_ADDR=" + addr,
		"RESOURCE_URL=" + apiURL,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopProcess(t, api) })
	err = api.WaitReady(context.Background(), 15*time.Second, func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, apiURL+"/healthz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
	if err != nil {
		t.Fatalf("resource-api: %v\n%s", err, api.Tail())
	}

	// The issuer's test clock stood still while the API was built; node's
	// proofs carry the real time.
	ti.clock.Set(time.Now())
	runNode(t, node, "dpop.mjs", func() string {
		return "issuer logs:\n" + ti.logs.String() + "\nresource-api:\n" + api.Tail()
	},
		"ISSUER_URL="+ti.URL,
		"CLIENT_ID="+id,
		"CLIENT_SECRET="+sec,
		"AUDIENCE="+audience,
		"API_URL="+apiURL,
	)
}

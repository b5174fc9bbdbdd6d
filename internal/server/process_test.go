package server

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/issuer-oauth/issuer/internal/redistest"
	"github.com/issuer-oauth/issuer/internal/secret"
	"github.com/issuer-oauth/issuer/internal/testutil"
)

// buildIssuer builds the issuer binary (cmd/issuer) into a temporary
// directory.
func buildIssuer(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "issuer")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/issuer-oauth/issuer/cmd/issuer")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startProcessPair builds the issuer and runs two `issuer serve`
// processes, A and B, of one issuer (ISSUER_URL is A's URL) on one new
// redis-server, with the admin API on and extra settings env, and returns
// them as test issuers (with clock newClock() for code that needs one; the
// processes run on the real clock).
func startProcessPair(t *testing.T, env map[string]string) (a, b *testIssuer) {
	t.Helper()
	bin := buildIssuer(t)
	srv := redistest.Start(t)
	addrA, addrB := testutil.FreeAddr(t), testutil.FreeAddr(t)
	for _, addr := range []string{addrA, addrB} {
		vars := map[string]string{
			"ISSUER_ADDR": addr, "ISSUER_URL": "http://" + addrA,
			"ISSUER_REDIS_URL": srv.URL(), "ISSUER_SECRET": processSecret,
			"ISSUER_ADMIN_TOKEN": adminToken, "ISSUER_LOG_LEVEL": "warn",
		}
		maps.Copy(vars, env)
		startProcess(t, bin, vars)
	}
	a = &testIssuer{URL: "http://" + addrA, base: "http://" + addrA, clock: newClock()}
	b = &testIssuer{URL: "http://" + addrA, base: "http://" + addrB, clock: newClock()}
	return a, b
}

// startProcess runs `bin serve` with env and waits until /readyz answers;
// the test's cleanup stops it and checks that it exits 0.
func startProcess(t *testing.T, bin string, env map[string]string) *testutil.Process {
	t.Helper()
	vars := []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		vars = append(vars, k+"="+v)
	}
	p, err := testutil.StartProcess("issuer", bin, []string{"serve"}, vars)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopProcess(t, p) })
	err = p.WaitReady(context.Background(), 15*time.Second, func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+env["ISSUER_ADDR"]+"/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("/readyz: %d", resp.StatusCode)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// stopProcess sends SIGTERM and checks for a clean exit.
func stopProcess(t *testing.T, p *testutil.Process) {
	if err := p.Stop(); err != nil {
		t.Errorf("after SIGTERM: %v\n%s", err, p.Tail())
	}
}

// TestTwoProcessesOnOneRedis runs two real `issuer serve` processes on one
// real redis-server, as two machines behind a load balancer would.
func TestTwoProcessesOnOneRedis(t *testing.T) {
	bin := buildIssuer(t)
	srv := redistest.Start(t, redistest.WithAOF())
	addrA, addrB := testutil.FreeAddr(t), testutil.FreeAddr(t)
	env := func(addr string) map[string]string {
		return map[string]string{
			"ISSUER_ADDR": addr, "ISSUER_URL": "http://" + addrA,
			"ISSUER_REDIS_URL": srv.URL(), "ISSUER_SECRET": processSecret,
			"ISSUER_ADMIN_TOKEN": adminToken, "ISSUER_LOG_LEVEL": "warn",
		}
	}
	pa := startProcess(t, bin, env(addrA))
	pb := startProcess(t, bin, env(addrB))
	a := &testIssuer{URL: "http://" + addrA, base: "http://" + addrA, clock: newClock(), logs: nil}
	b := &testIssuer{URL: "http://" + addrA, base: "http://" + addrB, clock: newClock(), logs: nil}

	if ja, jb := a.jwksBytes(t), b.jwksBytes(t); ja != jb {
		t.Fatalf("processes publish different JWKS:\n%s\n%s", ja, jb)
	}
	id, sec := a.createClient(t, map[string]any{"scope": "read"})
	rt := a.issue(t, id, sec)["refresh_token"].(string)
	status, m := b.refresh(t, id, sec, rt)
	if status != 200 {
		t.Fatalf("refresh at B of A's token: %d %v", status, m)
	}
	if status, _ := a.refresh(t, id, sec, rt); status != 400 {
		t.Fatalf("reuse at A: %d, want 400", status)
	}
	refreshRace(t, a.issue(t, id, sec)["refresh_token"].(string), id, sec, a, b)

	outstanding := a.issue(t, id, sec)["refresh_token"].(string)
	jwks := a.jwksBytes(t)
	stopProcess(t, pa)
	stopProcess(t, pb)
	startProcess(t, bin, env(addrA))
	startProcess(t, bin, env(addrB))
	if got := b.jwksBytes(t); got != jwks {
		t.Errorf("JWKS changed across the restart")
	}
	if status, m := b.refresh(t, id, sec, outstanding); status != 200 {
		t.Fatalf("outstanding refresh token after restarting both: %d %v", status, m)
	}
}

// processSecret is the shared ISSUER_SECRET of the process tests.
var processSecret = secret.Random(32)

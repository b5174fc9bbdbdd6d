package server

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/issuer-oauth/issuer/internal/redistest"
	"github.com/issuer-oauth/issuer/internal/secret"
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

// process is an `issuer serve` process.
type process struct {
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan struct{}
}

// startProcess runs `bin serve` with env and waits until /readyz answers.
func startProcess(t *testing.T, bin string, env map[string]string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(bin, "serve"), logs: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.stop(t) })
	eventually(t, 15*time.Second, "issuer process ready", func() bool {
		select {
		case <-p.done:
			t.Fatalf("issuer exited: %s", p.logs)
		default:
		}
		resp, err := http.Get("http://" + env["ISSUER_ADDR"] + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return p
}

// stop sends SIGTERM and waits for a clean exit.
func (p *process) stop(t *testing.T) {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if code := p.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("issuer exited %d after SIGTERM: %s", code, p.logs)
		}
	case <-time.After(20 * time.Second):
		p.cmd.Process.Kill()
		t.Errorf("issuer did not stop within 20 s of SIGTERM: %s", p.logs)
	}
}

// TestTwoProcessesOnOneRedis runs two real `issuer serve` processes on one
// real redis-server, as two machines behind a load balancer would.
func TestTwoProcessesOnOneRedis(t *testing.T) {
	bin := buildIssuer(t)
	srv := redistest.Start(t, redistest.WithAOF())
	addrA, addrB := freeAddr(t), freeAddr(t)
	env := func(addr string) map[string]string {
		return map[string]string{
			"ISSUER_ADDR": addr, "ISSUER_URL": "http://" + addrA,
			"ISSUER_REDIS_URL": srv.URL(), "ISSUER_SECRET": processSecret,
			"ISSUER_ADMIN_TOKEN": adminToken, "ISSUER_LOG_LEVEL": "warn",
		}
	}
	pa := startProcess(t, bin, env(addrA))
	pb := startProcess(t, bin, env(addrB))
	a := &testIssuer{URL: "http://" + addrA, base: "http://" + addrA, clock: newClock(), logs: pa.logs}
	b := &testIssuer{URL: "http://" + addrA, base: "http://" + addrB, clock: newClock(), logs: pb.logs}

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
	pa.stop(t)
	pb.stop(t)
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

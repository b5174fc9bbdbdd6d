package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/issuer-oauth/issuer/internal/testutil"
)

// TestREADMEQuickStart runs the shell blocks of the README's quick start,
// as written, with the built binary first on PATH: the commands a newcomer
// copies must reach a token, a verified API call, a refused reuse and a
// backup. The
// only changes are the quick start's directory and ports (free ones, so
// that the test runs beside other servers), and the two long-running
// commands (issuer serve, the example API) go to the background, with a
// wait for them to be ready, as the second and third terminals would.
func TestREADMEQuickStart(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "openssl", "awk", "base64"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed to run the README's quick start: run make test (scripts/test-deps.sh installs it)", tool)
		}
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(repo, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := shellBlocks(t, string(readme), "## Quick start")

	dir := t.TempDir()
	issuerAddr, apiAddr := testutil.FreeAddr(t), testutil.FreeAddr(t)
	replacer := strings.NewReplacer(
		"/tmp/issuer-quickstart", dir,
		"127.0.0.1:8080", issuerAddr,
		"127.0.0.1:8090", apiAddr,
	)
	var script strings.Builder
	script.WriteString("set -euo pipefail\n")
	script.WriteString(`ready() { for i in $(seq 1200); do curl -sf "$1" >/dev/null && return 0; sleep 0.1; done; echo "not ready: $1" >&2; return 1; }` + "\n")
	var sawServe, sawAPI bool
	for _, b := range blocks {
		b = replacer.Replace(b)
		switch {
		case strings.HasSuffix(strings.TrimSpace(b), "\nissuer serve"):
			sawServe = true
			b = strings.TrimSuffix(strings.TrimSpace(b), "issuer serve")
			b += "issuer serve >serve.log 2>&1 &\nready http://" + issuerAddr + "/readyz\n"
		case strings.Contains(b, "go run ./examples/resource-api"):
			sawAPI = true
			b = "(cd " + repo + " && " + strings.TrimSpace(b) + ") >api.log 2>&1 &\nready http://" + apiAddr + "/healthz\n"
		}
		script.WriteString("echo '### block'\n" + b + "\n")
	}
	if !sawServe || !sawAPI {
		t.Fatalf("the quick start has no block ending in \"issuer serve\" (%v) or running the example API (%v)", sawServe, sawAPI)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script.String())
	cmd.Dir = dir
	cmd.Env = []string{
		"PATH=" + filepath.Dir(binary(t)) + string(os.PathListSeparator) + os.Getenv("PATH"),
		"ISSUER_SHUTDOWN_DRAIN_DELAY=0s", // no load balancer to drain: stop at once
	}
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k != "PATH" && !strings.HasPrefix(k, "ISSUER_") && !strings.HasPrefix(k, "RESOURCE_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	// The background servers are in the shell's process group: end them
	// all when the script ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Start()
	if err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	// Stop the servers left in the background, and wait until they have
	// exited before the temporary directory is removed.
	syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	testutil.Eventually(t, 30*time.Second, func() bool { return syscall.Kill(-cmd.Process.Pid, 0) != nil })
	logs := func(name string) string { b, _ := os.ReadFile(filepath.Join(dir, name)); return string(b) }
	if err != nil {
		t.Fatalf("the quick start failed: %v\n%s\nserve.log:\n%s\napi.log:\n%s", err, out.String(), logs("serve.log"), logs("api.log"))
	}
	for _, want := range []string{
		"client_secret:",
		`"iss":"http://` + issuerAddr + `"`,
		`{"items":[]}`,
		"401",
		`"error":"invalid_grant"`,
		`"jwks_uri":"http://` + issuerAddr + `/.well-known/jwks.json"`,
		"backup: issuer-backup.db (",
	} {
		if !strings.Contains(strings.ReplaceAll(out.String(), " ", ""), strings.ReplaceAll(want, " ", "")) {
			t.Errorf("the quick start's output lacks %q:\n%s", want, out.String())
		}
	}
}

// shellBlocks returns the ```sh blocks of the section of md that starts
// with the heading line title, up to the next heading of its level.
func shellBlocks(t *testing.T, md, title string) []string {
	t.Helper()
	start := strings.Index(md, "\n"+title)
	if start < 0 {
		t.Fatalf("README.md has no %q section", title)
	}
	section := md[start+1:]
	if end := strings.Index(section[len(title):], "\n## "); end >= 0 {
		section = section[:len(title)+end]
	}
	var blocks []string
	for {
		i := strings.Index(section, "```sh\n")
		if i < 0 {
			break
		}
		section = section[i+len("```sh\n"):]
		j := strings.Index(section, "```")
		if j < 0 {
			t.Fatal("unterminated code block")
		}
		blocks = append(blocks, section[:j])
		section = section[j+3:]
	}
	if len(blocks) == 0 {
		t.Fatalf("no sh blocks in %q", title)
	}
	return blocks
}

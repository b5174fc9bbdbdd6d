package main

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/issuer-oauth/issuer/internal/testutil"
)

// TestMain removes the binary that the tests built, if any.
func TestMain(m *testing.M) {
	code := m.Run()
	if builtBin != "" {
		os.RemoveAll(filepath.Dir(builtBin))
	}
	os.Exit(code)
}

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
	buildOut  []byte
)

// binary builds this command once per test run and returns its path.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "issuer-bin-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "issuer")
		cmd := exec.Command("go", "build", "-o", builtBin, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		buildOut, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("go build: %v\n%s", buildErr, buildOut)
	}
	return builtBin
}

// runBinary runs the built binary with args and exactly the variables of
// env (and PATH), and returns its exit code, stdout and stderr.
func runBinary(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Dir = t.TempDir()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, out.String(), errb.String()
}

// TestStartFailurePrintedOnce: a server that cannot start says so in one
// line on stderr, not also in a JSON log line on stdout, and a misspelt
// ISSUER_ variable gets one warning with the setting meant.
func TestStartFailurePrintedOnce(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	secret := "test-secret-0123456789abcdefghijklmnop"
	tests := []struct {
		name string
		env  map[string]string
		want []string // prefixes of the lines on stderr
	}{
		{"busy port and a typo", map[string]string{"ISSUER_ADDR": busy.Addr().String(), "ISSUER_ACESS_TOKEN_TTL": "1m"}, []string{
			"issuer: warning: ISSUER_ACESS_TOKEN_TTL is not a setting and is ignored; did you mean ISSUER_ACCESS_TOKEN_TTL?",
			"issuer: ISSUER_ADDR (addr): listen tcp " + busy.Addr().String() + ": bind: address already in use",
		}},
		{"closed Redis port", map[string]string{"ISSUER_ADDR": "127.0.0.1:0", "ISSUER_REDIS_URL": "redis://" + testutil.FreeAddr(t), "ISSUER_SECRET": secret}, []string{
			"issuer: ISSUER_REDIS_URL (redis_url): ",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runBinary(t, tt.env, "serve")
			if code != 1 {
				t.Errorf("exit code %d, want 1", code)
			}
			if stdout != "" {
				t.Errorf("stdout = %q, want nothing: the error goes to stderr only", stdout)
			}
			got := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
			if len(got) != len(tt.want) {
				t.Fatalf("stderr has %d lines, want %d:\n%s", len(got), len(tt.want), stderr)
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tt.want[i]) {
					t.Errorf("stderr line %d = %q, want prefix %q", i, got[i], tt.want[i])
				}
			}
		})
	}
}

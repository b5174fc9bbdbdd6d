package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/issuer-oauth/issuer/internal/adminapi"
	"github.com/issuer-oauth/issuer/internal/config"
	"github.com/issuer-oauth/issuer/internal/redistest"
	"github.com/issuer-oauth/issuer/internal/testutil"
)

// TestBackupRestore: `issuer backup FILE` copies the store of an issuer
// that keeps serving; an issuer started on a data directory holding that
// copy (as issuer.db, beside the same issuer.secret) knows the clients of
// the backup and not those registered after it.
func TestBackupRestore(t *testing.T) {
	addr := testutil.FreeAddr(t)
	dirA, dirB := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	env := map[string]string{"ISSUER_ADDR": addr, "ISSUER_DATA_DIR": dirA, "ISSUER_ADMIN_TOKEN": adminToken,
		"ISSUER_LOG_LEVEL": "warn", "ISSUER_SHUTDOWN_DRAIN_DELAY": "0s"}
	serve := func() (stop func()) {
		getenv := func(k string) string { return env[k] }
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan int)
		var logs testutil.Buffer
		go func() { done <- run(ctx, []string{"serve"}, getenv, nil, &logs, &logs) }()
		testutil.Eventually(t, 10*time.Second, func() bool {
			return run(context.Background(), []string{"healthcheck"}, getenv, nil, io.Discard, io.Discard) == 0
		})
		return func() {
			cancel()
			if code := <-done; code != 0 {
				t.Errorf("serve exited %d: %s", code, logs.String())
			}
		}
	}
	create := func(name string) adminapi.ClientInfo {
		t.Helper()
		res := runCLI(t, runClients, env, "create", "--name", name, "--audience", "https://api.example.com", "--json")
		if res.code != 0 {
			t.Fatalf("clients create: %d %s", res.code, res.stderr)
		}
		var c adminapi.ClientInfo
		if err := json.Unmarshal([]byte(res.stdout), &c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	tokenErr := func(c adminapi.ClientInfo) error {
		cc := clientcredentials.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret, TokenURL: "http://" + addr + "/oauth2/token"}
		_, err := cc.Token(t.Context())
		return err
	}

	stop := serve()
	before := create("before")
	file := filepath.Join(t.TempDir(), "issuer-backup.db")
	res := runCLI(t, runBackup, env, file)
	if res.code != 0 || !strings.HasPrefix(res.stdout, "backup: "+file+" (") {
		t.Fatalf("backup: exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}
	after := create("after")
	if res := runCLI(t, runBackup, env, file); res.code != 1 || !strings.Contains(res.stderr, "exists") {
		t.Errorf("backup onto an existing file: exit %d, stderr %q; want 1 and a line saying it exists", res.code, res.stderr)
	}
	stop()

	if err := os.MkdirAll(dirB, 0o700); err != nil {
		t.Fatal(err)
	}
	copyFile(t, file, filepath.Join(dirB, "issuer.db"))
	copyFile(t, filepath.Join(dirA, "issuer.secret"), filepath.Join(dirB, "issuer.secret"))
	env["ISSUER_DATA_DIR"] = dirB
	defer serve()()
	if err := tokenErr(before); err != nil {
		t.Errorf("client registered before the backup, after the restore: %v", err)
	}
	if err := tokenErr(after); err == nil {
		t.Error("client registered after the backup got a token from the restored store")
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestBackupRedis: an issuer on Redis refuses the backup with a line that
// says to use Redis's persistence, and no file is left behind.
func TestBackupRedis(t *testing.T) {
	rs := redistest.Start(t)
	ts := startServer(t, func(c *config.Config) {
		c.RedisURL, c.Secret = rs.URL(), "test-secret-0123456789abcdefghijklmnop"
	})
	file := filepath.Join(t.TempDir(), "backup.db")
	res := runCLI(t, runBackup, ts.env(), file)
	if res.code != 1 || !strings.Contains(res.stderr, "409: unsupported: the store is Redis") || strings.Count(res.stderr, "\n") != 1 {
		t.Errorf("backup of a Redis issuer: exit %d, stderr %q", res.code, res.stderr)
	}
	if entries, _ := os.ReadDir(filepath.Dir(file)); len(entries) != 0 {
		t.Errorf("files left behind: %v", entries)
	}
}

// TestBackupUsage: a missing FILE is a usage error, before any request.
func TestBackupUsage(t *testing.T) {
	res := runCLI(t, runBackup, map[string]string{"ISSUER_ADMIN_TOKEN": adminToken})
	if res.code != 2 || !strings.Contains(res.stderr, "missing FILE") {
		t.Errorf("backup without FILE: exit %d, stderr %q", res.code, res.stderr)
	}
}

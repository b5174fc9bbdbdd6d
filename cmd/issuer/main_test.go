package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/issuer-oauth/issuer/internal/adminapi"
	"github.com/issuer-oauth/issuer/internal/testutil"
)

// TestCLIAgainstServer drives the admin CLI through run, as the binary's
// main does, against a real issuer, and uses the client it registered.
func TestCLIAgainstServer(t *testing.T) {
	ts := startServer(t)
	env := ts.env()
	cli := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(context.Background(), args, func(k string) string { return env[k] }, nil, &out, &errb)
		return code, out.String(), errb.String()
	}
	code, out, stderr := cli("clients", "create", "--name", "billing", "--scope", "read write", "--audience", "https://api.example", "--json")
	if code != 0 {
		t.Fatalf("create: %d %s %s", code, out, stderr)
	}
	var created adminapi.ClientInfo
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatalf("create --json: %v: %s", err, out)
	}
	cc := clientcredentials.Config{ClientID: created.ClientID, ClientSecret: created.ClientSecret, TokenURL: ts.URL + "/oauth2/token"}
	tok, err := cc.Token(t.Context())
	if err != nil {
		t.Fatalf("token for the client the CLI created: %v", err)
	}
	if got := tok.Extra("scope"); got != "read write" {
		t.Errorf("scope = %v, want read write", got)
	}
	id := created.ClientID
	if code, out, _ = cli("clients", "list"); code != 0 || !strings.Contains(out, id) {
		t.Errorf("list: %d %s", code, out)
	}
	if code, out, _ = cli("clients", "update", id, "--scope", "read"); code != 0 {
		t.Errorf("update: %d %s", code, out)
	}
	if code, out, _ = cli("clients", "get", id, "--json"); code != 0 || !strings.Contains(out, `"scope": "read"`) {
		t.Errorf("get after update: %d %s", code, out)
	}
	if code, out, _ = cli("clients", "rotate-secret", id); code != 0 || !strings.Contains(out, "client_secret") {
		t.Errorf("rotate-secret: %d %s", code, out)
	}
	if _, err := cc.Token(t.Context()); err == nil {
		t.Errorf("the secret from before the rotation still works")
	}
	if code, out, _ = cli("keys", "list"); code != 0 || !strings.Contains(out, "current") {
		t.Errorf("keys list: %d %s", code, out)
	}
	if code, out, _ = cli("clients", "delete", id); code != 0 {
		t.Errorf("delete: %d %s", code, out)
	}
	if code, _, stderr = cli("clients", "get", id); code == 0 || !strings.Contains(stderr, "404") {
		t.Errorf("get deleted: %d %s", code, stderr)
	}
	env["ISSUER_ADMIN_TOKEN"] = "wrong-token-wrong-token-wrong-token"
	if code, _, stderr = cli("clients", "list"); code == 0 || !strings.Contains(stderr, "401") {
		t.Errorf("wrong token: %d %s", code, stderr)
	}
}

// TestServeCommand runs `issuer serve` as a user would (environment only, no
// config file), checks `issuer healthcheck`, and restarts it on the same data
// directory: the signing key and the clients survive.
func TestServeCommand(t *testing.T) {
	dir := t.TempDir()
	addr := testutil.FreeAddr(t)
	env := map[string]string{
		"ISSUER_ADDR": addr, "ISSUER_URL": "http://" + addr,
		"ISSUER_DATA_DIR": filepath.Join(dir, "data"), "ISSUER_ADMIN_TOKEN": adminToken,
	}
	getenv := func(k string) string { return env[k] }
	start := func() (stop func() string) { return startServe(t, getenv) }
	kid := func() string {
		resp, err := http.Get("http://" + addr + "/.well-known/jwks.json")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var set struct{ Keys []struct{ Kid string } }
		json.NewDecoder(resp.Body).Decode(&set)
		if len(set.Keys) != 1 {
			t.Fatalf("JWKS keys = %v", set)
		}
		return set.Keys[0].Kid
	}

	stop := start()
	first := kid()
	var out bytes.Buffer
	if code := run(context.Background(), []string{"clients", "create", "--name", "a", "--audience", "https://api", "--json"}, getenv, nil, &out, io.Discard); code != 0 {
		t.Fatalf("clients create: %d", code)
	}
	logs := stop()
	if !strings.Contains(logs, `"msg":"issuer started"`) {
		t.Errorf("no JSON start-up log line: %s", logs)
	}
	if code := run(context.Background(), []string{"healthcheck"}, getenv, nil, io.Discard, io.Discard); code == 0 {
		t.Error("healthcheck succeeded with the server stopped")
	}
	if fi, err := os.Stat(filepath.Join(dir, "data", "issuer.secret")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("secret file: %v %v, want mode 0600", fi, err)
	}

	stop = start()
	defer stop()
	if got := kid(); got != first {
		t.Errorf("kid after restart = %s, want %s", got, first)
	}
	var created map[string]string
	json.Unmarshal(out.Bytes(), &created)
	form := url.Values{"grant_type": {"client_credentials"}}
	req, _ := http.NewRequest("POST", "http://"+addr+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(created["client_id"], created["client_secret"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("client created before the restart: token status %d", resp.StatusCode)
	}
}

// startServe runs `issuer serve` in this process with getenv until
// `issuer healthcheck` (with the same environment) passes; stop ends it
// and returns everything it wrote.
func startServe(t *testing.T, getenv func(string) string) (stop func() string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var logs testutil.Buffer
	done := make(chan int)
	go func() { done <- run(ctx, []string{"serve"}, getenv, nil, &logs, &logs) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if code := run(context.Background(), []string{"healthcheck"}, getenv, nil, io.Discard, io.Discard); code == 0 {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatalf("server not ready: %s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return func() string {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("serve exited %d: %s", code, logs.String())
		}
		return logs.String()
	}
}

// TestServeWarnsBehindPlatformProxy: with PORT set (Heroku and other
// platforms that route every request through their own proxy) and no
// proxy trusted, `issuer serve` logs one warning at start-up that names
// the settings to fix; trusting the router silences it, and without PORT
// there is none.
func TestServeWarnsBehindPlatformProxy(t *testing.T) {
	warnings := func(logs string) []string {
		var out []string
		for _, line := range strings.Split(logs, "\n") {
			if strings.Contains(line, `"level":"WARN"`) && strings.Contains(line, "PORT") {
				out = append(out, line)
			}
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		env   map[string]string
		warns int
	}{
		{"PORT, no proxy trusted", map[string]string{}, 1},
		{"PORT, the router trusted by hops", map[string]string{"ISSUER_TRUSTED_PROXY_HOPS": "1"}, 0},
		{"PORT, proxies trusted", map[string]string{"ISSUER_TRUSTED_PROXIES": "10.0.0.0/8"}, 0},
		{"ISSUER_ADDR, no PORT", map[string]string{"PORT": ""}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port := strconv.Itoa(testutil.FreePort(t))
			env := map[string]string{"PORT": port, "ISSUER_URL": "http://127.0.0.1:" + port, "ISSUER_DATA_DIR": t.TempDir(),
				"ISSUER_SHUTDOWN_DRAIN_DELAY": "0s"}
			for k, v := range tc.env {
				env[k] = v
			}
			if env["PORT"] == "" {
				env["ISSUER_ADDR"] = "127.0.0.1:" + port
			}
			logs := startServe(t, func(k string) string { return env[k] })()
			got := warnings(logs)
			if len(got) != tc.warns {
				t.Fatalf("%d warnings about PORT, want %d: %s", len(got), tc.warns, logs)
			}
			if tc.warns > 0 && (!strings.Contains(got[0], "ISSUER_TRUSTED_PROXY_HOPS=1") || !strings.Contains(got[0], "ISSUER_TRUSTED_PROXIES")) {
				t.Errorf("the warning does not say what to set: %s", got[0])
			}
		})
	}
}

func TestServeBadConfig(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"ISSUER_ACCESS_TOKEN_TTL": "five minutes"}, "ISSUER_ACCESS_TOKEN_TTL"},
		{map[string]string{"ISSUER_SIGNING_ALG": "none"}, "ISSUER_SIGNING_ALG"},
		{map[string]string{"ISSUER_URL": "ftp://x"}, "ISSUER_URL"},
		{map[string]string{"ISSUER_REDIS_URL": "redis://localhost:6379"}, "ISSUER_"},
	} {
		var out, errb bytes.Buffer
		tc.env["ISSUER_DATA_DIR"] = t.TempDir()
		tc.env["ISSUER_ADDR"] = testutil.FreeAddr(t)
		code := run(context.Background(), []string{"serve"}, func(k string) string { return tc.env[k] }, nil, &out, &errb)
		if code == 0 || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want non-zero and a line naming %s", tc.env, code, errb.String(), tc.want)
		}
	}
}

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if code := run(context.Background(), []string{"version"}, os.Getenv, nil, &out, io.Discard); code != 0 || !strings.HasPrefix(out.String(), "issuer ") {
		t.Errorf("version: %d %q", code, out.String())
	}
}

// TestAdminListenerCLI runs `issuer serve` with an admin listener
// (ISSUER_ADMIN_ADDR): the CLI finds the admin API from the same
// environment (as `docker exec` or `kubectl exec` into the issuer's
// container does), or from ISSUER_ADMIN_URL, while ISSUER_URL alone now
// reaches the main listener, which has no admin API; healthcheck checks
// both listeners.
func TestAdminListenerCLI(t *testing.T) {
	addr, adminAddr := testutil.FreeAddr(t), testutil.FreeAddr(t)
	env := map[string]string{
		"ISSUER_ADDR": addr, "ISSUER_URL": "http://" + addr, "ISSUER_ADMIN_ADDR": adminAddr,
		"ISSUER_DATA_DIR": t.TempDir(), "ISSUER_ADMIN_TOKEN": adminToken, "ISSUER_SHUTDOWN_DRAIN_DELAY": "0s",
	}
	stop := startServe(t, func(k string) string { return env[k] })
	defer stop()
	clients := func(env map[string]string) (int, string) {
		var out, errb bytes.Buffer
		code := run(context.Background(), []string{"clients", "list", "--json"}, func(k string) string { return env[k] }, nil, &out, &errb)
		return code, out.String() + errb.String()
	}
	if code, out := clients(env); code != 0 || !strings.Contains(out, `"clients"`) {
		t.Errorf("with the server's environment (ISSUER_ADMIN_ADDR): exit %d: %s", code, out)
	}
	viaURL := map[string]string{"ISSUER_ADMIN_URL": "http://" + adminAddr, "ISSUER_URL": "http://" + addr, "ISSUER_ADMIN_TOKEN": adminToken}
	if code, out := clients(viaURL); code != 0 {
		t.Errorf("with ISSUER_ADMIN_URL: exit %d: %s", code, out)
	}
	if code, out := clients(map[string]string{"ISSUER_URL": "http://" + addr, "ISSUER_ADMIN_TOKEN": adminToken}); code == 0 || !strings.Contains(out, "not_found") {
		t.Errorf("with ISSUER_URL only (the main listener): exit %d: %s; want a 404", code, out)
	}

	var errb bytes.Buffer
	if code := run(context.Background(), []string{"healthcheck"}, func(k string) string { return env[k] }, nil, io.Discard, &errb); code != 0 {
		t.Errorf("healthcheck of both listeners: exit %d: %s", code, errb.String())
	}
	nothing := testutil.FreeAddr(t) // the admin listener is not there
	errb.Reset()
	code := run(context.Background(), []string{"healthcheck"}, func(k string) string {
		if k == "ISSUER_ADMIN_ADDR" {
			return nothing
		}
		return env[k]
	}, nil, io.Discard, &errb)
	if _, port, _ := net.SplitHostPort(nothing); code == 0 || !strings.Contains(errb.String(), ":"+port+"/readyz") {
		t.Errorf("healthcheck with the admin listener down: exit %d: %s; want a failure naming it", code, errb.String())
	}
}

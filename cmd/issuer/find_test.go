package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/issuer-oauth/issuer/internal/adminapi"
	"github.com/issuer-oauth/issuer/internal/config"
	"github.com/issuer-oauth/issuer/internal/testutil"
)

// TestPortOnly: with ISSUER_ADDR alone (no ISSUER_URL), `issuer serve`
// advertises and signs with the URL of its address, and every CLI command
// run with the same environment finds it there.
func TestPortOnly(t *testing.T) {
	addr := testutil.FreeAddr(t)
	env := map[string]string{
		"ISSUER_ADDR": addr, "ISSUER_DATA_DIR": filepath.Join(t.TempDir(), "data"),
		"ISSUER_ADMIN_TOKEN": adminToken, "ISSUER_LOG_LEVEL": "warn",
	}
	getenv := func(k string) string { return env[k] }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	var logs testutil.Buffer
	go func() { done <- run(ctx, []string{"serve"}, getenv, nil, &logs, &logs) }()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("serve exited %d: %s", code, logs.String())
		}
	}()
	testutil.Eventually(t, 10*time.Second, func() bool {
		return run(context.Background(), []string{"healthcheck"}, getenv, nil, io.Discard, io.Discard) == 0
	})

	res := runCLI(t, runClients, env, "create", "--name", "a", "--audience", "https://api.example.com", "--json")
	if res.code != 0 {
		t.Fatalf("clients create: %d %s", res.code, res.stderr)
	}
	var c adminapi.ClientInfo
	if err := json.Unmarshal([]byte(res.stdout), &c); err != nil {
		t.Fatal(err)
	}
	cc := clientcredentials.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret, TokenURL: "http://" + addr + "/oauth2/token"}
	tok, err := cc.Token(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok.AccessToken, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims struct{ Iss string }
	json.Unmarshal(payload, &claims)
	if want := "http://" + addr; claims.Iss != want {
		t.Errorf("iss = %q, want %q (the URL of ISSUER_ADDR)", claims.Iss, want)
	}
	if res := runCLI(t, runKeys, env, "list"); res.code != 0 {
		t.Errorf("keys list: %d %s", res.code, res.stderr)
	}
}

// TestCLIChecksIssuer: the CLI refuses, in one line that says what to do,
// a server that is not the issuer meant, is no issuer at all, or has its
// admin API off; and it accepts one reached through --url when ISSUER_URL
// names its issuer (a port-forward).
func TestCLIChecksIssuer(t *testing.T) {
	const other = "https://other.example.com"
	decoy := startServer(t, func(c *config.Config) { c.URL = other })
	decoyAddr, decoyURL := decoy.addr, "http://"+decoy.addr
	_, decoyPort, _ := strings.Cut(decoyAddr, ":")
	off := startServer(t, func(c *config.Config) { c.AdminToken = "" })
	notIssuer := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(notIssuer.Close)

	tests := []struct {
		name       string
		env        map[string]string
		args       []string
		wantStderr string // the whole line; "" for success
	}{
		{"ISSUER_ADDR reaches another issuer", map[string]string{"ISSUER_ADDR": decoyAddr}, nil,
			"issuer: the server at " + decoyURL + " (ISSUER_ADDR) is the issuer " + other + ", not " + decoyURL +
				": if it is the one you mean, set ISSUER_URL=" + other + " (with --url " + decoyURL + " to reach it here)\n"},
		{"PORT reaches another issuer", map[string]string{"PORT": decoyPort}, nil,
			"issuer: the server at http://localhost:" + decoyPort + " (PORT) is the issuer " + other + ", not http://localhost:" + decoyPort +
				": if it is the one you mean, set ISSUER_URL=" + other + " (with --url http://localhost:" + decoyPort + " to reach it here)\n"},
		{"ISSUER_URL reaches another issuer", map[string]string{"ISSUER_URL": decoyURL}, nil,
			"issuer: the server at " + decoyURL + " (ISSUER_URL) is the issuer " + other + ", not " + decoyURL +
				": check ISSUER_URL, and the url (ISSUER_URL) the server runs with\n"},
		{"--url reaches another issuer than ISSUER_URL", map[string]string{"ISSUER_URL": "https://mine.example.com"}, []string{"--url", decoyURL},
			"issuer: the server at " + decoyURL + " (--url) is the issuer " + other + ", not https://mine.example.com" +
				" (ISSUER_URL): point --url at the server of https://mine.example.com, or unset ISSUER_URL\n"},
		{"--url reaches the issuer of ISSUER_URL", map[string]string{"ISSUER_URL": other + "/"}, []string{"--url", decoyURL}, ""},
		{"--url alone", map[string]string{}, []string{"--url", decoyURL}, ""},
		{"not an issuer", map[string]string{"ISSUER_URL": notIssuer.URL}, nil,
			"issuer: the server at " + notIssuer.URL + " (ISSUER_URL) is not an issuer: GET /.well-known/oauth-authorization-server answered 404 Not Found; check ISSUER_URL\n"},
		{"admin API off", map[string]string{"ISSUER_URL": off.URL}, nil,
			"issuer: the admin API of the issuer at " + off.URL + " (ISSUER_URL) is off: start the server with ISSUER_ADMIN_TOKEN (admin_token) set to at least 32 random characters" +
				" (such as from openssl rand -base64 32), and pass the same token here with --admin-token or ISSUER_ADMIN_TOKEN\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.env["ISSUER_ADMIN_TOKEN"] = adminToken
			decoy.log()
			res := runCLI(t, runClients, tt.env, append([]string{"list"}, tt.args...)...)
			if tt.wantStderr == "" {
				if res.code != 0 {
					t.Errorf("exit %d, stderr %q; want success", res.code, res.stderr)
				}
				return
			}
			checkFailure(t, decoy, res, 1, []string{tt.wantStderr}, true)
		})
	}
}

// TestHealthcheckChecksIssuer: healthcheck fails when the server on the
// configured address is another issuer than the configured one.
func TestHealthcheckChecksIssuer(t *testing.T) {
	decoy := startServer(t, func(c *config.Config) { c.URL = "https://other.example.com" })
	addr := decoy.addr
	res := runCLI(t, runHealthcheck, map[string]string{"ISSUER_ADDR": addr, "ISSUER_URL": "https://mine.example.com"})
	want := "issuer: healthcheck: the server at http://" + addr + " (the listen address) is the issuer https://other.example.com, not https://mine.example.com (its configured url): another server listens on its address\n"
	if res.code != 1 || res.stderr != want {
		t.Errorf("healthcheck: exit %d, stderr %q; want 1 and %q", res.code, res.stderr, want)
	}
	res = runCLI(t, runHealthcheck, map[string]string{"ISSUER_ADDR": addr, "ISSUER_URL": "https://other.example.com"})
	if res.code != 0 || res.stdout != "ready\n" {
		t.Errorf("healthcheck of the configured issuer: exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}
}

// TestFindServerInvalid: a listen address that gives no URL is a usage
// error naming the variable.
func TestFindServerInvalid(t *testing.T) {
	_, err := findServer("", func(k string) string { return map[string]string{"ISSUER_ADDR": "a b:80"}[k] })
	if err == nil || !strings.Contains(err.Error(), `invalid ISSUER_ADDR "a b:80"`) {
		t.Errorf("findServer = %v, want an error naming ISSUER_ADDR", err)
	}
}

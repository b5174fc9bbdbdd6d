package server

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/issuer-oauth/issuer/internal/config"
	"github.com/issuer-oauth/issuer/internal/testutil"
)

// getStatus sends GET base+path with an optional admin token and returns the
// status.
func getStatus(t *testing.T, base, path, token string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", base+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s%s: %v", base, path, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestAdminListener: with admin_addr, the admin API and /metrics are served
// on the admin listener only and answer 404 on the main one, which keeps
// the OAuth endpoints and documents; both answer the probes; the
// metadata's registration_endpoint is on the admin listener; a client
// registered there gets tokens on the main listener; and the admin limit
// counts there.
func TestAdminListener(t *testing.T) {
	ti := startIssuer(t, withAdminListener(t), func(c *config.Config) { c.AdminFailuresPerAddress = 3 })
	if ti.adminBase == "" || ti.adminBase == ti.base {
		t.Fatal("no admin listener")
	}
	for _, tc := range []struct {
		where, base, path, token string
		want                     int
	}{
		{"main", ti.base, "/admin/clients", adminToken, 404},
		{"main", ti.base, "/admin/keys", adminToken, 404},
		{"main", ti.base, "/admin/", "", 404},
		{"main", ti.base, "/metrics", "", 404},
		{"main", ti.base, "/healthz", "", 200},
		{"main", ti.base, "/readyz", "", 200},
		{"main", ti.base, "/.well-known/jwks.json", "", 200},
		{"main", ti.base, "/.well-known/oauth-authorization-server", "", 200},
		{"admin", ti.adminBase, "/admin/clients", adminToken, 200},
		{"admin", ti.adminBase, "/admin/keys", adminToken, 200},
		{"admin", ti.adminBase, "/metrics", "", 200},
		{"admin", ti.adminBase, "/healthz", "", 200},
		{"admin", ti.adminBase, "/readyz", "", 200},
		{"admin", ti.adminBase, "/.well-known/jwks.json", "", 404},
		// The metadata is there too: the CLI checks with it that the admin
		// listener it reached is the issuer's it meant.
		{"admin", ti.adminBase, "/.well-known/oauth-authorization-server", "", 200},
	} {
		if got := getStatus(t, tc.base, tc.path, tc.token); got != tc.want {
			t.Errorf("%s listener: GET %s = %d, want %d", tc.where, tc.path, got, tc.want)
		}
	}
	form := url.Values{"grant_type": {"client_credentials"}}
	req, _ := http.NewRequest("POST", ti.adminBase+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if resp, _ := ti.do(t, req); resp.StatusCode != 404 {
		t.Errorf("admin listener: POST /oauth2/token = %d, want 404", resp.StatusCode)
	}
	req, _ = http.NewRequest("POST", ti.base+"/admin/clients", strings.NewReader(`{"client_name":"x","audience":["https://api.example.com"]}`))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	if resp, _ := ti.do(t, req); resp.StatusCode != 404 {
		t.Errorf("main listener: POST /admin/clients = %d, want 404", resp.StatusCode)
	}

	md := ti.metadata(t)
	if got, want := md["registration_endpoint"], ti.adminBase+"/admin/clients"; got != want {
		t.Errorf("registration_endpoint = %v, want %s (the admin listener)", got, want)
	}
	if got := md["token_endpoint"]; got != ti.URL+"/oauth2/token" {
		t.Errorf("token_endpoint = %v, want it on ISSUER_URL", got)
	}

	id, sec := ti.createClient(t, map[string]any{})
	if resp, body := ti.token(t, id, sec, true, url.Values{"grant_type": {"client_credentials"}}); resp.StatusCode != 200 {
		t.Fatalf("token for a client registered on the admin listener: %d %v", resp.StatusCode, body)
	}
	fams, _ := ti.scrape(t)
	if n := metricSum(fams, "issuer_token_requests_total", map[string]string{"outcome": "success"}); n != 1 {
		t.Errorf("the admin listener's metrics count %v successful token requests of the main listener, want 1", n)
	}

	for range 3 {
		if got := getStatus(t, ti.adminBase, "/admin/clients", wrongAdminToken); got != 401 {
			t.Fatalf("wrong admin token: %d, want 401", got)
		}
	}
	if got := getStatus(t, ti.adminBase, "/admin/clients", adminToken); got != 429 {
		t.Errorf("the right token after 3 wrong ones on the admin listener: %d, want 429", got)
	}
}

// TestAdminURL: admin_url, when set, is the base of registration_endpoint
// (the address where admins reach the admin listener, e.g. a Service);
// without admin_addr the registration endpoint stays on ISSUER_URL.
func TestAdminURL(t *testing.T) {
	ti := startIssuer(t, withAdminListener(t), func(c *config.Config) { c.AdminURL = "http://issuer-admin.issuer.svc:9090" })
	if got := ti.metadata(t)["registration_endpoint"]; got != "http://issuer-admin.issuer.svc:9090/admin/clients" {
		t.Errorf("registration_endpoint = %v, want admin_url + /admin/clients", got)
	}
	one := startIssuer(t)
	if got := one.metadata(t)["registration_endpoint"]; got != one.URL+"/admin/clients" {
		t.Errorf("without admin_addr: registration_endpoint = %v, want ISSUER_URL + /admin/clients", got)
	}
	if got := getStatus(t, one.base, "/metrics", ""); got != 200 {
		t.Errorf("without admin_addr: GET /metrics = %d, want 200 (today's single listener)", got)
	}
	off := startIssuer(t, withAdminListener(t), func(c *config.Config) { c.AdminToken = "" })
	if _, ok := off.metadata(t)["registration_endpoint"]; ok {
		t.Error("admin API off: the metadata names a registration_endpoint")
	}
	if got := getStatus(t, off.adminBase, "/metrics", ""); got != 200 {
		t.Errorf("admin API off, admin_addr set: GET /metrics on the admin listener = %d, want 200", got)
	}
}

// TestAdminListenerRun runs both listeners as `issuer serve` does (Run,
// the real http.Server): the header timeout closes a slow connection on
// the admin listener too; on shutdown both listeners' /readyz answer 503
// during the drain delay and both close; an admin port that is taken
// stops start-up with a line naming admin_addr, and frees the main port.
func TestAdminListenerRun(t *testing.T) {
	adminAddr := testutil.FreeAddr(t)
	addr, stop := serveInProcess(t, map[string]string{
		"ISSUER_ADMIN_ADDR": adminAddr, "ISSUER_READ_HEADER_TIMEOUT": "300ms", "ISSUER_SHUTDOWN_DRAIN_DELAY": "2s",
	})
	base, adminBase := "http://"+addr, "http://"+adminAddr
	if got := getStatus(t, adminBase, "/admin/clients", adminToken); got != 200 {
		t.Fatalf("admin listener: GET /admin/clients = %d, want 200", got)
	}
	if got := getStatus(t, base, "/admin/clients", adminToken); got != 404 {
		t.Errorf("main listener: GET /admin/clients = %d, want 404", got)
	}

	conn, err := net.Dial("tcp", adminAddr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: %s\r\nX-Slow: ", adminAddr) // never finished
	if got := waitClosed(t, conn, 10*time.Second, "admin listener, incomplete headers"); strings.Contains(got, "200 OK") {
		t.Errorf("the admin listener answered incomplete headers: %q", got)
	}
	conn.Close()

	stopped := make(chan struct{})
	var code int
	var logs string
	go func() { code, logs = stop(); close(stopped) }()
	for name, b := range map[string]string{"main": base, "admin": adminBase} {
		testutil.Eventually(t, 10*time.Second, func() bool {
			return getStatus(t, b, "/readyz", "") == http.StatusServiceUnavailable
		})
		if got := getStatus(t, b, "/healthz", ""); got != 200 {
			t.Errorf("%s listener while draining: /healthz %d, want 200", name, got)
		}
	}
	<-stopped
	if code != 0 {
		t.Fatalf("serve exited %d: %s", code, logs)
	}
	for _, a := range []string{addr, adminAddr} {
		if c, err := net.Dial("tcp", a); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after shutdown", a)
		}
	}
	if !strings.Contains(logs, `"admin_addr":"`+adminAddr+`"`) {
		t.Errorf("the start-up line does not name the admin listener: %s", logs)
	}

	// The admin port is taken: start-up fails naming admin_addr, and the
	// main port is free again.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	mainAddr := testutil.FreeAddr(t)
	cfg := config.Default()
	cfg.Addr, cfg.URL, cfg.DataDir = mainAddr, "http://"+mainAddr, t.TempDir()
	cfg.AdminAddr, cfg.AdminToken = busy.Addr().String(), adminToken
	srv, err := New(context.Background(), cfg, Options{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	err = srv.Run(context.Background())
	if err == nil || !strings.HasPrefix(err.Error(), "ISSUER_ADMIN_ADDR (admin_addr): ") {
		t.Errorf("Run with the admin port taken: %v, want an error naming ISSUER_ADMIN_ADDR", err)
	}
	if ln, err := net.Listen("tcp", mainAddr); err != nil {
		t.Errorf("the main port stays taken after the failed start: %v", err)
	} else {
		ln.Close()
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/issuer-oauth/issuer/internal/config"
)

func TestMetadata(t *testing.T) {
	for _, adminOn := range []bool{true, false} {
		t.Run(fmt.Sprintf("admin=%v", adminOn), func(t *testing.T) {
			ti := startIssuer(t, func(c *config.Config) {
				if !adminOn {
					c.AdminToken = ""
				}
			})
			md := ti.metadata(t)
			if md["issuer"] != ti.URL {
				t.Errorf("issuer = %v, want %s", md["issuer"], ti.URL)
			}
			for _, k := range []string{"token_endpoint", "jwks_uri"} {
				if s, _ := md[k].(string); !strings.HasPrefix(s, ti.URL+"/") {
					t.Errorf("%s = %v, want a URL under %s", k, md[k], ti.URL)
				}
			}
			reg, ok := md["registration_endpoint"].(string)
			if ok != adminOn || (adminOn && reg != ti.URL+"/admin/clients") {
				t.Errorf("registration_endpoint = %v with admin API on=%v", md["registration_endpoint"], adminOn)
			}
			if got := toStrings(md["token_endpoint_auth_methods_supported"]); strings.Join(got, " ") != "client_secret_basic client_secret_post" {
				t.Errorf("token_endpoint_auth_methods_supported = %v", got)
			}
			if got := toStrings(md["grant_types_supported"]); strings.Join(got, " ") != "client_credentials refresh_token" {
				t.Errorf("grant_types_supported = %v", got)
			}
			// Every advertised endpoint answers.
			resp, err := http.Get(md["jwks_uri"].(string))
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("jwks_uri: %v %v", err, resp)
			}
			resp.Body.Close()
			resp, err = http.Post(md["token_endpoint"].(string), "application/x-www-form-urlencoded", strings.NewReader("grant_type=client_credentials"))
			if err != nil || resp.StatusCode != 401 {
				t.Fatalf("token_endpoint without credentials: %v %v, want 401", err, resp)
			}
			resp.Body.Close()
		})
	}
}

// TestIssuerURLWithPath: an issuer behind a path prefix advertises URLs
// under it, and serves its metadata where RFC 8414 §3.1 puts it as well.
func TestIssuerURLWithPath(t *testing.T) {
	ti := startIssuer(t, func(c *config.Config) { c.URL += "/auth" })
	md := ti.metadata(t)
	if md["issuer"] != ti.URL || !strings.HasSuffix(ti.URL, "/auth") {
		t.Fatalf("issuer = %v, want %s", md["issuer"], ti.URL)
	}
	if got := md["token_endpoint"]; got != ti.URL+"/oauth2/token" {
		t.Errorf("token_endpoint = %v", got)
	}
	resp, err := http.Get(ti.base + "/.well-known/oauth-authorization-server/auth")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("RFC 8414 §3.1 metadata location: %d, want 200", resp.StatusCode)
	}
}

func TestJWKS(t *testing.T) {
	ti := startIssuer(t)
	uri := ti.metadata(t)["jwks_uri"].(string)
	resp, err := http.Get(uri)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if cc := resp.Header.Get("Cache-Control"); !strings.HasPrefix(cc, "public, max-age=") {
		t.Errorf("Cache-Control = %q", cc)
	}
	etag := resp.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil || len(set.Keys) != 1 {
		t.Fatalf("JWKS = %s (%v)", body, err)
	}
	k := set.Keys[0]
	for name, want := range map[string]string{"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig"} {
		if k[name] != want {
			t.Errorf("%s = %v, want %s", name, k[name], want)
		}
	}
	if k["kid"] == "" {
		t.Error("no kid")
	}
	for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "k"} {
		if _, ok := k[private]; ok {
			t.Errorf("JWKS publishes private member %q", private)
		}
	}

	for _, tc := range []struct {
		inm  string
		want int
	}{{etag, 304}, {`W/` + etag, 304}, {`"other", ` + etag, 304}, {`"other"`, 200}} {
		req, _ := http.NewRequest("GET", uri, nil)
		req.Header.Set("If-None-Match", tc.inm)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("If-None-Match %s: status %d, want %d", tc.inm, resp.StatusCode, tc.want)
		}
	}
}

func TestHealth(t *testing.T) {
	ti := startIssuer(t)
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(ti.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s: %d, want 200", path, resp.StatusCode)
		}
	}
	ti.app.handler.Drain()
	resp, err := http.Get(ti.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Errorf("/readyz while draining: %d, want 503", resp.StatusCode)
	}
	ti.app.store.Close()
	resp, err = http.Get(ti.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("/healthz: %d, want 200", resp.StatusCode)
	}
}

func TestAdminAPI(t *testing.T) {
	ti := startIssuer(t)
	t.Run("authentication", func(t *testing.T) {
		for _, auth := range []string{"", "Bearer", "Bearer wrong", "Basic " + adminToken, "Bearer " + adminToken + "x"} {
			req, _ := http.NewRequest("GET", ti.URL+"/admin/clients", nil)
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, m := ti.do(t, req)
			if resp.StatusCode != 401 || m["error"] != "invalid_token" {
				t.Errorf("Authorization %q: %d %v, want 401 invalid_token", auth, resp.StatusCode, m)
			}
		}
	})
	t.Run("off without a token", func(t *testing.T) {
		off := startIssuer(t, func(c *config.Config) { c.AdminToken = "" })
		resp, _ := off.admin(t, "GET", "/admin/clients", nil)
		if resp.StatusCode != 404 {
			t.Errorf("admin API with no token configured: %d, want 404", resp.StatusCode)
		}
	})
	t.Run("lifecycle", func(t *testing.T) {
		resp, m := ti.admin(t, "POST", "/admin/clients", map[string]any{
			"client_name": "billing", "scope": "read write", "audience": []string{"https://api.example.com"},
		})
		if resp.StatusCode != 201 {
			t.Fatalf("create: %d %v", resp.StatusCode, m)
		}
		id, sec := m["client_id"].(string), m["client_secret"].(string)
		if len(sec) < 43 { // 32 bytes in base64url
			t.Errorf("secret %d characters, want at least 43 (256 bits)", len(sec))
		}
		if got := toStrings(m["grant_types"]); strings.Join(got, " ") != "client_credentials refresh_token" {
			t.Errorf("default grant_types = %v", got)
		}
		if m["token_endpoint_auth_method"] != "client_secret_basic" || m["client_secret_expires_at"] != float64(0) || m["client_id_issued_at"] == float64(0) {
			t.Errorf("create response = %v", m)
		}
		resp, m = ti.admin(t, "GET", "/admin/clients/"+id, nil)
		if resp.StatusCode != 200 || m["client_secret"] != nil || m["client_name"] != "billing" {
			t.Errorf("get: %d %v (the secret must not be shown again)", resp.StatusCode, m)
		}
		resp, m = ti.admin(t, "GET", "/admin/clients", nil)
		if resp.StatusCode != 200 || len(m["clients"].([]any)) == 0 {
			t.Errorf("list: %d %v", resp.StatusCode, m)
		}
		resp, m = ti.admin(t, "PUT", "/admin/clients/"+id, map[string]any{
			"client_name": "billing-v2", "scope": "read", "audience": []string{"https://api.example.com"},
		})
		if resp.StatusCode != 200 || m["scope"] != "read" || m["client_name"] != "billing-v2" {
			t.Errorf("update: %d %v", resp.StatusCode, m)
		}
		// The narrowed client no longer gets write; its secret still works.
		if r, m := ti.token(t, id, sec, true, url.Values{"grant_type": {"client_credentials"}, "scope": {"write"}}); r.StatusCode != 400 {
			t.Errorf("scope removed by update still granted: %d %v", r.StatusCode, m)
		}
		resp, m = ti.admin(t, "POST", "/admin/clients/"+id+"/secret", nil)
		newSec, _ := m["client_secret"].(string)
		if resp.StatusCode != 200 || newSec == "" || newSec == sec {
			t.Fatalf("rotate secret: %d %v", resp.StatusCode, m)
		}
		if r, _ := ti.token(t, id, sec, true, url.Values{"grant_type": {"client_credentials"}}); r.StatusCode != 401 {
			t.Errorf("old secret after rotation: %d, want 401", r.StatusCode)
		}
		if r, m := ti.token(t, id, newSec, true, url.Values{"grant_type": {"client_credentials"}}); r.StatusCode != 200 {
			t.Errorf("new secret: %d %v", r.StatusCode, m)
		}
		if resp, _ = ti.admin(t, "DELETE", "/admin/clients/"+id, nil); resp.StatusCode != 204 {
			t.Errorf("delete: %d", resp.StatusCode)
		}
		if r, _ := ti.token(t, id, newSec, true, url.Values{"grant_type": {"client_credentials"}}); r.StatusCode != 401 {
			t.Errorf("deleted client: %d, want 401", r.StatusCode)
		}
		for _, method := range []string{"GET", "DELETE", "PUT"} {
			if resp, m = ti.admin(t, method, "/admin/clients/"+id, map[string]any{"audience": []string{"x"}}); resp.StatusCode != 404 {
				t.Errorf("%s deleted client: %d %v, want 404", method, resp.StatusCode, m)
			}
		}
	})
	t.Run("invalid metadata", func(t *testing.T) {
		for _, meta := range []map[string]any{
			{"audience": []string{}},
			{"audience": []string{"has space"}},
			{"grant_types": []string{"password"}, "audience": []string{"a"}},
			{"grant_types": []string{"refresh_token"}, "audience": []string{"a"}},
			{"scope": `bad"scope`, "audience": []string{"a"}},
			{"token_endpoint_auth_method": "none", "audience": []string{"a"}},
			{"client_name": strings.Repeat("n", 300), "audience": []string{"a"}},
		} {
			resp, m := ti.admin(t, "POST", "/admin/clients", meta)
			if resp.StatusCode != 400 || m["error"] != "invalid_client_metadata" || m["error_description"] == "" {
				t.Errorf("%v: %d %v, want 400 invalid_client_metadata", meta, resp.StatusCode, m)
			}
		}
		req, _ := http.NewRequest("POST", ti.URL+"/admin/clients", strings.NewReader("{not json"))
		req.Header.Set("Authorization", "Bearer "+adminToken)
		if resp, m := ti.do(t, req); resp.StatusCode != 400 {
			t.Errorf("malformed JSON: %d %v", resp.StatusCode, m)
		}
		req, _ = http.NewRequest("POST", ti.URL+"/admin/clients", bytes.NewReader(make([]byte, 70<<10)))
		req.Header.Set("Authorization", "Bearer "+adminToken)
		if resp, _ := ti.do(t, req); resp.StatusCode != 413 {
			t.Errorf("oversized body: %d, want 413", resp.StatusCode)
		}
	})
	t.Run("keys", func(t *testing.T) {
		_, m := ti.admin(t, "GET", "/admin/keys", nil)
		before := m["keys"].([]any)
		if len(before) != 1 || before[0].(map[string]any)["state"] != "current" {
			t.Fatalf("keys = %v", m)
		}
		id, sec := ti.createClient(t, map[string]any{})
		old := ti.issue(t, id, sec)["access_token"].(string)
		ti.clock.Advance(time.Second)
		resp, k := ti.admin(t, "POST", "/admin/keys/rotate", nil)
		if resp.StatusCode != 201 || k["state"] != "current" {
			t.Fatalf("rotate: %d %v", resp.StatusCode, k)
		}
		at := ti.issue(t, id, sec)["access_token"].(string)
		if h, _ := decodeJWT(t, at); h["kid"] != k["kid"] {
			t.Errorf("new token kid = %v, want the new key %v", h["kid"], k["kid"])
		}
		// Both the old and the new token verify against the served JWKS.
		ti.verifyAccess(t, old, "https://api.example.com")
		ti.verifyAccess(t, at, "https://api.example.com")
	})
}

// TestCLIAgainstServer drives the admin CLI against a real issuer.
func TestCLIAgainstServer(t *testing.T) {
	ti := startIssuer(t)
	env := map[string]string{"ISSUER_URL": ti.URL, "ISSUER_ADMIN_TOKEN": adminToken}
	cli := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(context.Background(), args, func(k string) string { return env[k] }, &out, &errb)
		return code, out.String(), errb.String()
	}
	code, out, stderr := cli("clients", "create", "--name", "billing", "--scope", "read write", "--audience", "https://api.example", "--json")
	if code != 0 {
		t.Fatalf("create: %d %s %s", code, out, stderr)
	}
	var created map[string]any
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatalf("create --json: %v: %s", err, out)
	}
	id, sec := created["client_id"].(string), created["client_secret"].(string)
	_, m := ti.token(t, id, sec, true, url.Values{"grant_type": {"client_credentials"}})
	c := ti.verifyAccess(t, m["access_token"].(string), "https://api.example")
	if c.Scope != "read write" {
		t.Errorf("scope = %q", c.Scope)
	}
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

// freeAddr returns a loopback address nobody listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestServeCommand runs `issuer serve` as a user would (environment only, no
// config file), checks `issuer healthcheck`, and restarts it on the same data
// directory: the signing key and the clients survive.
func TestServeCommand(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	env := map[string]string{
		"ISSUER_ADDR": addr, "ISSUER_URL": "http://" + addr,
		"ISSUER_DATA_DIR": filepath.Join(dir, "data"), "ISSUER_ADMIN_TOKEN": adminToken,
	}
	getenv := func(k string) string { return env[k] }
	start := func() (stop func() string) {
		ctx, cancel := context.WithCancel(context.Background())
		var logs syncBuffer
		done := make(chan int)
		go func() { done <- run(ctx, []string{"serve"}, getenv, &logs, &logs) }()
		deadline := time.Now().Add(10 * time.Second)
		for {
			if code := run(context.Background(), []string{"healthcheck"}, getenv, io.Discard, io.Discard); code == 0 {
				break
			}
			if time.Now().After(deadline) {
				cancel()
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
	if code := run(context.Background(), []string{"clients", "create", "--name", "a", "--audience", "https://api", "--json"}, getenv, &out, io.Discard); code != 0 {
		t.Fatalf("clients create: %d", code)
	}
	logs := stop()
	if !strings.Contains(logs, `"msg":"issuer started"`) {
		t.Errorf("no JSON start-up log line: %s", logs)
	}
	if code := run(context.Background(), []string{"healthcheck"}, getenv, io.Discard, io.Discard); code == 0 {
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
		tc.env["ISSUER_ADDR"] = freeAddr(t)
		code := run(context.Background(), []string{"serve"}, func(k string) string { return tc.env[k] }, &out, &errb)
		if code == 0 || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want non-zero and a line naming %s", tc.env, code, errb.String(), tc.want)
		}
	}
}

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if code := run(context.Background(), []string{"version"}, os.Getenv, &out, io.Discard); code != 0 || !strings.HasPrefix(out.String(), "issuer ") {
		t.Errorf("version: %d %q", code, out.String())
	}
}

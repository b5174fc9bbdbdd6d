package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/issuer-oauth/issuer/internal/password"
	"github.com/issuer-oauth/issuer/verify"
)

const (
	testID     = "0123456789abcdef0123456789abcdef"
	testSecret = "s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t-x"
	testAud    = "https://api.example.com"
)

// newTestBaseline serves a baseline with one refreshing client.
func newTestBaseline(t *testing.T, alg string) (*baseline, *httptest.Server) {
	t.Helper()
	var h http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	b, err := newBaseline(srv.URL, alg, 5*time.Minute, time.Hour, []clientConfig{{
		ID: testID, Secret: testSecret, GrantTypes: []string{"client_credentials", "refresh_token"},
		Scope: "read write", Audience: []string{testAud},
	}})
	if err != nil {
		t.Fatal(err)
	}
	h = b.routes()
	return b, srv
}

func post(t *testing.T, srv *httptest.Server, path, secret string, form url.Values) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(testID, secret)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("%s: decode: %v", path, err)
	}
	return resp.StatusCode, m
}

// TestTokensVerify: the baseline's access tokens pass the issuer's own
// verify package against the baseline's metadata and JWKS, so the baseline
// does the real signing work, with the issuer's token shape.
func TestTokensVerify(t *testing.T) {
	for _, alg := range []string{"ES256", "EdDSA", "RS256", "PS256"} {
		t.Run(alg, func(t *testing.T) {
			_, srv := newTestBaseline(t, alg)
			status, m := post(t, srv, "/oauth2/token", testSecret, url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}})
			if status != http.StatusOK {
				t.Fatalf("token: status %d: %v", status, m)
			}
			v, err := verify.New(srv.URL, testAud)
			if err != nil {
				t.Fatal(err)
			}
			c, err := v.Verify(t.Context(), m["access_token"].(string))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if c.ClientID != testID || c.Subject != testID || !c.HasScope("read") || c.HasScope("write") {
				t.Errorf("claims = %+v", c)
			}
			if m["refresh_token"] == nil {
				t.Error("no refresh token")
			}
		})
	}
}

func TestWrongSecret(t *testing.T) {
	_, srv := newTestBaseline(t, "EdDSA")
	status, m := post(t, srv, "/oauth2/token", testSecret+"x", url.Values{"grant_type": {"client_credentials"}})
	if status != http.StatusUnauthorized || m["error"] != "invalid_client" {
		t.Errorf("got %d %v, want 401 invalid_client", status, m)
	}
}

// TestRefreshChain rotates a chain without Redis and checks that a retired
// token is refused.
func TestRefreshChain(t *testing.T) {
	_, srv := newTestBaseline(t, "ES256")
	_, m := post(t, srv, "/oauth2/token", testSecret, url.Values{"grant_type": {"client_credentials"}})
	first := m["refresh_token"].(string)
	rt := first
	for range 3 {
		status, m := post(t, srv, "/oauth2/token", testSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
		if status != http.StatusOK {
			t.Fatalf("refresh: %d %v", status, m)
		}
		rt = m["refresh_token"].(string)
	}
	if status, m := post(t, srv, "/oauth2/token", testSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first}}); status != http.StatusBadRequest || m["error"] != "invalid_grant" {
		t.Errorf("reused token: got %d %v, want 400 invalid_grant", status, m)
	}
}

func TestIntrospect(t *testing.T) {
	for _, alg := range []string{"ES256", "EdDSA", "RS256", "PS256", "HS256"} {
		t.Run(alg, func(t *testing.T) {
			_, srv := newTestBaseline(t, alg)
			_, m := post(t, srv, "/oauth2/token", testSecret, url.Values{"grant_type": {"client_credentials"}})
			status, m := post(t, srv, "/oauth2/introspect", testSecret, url.Values{"token": {m["access_token"].(string)}})
			if status != http.StatusOK || m["active"] != true || m["client_id"] != testID {
				t.Errorf("introspect: %d %v", status, m)
			}
			_, m = post(t, srv, "/oauth2/introspect", testSecret, url.Values{"token": {"a.b.c"}})
			if m["active"] != false {
				t.Errorf("introspect garbage: %v", m)
			}
		})
	}
}

func TestParseDERSig(t *testing.T) {
	// SEQUENCE { INTEGER 0x00ff (leading zero), INTEGER 0x01 }
	der := []byte{0x30, 0x07, 0x02, 0x02, 0x00, 0xff, 0x02, 0x01, 0x01}
	r, s, ok := parseDERSig(der)
	if !ok || len(r) != 1 || r[0] != 0xff || len(s) != 1 || s[0] != 1 {
		t.Errorf("parseDERSig = %x, %x, %v", r, s, ok)
	}
	if _, _, ok := parseDERSig(der[:len(der)-1]); ok {
		t.Error("truncated signature accepted")
	}
}

// TestUseDocuments: the baseline serves the issuer's own documents, with
// the metadata's URLs rewritten to itself.
func TestUseDocuments(t *testing.T) {
	b, srv := newTestBaseline(t, "ES256")
	dir := t.TempDir()
	jwks := filepath.Join(dir, "jwks.json")
	meta := filepath.Join(dir, "metadata.json")
	os.WriteFile(jwks, []byte(`{"keys":[]}`), 0o600)
	os.WriteFile(meta, []byte(`{"issuer":"http://127.0.0.1:1","jwks_uri":"http://127.0.0.1:1/.well-known/jwks.json"}`), 0o600)
	if err := b.useDocuments(jwks, meta, "http://127.0.0.1:1"); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"/.well-known/jwks.json":                  `{"keys":[]}`,
		"/.well-known/oauth-authorization-server": `{"issuer":"` + srv.URL + `","jwks_uri":"` + srv.URL + `/.well-known/jwks.json"}`,
	} {
		resp, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(got) != want || resp.Header.Get("ETag") == "" {
			t.Errorf("%s = %s (ETag %q), want %s", path, got, resp.Header.Get("ETag"), want)
		}
	}
}

// TestPassword: the password mode verifies hashes that the issuer's own
// hasher makes (same PHC format, same parameters), and only for a client
// with the password grant.
func TestPassword(t *testing.T) {
	h, err := password.New(password.Config{})
	if err != nil {
		t.Fatal(err)
	}
	hash, err := h.Hash(t.Context(), "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	var hnd http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hnd.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	b, err := newBaseline(srv.URL, "ES256", 5*time.Minute, time.Hour, []clientConfig{{
		ID: testID, Secret: testSecret, GrantTypes: []string{"password"}, Scope: "read", Audience: []string{testAud},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.useUsers([]userConfig{{Username: "alice", PasswordHash: hash}}, 2); err != nil {
		t.Fatal(err)
	}
	hnd = b.routes()
	for _, tc := range []struct {
		username, password string
		status             int
		code               string
	}{
		{"alice", "correct horse", http.StatusOK, ""},
		{"alice", "correct horse!", http.StatusBadRequest, "invalid_grant"},
		{"bob", "correct horse", http.StatusBadRequest, "invalid_grant"},
	} {
		status, m := post(t, srv, "/oauth2/token", testSecret, url.Values{"grant_type": {"password"}, "username": {tc.username}, "password": {tc.password}})
		if status != tc.status || (tc.code != "" && m["error"] != tc.code) || (tc.code == "" && m["access_token"] == nil) {
			t.Errorf("%s/%s: got %d %v, want %d %s", tc.username, tc.password, status, m, tc.status, tc.code)
		}
	}
	if _, err := parseArgon2id("$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$a2V5"); err == nil {
		t.Error("argon2i hash accepted as argon2id")
	}
}

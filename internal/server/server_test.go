package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
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
			if got := toStrings(md["token_endpoint_auth_methods_supported"]); strings.Join(got, " ") != "client_secret_basic client_secret_post private_key_jwt" {
				t.Errorf("token_endpoint_auth_methods_supported = %v", got)
			}
			if got := toStrings(md["token_endpoint_auth_signing_alg_values_supported"]); strings.Join(got, " ") != "RS256 PS256 ES256 EdDSA" {
				t.Errorf("token_endpoint_auth_signing_alg_values_supported = %v", got)
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
			if resp, m = ti.admin(t, method, "/admin/clients/"+id, map[string]any{"audience": []string{"https://api.example.com"}}); resp.StatusCode != 404 {
				t.Errorf("%s deleted client: %d %v, want 404", method, resp.StatusCode, m)
			}
		}
	})
	t.Run("invalid metadata", func(t *testing.T) {
		for _, meta := range []map[string]any{
			{"audience": []string{}},
			{"audience": []string{"has space"}},
			{"grant_types": []string{"password"}, "audience": []string{"https://api.example.com"}},
			{"grant_types": []string{"refresh_token"}, "audience": []string{"https://api.example.com"}},
			{"scope": `bad"scope`, "audience": []string{"https://api.example.com"}},
			{"token_endpoint_auth_method": "none", "audience": []string{"https://api.example.com"}},
			{"client_name": strings.Repeat("n", 300), "audience": []string{"https://api.example.com"}},
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

package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/issuer-oauth/issuer/internal/config"
	"github.com/issuer-oauth/issuer/internal/server"
	"github.com/issuer-oauth/issuer/internal/testutil"
	"github.com/issuer-oauth/issuer/verify"
)

// TestRevokedTokenRefused: with a real issuer whose status_list is on, the
// API refuses a token revoked at the issuer once the list's ttl has
// passed, and keeps serving the others.
func TestRevokedTokenRefused(t *testing.T) {
	const aud, admin = "https://api.example.com", "test-admin-token-0123456789abcdef0123"
	clk := testutil.NewClock(time.Now().UTC().Truncate(time.Second))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.URL, cfg.DataDir, cfg.AdminToken, cfg.StatusList = "http://"+ln.Addr().String(), t.TempDir(), admin, true
	app, err := server.New(context.Background(), cfg, server.Options{Logger: slog.New(slog.DiscardHandler), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(app)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(func() { srv.Close(); app.Close() })

	post := func(path, auth, ctype, body string) map[string]any {
		t.Helper()
		req, _ := http.NewRequest("POST", cfg.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", auth)
		req.Header.Set("Content-Type", ctype)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		if resp.StatusCode/100 != 2 {
			t.Fatalf("POST %s: %d %v", path, resp.StatusCode, m)
		}
		return m
	}
	c := post("/admin/clients", "Bearer "+admin, "application/json", `{"scope":"read","audience":["`+aud+`"]}`)
	basic := "Basic " + basicAuth(c["client_id"].(string), c["client_secret"].(string))
	token := func() string {
		return post("/oauth2/token", basic, "application/x-www-form-urlencoded", "grant_type=client_credentials")["access_token"].(string)
	}
	victim, other := token(), token()

	v, err := newVerifier(cfg.URL, aud, verify.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	h, err := newHandler(v, "")
	if err != nil {
		t.Fatal(err)
	}
	get := func(tok string) int {
		r := httptest.NewRequest("GET", "/v1/items", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	if got := get(victim); got != http.StatusOK {
		t.Fatalf("fresh token: %d", got)
	}
	post("/oauth2/revoke", basic, "application/x-www-form-urlencoded", "token="+url.QueryEscape(victim))
	clk.Advance(30 * time.Second) // the list's ttl: the API fetches it again
	if got := get(victim); got != http.StatusUnauthorized {
		t.Errorf("revoked token: %d, want 401", got)
	}
	if got := get(other); got != http.StatusOK {
		t.Errorf("other token: %d, want 200", got)
	}
}

func basicAuth(id, secret string) string {
	return base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id) + ":" + url.QueryEscape(secret)))
}

package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/issuer-oauth/issuer/verify"
)

const e2eAudience = "https://api.example.com"

// e2eToken gets a token with golang.org/x/oauth2/clientcredentials from the
// token endpoint the metadata advertises.
func e2eToken(t *testing.T, ti *testIssuer, id, sec string, scopes ...string) *oauth2.Token {
	t.Helper()
	cc := clientcredentials.Config{
		ClientID: id, ClientSecret: sec, Scopes: scopes,
		TokenURL: ti.metadata(t)["token_endpoint"].(string),
	}
	tok, err := cc.Token(context.Background())
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	return tok
}

// TestVerifyEndToEnd verifies the real issuer's tokens with the public
// verify package, which discovers the keys from the issuer URL alone.
func TestVerifyEndToEnd(t *testing.T) {
	ti := startIssuer(t)
	ctx := context.Background()
	id, sec := ti.createClient(t, map[string]any{"client_name": "e2e", "scope": "read write"})
	v, err := verify.New(ti.URL, e2eAudience, verify.WithClock(ti.clock.Now),
		verify.WithCacheBounds(time.Minute, time.Minute))
	if err != nil {
		t.Fatalf("verify.New: %v", err)
	}

	tok := e2eToken(t, ti, id, sec, "read")
	c, err := v.Verify(ctx, tok.AccessToken)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if c.Issuer != ti.URL || c.Subject != id || c.ClientID != id || c.ID == "" {
		t.Errorf("claims iss %q sub %q client_id %q jti %q; want %q, %q, %q, non-empty", c.Issuer, c.Subject, c.ClientID, c.ID, ti.URL, id, id)
	}
	if got, want := c.Scopes, []string{"read"}; !slices.Equal(got, want) {
		t.Errorf("Scopes = %q, want %q", got, want)
	}
	if !slices.Contains(c.Audience, e2eAudience) {
		t.Errorf("Audience = %q, want it to contain %q", c.Audience, e2eAudience)
	}
	if got, want := c.Expiry.Sub(c.IssuedAt), ti.cfg.AccessTokenTTL; got != want {
		t.Errorf("exp - iat = %v, want %v", got, want)
	}

	t.Run("refresh token is not an access token", func(t *testing.T) {
		if tok.RefreshToken == "" {
			t.Fatal("no refresh token")
		}
		if _, err := v.Verify(ctx, tok.RefreshToken); !errors.Is(err, verify.ErrType) {
			t.Errorf("Verify(refresh token) = %v, want ErrType", err)
		}
	})
	t.Run("other audience", func(t *testing.T) {
		other, err := verify.New(ti.URL, "https://other.example.com", verify.WithClock(ti.clock.Now))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := other.Verify(ctx, tok.AccessToken); !errors.Is(err, verify.ErrAudience) {
			t.Errorf("Verify = %v, want ErrAudience", err)
		}
	})
	t.Run("expired", func(t *testing.T) {
		ti.clock.Advance(ti.cfg.AccessTokenTTL + verify.DefaultLeeway)
		defer ti.clock.Advance(-ti.cfg.AccessTokenTTL - verify.DefaultLeeway)
		if _, err := v.Verify(ctx, tok.AccessToken); !errors.Is(err, verify.ErrExpired) {
			t.Errorf("Verify = %v, want ErrExpired", err)
		}
	})
	t.Run("key rotation", func(t *testing.T) {
		resp, m := ti.admin(t, "POST", "/admin/keys/rotate", nil)
		if resp.StatusCode/100 != 2 {
			t.Fatalf("rotate: status %d: %v", resp.StatusCode, m)
		}
		ti.clock.Advance(verify.DefaultRefreshInterval)
		fresh := e2eToken(t, ti, id, sec, "write")
		if _, err := v.Verify(ctx, fresh.AccessToken); err != nil {
			t.Fatalf("Verify of a token of the new key: %v", err)
		}
		if _, err := v.Verify(ctx, tok.AccessToken); err != nil {
			t.Fatalf("Verify of a token of the previous key: %v", err)
		}
	})
	t.Run("issuer unreachable", func(t *testing.T) {
		fresh := e2eToken(t, ti, id, sec, "read")
		ti.srv.Close()
		ti.clock.Advance(2 * time.Minute) // past the cache lifetime
		for range 3 {
			if _, err := v.Verify(ctx, fresh.AccessToken); err != nil {
				t.Fatalf("Verify with the issuer down: %v", err)
			}
		}
	})
}

// TestResourceAPIEndToEnd builds and runs the example resource API
// (examples/resource-api) against a real issuer, and calls it with the
// issuer's tokens.
func TestResourceAPIEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	ti := startIssuer(t)
	id, sec := ti.createClient(t, map[string]any{"client_name": "e2e", "scope": "read write"})
	read := e2eToken(t, ti, id, sec, "read")
	write := e2eToken(t, ti, id, sec, "read", "write")

	bin := filepath.Join(t.TempDir(), "resource-api")
	build := exec.Command(goTool(t), "build", "-o", bin, "./examples/resource-api")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./examples/resource-api: %v\n%s", err, out)
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "ISSUER_URL="+ti.URL, "RESOURCE_AUDIENCE="+e2eAudience, "RESOURCE_ADDR=127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" {
				addr <- line.Addr
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		exited <- cmd.Wait()
	}()
	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case err := <-exited:
		exited <- err
		t.Fatalf("resource-api exited: %v\n%s", err, stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("resource-api did not start\n%s", stderr.String())
	}

	call := func(method, path, token, body string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	realm := `realm="` + e2eAudience + `"`
	tests := []struct {
		name, method, path, token, body string
		status                          int
		challenge                       string // WWW-Authenticate, exactly
	}{
		{"healthz needs no token", "GET", "/healthz", "", "", 200, ""},
		{"GET with a read token", "GET", "/v1/items", read.AccessToken, "", 200, ""},
		{"POST with only read", "POST", "/v1/items", read.AccessToken, `{"name":"x"}`, 403,
			`Bearer ` + realm + `, error="insufficient_scope", error_description="the access token lacks scope write", scope="write"`},
		{"POST with write", "POST", "/v1/items", write.AccessToken, `{"name":"widget"}`, 201, ""},
		{"refresh token", "GET", "/v1/items", read.RefreshToken, "", 401,
			`Bearer ` + realm + `, error="invalid_token", error_description="the token is not an access token (typ at+jwt)"`},
		{"tampered token", "GET", "/v1/items", read.AccessToken[:len(read.AccessToken)-4] + "AAAA", "", 401,
			`Bearer ` + realm + `, error="invalid_token", error_description="the access token signature is invalid"`},
		{"no token", "GET", "/v1/items", "", "", 401, `Bearer ` + realm},
		{"no token on POST", "POST", "/v1/items", "", `{"name":"x"}`, 401, `Bearer ` + realm},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := call(tc.method, tc.path, tc.token, tc.body)
			if resp.StatusCode != tc.status {
				t.Fatalf("%s %s: status %d, want %d; body %s", tc.method, tc.path, resp.StatusCode, tc.status, body)
			}
			if got := resp.Header.Get("WWW-Authenticate"); got != tc.challenge {
				t.Errorf("WWW-Authenticate = %s\nwant                %s", got, tc.challenge)
			}
		})
	}
	if _, body := call("GET", "/v1/items", read.AccessToken, ""); !strings.Contains(body, `"created_by":"`+id+`"`) {
		t.Errorf("GET /v1/items after POST = %s, want the item created by %s", body, id)
	}
}

// goTool returns the go command that runs the tests.
func goTool(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	p := filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("no go command in PATH or GOROOT")
	}
	return p
}

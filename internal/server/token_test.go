package server

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// TestClientCredentialsWithXOAuth2 gets tokens with golang.org/x/oauth2's
// clientcredentials (a client nobody here wrote), discovering the token
// endpoint from the metadata, and verifies them against the served JWKS.
func TestClientCredentialsWithXOAuth2(t *testing.T) {
	ti := startIssuer(t)
	tokenURL := ti.metadata(t)["token_endpoint"].(string)
	for _, tc := range []struct {
		name   string
		method string
		style  oauth2.AuthStyle
	}{
		{"client_secret_basic", "client_secret_basic", oauth2.AuthStyleInHeader},
		{"client_secret_post", "client_secret_post", oauth2.AuthStyleInParams},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, sec := ti.createClient(t, map[string]any{
				"client_name":                "billing",
				"scope":                      "read write admin",
				"audience":                   []string{"https://api.example.com", "https://other.example.com"},
				"token_endpoint_auth_method": tc.method,
			})
			cc := clientcredentials.Config{
				ClientID: id, ClientSecret: sec, TokenURL: tokenURL,
				Scopes:         []string{"read", "write"},
				EndpointParams: url.Values{"resource": {"https://other.example.com"}},
				AuthStyle:      tc.style,
			}
			tok, err := cc.Token(context.Background())
			if err != nil {
				t.Fatalf("Token: %v", err)
			}
			if got, want := tok.TokenType, "Bearer"; got != want {
				t.Errorf("token_type = %q, want %q", got, want)
			}
			if got, want := tok.Extra("scope"), "read write"; got != want {
				t.Errorf("scope = %v, want %q", got, want)
			}
			if got := tok.Extra("expires_in"); got != float64(300) {
				t.Errorf("expires_in = %v, want 300", got)
			}
			if tok.RefreshToken == "" {
				t.Error("no refresh_token")
			}
			c := ti.verifyAccess(t, tok.AccessToken, "https://other.example.com")
			if c.Subject != id || c.ClientID != id {
				t.Errorf("sub, client_id = %q, %q, want %q", c.Subject, c.ClientID, id)
			}
			if got, want := []string(c.Audience), []string{"https://other.example.com"}; !slices.Equal(got, want) {
				t.Errorf("aud = %v, want %v", got, want)
			}
			if c.Scope != "read write" {
				t.Errorf("scope claim = %q, want %q", c.Scope, "read write")
			}
			if c.ID == "" || c.IssuedAt == nil || c.Expiry == nil {
				t.Errorf("jti, iat, exp missing: %+v", c.Claims)
			}
			if got, want := c.Expiry.Time().Sub(c.IssuedAt.Time()), 5*time.Minute; got != want {
				t.Errorf("exp - iat = %v, want %v", got, want)
			}
		})
	}
}

// TestAccessTokenDefaults checks a request with no scope and no resource:
// every allowed scope, and the first allowed audience.
func TestAccessTokenDefaults(t *testing.T) {
	ti := startIssuer(t)
	id, sec := ti.createClient(t, map[string]any{"scope": "read write", "audience": []string{"https://a.example", "https://b.example"}})
	resp, m := ti.token(t, id, sec, true, url.Values{"grant_type": {"client_credentials"}})
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %v", resp.StatusCode, m)
	}
	if got, want := resp.Header.Get("Cache-Control"), "no-store"; got != want {
		t.Errorf("Cache-Control = %q, want %q", got, want)
	}
	c := ti.verifyAccess(t, m["access_token"].(string), "https://a.example")
	if c.Scope != "read write" || m["scope"] != "read write" {
		t.Errorf("scope = %q / %v, want all allowed", c.Scope, m["scope"])
	}
	if got := []string(c.Audience); !slices.Equal(got, []string{"https://a.example"}) {
		t.Errorf("aud = %v, want the first allowed audience", got)
	}
	// The refresh token is no access token: typ differs, aud is the issuer,
	// and its key is not in the JWKS.
	rt := m["refresh_token"].(string)
	if _, err := ti.checkAccess(t, rt, "https://a.example"); err == nil {
		t.Fatal("refresh token verified as an access token")
	}
	hdr, claims := decodeJWT(t, rt)
	if hdr["typ"] == "at+jwt" {
		t.Errorf("refresh token typ = at+jwt")
	}
	if claims["aud"] != ti.URL && !slices.Equal(toStrings(claims["aud"]), []string{ti.URL}) {
		t.Errorf("refresh token aud = %v, want the issuer %s", claims["aud"], ti.URL)
	}
}

// TestNoRefreshTokenWithoutRefreshGrant: a client registered only for
// client_credentials gets no refresh token and cannot refresh.
func TestNoRefreshTokenWithoutRefreshGrant(t *testing.T) {
	ti := startIssuer(t)
	id, sec := ti.createClient(t, map[string]any{"grant_types": []string{"client_credentials"}})
	_, m := ti.token(t, id, sec, true, url.Values{"grant_type": {"client_credentials"}})
	if _, ok := m["refresh_token"]; ok {
		t.Fatalf("refresh_token issued to a client without the refresh_token grant")
	}
	resp, m := ti.token(t, id, sec, true, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}})
	if resp.StatusCode != 400 || m["error"] != "unauthorized_client" {
		t.Fatalf("got %d %v, want 400 unauthorized_client", resp.StatusCode, m)
	}
}

// TestTokenErrors covers RFC 6749 §5.2 errors and their statuses.
func TestTokenErrors(t *testing.T) {
	ti := startIssuer(t)
	id, sec := ti.createClient(t, map[string]any{"scope": "read", "audience": []string{"https://api.example.com"}})
	postID, postSec := ti.createClient(t, map[string]any{"token_endpoint_auth_method": "client_secret_post"})
	cc := url.Values{"grant_type": {"client_credentials"}}
	with := func(kv ...string) url.Values {
		v := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			v.Add(kv[i], kv[i+1])
		}
		return v
	}
	for _, tc := range []struct {
		name       string
		id, sec    string
		basic      bool
		form       url.Values
		wantStatus int
		wantError  string
	}{
		{"wrong secret", id, "wrong", true, cc, 401, "invalid_client"},
		{"unknown client", "no-such-client", sec, true, cc, 401, "invalid_client"},
		{"unknown client by post", "no-such-client", sec, false, cc, 401, "invalid_client"},
		{"overlong client id", strings.Repeat("x", 4000), sec, true, cc, 401, "invalid_client"},
		{"no credentials", "", "", false, cc, 401, "invalid_client"},
		{"post client using basic", postID, postSec, true, cc, 401, "invalid_client"},
		{"basic client using post", id, sec, false, cc, 401, "invalid_client"},
		{"missing grant_type", id, sec, true, url.Values{}, 400, "invalid_request"},
		{"unsupported grant", id, sec, true, with("grant_type", "password"), 400, "unsupported_grant_type"},
		{"scope not allowed", id, sec, true, with("grant_type", "client_credentials", "scope", "write"), 400, "invalid_scope"},
		{"malformed scope", id, sec, true, with("grant_type", "client_credentials", "scope", `re"ad`), 400, "invalid_scope"},
		{"resource not allowed", id, sec, true, with("grant_type", "client_credentials", "resource", "https://evil.example"), 400, "invalid_target"},
		{"audience not allowed", id, sec, true, with("grant_type", "client_credentials", "audience", "https://evil.example"), 400, "invalid_target"},
		{"repeated parameter", id, sec, true, with("grant_type", "client_credentials", "scope", "read", "scope", "read"), 400, "invalid_request"},
		{"refresh_token missing", id, sec, true, with("grant_type", "refresh_token"), 400, "invalid_request"},
		{"malformed refresh token", id, sec, true, with("grant_type", "refresh_token", "refresh_token", "not-a-jwt"), 400, "invalid_grant"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, m := ti.token(t, tc.id, tc.sec, tc.basic, tc.form)
			if resp.StatusCode != tc.wantStatus || m["error"] != tc.wantError {
				t.Fatalf("got %d %v, want %d %s", resp.StatusCode, m, tc.wantStatus, tc.wantError)
			}
			if m["error_description"] == "" {
				t.Error("no error_description")
			}
			if got := resp.Header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", got)
			}
			if tc.wantStatus == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}

	t.Run("both basic and client_secret in body", func(t *testing.T) {
		form := url.Values{"grant_type": {"client_credentials"}, "client_secret": {sec}}
		req, _ := http.NewRequest("POST", ti.URL+"/oauth2/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(id, sec)
		if resp, m := ti.do(t, req); resp.StatusCode != 400 || m["error"] != "invalid_request" {
			t.Fatalf("got %d %v, want 400 invalid_request", resp.StatusCode, m)
		}
	})
	t.Run("credentials in the query string are ignored", func(t *testing.T) {
		q := url.Values{"client_id": {postID}, "client_secret": {postSec}, "grant_type": {"client_credentials"}}
		req, _ := http.NewRequest("POST", ti.URL+"/oauth2/token?"+q.Encode(), strings.NewReader(""))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if resp, m := ti.do(t, req); resp.StatusCode != 401 {
			t.Fatalf("got %d %v, want 401", resp.StatusCode, m)
		}
	})
	for _, tc := range []struct {
		name        string
		method      string
		contentType string
		body        string
		wantStatus  int
	}{
		{"GET", "GET", "", "", 405},
		{"PUT", "PUT", "application/x-www-form-urlencoded", "grant_type=client_credentials", 405},
		{"JSON body", "POST", "application/json", `{"grant_type":"client_credentials"}`, 400},
		{"no content type", "POST", "", "grant_type=client_credentials", 400},
		{"oversized body", "POST", "application/x-www-form-urlencoded", "grant_type=client_credentials&pad=" + strings.Repeat("a", 70<<10), 413},
		{"bad form encoding", "POST", "application/x-www-form-urlencoded", "grant_type=%zz", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, ti.URL+"/oauth2/token", strings.NewReader(tc.body))
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			req.SetBasicAuth(id, sec)
			resp, m := ti.do(t, req)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d %v, want %d", resp.StatusCode, m, tc.wantStatus)
			}
			if m["error"] == nil {
				t.Errorf("no JSON error body")
			}
		})
	}
}

func decodeJWT(t *testing.T, raw string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS compact serialization: %d parts", len(parts))
	}
	for i, dst := range []*map[string]any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, dst); err != nil {
			t.Fatal(err)
		}
	}
	return header, claims
}

func toStrings(v any) []string {
	var out []string
	if l, ok := v.([]any); ok {
		for _, x := range l {
			s, _ := x.(string)
			out = append(out, s)
		}
	}
	return out
}

// refresh posts a refresh_token grant with client_secret_basic.
func (ti *testIssuer) refresh(t *testing.T, id, sec, rt string, extra ...string) (int, map[string]any) {
	t.Helper()
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
	for i := 0; i < len(extra); i += 2 {
		form.Add(extra[i], extra[i+1])
	}
	resp, m := ti.token(t, id, sec, true, form)
	return resp.StatusCode, m
}

// issue gets a first token pair for a client.
func (ti *testIssuer) issue(t *testing.T, id, sec string) map[string]any {
	t.Helper()
	resp, m := ti.token(t, id, sec, true, url.Values{"grant_type": {"client_credentials"}})
	if resp.StatusCode != 200 {
		t.Fatalf("client_credentials: %d %v", resp.StatusCode, m)
	}
	return m
}

func TestRefresh(t *testing.T) {
	ti := startIssuer(t)
	id, sec := ti.createClient(t, map[string]any{"scope": "read write", "audience": []string{"https://api.example.com"}})
	otherID, otherSec := ti.createClient(t, map[string]any{"scope": "read write"})

	t.Run("rotation, narrowing and reuse detection", func(t *testing.T) {
		rt1 := ti.issue(t, id, sec)["refresh_token"].(string)

		status, m := ti.refresh(t, id, sec, rt1, "scope", "read")
		if status != 200 {
			t.Fatalf("refresh: %d %v", status, m)
		}
		if m["scope"] != "read" {
			t.Errorf("narrowed scope = %v, want read", m["scope"])
		}
		c := ti.verifyAccess(t, m["access_token"].(string), "https://api.example.com")
		if c.Scope != "read" || c.Subject != id {
			t.Errorf("claims = %+v", c)
		}
		rt2 := m["refresh_token"].(string)
		if rt2 == rt1 {
			t.Fatal("refresh token not rotated")
		}
		// The rotated token keeps the family's full scope (RFC 6749 §6).
		status, m = ti.refresh(t, id, sec, rt2, "scope", "read write")
		if status != 200 || m["scope"] != "read write" {
			t.Fatalf("refresh with the family's full scope: %d %v", status, m)
		}
		rt3 := m["refresh_token"].(string)

		// rt1 again: reuse. The whole family is revoked, rt3 included.
		status, m = ti.refresh(t, id, sec, rt1)
		if status != 400 || m["error"] != "invalid_grant" {
			t.Fatalf("reuse: %d %v, want 400 invalid_grant", status, m)
		}
		status, m = ti.refresh(t, id, sec, rt3)
		if status != 400 || m["error"] != "invalid_grant" {
			t.Fatalf("current token after reuse: %d %v, want 400 invalid_grant", status, m)
		}
	})

	t.Run("refused requests do not consume the token", func(t *testing.T) {
		rt := ti.issue(t, id, sec)["refresh_token"].(string)
		for _, tc := range []struct {
			name       string
			id, sec    string
			extra      []string
			wantStatus int
			wantError  string
		}{
			{"wider scope", id, sec, []string{"scope", "read write delete"}, 400, "invalid_scope"},
			{"another client", otherID, otherSec, nil, 400, "invalid_grant"},
			{"wrong secret", id, "wrong", nil, 401, "invalid_client"},
			{"unknown client", "nobody", sec, nil, 401, "invalid_client"},
			{"audience not granted", id, sec, []string{"resource", "https://evil.example"}, 400, "invalid_target"},
		} {
			status, m := ti.refresh(t, tc.id, tc.sec, rt, tc.extra...)
			if status != tc.wantStatus || m["error"] != tc.wantError {
				t.Errorf("%s: got %d %v, want %d %s", tc.name, status, m, tc.wantStatus, tc.wantError)
			}
		}
		if status, m := ti.refresh(t, id, sec, rt); status != 200 {
			t.Fatalf("the token no longer works after refused requests: %d %v", status, m)
		}
	})

	t.Run("expired", func(t *testing.T) {
		rt := ti.issue(t, id, sec)["refresh_token"].(string)
		ti.clock.Advance(24*time.Hour + time.Second)
		defer ti.clock.Advance(-(24*time.Hour + time.Second))
		if status, m := ti.refresh(t, id, sec, rt); status != 400 || m["error"] != "invalid_grant" {
			t.Fatalf("expired: %d %v, want 400 invalid_grant", status, m)
		}
	})

	t.Run("foreign issuer", func(t *testing.T) {
		other := startIssuer(t)
		oid, osec := other.createClient(t, map[string]any{})
		foreign := other.issue(t, oid, osec)["refresh_token"].(string)
		if status, m := ti.refresh(t, id, sec, foreign); status != 400 || m["error"] != "invalid_grant" {
			t.Fatalf("foreign: %d %v, want 400 invalid_grant", status, m)
		}
	})

	t.Run("tampered", func(t *testing.T) {
		rt := ti.issue(t, id, sec)["refresh_token"].(string)
		parts := strings.Split(rt, ".")
		_, claims := decodeJWT(t, rt)
		claims["scope"] = "read write admin"
		b, _ := json.Marshal(claims)
		forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString(b) + "." + parts[2]
		if status, m := ti.refresh(t, id, sec, forged); status != 400 || m["error"] != "invalid_grant" {
			t.Fatalf("tampered: %d %v, want 400 invalid_grant", status, m)
		}
	})

	t.Run("access token is not a refresh token", func(t *testing.T) {
		at := ti.issue(t, id, sec)["access_token"].(string)
		if status, m := ti.refresh(t, id, sec, at); status != 400 || m["error"] != "invalid_grant" {
			t.Fatalf("got %d %v, want 400 invalid_grant", status, m)
		}
	})

	t.Run("deleted client", func(t *testing.T) {
		did, dsec := ti.createClient(t, map[string]any{})
		rt := ti.issue(t, did, dsec)["refresh_token"].(string)
		if resp, _ := ti.admin(t, "DELETE", "/admin/clients/"+did, nil); resp.StatusCode != 204 {
			t.Fatalf("delete: %d", resp.StatusCode)
		}
		if status, m := ti.refresh(t, did, dsec, rt); status != 401 || m["error"] != "invalid_client" {
			t.Fatalf("got %d %v, want 401 invalid_client", status, m)
		}
	})
}

// TestConcurrentRefresh: N concurrent refreshes of one token, exactly one wins.
func TestConcurrentRefresh(t *testing.T) {
	ti := startIssuer(t)
	id, sec := ti.createClient(t, map[string]any{})
	rt := ti.issue(t, id, sec)["refresh_token"].(string)
	refreshRace(t, rt, id, sec, ti)
}

// refreshRace sends 50 refreshes of one token at once, spread over the given
// instances, and checks that exactly one succeeds.
func refreshRace(t *testing.T, rt, id, sec string, instances ...*testIssuer) {
	t.Helper()
	const n = 50
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		statuses = map[int]int{}
	)
	start := make(chan struct{})
	for i := range n {
		ti := instances[i%len(instances)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			status, _ := ti.refresh(t, id, sec, rt)
			mu.Lock()
			statuses[status]++
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	if statuses[200] != 1 || statuses[400] != n-1 {
		t.Fatalf("statuses = %v, want exactly one 200 and %d 400", statuses, n-1)
	}
}

// TestSecretsNeverLogged runs a full flow and checks that no secret or token
// reached the log.
func TestSecretsNeverLogged(t *testing.T) {
	ti := startIssuer(t)
	id, sec := ti.createClient(t, map[string]any{})
	m := ti.issue(t, id, sec)
	_, m2 := ti.refresh(t, id, sec, m["refresh_token"].(string))
	ti.refresh(t, id, sec, m["refresh_token"].(string)) // reuse: logged as a warning
	ti.token(t, id, "wrong-"+sec, true, url.Values{"grant_type": {"client_credentials"}})
	logs := ti.logs.String()
	if !strings.Contains(logs, id) {
		t.Fatalf("client_id not in the logs; is logging captured?")
	}
	for name, s := range map[string]string{
		"client secret": sec, "admin token": adminToken,
		"access token": m["access_token"].(string), "refresh token": m["refresh_token"].(string),
		"rotated refresh token": m2["refresh_token"].(string),
	} {
		if strings.Contains(logs, s) {
			t.Errorf("%s found in the logs", name)
		}
	}
}

package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/issuer-oauth/issuer/verify"
	"github.com/issuer-oauth/issuer/verify/verifytest"
)

// TestRoutes tests the API with tokens from a verifytest issuer, as a
// resource API's own tests would.
func TestRoutes(t *testing.T) {
	const aud = "https://api.example.com"
	iss := verifytest.NewIssuer(t)
	v, err := verify.New(iss.URL, aud)
	if err != nil {
		t.Fatal(err)
	}
	h := newHandler(v)
	tests := []struct {
		name, method, path, token, body string
		status                          int
		challenge                       string // a substring of WWW-Authenticate
	}{
		{"healthz", "GET", "/healthz", "", "", 200, ""},
		{"list with read", "GET", "/v1/items", iss.Token(t, aud, "read"), "", 200, ""},
		{"list with write only", "GET", "/v1/items", iss.Token(t, aud, "write"), "", 403, `error="insufficient_scope"`},
		{"create with write", "POST", "/v1/items", iss.Token(t, aud, "write"), `{"name":"widget"}`, 201, ""},
		{"create with read only", "POST", "/v1/items", iss.Token(t, aud, "read"), `{"name":"widget"}`, 403, `scope="write"`},
		{"create with a bad body", "POST", "/v1/items", iss.Token(t, aud, "write"), `{"nom":1}`, 400, ""},
		{"token for another API", "GET", "/v1/items", iss.Token(t, "https://other.example.com", "read"), "", 401, `error="invalid_token"`},
		{"no token", "GET", "/v1/items", "", "", 401, `Bearer realm="` + aud + `"`},
		{"wrong method", "DELETE", "/v1/items", iss.Token(t, aud, "write"), "", 405, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
			if tc.token != "" {
				r.Header.Set("Authorization", "Bearer "+tc.token)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.status {
				t.Fatalf("status = %d, want %d; body %s", w.Code, tc.status, w.Body)
			}
			if got := w.Header().Get("WWW-Authenticate"); !strings.Contains(got, tc.challenge) || (tc.challenge == "") != (got == "") {
				t.Errorf("WWW-Authenticate = %q, want it to contain %q", got, tc.challenge)
			}
			if tc.status == http.StatusCreated && !strings.Contains(w.Body.String(), `"created_by":"test-client"`) {
				t.Errorf("body = %s, want created_by test-client", w.Body)
			}
		})
	}
}

// TestStartsBeforeIssuer: the API serves /healthz without the issuer, and
// fetches the keys at the first request with a token, once the issuer is
// up (compose and Kubernetes may start it first).
func TestStartsBeforeIssuer(t *testing.T) {
	const aud = "https://api.example.com"
	iss := verifytest.NewIssuer(t)
	iss.SetDown(true)
	now := time.Now()
	v, err := verify.New(iss.URL, aud, verify.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	h := newHandler(v)
	get := func(path, token string) int {
		r := httptest.NewRequest("GET", path, nil)
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	if got, want := get("/healthz", ""), http.StatusOK; got != want {
		t.Errorf("GET /healthz with the issuer down = %d, want %d", got, want)
	}
	if got, want := get("/v1/items", iss.Token(t, aud, "read")), http.StatusUnauthorized; got != want {
		t.Errorf("GET /v1/items with the issuer down = %d, want %d", got, want)
	}
	iss.SetDown(false)
	now = now.Add(verify.DefaultRefreshInterval) // the next fetch may start
	if got, want := get("/v1/items", iss.Token(t, aud, "read")), http.StatusOK; got != want {
		t.Errorf("GET /v1/items once the issuer is up = %d, want %d", got, want)
	}
	if got, want := get("/healthz", ""), http.StatusOK; got != want {
		t.Errorf("GET /healthz = %d, want %d", got, want)
	}
	if got, want := iss.JWKSFetches(), 1; got != want {
		t.Errorf("JWK Set fetches = %d, want %d", got, want)
	}
}

// TestEmptyList: an API without items lists them as [], not null, which
// clients would have to special-case.
func TestEmptyList(t *testing.T) {
	const aud = "https://api.example.com"
	iss := verifytest.NewIssuer(t)
	v, err := verify.New(iss.URL, aud)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/v1/items", nil)
	r.Header.Set("Authorization", "Bearer "+iss.Token(t, aud, "read"))
	w := httptest.NewRecorder()
	newHandler(v).ServeHTTP(w, r)
	var body map[string]json.RawMessage
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("status %d, body %s: %v", w.Code, w.Body, err)
	}
	if got := string(body["items"]); got != "[]" {
		t.Errorf("items = %s, want []", got)
	}
}

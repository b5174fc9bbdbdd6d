package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/issuer-oauth/issuer/internal/testutil"
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
	h, err := newHandler(v, "")
	if err != nil {
		t.Fatal(err)
	}
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
			if tc.name == "list with read" && !strings.Contains(w.Body.String(), `"items":[]`) {
				t.Errorf("body = %s, want an empty list, not null", w.Body)
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
	h, err := newHandler(v, "")
	if err != nil {
		t.Fatal(err)
	}
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

// TestLogsKeyFetchFailures checks the fetch hook of the example: a failed
// fetch is logged as a warning, and as an error once the keys are too
// stale to verify; never with the token.
func TestLogsKeyFetchFailures(t *testing.T) {
	const aud = "https://api.example.com"
	clk := testutil.NewClock(time.Now())
	iss := verifytest.NewIssuer(t, verifytest.WithClock(clk.Now))
	var buf bytes.Buffer // written before Verify returns: see WithFetchHook
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	v, err := verify.New(iss.URL, aud, verify.WithFetchHook(logKeyFetches(log)), verify.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	h, err := newHandler(v, "")
	if err != nil {
		t.Fatal(err)
	}
	get := func() int {
		tok := iss.Token(t, aud, "read")
		r := httptest.NewRequest("GET", "/v1/items", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if strings.Contains(buf.String(), tok) {
			t.Fatal("the log holds a token")
		}
		return w.Code
	}
	iss.SetDown(true)
	if got, want := get(), http.StatusUnauthorized; got != want {
		t.Fatalf("GET with the issuer down = %d, want %d", got, want)
	}
	if got := buf.String(); !strings.Contains(got, `"level":"WARN"`) || !strings.Contains(got, "no token can be verified yet") ||
		!strings.Contains(got, iss.URL) {
		t.Fatalf("log = %s, want a warning naming the issuer", got)
	}
	iss.SetDown(false)
	clk.Advance(verify.DefaultRefreshInterval)
	if got, want := get(), http.StatusOK; got != want {
		t.Fatalf("GET once the issuer is up = %d, want %d", got, want)
	}
	buf.Reset()
	iss.SetDown(true)
	clk.Advance(verify.DefaultMaxStaleness + verify.DefaultRefreshInterval)
	if got, want := get(), http.StatusUnauthorized; got != want {
		t.Fatalf("GET with stale keys = %d, want %d", got, want)
	}
	if got := buf.String(); !strings.Contains(got, `"level":"ERROR"`) || !strings.Contains(got, "too stale") {
		t.Fatalf("log = %s, want an error about stale keys", got)
	}
}

// TestDPoP: the API accepts DPoP-bound tokens with their proofs, whose htu
// is RESOURCE_URL's (or, without it, the request's Host's) URL, and
// refuses a bound token presented as Bearer.
func TestDPoP(t *testing.T) {
	const aud = "https://api.example.com"
	iss := verifytest.NewIssuer(t)
	v, err := verify.New(iss.URL, aud)
	if err != nil {
		t.Fatal(err)
	}
	key := verifytest.NewDPoPKey(t, "ES256")
	tok := iss.DPoPToken(t, key.Thumbprint(), aud, "read")
	do := func(h http.Handler, auth, proof string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/v1/items", nil)
		r.Host = "api.internal:8090"
		r.Header.Set("Authorization", auth)
		if proof != "" {
			r.Header.Set("DPoP", proof)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	byHost, err := newHandler(v, "")
	if err != nil {
		t.Fatal(err)
	}
	public, err := newHandler(v, "https://api.example.com/")
	if err != nil {
		t.Fatal(err)
	}
	if w := do(byHost, "DPoP "+tok, key.Proof(t, "GET", "http://api.internal:8090/v1/items", tok, "")); w.Code != 200 {
		t.Errorf("without RESOURCE_URL, proof for the Host: %d %s", w.Code, w.Body)
	}
	if w := do(public, "DPoP "+tok, key.Proof(t, "GET", "https://api.example.com/v1/items", tok, "")); w.Code != 200 {
		t.Errorf("RESOURCE_URL, proof for it: %d %s", w.Code, w.Body)
	}
	w := do(public, "DPoP "+tok, key.Proof(t, "GET", "http://api.internal:8090/v1/items", tok, ""))
	if ch := w.Header().Values("WWW-Authenticate"); w.Code != 401 || len(ch) != 2 || !strings.Contains(ch[1], `error="invalid_dpop_proof"`) {
		t.Errorf("RESOURCE_URL, proof for the Host: %d %q", w.Code, ch)
	}
	w = do(public, "Bearer "+tok, "")
	if ch := w.Header().Values("WWW-Authenticate"); w.Code != 401 || len(ch) != 2 || !strings.Contains(ch[0], `error="invalid_token"`) || !strings.HasPrefix(ch[1], `DPoP algs="`) {
		t.Errorf("bound token as Bearer: %d %q", w.Code, ch)
	}
	if _, err := newHandler(v, "api.example.com"); err == nil {
		t.Error("newHandler accepts a RESOURCE_URL that is no URL")
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
	h, err := newHandler(v, "")
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/v1/items", nil)
	r.Header.Set("Authorization", "Bearer "+iss.Token(t, aud, "read"))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	var body map[string]json.RawMessage
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("status %d, body %s: %v", w.Code, w.Body, err)
	}
	if got := string(body["items"]); got != "[]" {
		t.Errorf("items = %s, want []", got)
	}
}

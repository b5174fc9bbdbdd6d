package verify_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/issuer-oauth/issuer/verify"
)

func TestMiddleware(t *testing.T) {
	clk := newClock()
	iss, v := setup(t, clk)
	var seen *verify.Claims
	h := v.Middleware("read", "write")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := verify.ClaimsFromContext(r.Context())
		if !ok {
			t.Error("ClaimsFromContext found no claims")
		}
		seen = c
		w.WriteHeader(http.StatusNoContent)
	}))
	realm := `realm="` + audience + `"`
	tests := []struct {
		name      string
		auth      []string
		query     string
		status    int
		challenge string // WWW-Authenticate; "" for none
		code      string // error of the JSON body
	}{
		{"both scopes", []string{"Bearer " + iss.Token(t, audience, "write", "read")}, "", 204, "", ""},
		{"scheme in lower case", []string{"bearer " + iss.Token(t, audience, "read", "write")}, "", 204, "", ""},
		{"no Authorization header", nil, "", 401, "Bearer " + realm, "unauthorized"},
		{"Basic credentials", []string{"Basic dXNlcjpwYXNz"}, "", 401, "Bearer " + realm, "unauthorized"},
		{"expired token", []string{"Bearer " + iss.Sign(t, nil, with(iss.Claims(audience, "read", "write"), "exp", clk.Now().Add(-verify.DefaultLeeway).Unix()))}, "", 401,
			"Bearer " + realm + `, error="invalid_token", error_description="the access token expired"`, "invalid_token"},
		{"garbage token", []string{`Bearer a"b\c`}, "", 401,
			"Bearer " + realm + `, error="invalid_token", error_description="the access token is malformed"`, "invalid_token"},
		{"refresh-like token", []string{"Bearer " + iss.Sign(t, map[string]any{"typ": "rt+jwt"}, iss.Claims(audience, "read", "write"))}, "", 401,
			"Bearer " + realm + `, error="invalid_token", error_description="the token is not an access token (typ at+jwt)"`, "invalid_token"},
		{"missing a scope", []string{"Bearer " + iss.Token(t, audience, "read")}, "", 403,
			"Bearer " + realm + `, error="insufficient_scope", error_description="the access token lacks scope write", scope="read write"`, "insufficient_scope"},
		{"empty bearer token", []string{"Bearer "}, "", 400,
			"Bearer " + realm + `, error="invalid_request", error_description="the Bearer token is empty"`, "invalid_request"},
		{"two Authorization headers", []string{"Bearer a", "Bearer b"}, "", 400,
			"Bearer " + realm + `, error="invalid_request", error_description="more than one Authorization header"`, "invalid_request"},
		{"token in the query", nil, "?access_token=" + iss.Token(t, audience, "read", "write"), 400,
			"Bearer " + realm + `, error="invalid_request", error_description="send the access token in the Authorization header, not in the URL"`, "invalid_request"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			seen = nil
			r := httptest.NewRequest("GET", "/v1/items"+tc.query, nil)
			for _, a := range tc.auth {
				r.Header.Add("Authorization", a)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if got, want := w.Code, tc.status; got != want {
				t.Errorf("status = %d, want %d", got, want)
			}
			if got, want := w.Header().Get("WWW-Authenticate"), tc.challenge; got != want {
				t.Errorf("WWW-Authenticate = %s\nwant                %s", got, want)
			}
			if tc.status == 204 {
				if seen == nil || seen.ClientID != "test-client" {
					t.Errorf("handler saw claims %+v", seen)
				}
				return
			}
			if seen != nil {
				t.Errorf("handler ran for a refused request")
			}
			var body struct{ Error, ErrorDescription string }
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Error != tc.code {
				t.Errorf("body %s: error %q (%v), want %q", w.Body, body.Error, err, tc.code)
			}
		})
	}
}

func TestMiddlewareRealmAndScopes(t *testing.T) {
	clk := newClock()
	iss, _ := setup(t, clk)
	v, err := verify.New(iss.URL, audience, verify.WithRealm(""), verify.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	v.Middleware()(http.NotFoundHandler()).ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	if got, want := w.Header().Get("WWW-Authenticate"), "Bearer"; got != want {
		t.Errorf("WWW-Authenticate = %q, want %q", got, want)
	}
	if _, err := verify.New(iss.URL, audience, verify.WithRealm(`a"b`)); !errors.Is(err, verify.ErrInvalidConfig) {
		t.Errorf("New with a realm with a quote = %v, want ErrInvalidConfig", err)
	}
	for _, bad := range []string{"", "a b", `a"b`, "a\\b", "é"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Middleware(%q) did not panic", bad)
				}
			}()
			v.Middleware(bad)
		}()
	}
	if !strings.Contains(v.Audience(), "api.example.com") {
		t.Errorf("Audience() = %q", v.Audience())
	}
}

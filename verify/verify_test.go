package verify_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/issuer-oauth/issuer/verify"
	"github.com/issuer-oauth/issuer/verify/verifytest"
)

func TestVerifyEveryAlgorithm(t *testing.T) {
	for _, alg := range []string{"ES256", "EdDSA", "RS256", "PS256"} {
		t.Run(alg, func(t *testing.T) {
			clk := newClock()
			iss := verifytest.NewIssuer(t, verifytest.WithAlg(alg), verifytest.WithClock(clk.Now))
			v, err := verify.New(context.Background(), iss.URL, audience, verify.WithClock(clk.Now))
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			claims := iss.Claims(audience, "read", "write")
			claims["aud"] = []string{"https://other.example.com", audience}
			claims["tenant"] = "acme"
			c, err := v.Verify(context.Background(), iss.Sign(t, nil, claims))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if got, want := c.Issuer, iss.URL; got != want {
				t.Errorf("Issuer = %q, want %q", got, want)
			}
			if got, want := c.Subject, "test-client"; got != want {
				t.Errorf("Subject = %q, want %q", got, want)
			}
			if got, want := c.ClientID, "test-client"; got != want {
				t.Errorf("ClientID = %q, want %q", got, want)
			}
			if got, want := c.Scopes, []string{"read", "write"}; !slices.Equal(got, want) {
				t.Errorf("Scopes = %q, want %q", got, want)
			}
			if got, want := c.Audience, []string{"https://other.example.com", audience}; !slices.Equal(got, want) {
				t.Errorf("Audience = %q, want %q", got, want)
			}
			if got, want := c.Expiry, clk.Now().Add(verifytest.TokenTTL); !got.Equal(want) {
				t.Errorf("Expiry = %v, want %v", got, want)
			}
			if got, want := c.IssuedAt, clk.Now(); !got.Equal(want) {
				t.Errorf("IssuedAt = %v, want %v", got, want)
			}
			if !c.NotBefore.IsZero() {
				t.Errorf("NotBefore = %v, want zero", c.NotBefore)
			}
			if got, want := c.ID, claims["jti"]; got != want {
				t.Errorf("ID = %q, want %q", got, want)
			}
			if !c.HasScope("write") || c.HasScope("admin") {
				t.Errorf("HasScope(write), HasScope(admin) = %v, %v; want true, false", c.HasScope("write"), c.HasScope("admin"))
			}
			var extra struct {
				Tenant string `json:"tenant"`
			}
			if err := c.Decode(&extra); err != nil || extra.Tenant != "acme" {
				t.Errorf("Decode: tenant %q, %v; want acme", extra.Tenant, err)
			}
			var raw map[string]any
			if err := c.Decode(&raw); err != nil || raw["client_id"] != "test-client" {
				t.Errorf("Decode(map): client_id %v, %v", raw["client_id"], err)
			}
		})
	}
}

func TestVerifyTypVariants(t *testing.T) {
	clk := newClock()
	iss, v := setup(t, clk)
	for _, typ := range []string{"at+jwt", "AT+JWT", "application/at+jwt", "Application/AT+JWT"} {
		if _, err := v.Verify(context.Background(), iss.Sign(t, map[string]any{"typ": typ}, iss.Claims(audience))); err != nil {
			t.Errorf("typ %q: %v", typ, err)
		}
	}
	for _, typ := range []string{"JWT", "rt+jwt", "at+jwt ", "application/jwt", "at+JWT2", ""} {
		if _, err := v.Verify(context.Background(), iss.Sign(t, map[string]any{"typ": typ}, iss.Claims(audience))); !errors.Is(err, verify.ErrType) {
			t.Errorf("typ %q: error %v, want ErrType", typ, err)
		}
	}
}

// TestLeeway checks the default leeway and WithLeeway at the edges.
func TestLeeway(t *testing.T) {
	clk := newClock()
	iss, def := setup(t, clk)
	strict, err := verify.New(context.Background(), iss.URL, audience, verify.WithClock(clk.Now), verify.WithLeeway(0))
	if err != nil {
		t.Fatal(err)
	}
	wide, err := verify.New(context.Background(), iss.URL, audience, verify.WithClock(clk.Now), verify.WithLeeway(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	exp := clk.Now().Add(verifytest.TokenTTL)
	tok := iss.Token(t, audience)
	future := iss.Sign(t, nil, func() map[string]any {
		c := iss.Claims(audience)
		c["iat"], c["nbf"] = clk.Now().Add(4*time.Second).Unix(), clk.Now().Add(4*time.Second).Unix()
		return c
	}())
	tests := []struct {
		name  string
		v     *verify.Verifier
		token string
		at    time.Time
		want  error
	}{
		{"strict one second before exp", strict, tok, exp.Add(-time.Second), nil},
		{"strict at exp", strict, tok, exp, verify.ErrExpired},
		{"default 4s after exp", def, tok, exp.Add(4 * time.Second), nil},
		{"default 5s after exp", def, tok, exp.Add(verify.DefaultLeeway), verify.ErrExpired},
		{"wide 59s after exp", wide, tok, exp.Add(59 * time.Second), nil},
		{"strict iat and nbf 4s ahead", strict, future, clk.Now(), verify.ErrNotYetValid},
		{"default iat and nbf 4s ahead", def, future, clk.Now(), nil},
	}
	start := clk.Now()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk.Advance(tc.at.Sub(clk.Now()))
			defer clk.Advance(start.Sub(clk.Now()))
			_, err := tc.v.Verify(context.Background(), tc.token)
			if tc.want == nil && err != nil || !errors.Is(err, tc.want) {
				t.Errorf("Verify error = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestNewOptions(t *testing.T) {
	clk := newClock()
	iss := verifytest.NewIssuer(t, verifytest.WithClock(clk.Now))
	tok := iss.Token(t, audience, "read")
	keys, err := verify.ParseJWKS(iss.JWKS())
	if err != nil {
		t.Fatalf("ParseJWKS: %v", err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		opts []verify.Option
	}{
		{"discovery", nil},
		{"WithJWKSURL", []verify.Option{verify.WithJWKSURL(iss.URL + verifytest.JWKSPath)}},
		{"WithKeys", []verify.Option{verify.WithKeys(keys...)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := verify.New(ctx, iss.URL, audience, append(tc.opts, verify.WithClock(clk.Now))...)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if _, err := v.Verify(ctx, tok); err != nil {
				t.Errorf("Verify: %v", err)
			}
		})
	}
	t.Run("static keys need no network", func(t *testing.T) {
		v, err := verify.New(ctx, "https://unreachable.invalid", audience, verify.WithKeys(keys...))
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		if _, err := v.Verify(ctx, tok); !errors.Is(err, verify.ErrIssuer) {
			t.Errorf("Verify: %v, want ErrIssuer", err)
		}
	})
}

func TestNewDiscoveryFailures(t *testing.T) {
	ctx := context.Background()
	serve := func(t *testing.T, h http.HandlerFunc) string {
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		return srv.URL
	}
	tests := []struct {
		name    string
		handler func(url *string) http.HandlerFunc
		issuer  func(url string) string
		also    error
	}{
		{
			name: "metadata names another issuer",
			handler: func(u *string) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					_, _ = w.Write([]byte(`{"issuer":"https://evil.example.com","jwks_uri":"` + *u + `/jwks"}`))
				}
			},
			also: verify.ErrIssuer,
		},
		{
			name: "issuer with a trailing slash",
			handler: func(u *string) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					_, _ = w.Write([]byte(`{"issuer":"` + *u + `","jwks_uri":"` + *u + `/jwks"}`))
				}
			},
			issuer: func(u string) string { return u + "/" },
			also:   verify.ErrIssuer,
		},
		{
			name: "no jwks_uri",
			handler: func(u *string) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					_, _ = w.Write([]byte(`{"issuer":"` + *u + `"}`))
				}
			},
		},
		{
			name: "no metadata",
			handler: func(u *string) http.HandlerFunc {
				return http.NotFound
			},
		},
		{
			name: "JWK Set without usable keys",
			handler: func(u *string) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					if r.URL.Path == "/jwks" {
						_, _ = w.Write([]byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"hs"}]}`))
						return
					}
					_, _ = w.Write([]byte(`{"issuer":"` + *u + `","jwks_uri":"` + *u + `/jwks"}`))
				}
			},
		},
		{
			name: "JWK Set fetch fails",
			handler: func(u *string) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					if r.URL.Path == "/jwks" {
						http.Error(w, "down", http.StatusBadGateway)
						return
					}
					_, _ = w.Write([]byte(`{"issuer":"` + *u + `","jwks_uri":"` + *u + `/jwks"}`))
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var u string
			u = serve(t, tc.handler(&u))
			issuer := u
			if tc.issuer != nil {
				issuer = tc.issuer(u)
			}
			_, err := verify.New(ctx, issuer, audience)
			if !errors.Is(err, verify.ErrDiscovery) {
				t.Fatalf("New error = %v, want ErrDiscovery", err)
			}
			if tc.also != nil && !errors.Is(err, tc.also) {
				t.Errorf("New error = %v, want it to wrap %v too", err, tc.also)
			}
		})
	}
	if _, err := verify.New(ctx, "ftp://auth.example.com", audience); !errors.Is(err, verify.ErrDiscovery) {
		t.Errorf("New(ftp://…) error = %v, want ErrDiscovery", err)
	}
	if _, err := verify.New(ctx, "https://auth.example.com", ""); err == nil {
		t.Errorf("New with an empty audience succeeded")
	}
}

// TestDiscoveryWithPath checks the RFC 8414 §3.1 location for an issuer
// with a path, and the appended fallback.
func TestDiscoveryWithPath(t *testing.T) {
	iss := verifytest.NewIssuer(t)
	for _, tc := range []struct{ name, path string }{
		{"RFC 8414 inserted", "/.well-known/oauth-authorization-server/tenant/a"},
		{"appended", "/tenant/a/.well-known/oauth-authorization-server"},
		{"OpenID Connect", "/tenant/a/.well-known/openid-configuration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var issuer string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != tc.path {
					http.NotFound(w, r)
					return
				}
				_, _ = w.Write([]byte(`{"issuer":"` + issuer + `","jwks_uri":"` + iss.URL + verifytest.JWKSPath + `"}`))
			}))
			defer srv.Close()
			issuer = srv.URL + "/tenant/a"
			v, err := verify.New(context.Background(), issuer, audience)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if got := v.Issuer(); got != issuer {
				t.Errorf("Issuer() = %q, want %q", got, issuer)
			}
		})
	}
}

func TestParseJWKS(t *testing.T) {
	iss := verifytest.NewIssuer(t)
	ed := verifytest.NewIssuer(t, verifytest.WithAlg("EdDSA"))
	rs := verifytest.NewIssuer(t, verifytest.WithAlg("RS256"))
	member := func(set []byte) string {
		s := string(set)
		return s[strings.Index(s, "[")+1 : strings.LastIndex(s, "]")]
	}
	doc := `{"keys":[` + member(iss.JWKS()) + `,` + member(ed.JWKS()) + `,` + member(rs.JWKS()) + `,
		{"kty":"oct","kid":"sym","k":"c2VjcmV0"},
		{"kty":"EC","kid":"enc","use":"enc","crv":"P-256","x":"","y":""},
		{"kty":"RSA","kid":"small","n":"AQAB","e":"AQAB"},
		{"kty":"EC","kid":"off-curve","crv":"P-256","x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","y":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE"},
		` + strings.Replace(member(iss.JWKS()), `"ES256"`, `"RS256"`, 1) + `]}`
	keys, err := verify.ParseJWKS([]byte(doc))
	if err != nil {
		t.Fatalf("ParseJWKS: %v", err)
	}
	var got []string
	for _, k := range keys {
		got = append(got, k.ID()+" "+k.Alg())
	}
	want := []string{iss.KeyID() + " ES256", ed.KeyID() + " EdDSA", rs.KeyID() + " RS256"}
	if !slices.Equal(got, want) {
		t.Errorf("keys = %q, want %q", got, want)
	}
	for _, bad := range []string{``, `[]`, `{}`, `{"keys":[]}`, `{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`} {
		if _, err := verify.ParseJWKS([]byte(bad)); err == nil {
			t.Errorf("ParseJWKS(%q) succeeded", bad)
		}
	}
	if _, err := verify.NewKey("k", "HS256", []byte("secret")); err == nil {
		t.Errorf("NewKey accepted a symmetric key")
	}
	if _, err := verify.NewKey("k", "ES384", iss.PrivateKey().Public()); err == nil {
		t.Errorf("NewKey accepted ES384 for a P-256 key")
	}
}

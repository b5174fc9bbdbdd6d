package verify_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
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
			v, err := verify.New(iss.URL, audience, verify.WithClock(clk.Now))
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
	strict, err := verify.New(iss.URL, audience, verify.WithClock(clk.Now), verify.WithLeeway(0))
	if err != nil {
		t.Fatal(err)
	}
	wide, err := verify.New(iss.URL, audience, verify.WithClock(clk.Now), verify.WithLeeway(time.Minute))
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
	remote, err := verify.NewRemoteKeySet(iss.URL+verifytest.JWKSPath, verify.WithClock(clk.Now))
	if err != nil {
		t.Fatalf("NewRemoteKeySet: %v", err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		opts    []verify.Option
		fetches int // of the JWK Set, by the first Verify
	}{
		{"discovery", nil, 1},
		{"WithJWKSURL", []verify.Option{verify.WithJWKSURL(iss.URL + verifytest.JWKSPath)}, 1},
		{"WithKeySet of a RemoteKeySet", []verify.Option{verify.WithKeySet(remote)}, 1},
		{"WithKeySet of the same RemoteKeySet", []verify.Option{verify.WithKeySet(remote)}, 0},
		{"WithKeys", []verify.Option{verify.WithKeys(keys...)}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := verify.New(iss.URL, audience, append(tc.opts, verify.WithClock(clk.Now))...)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			before := iss.JWKSFetches()
			if _, err := v.Verify(ctx, tok); err != nil {
				t.Errorf("Verify: %v", err)
			}
			if got, want := iss.JWKSFetches()-before, tc.fetches; got != want {
				t.Errorf("JWK Set fetches = %d, want %d", got, want)
			}
		})
	}
	t.Run("static keys need no network", func(t *testing.T) {
		v, err := verify.New("https://unreachable.invalid", audience, verify.WithKeys(keys...))
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		if _, err := v.Verify(ctx, tok); !errors.Is(err, verify.ErrIssuer) {
			t.Errorf("Verify: %v, want ErrIssuer", err)
		}
	})
}

// TestNewDoesNoIO constructs Verifiers and key sets of every kind with an
// HTTP client whose transport fails the test on any request: constructors
// do no I/O, and the first verification fetches.
func TestNewDoesNoIO(t *testing.T) {
	iss := verifytest.NewIssuer(t)
	var (
		allowed  atomic.Bool
		requests atomic.Int64
	)
	client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if !allowed.Load() {
			t.Errorf("request %s %s during construction", r.Method, r.URL)
			return nil, errors.New("no I/O allowed here")
		}
		requests.Add(1)
		return http.DefaultTransport.RoundTrip(r)
	})}
	jwksURL := iss.URL + verifytest.JWKSPath
	for _, tc := range []struct {
		name     string
		new      func() (*verify.Verifier, error)
		requests int64 // of the first Verify: metadata and JWK Set
	}{
		{"discovery", func() (*verify.Verifier, error) {
			return verify.New(iss.URL, audience, verify.WithHTTPClient(client))
		}, 2},
		{"WithJWKSURL", func() (*verify.Verifier, error) {
			return verify.New(iss.URL, audience, verify.WithJWKSURL(jwksURL), verify.WithHTTPClient(client))
		}, 1},
		{"NewRemoteKeySet", func() (*verify.Verifier, error) {
			ks, err := verify.NewRemoteKeySet(jwksURL, verify.WithHTTPClient(client))
			if err != nil {
				return nil, err
			}
			return verify.New(iss.URL, audience, verify.WithKeySet(ks))
		}, 1},
		{"discovery of an unreachable issuer", func() (*verify.Verifier, error) {
			return verify.New("https://unreachable.invalid", audience, verify.WithHTTPClient(client))
		}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			allowed.Store(false)
			requests.Store(0)
			v, err := tc.new()
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if tc.requests == 0 {
				return
			}
			allowed.Store(true)
			if _, err := v.Verify(context.Background(), iss.Token(t, audience)); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if got, want := requests.Load(), tc.requests; got != want {
				t.Errorf("requests of the first Verify = %d, want %d", got, want)
			}
		})
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestOptionErrors checks that a configuration that cannot be meant as
// written is an error of New, NewRemoteKeySet or Discover, before any I/O.
func TestOptionErrors(t *testing.T) {
	const (
		issuer = "https://auth.example.com"
		jwks   = issuer + "/jwks"
	)
	key, err := verify.NewHMACKey("hs", hmacSecret)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := verify.NewRemoteKeySet(jwks)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{}
	tests := []struct {
		name     string
		call     func() error
		want     error
		contains string // in the message
	}{
		{"empty issuer", newErr("", audience), verify.ErrInvalidConfig, "issuer"},
		{"empty audience", newErr(issuer, ""), verify.ErrInvalidConfig, "audience"},
		{"discovery from an ftp issuer", newErr("ftp://auth.example.com", audience), verify.ErrInvalidConfig, "ftp://"},
		{"audience that cannot be the realm", newErr(issuer, `urn:"x"`), verify.ErrInvalidConfig, "WithRealm"},
		{"realm with a quote", newErr(issuer, audience, verify.WithRealm(`a"b`)), verify.ErrInvalidConfig, "WithRealm"},
		{"negative leeway", newErr(issuer, audience, verify.WithLeeway(-time.Second)), verify.ErrInvalidConfig, "WithLeeway"},
		{"zero token size", newErr(issuer, audience, verify.WithMaxTokenSize(0)), verify.ErrInvalidConfig, "WithMaxTokenSize"},
		{"negative refresh interval", newErr(issuer, audience, verify.WithRefreshInterval(-1)), verify.ErrInvalidConfig, "WithRefreshInterval"},
		{"cache bounds upside down", newErr(issuer, audience, verify.WithCacheBounds(time.Hour, time.Minute)), verify.ErrInvalidConfig, "WithCacheBounds"},
		{"nil client", newErr(issuer, audience, verify.WithHTTPClient(nil)), verify.ErrInvalidConfig, "WithHTTPClient"},
		{"nil clock", newErr(issuer, audience, verify.WithClock(nil)), verify.ErrInvalidConfig, "WithClock"},
		{"nil KeySet", newErr(issuer, audience, verify.WithKeySet(nil)), verify.ErrInvalidConfig, "WithKeySet"},
		{"nil Option", newErr(issuer, audience, nil), verify.ErrInvalidConfig, "nil Option"},
		{"JWK Set URL not http", newErr(issuer, audience, verify.WithJWKSURL("file:///etc/jwks.json")), verify.ErrInvalidConfig, "WithJWKSURL"},
		{"relative JWK Set URL", newErr(issuer, audience, verify.WithJWKSURL("/jwks")), verify.ErrInvalidConfig, "WithJWKSURL"},
		{"WithKeys without keys", newErr(issuer, audience, verify.WithKeys()), verify.ErrInvalidConfig, "WithKeys"},
		{"WithKeys with a nil key", newErr(issuer, audience, verify.WithKeys(key, nil)), verify.ErrInvalidConfig, "nil"},
		{"WithKeys repeating a kid", newErr(issuer, audience, verify.WithKeys(key, key)), verify.ErrInvalidConfig, `"hs"`},
		{"zero staleness", newErr(issuer, audience, verify.WithMaxStaleness(0)), verify.ErrInvalidConfig, "WithMaxStaleness"},
		{"nil fetch hook", newErr(issuer, audience, verify.WithFetchHook(nil)), verify.ErrInvalidConfig, "WithFetchHook"},
		{"negative token cache", newErr(issuer, audience, verify.WithTokenCache(-1)), verify.ErrInvalidConfig, "WithTokenCache"},

		{"WithKeys and WithJWKSURL", newErr(issuer, audience, verify.WithKeys(key), verify.WithJWKSURL(jwks)), verify.ErrOptionConflict, "WithKeys and WithJWKSURL"},
		{"WithKeySet and WithJWKSURL", newErr(issuer, audience, verify.WithKeySet(ks), verify.WithJWKSURL(jwks)), verify.ErrOptionConflict, "sources of keys"},
		{"WithKeySet and WithKeys", newErr(issuer, audience, verify.WithKeySet(ks), verify.WithKeys(key)), verify.ErrOptionConflict, "sources of keys"},
		{"WithKeys twice", newErr(issuer, audience, verify.WithKeys(key), verify.WithKeys(key)), verify.ErrOptionConflict, "WithKeys given more than once"},
		{"WithLeeway twice", newErr(issuer, audience, verify.WithLeeway(0), verify.WithLeeway(time.Second)), verify.ErrOptionConflict, "WithLeeway"},
		{"WithJWKSURL twice", newErr(issuer, audience, verify.WithJWKSURL(jwks), verify.WithJWKSURL(jwks+"2")), verify.ErrOptionConflict, "WithJWKSURL"},

		{"WithKeySet and WithHTTPClient", newErr(issuer, audience, verify.WithKeySet(ks), verify.WithHTTPClient(client)), verify.ErrOptionNotApplicable, "NewRemoteKeySet"},
		{"WithKeySet and WithRefreshInterval", newErr(issuer, audience, verify.WithKeySet(ks), verify.WithRefreshInterval(time.Minute)), verify.ErrOptionNotApplicable, "WithRefreshInterval"},
		{"WithKeySet and WithCacheBounds", newErr(issuer, audience, verify.WithKeySet(ks), verify.WithCacheBounds(0, time.Hour)), verify.ErrOptionNotApplicable, "WithCacheBounds"},
		{"WithKeys and WithHTTPClient", newErr(issuer, audience, verify.WithKeys(key), verify.WithHTTPClient(client)), verify.ErrOptionNotApplicable, "WithHTTPClient beside WithKeys"},
		{"WithKeys and WithMaxStaleness", newErr(issuer, audience, verify.WithKeys(key), verify.WithMaxStaleness(time.Hour)), verify.ErrOptionNotApplicable, "WithMaxStaleness beside WithKeys"},
		{"WithKeySet and WithFetchHook", newErr(issuer, audience, verify.WithKeySet(ks), verify.WithFetchHook(func(verify.FetchEvent) {})), verify.ErrOptionNotApplicable, "WithFetchHook beside WithKeySet"},
		{"NewRemoteKeySet with WithLeeway", func() error {
			_, err := verify.NewRemoteKeySet(jwks, verify.WithLeeway(0))
			return err
		}, verify.ErrOptionNotApplicable, "NewRemoteKeySet does not take WithLeeway"},
		{"NewRemoteKeySet with WithTokenCache", func() error {
			_, err := verify.NewRemoteKeySet(jwks, verify.WithTokenCache(10))
			return err
		}, verify.ErrOptionNotApplicable, "NewRemoteKeySet does not take WithTokenCache"},
		{"NewRemoteKeySet with WithKeys", func() error {
			_, err := verify.NewRemoteKeySet(jwks, verify.WithKeys(key))
			return err
		}, verify.ErrOptionNotApplicable, "WithKeys"},
		{"NewRemoteKeySet of a relative URL", func() error {
			_, err := verify.NewRemoteKeySet("jwks.json")
			return err
		}, verify.ErrInvalidConfig, "jwks.json"},
		{"NewRemoteKeySet with WithClock twice", func() error {
			_, err := verify.NewRemoteKeySet(jwks, verify.WithClock(time.Now), verify.WithClock(time.Now))
			return err
		}, verify.ErrOptionConflict, "WithClock"},
		{"Discover with WithClock", func() error {
			_, err := verify.Discover(context.Background(), issuer, verify.WithClock(time.Now))
			return err
		}, verify.ErrOptionNotApplicable, "Discover does not take WithClock"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if !errors.Is(err, tc.want) {
				t.Fatalf("error = %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.contains) {
				t.Errorf("error = %q, want it to contain %q", err, tc.contains)
			}
		})
	}

	t.Run("every problem is reported", func(t *testing.T) {
		_, err := verify.New(issuer, audience, verify.WithKeySet(ks), verify.WithHTTPClient(client),
			verify.WithLeeway(-1), verify.WithLeeway(0))
		for _, want := range []error{verify.ErrOptionNotApplicable, verify.ErrInvalidConfig, verify.ErrOptionConflict} {
			if !errors.Is(err, want) {
				t.Errorf("error = %v, want it to wrap %v", err, want)
			}
		}
	})
}

// newErr returns a function that calls New and returns its error.
func newErr(issuer, audience string, opts ...verify.Option) func() error {
	return func() error {
		_, err := verify.New(issuer, audience, opts...)
		return err
	}
}

func TestDiscover(t *testing.T) {
	iss := verifytest.NewIssuer(t)
	md, err := verify.Discover(context.Background(), iss.URL)
	if err != nil {
		t.Fatalf("Discover: %v", err)
	}
	if md.Issuer != iss.URL || md.JWKSURI != iss.URL+verifytest.JWKSPath {
		t.Errorf("Discover = issuer %q, jwks_uri %q; want %q, %q", md.Issuer, md.JWKSURI, iss.URL, iss.URL+verifytest.JWKSPath)
	}
	var raw map[string]any
	if err := md.Decode(&raw); err != nil || raw["grant_types_supported"] == nil {
		t.Errorf("Decode: %v, %v; want grant_types_supported", raw, err)
	}
	if got := iss.JWKSFetches(); got != 0 {
		t.Errorf("Discover fetched the JWK Set %d times", got)
	}

	// The extensions of this issuer's metadata; ill-typed ones are left
	// out rather than failing discovery.
	for _, tc := range []struct {
		doc      string
		algs     []string
		hs256    bool
		jwksPath string
	}{
		{`"access_token_signing_alg_values_supported":["HS256"],"access_token_shared_secret_required":true`, []string{"HS256"}, true, "/jwks"},
		{`"access_token_signing_alg_values_supported":"ES256","access_token_shared_secret_required":"no"`, nil, false, "/jwks"},
	} {
		var u string
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte(`{"issuer":"` + u + `","jwks_uri":"` + u + tc.jwksPath + `",` + tc.doc + `}`))
		}))
		u = srv.URL
		md, err := verify.Discover(context.Background(), u)
		srv.Close()
		if err != nil {
			t.Errorf("Discover(%s): %v", tc.doc, err)
			continue
		}
		if !slices.Equal(md.AccessTokenSigningAlgs, tc.algs) || md.SharedSecretRequired != tc.hs256 {
			t.Errorf("Discover(%s) = algs %q, shared secret %v; want %q, %v", tc.doc, md.AccessTokenSigningAlgs, md.SharedSecretRequired, tc.algs, tc.hs256)
		}
	}
}

func TestDiscoverFailures(t *testing.T) {
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
			name: "relative jwks_uri",
			handler: func(u *string) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					_, _ = w.Write([]byte(`{"issuer":"` + *u + `","jwks_uri":"/jwks"}`))
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
			name: "metadata is not JSON",
			handler: func(u *string) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(`<html>`)) }
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
			_, err := verify.Discover(ctx, issuer)
			if !errors.Is(err, verify.ErrDiscovery) {
				t.Fatalf("Discover error = %v, want ErrDiscovery", err)
			}
			if tc.also != nil && !errors.Is(err, tc.also) {
				t.Errorf("Discover error = %v, want it to wrap %v too", err, tc.also)
			}
		})
	}
	if _, err := verify.Discover(ctx, "ftp://auth.example.com"); !errors.Is(err, verify.ErrDiscovery) {
		t.Errorf("Discover(ftp://…) error = %v, want ErrDiscovery", err)
	}
}

// TestKeysUnavailable checks what Verify says while the keys cannot be
// had: ErrUnknownKey with the cause, no new fetch within the refresh
// interval, and success once the issuer is fixed.
func TestKeysUnavailable(t *testing.T) {
	iss := verifytest.NewIssuer(t)
	tests := []struct {
		name  string
		serve func(w http.ResponseWriter, r *http.Request, u string) // "" when fixed
		cause string
	}{
		{"metadata names another issuer", func(w http.ResponseWriter, r *http.Request, u string) {
			_, _ = w.Write([]byte(`{"issuer":"https://evil.example.com","jwks_uri":"` + u + `/jwks"}`))
		}, "names issuer"},
		{"no metadata", func(w http.ResponseWriter, r *http.Request, u string) {
			http.NotFound(w, r)
		}, "no metadata found"},
		{"JWK Set without usable keys", func(w http.ResponseWriter, r *http.Request, u string) {
			if r.URL.Path == "/jwks" {
				_, _ = w.Write([]byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"hs"}]}`))
				return
			}
			_, _ = w.Write([]byte(`{"issuer":"` + u + `","jwks_uri":"` + u + `/jwks"}`))
		}, "no usable verification key"},
		{"HS256 issuer", func(w http.ResponseWriter, r *http.Request, u string) {
			if r.URL.Path == "/jwks" {
				_, _ = w.Write([]byte(`{"keys":[]}`))
				return
			}
			_, _ = w.Write([]byte(`{"issuer":"` + u + `","jwks_uri":"` + u + `/jwks","access_token_shared_secret_required":true}`))
		}, "NewHMACKey"},
		{"JWK Set fetch fails", func(w http.ResponseWriter, r *http.Request, u string) {
			if r.URL.Path == "/jwks" {
				http.Error(w, "down", http.StatusBadGateway)
				return
			}
			_, _ = w.Write([]byte(`{"issuer":"` + u + `","jwks_uri":"` + u + `/jwks"}`))
		}, "status 502"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			var (
				u        string
				fixed    atomic.Bool
				requests atomic.Int64
			)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				requests.Add(1)
				switch {
				case !fixed.Load():
					tc.serve(w, r, u)
				case r.URL.Path == "/jwks":
					_, _ = w.Write(iss.JWKS())
				default:
					_, _ = w.Write([]byte(`{"issuer":"` + u + `","jwks_uri":"` + u + `/jwks"}`))
				}
			}))
			defer srv.Close()
			u = srv.URL
			v, err := verify.New(u, audience, verify.WithClock(clk.Now))
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			tok := iss.Sign(t, nil, with(iss.Claims(audience), "iss", u))
			_, err = v.Verify(context.Background(), tok)
			if !errors.Is(err, verify.ErrUnknownKey) || !strings.Contains(err.Error(), tc.cause) {
				t.Fatalf("Verify = %v, want ErrUnknownKey saying %q", err, tc.cause)
			}
			n := requests.Load()
			if _, err := v.Verify(context.Background(), tok); !errors.Is(err, verify.ErrUnknownKey) {
				t.Errorf("Verify again = %v, want ErrUnknownKey", err)
			}
			if got := requests.Load(); got != n {
				t.Errorf("Verify within the refresh interval made %d requests, want none", got-n)
			}
			fixed.Store(true)
			clk.Advance(verify.DefaultRefreshInterval)
			if _, err := v.Verify(context.Background(), tok); err != nil {
				t.Errorf("Verify once the issuer is fixed: %v", err)
			}
		})
	}
}

// TestDiscoveryWithPath checks the RFC 8414 §3.1 location for an issuer
// with a path, and the fallbacks, with Discover and with New.
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
			md, err := verify.Discover(context.Background(), issuer)
			if err != nil {
				t.Fatalf("Discover: %v", err)
			}
			if got := md.Issuer; got != issuer {
				t.Errorf("Issuer = %q, want %q", got, issuer)
			}
			v, err := verify.New(issuer, audience)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if _, err := v.Verify(context.Background(), iss.Sign(t, nil, with(iss.Claims(audience), "iss", issuer))); err != nil {
				t.Errorf("Verify: %v", err)
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

package verify_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/issuer-oauth/issuer/verify"
	"github.com/issuer-oauth/issuer/verify/verifytest"
)

// keyServer serves iss's JWK Set at /keys, redirects /jwks to where
// redirect says (a path, or a URL built from the server's own URL), and
// counts the requests for /keys.
type keyServer struct {
	*httptest.Server
	served atomic.Int64
}

func newKeyServer(t *testing.T, tls bool, iss *verifytest.Issuer, redirect func(self string) string) *keyServer {
	t.Helper()
	ks := &keyServer{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/keys":
			ks.served.Add(1)
			_, _ = w.Write(iss.JWKS())
		case r.URL.Path == "/jwks":
			http.Redirect(w, r, redirect(ks.URL), http.StatusFound)
		case strings.HasPrefix(r.URL.Path, "/loop/"):
			n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/loop/"))
			http.Redirect(w, r, "/loop/"+strconv.Itoa(n+1), http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	})
	if tls {
		ks.Server = httptest.NewTLSServer(h)
	} else {
		ks.Server = httptest.NewServer(h)
	}
	t.Cleanup(ks.Close)
	return ks
}

// TestJWKSRedirects checks which redirects a JWK Set fetch follows: only
// those that keep the host and port and never leave https.
func TestJWKSRedirects(t *testing.T) {
	iss := verifytest.NewIssuer(t)
	other := newKeyServer(t, false, iss, func(string) string { return "/keys" })
	otherTLS := newKeyServer(t, true, iss, func(string) string { return "/keys" })
	tests := []struct {
		name     string
		tls      bool
		redirect func(self string) string
		start    string // path fetched first
		target   *keyServer
		follow   bool
		reason   string // in the error when refused
	}{
		{"same host, path", false, func(string) string { return "/keys" }, "/jwks", nil, true, ""},
		{"same host, absolute URL", false, func(self string) string { return self + "/keys" }, "/jwks", nil, true, ""},
		{"same host over https", true, func(self string) string { return self + "/keys" }, "/jwks", nil, true, ""},
		{"another port", false, func(string) string { return other.URL + "/keys" }, "/jwks", other, false, "another host"},
		{"another name of the same server", false, func(self string) string {
			return strings.Replace(self, "127.0.0.1", "localhost", 1) + "/keys"
		}, "/jwks", nil, false, "another host"},
		{"https to another host over https", true, func(string) string { return otherTLS.URL + "/keys" }, "/jwks", otherTLS, false, "another host"},
		{"https to http on the same host", true, func(self string) string {
			return "http://" + strings.TrimPrefix(self, "https://") + "/keys"
		}, "/jwks", nil, false, "downgrade"},
		{"too many redirects", false, nil, "/loop/0", nil, false, "more than 5 redirects"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newKeyServer(t, tc.tls, iss, tc.redirect)
			target := tc.target
			if target == nil {
				target = srv
			}
			before := target.served.Load()
			// The test server's client trusts its certificate; its
			// CheckRedirect is nil, so it gets the package's policy.
			client := srv.Client()
			v, err := verify.New(iss.URL, audience, verify.WithJWKSURL(srv.URL+tc.start), verify.WithHTTPClient(client))
			if err != nil {
				t.Fatal(err)
			}
			if client.CheckRedirect != nil {
				t.Fatal("New changed the caller's http.Client")
			}
			_, err = v.Verify(context.Background(), iss.Token(t, audience))
			served := target.served.Load() - before
			if tc.follow {
				if err != nil || served != 1 {
					t.Fatalf("Verify: %v, key fetches at the target %d; want the redirect followed", err, served)
				}
				return
			}
			if !errors.Is(err, verify.ErrUnknownKey) {
				t.Fatalf("Verify: %v, want ErrUnknownKey for a refused redirect", err)
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("error %q does not say %q", err, tc.reason)
			}
			if served != 0 {
				t.Errorf("key fetches at the redirect's target = %d, want 0", served)
			}
		})
	}
}

// TestDiscoveryRedirects checks that discovery refuses a redirect of the
// metadata to another host, with Discover and with New.
func TestDiscoveryRedirects(t *testing.T) {
	iss := verifytest.NewIssuer(t)
	// front redirects to elsewhere, which names front as the issuer and
	// the keys of its choice: without the redirect policy its keys would
	// verify front's tokens.
	var reached atomic.Int64
	var front *httptest.Server
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"issuer":"` + front.URL + `","jwks_uri":"` + iss.URL + verifytest.JWKSPath + `"}`))
	}))
	t.Cleanup(elsewhere.Close)
	front = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+r.URL.Path, http.StatusMovedPermanently)
	}))
	t.Cleanup(front.Close)

	_, err := verify.Discover(context.Background(), front.URL)
	if !errors.Is(err, verify.ErrDiscovery) || !strings.Contains(err.Error(), "another host") {
		t.Fatalf("Discover: %v, want ErrDiscovery for a redirect to another host", err)
	}
	v, err := verify.New(front.URL, audience)
	if err != nil {
		t.Fatal(err)
	}
	claims := iss.Claims(audience)
	claims["iss"] = front.URL
	if _, err := v.Verify(context.Background(), iss.Sign(t, nil, claims)); !errors.Is(err, verify.ErrUnknownKey) || !strings.Contains(err.Error(), "another host") {
		t.Fatalf("Verify: %v, want ErrUnknownKey for a redirect to another host", err)
	}
	if got := reached.Load(); got != 0 {
		t.Errorf("requests at the redirect's target = %d, want 0", got)
	}
}

// TestOwnCheckRedirect checks that a client with its own redirect policy
// keeps it: here one that follows any redirect.
func TestOwnCheckRedirect(t *testing.T) {
	iss := verifytest.NewIssuer(t)
	other := newKeyServer(t, false, iss, func(string) string { return "/keys" })
	srv := newKeyServer(t, false, iss, func(string) string { return other.URL + "/keys" })
	followAll := func(*http.Request, []*http.Request) error { return nil }
	v, err := verify.New(iss.URL, audience, verify.WithJWKSURL(srv.URL+"/jwks"),
		verify.WithHTTPClient(&http.Client{CheckRedirect: followAll}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), iss.Token(t, audience)); err != nil {
		t.Fatalf("Verify with a client that follows every redirect: %v", err)
	}
	if got, want := other.served.Load(), int64(1); got != want {
		t.Errorf("key fetches at the other host = %d, want %d", got, want)
	}
}

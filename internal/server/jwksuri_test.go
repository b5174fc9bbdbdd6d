package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/issuer-oauth/issuer/internal/config"
)

// keyServer is a client's JWK Set server over TLS: it serves the set it is
// given and counts the requests.
type keyServer struct {
	srv      *httptest.Server
	mu       sync.Mutex
	body     []byte
	header   http.Header
	requests atomic.Int64
	// gate, when not nil, holds every request until it is closed.
	gate chan struct{}
}

func newKeyServer(t *testing.T, set map[string]any) *keyServer {
	t.Helper()
	ks := &keyServer{header: http.Header{"Cache-Control": {"max-age=600"}}}
	ks.set(set)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		ks.requests.Add(1)
		ks.mu.Lock()
		body, gate := ks.body, ks.gate
		for k, v := range ks.header {
			w.Header()[k] = v
		}
		ks.mu.Unlock()
		if gate != nil {
			<-gate
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})
	mux.HandleFunc("GET /redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/jwks", http.StatusFound)
	})
	mux.HandleFunc("GET /huge", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"keys":[],"pad":"` + strings.Repeat("x", 1<<20) + `"}`))
	})
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // never answers; the issuer gives up
	})
	ks.srv = httptest.NewTLSServer(mux)
	t.Cleanup(ks.srv.Close)
	return ks
}

func (ks *keyServer) set(set map[string]any) {
	b, _ := json.Marshal(set)
	ks.mu.Lock()
	ks.body = b
	ks.mu.Unlock()
}

// trusting gives the issuer an HTTP client that trusts ks's certificate.
func trusting(srv *httptest.Server) func(*Options) {
	return func(o *Options) { o.HTTPClient = srv.Client() }
}

func TestJWKSURI(t *testing.T) {
	k1, k2 := newClientKey(t, "k1", "ES256"), newClientKey(t, "k2", "ES256")
	ks := newKeyServer(t, jwksOf(k1))
	ti := startIssuerOpts(t, trusting(ks.srv))
	id := ti.registerKeyClient(t, map[string]any{"client_name": "remote", "jwks_uri": ks.srv.URL + "/jwks"})
	token := func(k clientKey) int {
		resp, _ := ti.withAssertion(t, "/oauth2/token", id, k.assertion(t, ti.claimsFor(id), nil), ccForm)
		return resp.StatusCode
	}
	for i := range 3 {
		if code := token(k1); code != 200 {
			t.Fatalf("token %d with k1: %d", i, code)
		}
	}
	if n := ks.requests.Load(); n != 1 {
		t.Errorf("key server requests after 3 tokens = %d, want 1 (cached)", n)
	}

	// The client rotates to k2: the first assertion with the new kid
	// within the minute after the last fetch is refused without a fetch,
	// then one refetch a minute later picks k2 up.
	ks.set(jwksOf(k2))
	ti.clock.Advance(30 * time.Second)
	if code := token(k2); code != 401 {
		t.Errorf("k2 within a minute of the last fetch: %d, want 401", code)
	}
	if n := ks.requests.Load(); n != 1 {
		t.Errorf("key server requests = %d, want still 1: at most one refetch per minute", n)
	}
	ti.clock.Advance(31 * time.Second)
	if code := token(k2); code != 200 {
		t.Errorf("k2 after a minute: %d, want 200", code)
	}
	if code := token(k1); code != 401 {
		t.Errorf("k1 after the rotation: %d, want 401", code)
	}

	// Concurrent unknown kids share one refetch.
	ti.clock.Advance(2 * time.Minute)
	k3 := newClientKey(t, "k3", "ES256")
	ks.set(jwksOf(k3))
	before := ks.requests.Load()
	ks.mu.Lock()
	ks.gate = make(chan struct{})
	ks.mu.Unlock()
	var wg sync.WaitGroup
	codes := make([]int, 20)
	for i := range codes {
		a := k3.assertion(t, ti.claimsFor(id), nil)
		wg.Go(func() {
			resp, _ := ti.withAssertion(t, "/oauth2/token", id, a, ccForm)
			codes[i] = resp.StatusCode
		})
	}
	for ks.requests.Load() == before {
		time.Sleep(time.Millisecond) // wait for the one fetch to arrive
	}
	close(ks.gate)
	wg.Wait()
	for i, c := range codes {
		if c != 200 {
			t.Errorf("concurrent request %d: %d, want 200", i, c)
		}
	}
	if n := ks.requests.Load() - before; n != 1 {
		t.Errorf("concurrent refetches: %d key server requests, want 1", n)
	}
}

func TestJWKSURILimits(t *testing.T) {
	k := newClientKey(t, "k", "ES256")
	ks := newKeyServer(t, jwksOf(k))
	ti := startIssuerOpts(t, trusting(ks.srv), func(c *config.Config) { c.AuthFailuresPerAddress, c.AuthFailuresPerClient = 0, 0 })
	for _, path := range []string{"/huge", "/redirect", "/slow", "/missing"} {
		t.Run(path, func(t *testing.T) {
			id := ti.registerKeyClient(t, map[string]any{"client_name": path, "jwks_uri": ks.srv.URL + path})
			resp, m := ti.withAssertion(t, "/oauth2/token", id, k.assertion(t, ti.claimsFor(id), nil), ccForm)
			if resp.StatusCode != http.StatusUnauthorized || m["error"] != "invalid_client" {
				t.Fatalf("%d %v, want 401 invalid_client", resp.StatusCode, m)
			}
		})
	}
	t.Run("registration", func(t *testing.T) {
		for _, uri := range []string{"http://keys.example.com/jwks", "ftp://keys.example.com/jwks", "https://user@keys.example.com/jwks", "/jwks"} {
			resp, m := ti.admin(t, "POST", "/admin/clients", map[string]any{"token_endpoint_auth_method": "private_key_jwt",
				"jwks_uri": uri, "audience": []string{"https://api.example.com"}})
			if resp.StatusCode != 400 || m["error"] != "invalid_client_metadata" {
				t.Errorf("jwks_uri %s: %d %v, want 400 invalid_client_metadata", uri, resp.StatusCode, m)
			}
		}
	})
}

func TestJWKSURIAllowedHostsAndInsecure(t *testing.T) {
	ti := startIssuer(t, func(c *config.Config) {
		c.JWKSURIAllowedHosts = "keys.example.com"
		c.AllowInsecureJWKSURI = true
	})
	for uri, want := range map[string]int{
		"https://keys.example.com/jwks":  201,
		"http://keys.example.com/jwks":   201,
		"https://KEYS.example.com/jwks":  201,
		"https://other.example.com/jwks": 400,
		"https://127.0.0.1/jwks":         400,
	} {
		resp, m := ti.admin(t, "POST", "/admin/clients", map[string]any{"token_endpoint_auth_method": "private_key_jwt",
			"jwks_uri": uri, "audience": []string{"https://api.example.com"}})
		if resp.StatusCode != want {
			t.Errorf("jwks_uri %s: %d %v, want %d", uri, resp.StatusCode, m, want)
		}
	}
}

package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"

	"github.com/issuer-oauth/issuer/internal/adminapi"
	"github.com/issuer-oauth/issuer/internal/config"
	"github.com/issuer-oauth/issuer/internal/testutil"
)

// adminToken is the admin token of every test issuer.
const adminToken = "test-admin-token-0123456789abcdef0123"

// newClock is a test clock at the current second that only moves when told.
func newClock() *testutil.Clock { return testutil.NewClock(time.Now().UTC().Truncate(time.Second)) }

// testIssuer is a real issuer (New, the embedded store, real keys) served
// by httptest on a loopback port, with ISSUER_URL set to its address.
type testIssuer struct {
	// URL is the issuer identifier (ISSUER_URL); base is where this instance
	// listens. They differ only for instances behind one shared ISSUER_URL.
	URL  string
	base string
	// adminBase is where the admin listener (admin_addr) listens; empty
	// when there is none (see adminAt).
	adminBase string
	cfg       config.Config
	clock     *testutil.Clock
	logs      *testutil.Buffer
	app       *Server
	srv       *httptest.Server
	// reload is the server's Options.Reload (what SIGHUP sends on in
	// cmd/issuer).
	reload chan struct{}
}

func startIssuer(t *testing.T, mutate ...func(*config.Config)) *testIssuer {
	t.Helper()
	return startIssuerOpts(t, nil, mutate...)
}

// startIssuerOpts is startIssuer with the server's Options changed by opts
// (when not nil).
func startIssuerOpts(t *testing.T, opts func(*Options), mutate ...func(*config.Config)) *testIssuer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.URL = "http://" + ln.Addr().String()
	cfg.DataDir = t.TempDir()
	cfg.AdminToken = adminToken
	for _, m := range mutate {
		m(&cfg)
	}
	ti := &testIssuer{URL: cfg.URL, base: "http://" + ln.Addr().String(), cfg: cfg, clock: newClock(), logs: &testutil.Buffer{}, reload: make(chan struct{}, 1)}
	log := slog.New(slog.NewJSONHandler(ti.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	o := Options{Logger: log, Now: ti.clock.Now, Version: "test", Reload: ti.reload}
	if opts != nil {
		opts(&o)
	}
	ti.app, err = New(context.Background(), cfg, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ti.srv = httptest.NewUnstartedServer(ti.app)
	ti.srv.Listener.Close()
	ti.srv.Listener = ln
	ti.srv.Start()
	var adminSrv *httptest.Server
	if cfg.AdminAddr != "" {
		// Its address is in cfg.AdminAddr, opened by withAdminListener.
		adminSrv = httptest.NewUnstartedServer(ti.app.AdminHandler())
		adminSrv.Listener.Close()
		aln, ok := adminListeners.LoadAndDelete(cfg.AdminAddr)
		if !ok {
			t.Fatalf("admin_addr %s was not opened by withAdminListener", cfg.AdminAddr)
		}
		adminSrv.Listener = aln.(net.Listener)
		adminSrv.Start()
		ti.adminBase = "http://" + cfg.AdminAddr
	}
	t.Cleanup(func() {
		ti.srv.Close()
		if adminSrv != nil {
			adminSrv.Close()
		}
		ti.app.Close()
	})
	return ti
}

// adminListeners are the listeners withAdminListener opened, by address.
var adminListeners sync.Map

// withAdminListener gives an issuer an admin listener (admin_addr) on a
// loopback port of its own, served by startIssuer.
func withAdminListener(t *testing.T) func(*config.Config) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adminListeners.Store(ln.Addr().String(), ln)
	return func(c *config.Config) { c.AdminAddr = ln.Addr().String() }
}

// adminAt returns the base URL of the admin API and the metrics: the
// admin listener's, or base when there is none.
func (ti *testIssuer) adminAt() string {
	if ti.adminBase != "" {
		return ti.adminBase
	}
	return ti.base
}

// do sends a request and decodes a JSON response body into a map.
func (ti *testIssuer) do(t *testing.T, req *http.Request) (*http.Response, map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(body) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatalf("%s %s: response is not JSON: %v: %s", req.Method, req.URL, err, body)
		}
	}
	return resp, m
}

// api is a client of ti's admin API: the one the CLI uses.
func (ti *testIssuer) api() *adminapi.Client {
	u, _ := url.Parse(ti.adminAt())
	return adminapi.NewClient(u, adminToken, nil)
}

// admin calls the admin API.
func (ti *testIssuer) admin(t *testing.T, method, path string, body any) (*http.Response, map[string]any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, ti.adminAt()+path, r)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	return ti.do(t, req)
}

// createClient registers a client through the admin API.
func (ti *testIssuer) createClient(t *testing.T, meta map[string]any) (id, sec string) {
	t.Helper()
	if meta["audience"] == nil {
		meta["audience"] = []string{"https://api.example.com"}
	}
	resp, m := ti.admin(t, "POST", "/admin/clients", meta)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create client: status %d: %v", resp.StatusCode, m)
	}
	return m["client_id"].(string), m["client_secret"].(string)
}

// token posts a form to the token endpoint; basic chooses client_secret_basic.
func (ti *testIssuer) token(t *testing.T, id, sec string, basic bool, form url.Values) (*http.Response, map[string]any) {
	t.Helper()
	form = maps.Clone(form)
	if form == nil {
		form = url.Values{}
	}
	if !basic && id != "" {
		form.Set("client_id", id)
		form.Set("client_secret", sec)
	}
	req, _ := http.NewRequest("POST", ti.base+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic {
		req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(sec))
	}
	return ti.do(t, req)
}

// metadata fetches the RFC 8414 document.
func (ti *testIssuer) metadata(t *testing.T) map[string]any {
	t.Helper()
	req, _ := http.NewRequest("GET", ti.base+"/.well-known/oauth-authorization-server", nil)
	resp, m := ti.do(t, req)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("metadata: status %d", resp.StatusCode)
	}
	return m
}

// jwks fetches the key set from the jwks_uri the metadata advertises, parsed
// by go-jose (a JOSE library nobody here wrote).
func (ti *testIssuer) jwks(t *testing.T) jose.JSONWebKeySet {
	t.Helper()
	resp, err := http.Get(ti.metadata(t)["jwks_uri"].(string))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatalf("decode JWKS: %v", err)
	}
	return set
}

// accessClaims are the claims the tests read from an access token.
type accessClaims struct {
	josejwt.Claims
	ClientID string `json:"client_id"`
	Scope    string `json:"scope"`
}

// verifyAccess checks an access token the way an independent resource API
// would: go-jose, the algorithm pinned to ES256, the key found by kid in the
// served JWKS, typ at+jwt, iss, aud and exp checked. It fails the test on any
// mismatch.
func (ti *testIssuer) verifyAccess(t *testing.T, raw, audience string) accessClaims {
	t.Helper()
	c, err := ti.checkAccess(t, raw, audience)
	if err != nil {
		t.Fatalf("access token does not verify: %v", err)
	}
	return c
}

func (ti *testIssuer) checkAccess(t *testing.T, raw, audience string) (accessClaims, error) {
	t.Helper()
	var c accessClaims
	tok, err := josejwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return c, err
	}
	h := tok.Headers[0]
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != "at+jwt" {
		return c, fmt.Errorf("typ %q, want at+jwt", typ)
	}
	set := ti.jwks(t)
	keys := set.Key(h.KeyID)
	if len(keys) != 1 {
		return c, fmt.Errorf("kid %q: %d keys in the JWKS", h.KeyID, len(keys))
	}
	if err := tok.Claims(keys[0].Key, &c); err != nil {
		return c, err
	}
	err = c.Claims.ValidateWithLeeway(josejwt.Expected{
		Issuer:      ti.URL,
		AnyAudience: josejwt.Audience{audience},
		Time:        ti.clock.Now(),
	}, 0)
	return c, err
}

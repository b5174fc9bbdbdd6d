package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/issuer-oauth/issuer/internal/adminapi"
	"github.com/issuer-oauth/issuer/internal/config"
	"github.com/issuer-oauth/issuer/internal/server"
)

// adminToken is the admin token of every test issuer; no output may
// contain it.
const adminToken = "test-admin-token-0123456789abcdef0123"

// testServer is a real issuer (server.New on the embedded store, real keys)
// behind httptest, for testing the CLI against the real admin API. It
// records the admin requests it receives (not the metadata requests with
// which the CLI checks that it reached the issuer it meant).
type testServer struct {
	URL  string // the issuer URL (cfg.URL)
	addr string // where it listens: host:port
	cfg  config.Config

	mu       sync.Mutex
	requests []string          // "METHOD /escaped/path"
	bodies   map[string][]byte // the last body of each "METHOD /path"
	// before, when set, runs before the server serves each request: a
	// test's way to make something happen between two requests of the CLI.
	before func(r *http.Request)
}

// startServer starts a test issuer with the admin API on.
func startServer(t *testing.T, mutate ...func(*config.Config)) *testServer {
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
	srv, err := server.New(context.Background(), cfg, server.Options{Logger: slog.New(slog.DiscardHandler), Version: "test"})
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	ts := &testServer{URL: cfg.URL, addr: ln.Addr().String(), cfg: cfg, bodies: map[string][]byte{}}
	hs := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Method + " " + r.URL.EscapedPath()
		var body bytes.Buffer
		if r.Body != nil {
			body.ReadFrom(r.Body)
			r.Body.Close()
		}
		ts.mu.Lock()
		if strings.HasPrefix(r.URL.Path, "/admin/") {
			ts.requests = append(ts.requests, key)
		}
		if body.Len() > 0 {
			ts.bodies[key] = body.Bytes()
		}
		before := ts.before
		ts.mu.Unlock()
		if before != nil {
			before(r)
		}
		r.Body = http.NoBody
		if body.Len() > 0 {
			r.Body = &readCloser{bytes.NewReader(body.Bytes())}
		}
		srv.ServeHTTP(w, r)
	}))
	hs.Listener.Close()
	hs.Listener = ln
	hs.Start()
	t.Cleanup(func() {
		hs.Close()
		srv.Close()
	})
	return ts
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

// log returns the admin requests received so far and forgets them.
func (ts *testServer) log() []string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	out := ts.requests
	ts.requests = nil
	return out
}

// body returns the last body of "METHOD /path".
func (ts *testServer) body(key string) []byte {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.bodies[key]
}

// api is a client of the test server's admin API.
func (ts *testServer) api() *adminapi.Client {
	u, _ := url.Parse(ts.URL)
	return adminapi.NewClient(u, adminToken, nil)
}

// createClient registers a client through the admin API (not the CLI).
func (ts *testServer) createClient(t *testing.T, m adminapi.ClientMetadata) adminapi.ClientInfo {
	t.Helper()
	if m.Audience == nil {
		m.Audience = []string{"https://api.example.com"}
	}
	c, err := ts.api().CreateClient(t.Context(), m)
	if err != nil {
		t.Fatalf("create client: %v", err)
	}
	ts.log() // the test looks at the CLI's requests only
	return c
}

// env is the environment of a CLI call to ts.
func (ts *testServer) env() map[string]string {
	return map[string]string{"ISSUER_URL": ts.URL, "ISSUER_ADMIN_TOKEN": adminToken}
}

// withMetadata serves, in front of h, the RFC 8414 metadata of an issuer
// at the server's own URL with its admin API on, so that a stand-in
// handler passes the CLI's check of the server it reached.
func withMetadata(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != metadataPath {
			h.ServeHTTP(w, r)
			return
		}
		iss := "http://" + r.Host
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"issuer":%q,"registration_endpoint":%q}`, iss, iss+"/admin/clients")
	})
}

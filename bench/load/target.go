package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// setupClient does the few set-up calls (readiness, metadata,
// registration); the measured traffic goes through conn.
var setupClient = &http.Client{Timeout: 10 * time.Second}

// Target kinds.
const (
	kindIssuer   = "issuer"
	kindBaseline = "baseline"
)

// Client kinds registered on every target.
const (
	clientRefresh   = "refresh"   // client_credentials + refresh_token
	clientNoRefresh = "norefresh" // client_credentials only
	clientPassword  = "password"  // password + refresh_token (password scenario only)
)

// credentials of a registered client.
type credentials struct {
	ID, Secret string
}

// basic is the Authorization header value (RFC 6749 §2.3.1).
func (c credentials) basic() string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(c.ID)+":"+url.QueryEscape(c.Secret)))
}

// target is a started server, issuer or baseline, with its endpoints (from
// its RFC 8414 metadata) and its clients.
type target struct {
	kind    string
	proc    *process
	paths   endpoints
	clients map[string]credentials
}

type endpoints struct {
	Token         string `json:"token_endpoint"`
	JWKS          string `json:"jwks_uri"`
	Introspection string `json:"introspection_endpoint"`
	Registration  string `json:"registration_endpoint"`
}

// serverConfig is what both kinds of server are started with.
type serverConfig struct {
	alg                   string
	redis                 *redisServer // nil: embedded store
	accessTTL, refreshTTL time.Duration
	dir                   string // a fresh directory for this server
	serverLog             string // where the server's stdout goes
	issuerBin             string
	baselineBin           string
	// docs, when set, holds the issuer's JWK Set and metadata as last
	// captured: the baseline serves exactly these bytes.
	docs *documents
	// users, when set (password scenario), are the users to create; the
	// issuer then runs with the password grant on and both servers get a
	// client with it.
	users *userPool
	// hashConcurrency, when not 0, bounds the password hashes computed at
	// once (the issuer's password_hash_concurrency, the baseline's
	// -hash-concurrency); 0 leaves their default, the number of CPUs.
	hashConcurrency int
}

// clientGrants are the clients every server gets, by kind.
func (sc serverConfig) clientGrants() map[string][]string {
	g := map[string][]string{
		clientRefresh:   {"client_credentials", "refresh_token"},
		clientNoRefresh: {"client_credentials"},
	}
	if sc.users != nil {
		g[clientPassword] = []string{"password", "refresh_token"}
	}
	return g
}

// documents are the issuer's public documents, saved to files for the
// baseline.
type documents struct {
	jwks, metadata string // file names; empty until captured
	issuerURL      string // the issuer URL the metadata names
}

// capture saves the issuer's JWK Set and metadata into dir.
func (d *documents) capture(ctx context.Context, t *target, dir string) error {
	for _, doc := range []struct {
		path string
		file *string
		name string
	}{{t.paths.JWKS, &d.jwks, "jwks.json"}, {"/.well-known/oauth-authorization-server", &d.metadata, "metadata.json"}} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+t.proc.addr+doc.path, nil)
		resp, err := setupClient.Do(req)
		if err != nil {
			return err
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			return fmt.Errorf("capture %s: %s %v", doc.path, resp.Status, err)
		}
		f := filepath.Join(dir, doc.name)
		if err := os.WriteFile(f, b, 0o600); err != nil {
			return err
		}
		*doc.file = f
	}
	d.issuerURL = "http://" + t.proc.addr
	return nil
}

const (
	benchScope    = "read write"
	benchAudience = "https://api.example.com"
)

// baseEnv is the harness's environment without any issuer setting, so that
// nothing from the caller's shell changes the server under test.
func baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "ISSUER_") || strings.HasPrefix(kv, "PORT=") || strings.HasPrefix(kv, "BASELINE_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// startIssuer starts the issuer binary with its admin API on, then
// registers the benchmark's clients through it.
func startIssuer(ctx context.Context, sc serverConfig) (*target, error) {
	adminToken := randomString(32)
	env := func(port int) []string {
		addr := "127.0.0.1:" + strconv.Itoa(port)
		e := append(baseEnv(),
			"ISSUER_ADDR="+addr,
			"ISSUER_URL=http://"+addr,
			"ISSUER_ADMIN_TOKEN="+adminToken,
			"ISSUER_DATA_DIR="+filepath.Join(sc.dir, "data"),
			"ISSUER_SIGNING_ALG="+sc.alg,
			"ISSUER_ACCESS_TOKEN_TTL="+sc.accessTTL.String(),
			"ISSUER_REFRESH_TOKEN_TTL="+sc.refreshTTL.String(),
			// The harness stops the server after the measurement; no load
			// balancer needs the drain delay.
			"ISSUER_SHUTDOWN_DRAIN_DELAY=0s",
		)
		if sc.redis != nil {
			e = append(e, "ISSUER_REDIS_URL="+sc.redis.url(), "ISSUER_SECRET="+randomString(32))
		}
		if sc.users != nil {
			e = append(e, "ISSUER_PASSWORD_GRANT=true")
			if sc.hashConcurrency != 0 {
				e = append(e, "ISSUER_PASSWORD_HASH_CONCURRENCY="+strconv.Itoa(sc.hashConcurrency))
			}
		}
		return e
	}
	if sc.users != nil {
		redisURL := ""
		if sc.redis != nil {
			redisURL = sc.redis.url()
		}
		if err := seedUsers(ctx, filepath.Join(sc.dir, "data"), redisURL, sc.users.users); err != nil {
			return nil, err
		}
	}
	p, err := start(ctx, kindIssuer, sc.issuerBin, func(int) []string { return []string{"serve"} }, env, sc.serverLog, httpReady)
	if err != nil {
		return nil, err
	}
	t := &target{kind: kindIssuer, proc: p, clients: map[string]credentials{}}
	if err := t.discover(ctx); err != nil {
		p.Stop()
		return nil, err
	}
	if sc.docs != nil {
		if err := sc.docs.capture(ctx, t, sc.dir); err != nil {
			p.Stop()
			return nil, fmt.Errorf("issuer documents: %w", err)
		}
	}
	for kind, grants := range sc.clientGrants() {
		c, err := register(ctx, t.paths.Registration, adminToken, kind, grants)
		if err != nil {
			p.Stop()
			var re *registerError
			if kind == clientPassword && errors.As(err, &re) && re.status == http.StatusBadRequest {
				// An issuer without the password grant (or with it off).
				return nil, &unsupportedError{"no password grant: " + re.body}
			}
			return nil, err
		}
		t.clients[kind] = c
	}
	return t, nil
}

// register creates a client through the admin API (RFC 7591 shape).
func register(ctx context.Context, endpoint, adminToken, name string, grants []string) (credentials, error) {
	body, _ := json.Marshal(map[string]any{
		"client_name": "bench-" + name,
		"grant_types": grants,
		"scope":       benchScope,
		"audience":    []string{benchAudience},
	})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := setupClient.Do(req)
	if err != nil {
		return credentials{}, fmt.Errorf("register client: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusCreated {
		return credentials{}, &registerError{resp.StatusCode, resp.Status, string(bytes.TrimSpace(b))}
	}
	var c struct {
		ID     string `json:"client_id"`
		Secret string `json:"client_secret"`
	}
	if err := json.Unmarshal(b, &c); err != nil || c.ID == "" || c.Secret == "" {
		return credentials{}, fmt.Errorf("register client: unexpected response %s", b)
	}
	return credentials{c.ID, c.Secret}, nil
}

// registerError is a registration the admin API refused.
type registerError struct {
	status     int
	statusText string
	body       string
}

func (e *registerError) Error() string {
	return "register client: " + e.statusText + ": " + e.body
}

// startBaseline starts the baseline server with clients of the same shape
// (a 32-hex-digit id, a 43-character secret) as the issuer makes.
func startBaseline(ctx context.Context, sc serverConfig) (*target, error) {
	t := &target{kind: kindBaseline, clients: map[string]credentials{}}
	type clientConfig struct {
		ID         string   `json:"client_id"`
		Secret     string   `json:"client_secret"`
		GrantTypes []string `json:"grant_types"`
		Scope      string   `json:"scope"`
		Audience   []string `json:"audience"`
	}
	var cfgs []clientConfig
	for kind, grants := range sc.clientGrants() {
		id := make([]byte, 16)
		_, _ = rand.Read(id)
		c := credentials{hex.EncodeToString(id), randomString(32)}
		t.clients[kind] = c
		cfgs = append(cfgs, clientConfig{c.ID, c.Secret, grants, benchScope, []string{benchAudience}})
	}
	clients, _ := json.Marshal(cfgs)
	args := func(port int) []string {
		addr := "127.0.0.1:" + strconv.Itoa(port)
		a := []string{"-addr", addr, "-issuer", "http://" + addr, "-alg", sc.alg,
			"-access-ttl", sc.accessTTL.String(), "-refresh-ttl", sc.refreshTTL.String()}
		if sc.redis != nil {
			a = append(a, "-redis", sc.redis.url())
		}
		if d := sc.docs; d != nil && d.jwks != "" {
			a = append(a, "-jwks-file", d.jwks, "-metadata-file", d.metadata, "-metadata-from", d.issuerURL)
		}
		if sc.users != nil {
			a = append(a, "-users-file", filepath.Join(sc.dir, "users.json"))
			if sc.hashConcurrency != 0 {
				a = append(a, "-hash-concurrency", strconv.Itoa(sc.hashConcurrency))
			}
		}
		return a
	}
	if sc.users != nil {
		if err := writeBaselineUsers(filepath.Join(sc.dir, "users.json"), sc.users.users); err != nil {
			return nil, err
		}
	}
	env := func(int) []string { return append(baseEnv(), "BASELINE_CLIENTS="+string(clients)) }
	p, err := start(ctx, kindBaseline, sc.baselineBin, args, env, sc.serverLog, httpReady)
	if err != nil {
		return nil, err
	}
	t.proc = p
	if err := t.discover(ctx); err != nil {
		p.Stop()
		return nil, err
	}
	return t, nil
}

// discover reads the server's RFC 8414 metadata: the harness needs no path
// beyond it, as the spec promises clients.
func (t *target) discover(ctx context.Context) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+t.proc.addr+"/.well-known/oauth-authorization-server", nil)
	resp, err := setupClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s metadata: %w", t.kind, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s metadata: %s", t.kind, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&t.paths); err != nil {
		return fmt.Errorf("%s metadata: %w", t.kind, err)
	}
	for _, u := range []*string{&t.paths.Token, &t.paths.JWKS, &t.paths.Introspection} {
		p, err := url.Parse(*u)
		if err != nil || p.Host != t.proc.addr {
			return fmt.Errorf("%s metadata: endpoint %q is not on %s", t.kind, *u, t.proc.addr)
		}
		*u = p.RequestURI()
	}
	return nil
}

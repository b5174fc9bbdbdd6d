package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// testToken is the admin token of fakeIssuer; no output may contain it.
const testToken = "adm-7f3c9e1b-never-print-me"

// wireClient is a client as the admin API sends it.
type wireClient struct {
	ClientID                string   `json:"client_id"`
	ClientSecret            string   `json:"client_secret,omitempty"`
	ClientName              string   `json:"client_name"`
	GrantTypes              []string `json:"grant_types"`
	Scope                   string   `json:"scope"`
	Audience                []string `json:"audience"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	IntrospectAll           bool     `json:"introspect_all"`
	ClientIDIssuedAt        int64    `json:"client_id_issued_at"`
	ClientSecretExpiresAt   int64    `json:"client_secret_expires_at"`
}

// wireMetadata is the body of POST and PUT /admin/clients.
type wireMetadata struct {
	ClientName              string   `json:"client_name"`
	GrantTypes              []string `json:"grant_types"`
	Scope                   string   `json:"scope"`
	Audience                []string `json:"audience"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	IntrospectAll           bool     `json:"introspect_all"`
}

type wireKey struct {
	KID       string `json:"kid"`
	Alg       string `json:"alg"`
	State     string `json:"state"`
	CreatedAt string `json:"created_at"`
	NotBefore string `json:"not_before"`
	RetiresAt string `json:"retires_at,omitempty"`
	RemovedAt string `json:"removed_at,omitempty"`
}

// fakeIssuer implements the admin API in memory. It checks the headers and
// request bodies the CLI sends and records them.
type fakeIssuer struct {
	t *testing.T

	mu       sync.Mutex
	clients  map[string]*wireClient
	order    []string
	keys     []wireKey
	serial   int
	requests []string                   // "METHOD /path"
	bodies   map[string]json.RawMessage // last request body by "METHOD /path"
}

func newFakeIssuer(t *testing.T) (*fakeIssuer, *httptest.Server) {
	t.Helper()
	f := &fakeIssuer{
		t:       t,
		clients: map[string]*wireClient{},
		bodies:  map[string]json.RawMessage{},
		keys: []wireKey{
			{KID: "k1", Alg: "ES256", State: "current", CreatedAt: "2025-01-01T00:00:00Z", NotBefore: "2025-01-01T00:00:00Z", RetiresAt: "2025-01-03T00:00:00Z", RemovedAt: "2025-01-03T00:06:00Z"},
			{KID: "k2", Alg: "ES256", State: "next", CreatedAt: "2025-01-02T00:00:00Z", NotBefore: "2025-01-03T00:00:00Z"},
		},
	}
	srv := httptest.NewServer(f.handler())
	t.Cleanup(srv.Close)
	return f, srv
}

// seed registers a client directly.
func (f *fakeIssuer) seed(c wireClient) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.clients[c.ClientID] = &c
	f.order = append(f.order, c.ClientID)
}

func (f *fakeIssuer) log() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

// body returns the last request body of "METHOD /path" as generic JSON.
func (f *fakeIssuer) body(key string) map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	raw, ok := f.bodies[key]
	if !ok {
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		f.t.Errorf("body of %s: %v", key, err)
	}
	return m
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

func (f *fakeIssuer) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /admin/clients", f.create)
	mux.HandleFunc("GET /admin/clients", func(w http.ResponseWriter, r *http.Request) {
		list := []*wireClient{}
		for _, id := range f.order {
			c := *f.clients[id]
			c.ClientSecret = ""
			list = append(list, &c)
		}
		writeJSON(w, http.StatusOK, map[string]any{"clients": list})
	})
	mux.HandleFunc("GET /admin/clients/{id}", func(w http.ResponseWriter, r *http.Request) {
		c, ok := f.lookup(w, r)
		if !ok {
			return
		}
		out := *c
		out.ClientSecret = ""
		writeJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("PUT /admin/clients/{id}", f.put)
	mux.HandleFunc("DELETE /admin/clients/{id}", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := f.lookup(w, r); !ok {
			return
		}
		id := r.PathValue("id")
		delete(f.clients, id)
		f.order = slices.DeleteFunc(f.order, func(s string) bool { return s == id })
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /admin/clients/{id}/secret", func(w http.ResponseWriter, r *http.Request) {
		c, ok := f.lookup(w, r)
		if !ok {
			return
		}
		f.serial++
		c.ClientSecret = fmt.Sprintf("rotated-secret-%d", f.serial)
		writeJSON(w, http.StatusOK, c)
	})
	mux.HandleFunc("GET /admin/keys", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"keys": f.keys})
	})
	mux.HandleFunc("POST /admin/keys/rotate", func(w http.ResponseWriter, r *http.Request) {
		if nb, _ := io.ReadAll(r.Body); len(nb) > 0 {
			var req struct {
				NotBefore time.Time `json:"not_before"`
			}
			if err := json.Unmarshal(nb, &req); err != nil || req.NotBefore.IsZero() {
				writeError(w, http.StatusBadRequest, "invalid_request", "bad not_before")
				return
			}
			k := wireKey{KID: fmt.Sprintf("k%d", len(f.keys)+1), Alg: "HS256", State: "next", CreatedAt: "2025-02-01T00:00:00Z", NotBefore: req.NotBefore.Format(time.RFC3339)}
			f.keys = append(f.keys, k)
			writeJSON(w, http.StatusCreated, k)
			return
		}
		for i := range f.keys {
			if f.keys[i].State == "current" {
				f.keys[i].State = "retired"
			}
		}
		k := wireKey{KID: fmt.Sprintf("k%d", len(f.keys)+1), Alg: "ES256", State: "current", CreatedAt: "2025-02-01T00:00:00Z", NotBefore: "2025-02-01T00:00:00Z"}
		f.keys = append(f.keys, k)
		writeJSON(w, http.StatusCreated, k)
	})
	mux.HandleFunc("DELETE /admin/keys/{kid}", func(w http.ResponseWriter, r *http.Request) {
		i := slices.IndexFunc(f.keys, func(k wireKey) bool { return k.KID == r.PathValue("kid") })
		if i < 0 {
			writeError(w, http.StatusNotFound, "not_found", "no signing key with this kid")
			return
		}
		revoked := f.keys[i]
		f.keys = slices.Delete(f.keys, i, i+1)
		cur := slices.IndexFunc(f.keys, func(k wireKey) bool { return k.State == "current" })
		if cur < 0 {
			f.keys = append(f.keys, wireKey{KID: fmt.Sprintf("k%d", len(f.keys)+10), Alg: "ES256", State: "current"})
			cur = len(f.keys) - 1
		}
		writeJSON(w, http.StatusOK, map[string]any{"revoked": revoked, "current": f.keys[cur]})
	})
	mux.HandleFunc("GET /admin/keys/{kid}/secret", func(w http.ResponseWriter, r *http.Request) {
		kid := r.PathValue("kid")
		i := slices.IndexFunc(f.keys, func(k wireKey) bool { return k.KID == kid })
		switch {
		case i < 0:
			writeError(w, http.StatusNotFound, "not_found", "no signing key with this kid")
		case f.keys[i].Alg != "HS256":
			writeError(w, http.StatusConflict, "not_symmetric", "this key is asymmetric")
		default:
			writeJSON(w, http.StatusOK, map[string]string{"kty": "oct", "kid": kid, "alg": "HS256", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"})
		}
	})

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		key := r.Method + " " + r.URL.EscapedPath()
		f.requests = append(f.requests, key)
		if got, want := r.Header.Get("User-Agent"), "issuer-cli"; got != want {
			f.t.Errorf("%s: User-Agent = %q, want %q", key, got, want)
		}
		if got, want := r.Header.Get("Content-Type"), "application/json"; got != want {
			f.t.Errorf("%s: Content-Type = %q, want %q", key, got, want)
		}
		if r.Header.Get("Authorization") != "Bearer "+testToken {
			writeError(w, http.StatusUnauthorized, "invalid_token", "the admin token is not valid")
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			f.t.Errorf("%s: reading body: %v", key, err)
		}
		if len(body) > 0 {
			if !json.Valid(body) {
				f.t.Errorf("%s: body is not JSON: %q", key, body)
			}
			f.bodies[key] = body
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		mux.ServeHTTP(w, r)
	})
}

func (f *fakeIssuer) lookup(w http.ResponseWriter, r *http.Request) (*wireClient, bool) {
	c, ok := f.clients[r.PathValue("id")]
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "no client "+r.PathValue("id"))
	}
	return c, ok
}

// decodeStrict decodes a request body, rejecting unknown fields; it answers
// 400 and fails the test on a bad body.
func (f *fakeIssuer) decodeStrict(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		f.t.Errorf("%s %s: bad body: %v", r.Method, r.URL.Path, err)
		writeError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return false
	}
	return true
}

func (f *fakeIssuer) create(w http.ResponseWriter, r *http.Request) {
	md := wireMetadata{
		GrantTypes:              []string{"client_credentials", "refresh_token"},
		TokenEndpointAuthMethod: "client_secret_basic",
		Audience:                []string{},
	}
	if !f.decodeStrict(w, r, &md) {
		return
	}
	f.serial++
	c := &wireClient{
		ClientID:                fmt.Sprintf("client-%d", f.serial),
		ClientSecret:            fmt.Sprintf("secret-%d-0123456789abcdef", f.serial),
		ClientName:              md.ClientName,
		GrantTypes:              md.GrantTypes,
		Scope:                   md.Scope,
		Audience:                md.Audience,
		TokenEndpointAuthMethod: md.TokenEndpointAuthMethod,
		ClientIDIssuedAt:        1735689600,
	}
	f.clients[c.ClientID] = c
	f.order = append(f.order, c.ClientID)
	writeJSON(w, http.StatusCreated, c)
}

func (f *fakeIssuer) put(w http.ResponseWriter, r *http.Request) {
	c, ok := f.lookup(w, r)
	if !ok {
		return
	}
	raw, _ := io.ReadAll(r.Body)
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		f.t.Errorf("PUT body: %v", err)
	}
	for _, k := range []string{"client_name", "grant_types", "scope", "audience", "token_endpoint_auth_method", "introspect_all"} {
		if v, ok := fields[k]; !ok || string(v) == "null" {
			f.t.Errorf("PUT body lacks %s: %s", k, raw)
		}
	}
	r.Body = io.NopCloser(bytes.NewReader(raw))
	var md wireMetadata
	if !f.decodeStrict(w, r, &md) {
		return
	}
	c.ClientName, c.GrantTypes, c.Scope, c.Audience, c.TokenEndpointAuthMethod = md.ClientName, md.GrantTypes, md.Scope, md.Audience, md.TokenEndpointAuthMethod
	out := *c
	out.ClientSecret = ""
	writeJSON(w, http.StatusOK, out)
}

var billing = wireClient{
	ClientID:                "c-billing",
	ClientName:              "billing",
	GrantTypes:              []string{"client_credentials", "refresh_token"},
	Scope:                   "read",
	Audience:                []string{"https://api.example.com"},
	TokenEndpointAuthMethod: "client_secret_basic",
	ClientIDIssuedAt:        1735689600,
}

type cliResult struct {
	code           int
	stdout, stderr string
}

type runner func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int

// runCLI runs a CLI entry point and checks that no admin token it was given
// shows up in its output.
func runCLI(t *testing.T, run runner, env map[string]string, args ...string) cliResult {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), args, func(k string) string { return env[k] }, &stdout, &stderr)
	res := cliResult{code: code, stdout: stdout.String(), stderr: stderr.String()}
	secrets := []string{testToken, env["ISSUER_ADMIN_TOKEN"]}
	for i, a := range args {
		if (a == "--admin-token" || a == "-admin-token") && i+1 < len(args) {
			secrets = append(secrets, args[i+1])
		}
		if v, ok := strings.CutPrefix(a, "--admin-token="); ok {
			secrets = append(secrets, v)
		}
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(res.stdout+res.stderr, s) {
			t.Errorf("output of %q contains the admin token %q:\nstdout:\n%s\nstderr:\n%s", args, s, res.stdout, res.stderr)
		}
	}
	return res
}

func envFor(srv *httptest.Server) map[string]string {
	return map[string]string{"ISSUER_URL": srv.URL, "ISSUER_ADMIN_TOKEN": testToken}
}

func TestClientsCreate(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		noEnv    bool           // pass --url and --admin-token instead of the environment
		wantBody map[string]any // the POST body
		wantJSON bool
	}{
		{
			name:     "name only",
			args:     []string{"create", "--name", "billing"},
			wantBody: map[string]any{"client_name": "billing"},
		},
		{
			name: "every field",
			args: []string{"create", "--name", "billing", "--scope", " read  write ", "--audience", "https://a.example", "-audience=https://b.example",
				"--grant-types", "client_credentials, refresh_token", "--auth-method", "client_secret_post"},
			wantBody: map[string]any{
				"client_name":                "billing",
				"scope":                      "read write",
				"audience":                   []any{"https://a.example", "https://b.example"},
				"grant_types":                []any{"client_credentials", "refresh_token"},
				"token_endpoint_auth_method": "client_secret_post",
			},
		},
		{
			name:     "json",
			args:     []string{"create", "--json", "--name", "billing", "--scope", "read"},
			wantBody: map[string]any{"client_name": "billing", "scope": "read"},
			wantJSON: true,
		},
		{
			name:     "flags instead of environment",
			args:     []string{"create", "--name=billing"},
			noEnv:    true,
			wantBody: map[string]any{"client_name": "billing"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, srv := newFakeIssuer(t)
			env, args := envFor(srv), tt.args
			if tt.noEnv {
				env = nil
				args = append(slices.Clone(args), "--url", srv.URL+"/", "--admin-token", testToken)
			}
			res := runCLI(t, runClients, env, args...)
			if res.code != 0 {
				t.Fatalf("exit code = %d, want 0; stderr:\n%s", res.code, res.stderr)
			}
			if got, want := f.body("POST /admin/clients"), tt.wantBody; !reflect.DeepEqual(got, want) {
				t.Errorf("request body = %v, want %v", got, want)
			}
			if got, want := res.stderr, "Store the secret now: it is shown only once.\n"; got != want {
				t.Errorf("stderr = %q, want %q", got, want)
			}
			if tt.wantJSON {
				var got wireClient
				if err := json.Unmarshal([]byte(res.stdout), &got); err != nil {
					t.Fatalf("stdout is not JSON: %v\n%s", err, res.stdout)
				}
				if got.ClientID != "client-1" || got.ClientSecret != "secret-1-0123456789abcdef" || got.Scope != "read" {
					t.Errorf("stdout JSON = %+v, want client-1 with its secret and scope read", got)
				}
				if !strings.Contains(res.stdout, "\n  \"client_id\"") {
					t.Errorf("stdout JSON is not indented:\n%s", res.stdout)
				}
				return
			}
			if got, want := res.stdout, "client_id: client-1\nclient_secret: secret-1-0123456789abcdef\n"; got != want {
				t.Errorf("stdout = %q, want %q", got, want)
			}
		})
	}
}

func TestClientsList(t *testing.T) {
	t.Run("table", func(t *testing.T) {
		f, srv := newFakeIssuer(t)
		f.seed(billing)
		f.seed(wireClient{ClientID: "c-reports", ClientName: "nightly reports", Audience: []string{"https://a", "https://b"}})
		res := runCLI(t, runClients, envFor(srv), "list")
		if res.code != 0 || res.stderr != "" {
			t.Fatalf("exit code = %d, stderr = %q; want 0 and nothing", res.code, res.stderr)
		}
		want := []string{
			"CLIENT_ID  NAME             SCOPE  AUDIENCE",
			"c-billing  billing          read   https://api.example.com",
			"c-reports  nightly reports  -      https://a,https://b",
		}
		if got := strings.Split(strings.TrimSuffix(res.stdout, "\n"), "\n"); !slices.Equal(got, want) {
			t.Errorf("stdout =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
	t.Run("json", func(t *testing.T) {
		f, srv := newFakeIssuer(t)
		f.seed(billing)
		res := runCLI(t, runClients, envFor(srv), "list", "--json")
		if res.code != 0 {
			t.Fatalf("exit code = %d, want 0; stderr:\n%s", res.code, res.stderr)
		}
		var got struct{ Clients []wireClient }
		if err := json.Unmarshal([]byte(res.stdout), &got); err != nil {
			t.Fatalf("stdout is not JSON: %v\n%s", err, res.stdout)
		}
		if want := []wireClient{billing}; !reflect.DeepEqual(got.Clients, want) {
			t.Errorf("clients = %+v, want %+v", got.Clients, want)
		}
	})
	t.Run("empty", func(t *testing.T) {
		_, srv := newFakeIssuer(t)
		res := runCLI(t, runClients, envFor(srv), "list")
		if res.code != 0 || res.stdout != "" || !strings.Contains(res.stderr, "issuer clients create") {
			t.Errorf("got exit %d, stdout %q, stderr %q; want 0, nothing, a hint to create a client", res.code, res.stdout, res.stderr)
		}
	})
}

func TestClientsGet(t *testing.T) {
	const human = `client_id: c-billing
client_name: billing
grant_types: client_credentials,refresh_token
scope: read
audience: https://api.example.com
token_endpoint_auth_method: client_secret_basic
introspect_all: false
client_id_issued_at: 2025-01-01T00:00:00Z
client_secret_expires_at: never
`
	tests := []struct {
		name     string
		args     []string
		wantJSON bool
	}{
		{"id", []string{"get", "c-billing"}, false},
		{"id before flags", []string{"get", "c-billing", "--json"}, true},
		{"id after flags", []string{"get", "--json", "c-billing"}, true},
		{"id between flags", []string{"get", "--timeout", "5s", "c-billing", "--json"}, true},
		{"id after --", []string{"get", "--", "c-billing"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, srv := newFakeIssuer(t)
			f.seed(billing)
			res := runCLI(t, runClients, envFor(srv), tt.args...)
			if res.code != 0 || res.stderr != "" {
				t.Fatalf("exit code = %d, stderr = %q; want 0 and nothing", res.code, res.stderr)
			}
			if got, want := f.log(), []string{"GET /admin/clients/c-billing"}; !slices.Equal(got, want) {
				t.Errorf("requests = %q, want %q", got, want)
			}
			if !tt.wantJSON {
				if got, want := res.stdout, human; got != want {
					t.Errorf("stdout =\n%s\nwant\n%s", got, want)
				}
				return
			}
			var got wireClient
			if err := json.Unmarshal([]byte(res.stdout), &got); err != nil {
				t.Fatalf("stdout is not JSON: %v\n%s", err, res.stdout)
			}
			if !reflect.DeepEqual(got, billing) {
				t.Errorf("stdout JSON = %+v, want %+v", got, billing)
			}
		})
	}
}

func TestClientsUpdate(t *testing.T) {
	base := map[string]any{
		"client_name":                "billing",
		"grant_types":                []any{"client_credentials", "refresh_token"},
		"scope":                      "read",
		"audience":                   []any{"https://api.example.com"},
		"token_endpoint_auth_method": "client_secret_basic",
		"introspect_all":             false,
	}
	with := func(changes map[string]any) map[string]any {
		m := map[string]any{}
		for k, v := range base {
			m[k] = v
		}
		for k, v := range changes {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name string
		args []string
		want map[string]any // PUT body
	}{
		{"scope", []string{"update", "c-billing", "--scope", "read write"}, with(map[string]any{"scope": "read write"})},
		{"clear scope", []string{"update", "c-billing", "--scope", ""}, with(map[string]any{"scope": ""})},
		{"audience replaces", []string{"update", "--audience", "https://b", "--audience", "https://c", "c-billing"},
			with(map[string]any{"audience": []any{"https://b", "https://c"}})},
		{"audience cleared", []string{"update", "c-billing", "--audience", ""}, with(map[string]any{"audience": []any{}})},
		{"name and auth method", []string{"update", "--name", "billing-v2", "c-billing", "--auth-method", "client_secret_post"},
			with(map[string]any{"client_name": "billing-v2", "token_endpoint_auth_method": "client_secret_post"})},
		{"grant types", []string{"update", "c-billing", "--grant-types", "client_credentials"},
			with(map[string]any{"grant_types": []any{"client_credentials"}})},
		{"same value", []string{"update", "c-billing", "--name", "billing"}, base},
		{"introspect all", []string{"update", "c-billing", "--introspect-all"}, with(map[string]any{"introspect_all": true})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, srv := newFakeIssuer(t)
			f.seed(billing)
			res := runCLI(t, runClients, envFor(srv), tt.args...)
			if res.code != 0 {
				t.Fatalf("exit code = %d, want 0; stderr:\n%s", res.code, res.stderr)
			}
			if got, want := f.log(), []string{"GET /admin/clients/c-billing", "PUT /admin/clients/c-billing"}; !slices.Equal(got, want) {
				t.Errorf("requests = %q, want %q", got, want)
			}
			if got := f.body("PUT /admin/clients/c-billing"); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("PUT body = %v, want %v", got, tt.want)
			}
			if !strings.HasPrefix(res.stdout, "client_id: c-billing\n") {
				t.Errorf("stdout = %q, want the updated client", res.stdout)
			}
		})
	}
	t.Run("json", func(t *testing.T) {
		f, srv := newFakeIssuer(t)
		f.seed(billing)
		res := runCLI(t, runClients, envFor(srv), "update", "c-billing", "--scope", "write", "--json")
		var got wireClient
		if err := json.Unmarshal([]byte(res.stdout), &got); err != nil || res.code != 0 {
			t.Fatalf("exit %d, stdout not JSON (%v):\n%s", res.code, err, res.stdout)
		}
		if got.Scope != "write" || got.ClientName != "billing" {
			t.Errorf("updated client = %+v, want scope write and name billing", got)
		}
	})
}

func TestClientsRotateSecret(t *testing.T) {
	f, srv := newFakeIssuer(t)
	f.seed(billing)
	res := runCLI(t, runClients, envFor(srv), "rotate-secret", "c-billing")
	if res.code != 0 {
		t.Fatalf("exit code = %d, want 0; stderr:\n%s", res.code, res.stderr)
	}
	if got, want := res.stdout, "client_id: c-billing\nclient_secret: rotated-secret-1\n"; got != want {
		t.Errorf("stdout = %q, want %q", got, want)
	}
	if got, want := res.stderr, "Store the secret now: it is shown only once.\n"; got != want {
		t.Errorf("stderr = %q, want %q", got, want)
	}
	if got, want := f.log(), []string{"POST /admin/clients/c-billing/secret"}; !slices.Equal(got, want) {
		t.Errorf("requests = %q, want %q", got, want)
	}

	res = runCLI(t, runClients, envFor(srv), "rotate-secret", "--json", "c-billing")
	var got wireClient
	if err := json.Unmarshal([]byte(res.stdout), &got); err != nil || res.code != 0 {
		t.Fatalf("exit %d, stdout not JSON (%v):\n%s", res.code, err, res.stdout)
	}
	if got.ClientSecret != "rotated-secret-2" {
		t.Errorf("client_secret = %q, want %q", got.ClientSecret, "rotated-secret-2")
	}
}

func TestClientsDelete(t *testing.T) {
	f, srv := newFakeIssuer(t)
	f.seed(billing)
	f.seed(wireClient{ClientID: "c/odd id"})
	res := runCLI(t, runClients, envFor(srv), "delete", "c-billing")
	if res.code != 0 || res.stderr != "" {
		t.Fatalf("exit code = %d, stderr = %q; want 0 and nothing", res.code, res.stderr)
	}
	if got, want := res.stdout, "deleted client c-billing\n"; got != want {
		t.Errorf("stdout = %q, want %q", got, want)
	}

	res = runCLI(t, runClients, envFor(srv), "delete", "--json", "c/odd id")
	var got struct {
		ClientID string `json:"client_id"`
		Deleted  bool   `json:"deleted"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &got); err != nil || res.code != 0 {
		t.Fatalf("exit %d, stdout not JSON (%v):\n%s", res.code, err, res.stdout)
	}
	if got.ClientID != "c/odd id" || !got.Deleted {
		t.Errorf("stdout JSON = %+v, want client_id %q deleted", got, "c/odd id")
	}
	if got, want := f.log(), []string{"DELETE /admin/clients/c-billing", "DELETE /admin/clients/c%2Fodd%20id"}; !slices.Equal(got, want) {
		t.Errorf("requests = %q, want %q", got, want)
	}

	res = runCLI(t, runClients, envFor(srv), "get", "c-billing")
	if res.code != 1 || !strings.Contains(res.stderr, "404: not_found") {
		t.Errorf("get after delete: exit %d, stderr %q; want 1 and 404 not_found", res.code, res.stderr)
	}
}

func TestKeys(t *testing.T) {
	f, srv := newFakeIssuer(t)
	res := runCLI(t, runKeys, envFor(srv), "list")
	if res.code != 0 || res.stderr != "" {
		t.Fatalf("exit code = %d, stderr = %q; want 0 and nothing", res.code, res.stderr)
	}
	want := "KID  ALG    STATE    NOT_BEFORE            RETIRES_AT            REMOVED_AT\n" +
		"k1   ES256  current  2025-01-01T00:00:00Z  2025-01-03T00:00:00Z  2025-01-03T00:06:00Z\n" +
		"k2   ES256  next     2025-01-03T00:00:00Z  -                     -\n"
	if got := res.stdout; got != want {
		t.Errorf("keys list stdout =\n%s\nwant\n%s", got, want)
	}

	res = runCLI(t, runKeys, envFor(srv), "rotate")
	if res.code != 0 {
		t.Fatalf("keys rotate: exit code = %d, want 0; stderr:\n%s", res.code, res.stderr)
	}
	if !strings.HasPrefix(res.stdout, "kid: k3\n") || !strings.Contains(res.stdout, "signs new tokens from now on") {
		t.Errorf("keys rotate stdout = %q, want the new kid k3 and that it signs from now on", res.stdout)
	}

	res = runCLI(t, runKeys, envFor(srv), "list", "--json")
	var got struct{ Keys []wireKey }
	if err := json.Unmarshal([]byte(res.stdout), &got); err != nil || res.code != 0 {
		t.Fatalf("exit %d, stdout not JSON (%v):\n%s", res.code, err, res.stdout)
	}
	var states []string
	for _, k := range got.Keys {
		states = append(states, k.KID+"="+k.State)
	}
	if want := []string{"k1=retired", "k2=next", "k3=current"}; !slices.Equal(states, want) {
		t.Errorf("key states = %q, want %q", states, want)
	}

	res = runCLI(t, runKeys, envFor(srv), "rotate", "--json")
	var k wireKey
	if err := json.Unmarshal([]byte(res.stdout), &k); err != nil || res.code != 0 || k.KID != "k4" {
		t.Errorf("keys rotate --json: exit %d, key %+v (%v); want 0 and k4", res.code, k, err)
	}
	if got, want := f.log(), []string{"GET /admin/keys", "POST /admin/keys/rotate", "GET /admin/keys", "POST /admin/keys/rotate"}; !slices.Equal(got, want) {
		t.Errorf("requests = %q, want %q", got, want)
	}
}

// closedURL returns the URL of a port that nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + l.Addr().String()
	l.Close()
	return u
}

func TestErrors(t *testing.T) {
	hanging := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	tests := []struct {
		name       string
		run        runner
		args       []string
		env        map[string]string // nil: the fake issuer's URL and token
		handler    http.Handler      // instead of the fake issuer
		wantCode   int
		wantStderr []string // substrings
		wantNoReqs bool     // the CLI must not call the server
	}{
		{
			name:       "wrong token",
			run:        runClients,
			args:       []string{"list", "--admin-token", "wrong-token-1234"},
			wantCode:   1,
			wantStderr: []string{"issuer: 401: invalid_token: the admin token is not valid", "--admin-token", "ISSUER_ADMIN_TOKEN"},
		},
		{
			name:       "wrong token in environment",
			run:        runKeys,
			args:       []string{"rotate"},
			env:        map[string]string{"ISSUER_ADMIN_TOKEN": "env-wrong-token-5678"},
			wantCode:   1,
			wantStderr: []string{"issuer: 401: invalid_token"},
		},
		{
			name:       "unknown client",
			run:        runClients,
			args:       []string{"get", "nope"},
			wantCode:   1,
			wantStderr: []string{"issuer: 404: not_found: no client nope\n"},
		},
		{
			name:       "update unknown client",
			run:        runClients,
			args:       []string{"update", "nope", "--scope", "read"},
			wantCode:   1,
			wantStderr: []string{"issuer: 404: not_found"},
		},
		{
			name:       "unreachable",
			run:        runClients,
			args:       []string{"list"},
			env:        map[string]string{"ISSUER_URL": closedURL(t), "ISSUER_ADMIN_TOKEN": testToken},
			wantCode:   1,
			wantStderr: []string{"is not reachable", "connection refused", "is it running?", "--url"},
		},
		{
			name:       "timeout",
			run:        runKeys,
			args:       []string{"list", "--timeout", "50ms"},
			handler:    hanging,
			wantCode:   1,
			wantStderr: []string{"did not answer within 50ms", "--timeout"},
		},
		{
			name:       "admin API off",
			run:        runClients,
			args:       []string{"list"},
			handler:    http.NotFoundHandler(),
			wantCode:   1,
			wantStderr: []string{"issuer: 404: Not Found", "ISSUER_ADMIN_TOKEN set"},
		},
		{
			name: "server error",
			run:  runClients,
			args: []string{"create", "--name", "x"},
			handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				writeError(w, http.StatusInternalServerError, "server_error", "store unavailable\x1b[2J")
			}),
			wantCode:   1,
			wantStderr: []string{"issuer: 500: server_error: store unavailable?[2J\n"},
		},
		{
			name: "redirect",
			run:  runClients,
			args: []string{"list"},
			handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "https://issuer.example.com/admin/clients", http.StatusPermanentRedirect)
			}),
			wantCode:   1,
			wantStderr: []string{"308", "https://issuer.example.com/admin/clients", "--url"},
		},
		{
			name: "not JSON",
			run:  runClients,
			args: []string{"list"},
			handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "<html>hello</html>")
			}),
			wantCode:   1,
			wantStderr: []string{"without a JSON body"},
		},
		{
			name:       "missing token",
			run:        runClients,
			args:       []string{"list"},
			env:        map[string]string{},
			wantCode:   1,
			wantStderr: []string{"issuer: no admin token: pass --admin-token or set ISSUER_ADMIN_TOKEN\n"},
			wantNoReqs: true,
		},
		{
			name:       "missing token keys",
			run:        runKeys,
			args:       []string{"rotate"},
			env:        map[string]string{},
			wantCode:   1,
			wantStderr: []string{"issuer: no admin token: pass --admin-token or set ISSUER_ADMIN_TOKEN\n"},
			wantNoReqs: true,
		},
		{
			name:       "unknown subcommand",
			run:        runClients,
			args:       []string{"frob"},
			wantCode:   2,
			wantStderr: []string{"issuer: unknown subcommand \"frob\"", "Usage: issuer clients SUBCOMMAND", "rotate-secret ID"},
			wantNoReqs: true,
		},
		{
			name:       "no subcommand",
			run:        runClients,
			wantCode:   2,
			wantStderr: []string{"missing subcommand", "Usage: issuer clients SUBCOMMAND", "create", "delete ID"},
			wantNoReqs: true,
		},
		{
			name:       "keys unknown subcommand",
			run:        runKeys,
			args:       []string{"delete"},
			wantCode:   2,
			wantStderr: []string{"unknown subcommand \"delete\"", "Usage: issuer keys SUBCOMMAND", "rotate"},
			wantNoReqs: true,
		},
		{
			name:       "flag before subcommand",
			run:        runClients,
			args:       []string{"--json", "list"},
			wantCode:   2,
			wantStderr: []string{"flags go after the subcommand"},
			wantNoReqs: true,
		},
		{
			name:       "revoke without kid",
			run:        runKeys,
			args:       []string{"revoke"},
			wantCode:   2,
			wantStderr: []string{"issuer: missing kid", "Usage: issuer keys revoke ID", "issuer keys list"},
			wantNoReqs: true,
		},
		{
			name:       "revoke unknown kid",
			run:        runKeys,
			args:       []string{"revoke", "nope"},
			wantCode:   1,
			wantStderr: []string{"issuer: 404: not_found: no signing key with this kid"},
		},
		{
			name:       "secret of an asymmetric key",
			run:        runKeys,
			args:       []string{"secret", "k1"},
			wantCode:   1,
			wantStderr: []string{"issuer: 409: not_symmetric"},
		},
		{
			name:       "rotate negative --in",
			run:        runKeys,
			args:       []string{"rotate", "--in", "-1h"},
			wantCode:   2,
			wantStderr: []string{"invalid --in -1h0m0s"},
			wantNoReqs: true,
		},
		{
			name:       "get without ID",
			run:        runClients,
			args:       []string{"get", "--json"},
			wantCode:   2,
			wantStderr: []string{"issuer: missing client ID", "Usage: issuer clients get ID"},
			wantNoReqs: true,
		},
		{
			name:       "update without ID",
			run:        runClients,
			args:       []string{"update", "--scope", "read"},
			wantCode:   2,
			wantStderr: []string{"missing client ID"},
			wantNoReqs: true,
		},
		{
			name:       "rotate-secret without ID",
			run:        runClients,
			args:       []string{"rotate-secret"},
			wantCode:   2,
			wantStderr: []string{"missing client ID"},
			wantNoReqs: true,
		},
		{
			name:       "delete without ID",
			run:        runClients,
			args:       []string{"delete"},
			wantCode:   2,
			wantStderr: []string{"missing client ID"},
			wantNoReqs: true,
		},
		{
			name:       "two IDs",
			run:        runClients,
			args:       []string{"get", "a", "b"},
			wantCode:   2,
			wantStderr: []string{"unexpected argument \"b\""},
			wantNoReqs: true,
		},
		{
			name:       "ID for list",
			run:        runClients,
			args:       []string{"list", "x"},
			wantCode:   2,
			wantStderr: []string{"unexpected argument \"x\""},
			wantNoReqs: true,
		},
		{
			name:       "unknown flag",
			run:        runClients,
			args:       []string{"list", "--nope"},
			wantCode:   2,
			wantStderr: []string{"flag provided but not defined: -nope", "Usage: issuer clients list"},
			wantNoReqs: true,
		},
		{
			name:       "create without name",
			run:        runClients,
			args:       []string{"create", "--scope", "read"},
			wantCode:   2,
			wantStderr: []string{"missing --name", "Usage: issuer clients create"},
			wantNoReqs: true,
		},
		{
			name:       "bad auth method",
			run:        runClients,
			args:       []string{"create", "--name", "x", "--auth-method", "private_key_jwt"},
			wantCode:   2,
			wantStderr: []string{"invalid --auth-method \"private_key_jwt\": use client_secret_basic or client_secret_post"},
			wantNoReqs: true,
		},
		{
			name:       "update without changes",
			run:        runClients,
			args:       []string{"update", "c-billing", "--json"},
			wantCode:   2,
			wantStderr: []string{"nothing to update"},
			wantNoReqs: true,
		},
		{
			name:       "bad url flag",
			run:        runKeys,
			args:       []string{"list", "--url", "localhost:8080"},
			wantCode:   2,
			wantStderr: []string{"invalid --url \"localhost:8080\""},
			wantNoReqs: true,
		},
		{
			name:       "bad url environment",
			run:        runKeys,
			args:       []string{"list"},
			env:        map[string]string{"ISSUER_URL": "ftp://x", "ISSUER_ADMIN_TOKEN": testToken},
			wantCode:   2,
			wantStderr: []string{"invalid ISSUER_URL \"ftp://x\""},
			wantNoReqs: true,
		},
		{
			name:       "bad timeout",
			run:        runKeys,
			args:       []string{"list", "--timeout", "soon"},
			wantCode:   2,
			wantStderr: []string{"invalid value \"soon\" for flag -timeout"},
			wantNoReqs: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, srv := newFakeIssuer(t)
			f.seed(billing)
			if tt.handler != nil {
				srv = httptest.NewServer(tt.handler)
				t.Cleanup(srv.Close)
			}
			env := envFor(srv)
			if tt.env != nil {
				env = tt.env
				if _, ok := env["ISSUER_URL"]; !ok {
					env["ISSUER_URL"] = srv.URL
				}
			}
			res := runCLI(t, tt.run, env, tt.args...)
			if res.code != tt.wantCode {
				t.Errorf("exit code = %d, want %d; stderr:\n%s", res.code, tt.wantCode, res.stderr)
			}
			if res.stdout != "" {
				t.Errorf("stdout = %q, want nothing", res.stdout)
			}
			for _, want := range tt.wantStderr {
				if !strings.Contains(res.stderr, want) {
					t.Errorf("stderr =\n%s\nwant it to contain %q", res.stderr, want)
				}
			}
			if tt.wantCode == 1 && strings.Count(res.stderr, "\n") != 1 {
				t.Errorf("stderr =\n%s\nwant one line", res.stderr)
			}
			if got := f.log(); tt.wantNoReqs && len(got) > 0 {
				t.Errorf("requests = %q, want none", got)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	tests := []struct {
		name       string
		run        runner
		args       []string
		wantStdout string
		wantStderr string
	}{
		{"clients help", runClients, []string{"help"}, "Usage: issuer clients SUBCOMMAND", ""},
		{"clients -h", runClients, []string{"-h"}, "--admin-token TOKEN", ""},
		{"keys --help", runKeys, []string{"--help"}, "Usage: issuer keys SUBCOMMAND", ""},
		{"create -h", runClients, []string{"create", "-h"}, "", "Usage: issuer clients create --name NAME"},
		{"update -h", runClients, []string{"update", "-h"}, "", "--audience \"\" clears it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := runCLI(t, tt.run, map[string]string{"ISSUER_ADMIN_TOKEN": testToken}, tt.args...)
			if res.code != 0 {
				t.Errorf("exit code = %d, want 0", res.code)
			}
			if !strings.Contains(res.stdout, tt.wantStdout) || !strings.Contains(res.stderr, tt.wantStderr) {
				t.Errorf("stdout =\n%s\nstderr =\n%s\nwant them to contain %q and %q", res.stdout, res.stderr, tt.wantStdout, tt.wantStderr)
			}
		})
	}
}

func TestParseInterspersed(t *testing.T) {
	tests := []struct {
		args     []string
		wantPos  []string
		wantJSON bool
		wantName string
	}{
		{nil, nil, false, ""},
		{[]string{"ID"}, []string{"ID"}, false, ""},
		{[]string{"ID", "--json"}, []string{"ID"}, true, ""},
		{[]string{"--json", "ID"}, []string{"ID"}, true, ""},
		{[]string{"--name", "n", "ID", "--json"}, []string{"ID"}, true, "n"},
		{[]string{"ID", "--name=n", "X", "--json"}, []string{"ID", "X"}, true, "n"},
		{[]string{"--", "--json"}, []string{"--json"}, false, ""},
		{[]string{"ID", "--", "--json"}, []string{"ID", "--json"}, false, ""},
		{[]string{"-", "--json"}, []string{"-"}, true, ""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			js := fs.Bool("json", false, "")
			name := fs.String("name", "", "")
			got, err := parseInterspersed(fs, tt.args)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.wantPos) || *js != tt.wantJSON || *name != tt.wantName {
				t.Errorf("positional %q, json %v, name %q; want %q, %v, %q", got, *js, *name, tt.wantPos, tt.wantJSON, tt.wantName)
			}
		})
	}
}

func TestClean(t *testing.T) {
	if got, want := clean("a\x1b[31mb\nc\té"), "a?[31mb?c?é"; got != want {
		t.Errorf("clean = %q, want %q", got, want)
	}
	if got, want := cell(""), "-"; got != want {
		t.Errorf("cell(\"\") = %q, want %q", got, want)
	}
}

func TestKeysRevokeSecretSchedule(t *testing.T) {
	f, srv := newFakeIssuer(t)
	res := runCLI(t, runKeys, envFor(srv), "rotate", "--in", "24h")
	if res.code != 0 || !strings.HasPrefix(res.stdout, "kid: k3\n") || !strings.Contains(res.stdout, "starts signing at") ||
		!strings.Contains(res.stderr, "issuer keys secret k3") {
		t.Errorf("rotate --in: exit %d\nstdout %q\nstderr %q", res.code, res.stdout, res.stderr)
	}
	nb, _ := time.Parse(time.RFC3339, f.body("POST /admin/keys/rotate")["not_before"].(string))
	if d := time.Until(nb); d < 23*time.Hour || d > 25*time.Hour {
		t.Errorf("not_before sent = %v, want about 24h from now", nb)
	}

	res = runCLI(t, runKeys, envFor(srv), "secret", "k3")
	var jwk map[string]string
	if err := json.Unmarshal([]byte(res.stdout), &jwk); err != nil || res.code != 0 || jwk["kty"] != "oct" || jwk["kid"] != "k3" || jwk["k"] == "" {
		t.Errorf("secret: exit %d, stdout %q (%v); want the oct JWK", res.code, res.stdout, err)
	}
	if !strings.Contains(res.stderr, "whoever has it can mint tokens") {
		t.Errorf("secret: stderr %q, want a warning", res.stderr)
	}

	res = runCLI(t, runKeys, envFor(srv), "revoke", "k1")
	if res.code != 0 || !strings.Contains(res.stdout, "revoked: k1\n") || !strings.Contains(res.stdout, "current: k") ||
		!strings.Contains(res.stdout, "until their cache expires") {
		t.Errorf("revoke: exit %d\nstdout %q\nstderr %q", res.code, res.stdout, res.stderr)
	}
	res = runCLI(t, runKeys, envFor(srv), "revoke", "k2", "--json")
	var out struct{ Revoked, Current wireKey }
	if err := json.Unmarshal([]byte(res.stdout), &out); err != nil || out.Revoked.KID != "k2" {
		t.Errorf("revoke --json: %q (%v)", res.stdout, err)
	}
	want := []string{"POST /admin/keys/rotate", "GET /admin/keys/k3/secret", "DELETE /admin/keys/k1", "DELETE /admin/keys/k2"}
	if got := f.log(); !slices.Equal(got, want) {
		t.Errorf("requests = %q, want %q", got, want)
	}
}

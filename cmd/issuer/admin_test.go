package main

// The CLI's admin commands, tested against the real admin API: a real
// issuer (server.New) behind httptest that records the requests it gets.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/issuer-oauth/issuer/internal/adminapi"
	"github.com/issuer-oauth/issuer/internal/config"
)

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
	secrets := []string{adminToken, env["ISSUER_ADMIN_TOKEN"]}
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

// billing is the client most tests start from.
var billing = adminapi.ClientMetadata{
	ClientName: "billing",
	Scope:      "read",
	Audience:   []string{"https://api.example.com"},
}

// secretLines parses the text output of create and rotate-secret.
func secretLines(t *testing.T, stdout string) (id, sec string) {
	t.Helper()
	if _, err := fmt.Sscanf(stdout, "client_id: %s\nclient_secret: %s\n", &id, &sec); err != nil || len(sec) < 43 {
		t.Fatalf("stdout = %q, want client_id and client_secret lines", stdout)
	}
	return id, sec
}

// requestBody decodes the last body of "METHOD /path" as generic JSON.
func requestBody(t *testing.T, ts *testServer, key string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(ts.body(key), &m); err != nil {
		t.Fatalf("body of %s: %v", key, err)
	}
	return m
}

// changed returns a copy of the JSON object base with the members of
// changes set, or removed where they are nil.
func changed(base, changes map[string]any) map[string]any {
	m := maps.Clone(base)
	for k, v := range changes {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	return m
}

func TestClientsCreate(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		noEnv    bool                    // pass --url and --admin-token instead of the environment
		want     adminapi.ClientMetadata // the client registered, with the server's defaults
		wantJSON bool
	}{
		{
			name: "defaults",
			args: []string{"create", "--name", "billing", "--audience", "https://a.example"},
			want: adminapi.ClientMetadata{ClientName: "billing", GrantTypes: []string{"client_credentials", "refresh_token"},
				Audience: []string{"https://a.example"}, TokenEndpointAuthMethod: "client_secret_basic"},
		},
		{
			name: "every field",
			args: []string{"create", "--name", "billing", "--scope", " read  write ", "--audience", "https://a.example", "-audience=https://b.example",
				"--grant-types", "client_credentials, refresh_token", "--auth-method", "client_secret_post", "--introspect-all", "--dpop-bound-access-tokens"},
			want: adminapi.ClientMetadata{ClientName: "billing", GrantTypes: []string{"client_credentials", "refresh_token"}, Scope: "read write",
				Audience: []string{"https://a.example", "https://b.example"}, TokenEndpointAuthMethod: "client_secret_post", IntrospectAll: true,
				DPoPBoundAccessTokens: true},
		},
		{
			name: "json",
			args: []string{"create", "--json", "--name", "billing", "--scope", "read", "--audience", "https://a.example", "--grant-types", "client_credentials"},
			want: adminapi.ClientMetadata{ClientName: "billing", GrantTypes: []string{"client_credentials"}, Scope: "read",
				Audience: []string{"https://a.example"}, TokenEndpointAuthMethod: "client_secret_basic"},
			wantJSON: true,
		},
		{
			name:  "flags instead of environment",
			args:  []string{"create", "--name=billing", "--audience=https://a.example"},
			noEnv: true,
			want: adminapi.ClientMetadata{ClientName: "billing", GrantTypes: []string{"client_credentials", "refresh_token"},
				Audience: []string{"https://a.example"}, TokenEndpointAuthMethod: "client_secret_basic"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t)
			env, args := ts.env(), tt.args
			if tt.noEnv {
				env = nil
				args = append(slices.Clone(args), "--url", ts.URL+"/", "--admin-token", adminToken)
			}
			res := runCLI(t, runClients, env, args...)
			if res.code != 0 {
				t.Fatalf("exit code = %d, want 0; stderr:\n%s", res.code, res.stderr)
			}
			if got, want := ts.log(), []string{"POST /admin/clients"}; !slices.Equal(got, want) {
				t.Errorf("requests = %q, want %q", got, want)
			}
			if got, want := res.stderr, "Store the secret now: it is shown only once.\n"; got != want {
				t.Errorf("stderr = %q, want %q", got, want)
			}
			var id string
			if tt.wantJSON {
				var got adminapi.ClientInfo
				if err := json.Unmarshal([]byte(res.stdout), &got); err != nil {
					t.Fatalf("stdout is not JSON: %v\n%s", err, res.stdout)
				}
				if got.ClientID == "" || len(got.ClientSecret) < 43 || !reflect.DeepEqual(got.ClientMetadata, tt.want) {
					t.Errorf("stdout JSON = %+v, want a client_id, its secret and %+v", got, tt.want)
				}
				if !strings.Contains(res.stdout, "\n  \"client_id\"") {
					t.Errorf("stdout JSON is not indented:\n%s", res.stdout)
				}
				id = got.ClientID
			} else {
				id, _ = secretLines(t, res.stdout)
			}
			got, err := ts.api().GetClient(t.Context(), id)
			if err != nil || !reflect.DeepEqual(got.ClientMetadata, tt.want) {
				t.Errorf("registered client = %+v, %v; want %+v", got.ClientMetadata, err, tt.want)
			}
		})
	}
}

func TestClientsList(t *testing.T) {
	t.Run("table", func(t *testing.T) {
		ts := startServer(t)
		a := ts.createClient(t, billing)
		b := ts.createClient(t, adminapi.ClientMetadata{ClientName: "nightly reports", Audience: []string{"https://a", "https://b"}})
		res := runCLI(t, runClients, ts.env(), "list")
		if res.code != 0 || res.stderr != "" {
			t.Fatalf("exit code = %d, stderr = %q; want 0 and nothing", res.code, res.stderr)
		}
		rows := []string{
			a.ClientID + "  billing          read   https://api.example.com",
			b.ClientID + "  nightly reports  -      https://a,https://b",
		}
		slices.Sort(rows) // ordered by client id
		want := append([]string{"CLIENT_ID" + strings.Repeat(" ", len(a.ClientID)-len("CLIENT_ID")) + "  NAME             SCOPE  AUDIENCE"}, rows...)
		if got := strings.Split(strings.TrimSuffix(res.stdout, "\n"), "\n"); !slices.Equal(got, want) {
			t.Errorf("stdout =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
	t.Run("json", func(t *testing.T) {
		ts := startServer(t)
		c := ts.createClient(t, billing)
		c.ClientSecret = ""
		res := runCLI(t, runClients, ts.env(), "list", "--json")
		if res.code != 0 {
			t.Fatalf("exit code = %d, want 0; stderr:\n%s", res.code, res.stderr)
		}
		var got adminapi.ClientList
		if err := json.Unmarshal([]byte(res.stdout), &got); err != nil {
			t.Fatalf("stdout is not JSON: %v\n%s", err, res.stdout)
		}
		if want := []adminapi.ClientInfo{c}; !reflect.DeepEqual(got.Clients, want) {
			t.Errorf("clients = %+v, want %+v", got.Clients, want)
		}
	})
	t.Run("empty", func(t *testing.T) {
		ts := startServer(t)
		res := runCLI(t, runClients, ts.env(), "list")
		if res.code != 0 || res.stdout != "" || !strings.Contains(res.stderr, "issuer clients create") {
			t.Errorf("got exit %d, stdout %q, stderr %q; want 0, nothing, a hint to create a client", res.code, res.stdout, res.stderr)
		}
	})
}

func TestClientsGet(t *testing.T) {
	ts := startServer(t)
	c := ts.createClient(t, billing)
	c.ClientSecret = ""
	human := "client_id: " + c.ClientID + `
client_name: billing
grant_types: client_credentials,refresh_token
scope: read
audience: https://api.example.com
token_endpoint_auth_method: client_secret_basic
introspect_all: false
dpop_bound_access_tokens: false
client_id_issued_at: ` + time.Unix(c.ClientIDIssuedAt, 0).UTC().Format(time.RFC3339) + `
client_secret_expires_at: never
disabled: false
access_token_ttl: server default
refresh_token_ttl: server default
refresh_token_max_lifetime: server default
refresh_token_reuse_interval: none
token_quota_per_minute: server default
`
	tests := []struct {
		name     string
		args     []string
		wantJSON bool
	}{
		{"id", []string{"get", c.ClientID}, false},
		{"id before flags", []string{"get", c.ClientID, "--json"}, true},
		{"id after flags", []string{"get", "--json", c.ClientID}, true},
		{"id between flags", []string{"get", "--timeout", "5s", c.ClientID, "--json"}, true},
		{"id after --", []string{"get", "--", c.ClientID}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := runCLI(t, runClients, ts.env(), tt.args...)
			if res.code != 0 || res.stderr != "" {
				t.Fatalf("exit code = %d, stderr = %q; want 0 and nothing", res.code, res.stderr)
			}
			if got, want := ts.log(), []string{"GET /admin/clients/" + c.ClientID}; !slices.Equal(got, want) {
				t.Errorf("requests = %q, want %q", got, want)
			}
			if !tt.wantJSON {
				if got, want := res.stdout, human; got != want {
					t.Errorf("stdout =\n%s\nwant\n%s", got, want)
				}
				return
			}
			var got adminapi.ClientInfo
			if err := json.Unmarshal([]byte(res.stdout), &got); err != nil {
				t.Fatalf("stdout is not JSON: %v\n%s", err, res.stdout)
			}
			if !reflect.DeepEqual(got, c) {
				t.Errorf("stdout JSON = %+v, want %+v", got, c)
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
		"dpop_bound_access_tokens":   false,
		"disabled":                   false,
	}
	with := func(changes map[string]any) map[string]any { return changed(base, changes) }
	tests := []struct {
		name     string
		args     []string
		want     map[string]any // PUT body
		wantCode int
	}{
		{"scope", []string{"update", "ID", "--scope", "read write"}, with(map[string]any{"scope": "read write"}), 0},
		{"clear scope", []string{"update", "ID", "--scope", ""}, with(map[string]any{"scope": ""}), 0},
		{"audience replaces", []string{"update", "--audience", "https://b", "--audience", "https://c", "ID"},
			with(map[string]any{"audience": []any{"https://b", "https://c"}}), 0},
		{"audience cleared", []string{"update", "ID", "--audience", ""}, with(map[string]any{"audience": []any{}}), 1},
		{"name and auth method", []string{"update", "--name", "billing-v2", "ID", "--auth-method", "client_secret_post"},
			with(map[string]any{"client_name": "billing-v2", "token_endpoint_auth_method": "client_secret_post"}), 0},
		{"grant types", []string{"update", "ID", "--grant-types", "client_credentials"},
			with(map[string]any{"grant_types": []any{"client_credentials"}}), 0},
		{"same value", []string{"update", "ID", "--name", "billing"}, base, 0},
		{"introspect all", []string{"update", "ID", "--introspect-all"}, with(map[string]any{"introspect_all": true}), 0},
		{"dpop bound", []string{"update", "ID", "--dpop-bound-access-tokens"}, with(map[string]any{"dpop_bound_access_tokens": true}), 0},
		{"disabled", []string{"update", "ID", "--disabled=true"}, with(map[string]any{"disabled": true}), 0},
		{"policy", []string{"update", "ID", "--access-token-ttl", "10m", "--refresh-token-ttl", "36h", "--refresh-token-max-lifetime", "720h",
			"--refresh-token-reuse-interval", "30s", "--token-quota-per-minute", "600"},
			with(map[string]any{"access_token_ttl": "10m", "refresh_token_ttl": "36h", "refresh_token_max_lifetime": "720h",
				"refresh_token_reuse_interval": "30s", "token_quota_per_minute": float64(600)}), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t)
			c := ts.createClient(t, billing)
			args := slices.Clone(tt.args)
			args[slices.Index(args, "ID")] = c.ClientID
			res := runCLI(t, runClients, ts.env(), args...)
			if res.code != tt.wantCode {
				t.Fatalf("exit code = %d, want %d; stderr:\n%s", res.code, tt.wantCode, res.stderr)
			}
			path := "/admin/clients/" + c.ClientID
			if got, want := ts.log(), []string{"GET " + path, "PUT " + path}; !slices.Equal(got, want) {
				t.Errorf("requests = %q, want %q", got, want)
			}
			if got := requestBody(t, ts, "PUT "+path); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("PUT body = %v, want %v", got, tt.want)
			}
			if tt.wantCode != 0 {
				if !strings.Contains(res.stderr, "400: invalid_client_metadata: audience") {
					t.Errorf("stderr = %q, want the server's refusal", res.stderr)
				}
				return
			}
			if !strings.HasPrefix(res.stdout, "client_id: "+c.ClientID+"\n") {
				t.Errorf("stdout = %q, want the updated client", res.stdout)
			}
		})
	}
	t.Run("json", func(t *testing.T) {
		ts := startServer(t)
		c := ts.createClient(t, billing)
		res := runCLI(t, runClients, ts.env(), "update", c.ClientID, "--scope", "write", "--json")
		var got adminapi.ClientInfo
		if err := json.Unmarshal([]byte(res.stdout), &got); err != nil || res.code != 0 {
			t.Fatalf("exit %d, stdout not JSON (%v):\n%s", res.code, err, res.stdout)
		}
		if got.Scope != "write" || got.ClientName != "billing" {
			t.Errorf("updated client = %+v, want scope write and name billing", got)
		}
	})
}

func TestClientsRotateSecret(t *testing.T) {
	ts := startServer(t)
	c := ts.createClient(t, billing)
	res := runCLI(t, runClients, ts.env(), "rotate-secret", c.ClientID)
	if res.code != 0 {
		t.Fatalf("exit code = %d, want 0; stderr:\n%s", res.code, res.stderr)
	}
	id, sec := secretLines(t, res.stdout)
	if id != c.ClientID || sec == c.ClientSecret {
		t.Errorf("stdout = %q, want %s with a new secret", res.stdout, c.ClientID)
	}
	if got, want := res.stderr, "Store the secret now: it is shown only once.\n"; got != want {
		t.Errorf("stderr = %q, want %q", got, want)
	}
	if got, want := ts.log(), []string{"POST /admin/clients/" + c.ClientID + "/secret"}; !slices.Equal(got, want) {
		t.Errorf("requests = %q, want %q", got, want)
	}

	res = runCLI(t, runClients, ts.env(), "rotate-secret", "--json", c.ClientID)
	var got adminapi.ClientInfo
	if err := json.Unmarshal([]byte(res.stdout), &got); err != nil || res.code != 0 {
		t.Fatalf("exit %d, stdout not JSON (%v):\n%s", res.code, err, res.stdout)
	}
	if got.ClientSecret == "" || got.ClientSecret == sec {
		t.Errorf("client_secret = %q, want a third secret", got.ClientSecret)
	}
}

func TestClientsDelete(t *testing.T) {
	ts := startServer(t)
	c := ts.createClient(t, billing)
	d := ts.createClient(t, billing)
	res := runCLI(t, runClients, ts.env(), "delete", c.ClientID)
	if res.code != 0 || res.stderr != "" {
		t.Fatalf("exit code = %d, stderr = %q; want 0 and nothing", res.code, res.stderr)
	}
	if got, want := res.stdout, "deleted client "+c.ClientID+"\n"; got != want {
		t.Errorf("stdout = %q, want %q", got, want)
	}

	res = runCLI(t, runClients, ts.env(), "delete", "--json", d.ClientID)
	var got struct {
		ClientID string `json:"client_id"`
		Deleted  bool   `json:"deleted"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &got); err != nil || res.code != 0 {
		t.Fatalf("exit %d, stdout not JSON (%v):\n%s", res.code, err, res.stdout)
	}
	if got.ClientID != d.ClientID || !got.Deleted {
		t.Errorf("stdout JSON = %+v, want client_id %q deleted", got, d.ClientID)
	}
	// An id that needs escaping stays one path segment.
	if res := runCLI(t, runClients, ts.env(), "delete", "c/odd id"); res.code != 1 || !strings.Contains(res.stderr, "404: not_found") {
		t.Errorf("delete of an unknown odd id: exit %d, stderr %q", res.code, res.stderr)
	}
	want := []string{"DELETE /admin/clients/" + c.ClientID, "DELETE /admin/clients/" + d.ClientID, "DELETE /admin/clients/c%2Fodd%20id"}
	if got := ts.log(); !slices.Equal(got, want) {
		t.Errorf("requests = %q, want %q", got, want)
	}

	res = runCLI(t, runClients, ts.env(), "get", c.ClientID)
	if res.code != 1 || !strings.Contains(res.stderr, "404: not_found") {
		t.Errorf("get after delete: exit %d, stderr %q; want 1 and 404 not_found", res.code, res.stderr)
	}
}

func TestKeys(t *testing.T) {
	ts := startServer(t)
	keys, err := ts.api().ListKeys(t.Context())
	if err != nil || len(keys) != 1 {
		t.Fatalf("keys = %v, %v", keys, err)
	}
	k1 := keys[0]
	ts.log()
	res := runCLI(t, runKeys, ts.env(), "list")
	if res.code != 0 || res.stderr != "" {
		t.Fatalf("exit code = %d, stderr = %q; want 0 and nothing", res.code, res.stderr)
	}
	pad := strings.Repeat(" ", len(k1.KID)-3)
	want := "KID" + pad + "  ALG    STATE    NOT_BEFORE            RETIRES_AT            REMOVED_AT\n" +
		k1.KID + "  ES256  current  " + adminapi.FormatTime(k1.NotBefore) + "  " + adminapi.FormatTime(k1.RetiresAt) + "  -\n"
	if got := res.stdout; got != want {
		t.Errorf("keys list stdout =\n%s\nwant\n%s", got, want)
	}

	res = runCLI(t, runKeys, ts.env(), "rotate")
	if res.code != 0 {
		t.Fatalf("keys rotate: exit code = %d, want 0; stderr:\n%s", res.code, res.stderr)
	}
	var k2 string
	if _, err := fmt.Sscanf(res.stdout, "kid: %s\n", &k2); err != nil || k2 == k1.KID || !strings.Contains(res.stdout, "signs new tokens from now on") {
		t.Errorf("keys rotate stdout = %q, want a new kid and that it signs from now on", res.stdout)
	}

	res = runCLI(t, runKeys, ts.env(), "list", "--json")
	var got adminapi.KeyList
	if err := json.Unmarshal([]byte(res.stdout), &got); err != nil || res.code != 0 {
		t.Fatalf("exit %d, stdout not JSON (%v):\n%s", res.code, err, res.stdout)
	}
	var states []string
	for _, k := range got.Keys {
		states = append(states, k.KID+"="+k.State)
	}
	if want := []string{k1.KID + "=retired", k2 + "=current"}; !slices.Equal(states, want) {
		t.Errorf("key states = %q, want %q", states, want)
	}

	res = runCLI(t, runKeys, ts.env(), "rotate", "--json")
	var k adminapi.Key
	if err := json.Unmarshal([]byte(res.stdout), &k); err != nil || res.code != 0 || k.State != "current" || k.KID == k2 {
		t.Errorf("keys rotate --json: exit %d, key %+v (%v); want 0 and a third current key", res.code, k, err)
	}
	if got, want := ts.log(), []string{"GET /admin/keys", "POST /admin/keys/rotate", "GET /admin/keys", "POST /admin/keys/rotate"}; !slices.Equal(got, want) {
		t.Errorf("requests = %q, want %q", got, want)
	}
}

// TestKeysFiles: with keys_dir, keys list shows each key's file.
func TestKeysFiles(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, func(c *config.Config) { c.KeysDir = dir })
	res := runCLI(t, runKeys, ts.env(), "list")
	if res.code != 0 || !strings.Contains(res.stdout, "FILE") || !strings.Contains(res.stdout, "a.pem") {
		t.Errorf("keys list with keys_dir: exit %d\n%s%s", res.code, res.stdout, res.stderr)
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
		env        map[string]string // nil: the test issuer's URL and token
		handler    http.Handler      // instead of the test issuer
		wantCode   int
		wantStderr []string // substrings
		wantNoReqs bool     // the CLI must not call the server
	}{
		{
			name:       "wrong token",
			run:        runClients,
			args:       []string{"list", "--admin-token", "wrong-token-1234"},
			wantCode:   1,
			wantStderr: []string{"issuer: 401: invalid_token: the admin API needs Authorization: Bearer", "the admin token was refused", "--admin-token"},
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
			wantStderr: []string{"issuer: 404: not_found: no client with this id\n"},
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
			env:        map[string]string{"ISSUER_URL": closedURL(t), "ISSUER_ADMIN_TOKEN": adminToken},
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
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusInternalServerError)
				json.NewEncoder(w).Encode(adminapi.ErrorBody{Error: "server_error", ErrorDescription: "store unavailable\x1b[2J"})
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
			args:       []string{"secret", "KID"},
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
			args:       []string{"create", "--name", "x", "--auth-method", "tls_client_auth"},
			wantCode:   2,
			wantStderr: []string{"invalid --auth-method \"tls_client_auth\": use client_secret_basic, client_secret_post, private_key_jwt, federated_jwt"},
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
			env:        map[string]string{"ISSUER_URL": "ftp://x", "ISSUER_ADMIN_TOKEN": adminToken},
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
			ts := startServer(t)
			base := ts.URL
			if tt.handler != nil {
				srv := httptest.NewServer(withMetadata(tt.handler))
				t.Cleanup(srv.Close)
				base = srv.URL
			}
			env := map[string]string{"ISSUER_URL": base, "ISSUER_ADMIN_TOKEN": adminToken}
			if tt.env != nil {
				env = tt.env
				if _, ok := env["ISSUER_URL"]; !ok {
					env["ISSUER_URL"] = base
				}
			}
			args := slices.Clone(tt.args)
			if i := slices.Index(args, "KID"); i >= 0 {
				keys, err := ts.api().ListKeys(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				args[i] = keys[0].KID
				ts.log()
			}
			res := runCLI(t, tt.run, env, args...)
			checkFailure(t, ts, res, tt.wantCode, tt.wantStderr, tt.wantNoReqs)
		})
	}
}

// checkFailure checks a CLI call that must fail: its exit code, nothing on
// stdout, stderr holding each of wantStderr (one line when the code is 1),
// and, with wantNoReqs, no request to ts.
func checkFailure(t *testing.T, ts *testServer, res cliResult, wantCode int, wantStderr []string, wantNoReqs bool) {
	t.Helper()
	if res.code != wantCode {
		t.Errorf("exit code = %d, want %d; stderr:\n%s", res.code, wantCode, res.stderr)
	}
	if res.stdout != "" {
		t.Errorf("stdout = %q, want nothing", res.stdout)
	}
	for _, want := range wantStderr {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("stderr =\n%s\nwant it to contain %q", res.stderr, want)
		}
	}
	if wantCode == 1 && strings.Count(res.stderr, "\n") != 1 {
		t.Errorf("stderr =\n%s\nwant one line", res.stderr)
	}
	if got := ts.log(); wantNoReqs && len(got) > 0 {
		t.Errorf("requests = %q, want none", got)
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
			res := runCLI(t, tt.run, map[string]string{"ISSUER_ADMIN_TOKEN": adminToken}, tt.args...)
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
		// Random ids may begin with "-" (a key id is an RFC 7638
		// thumbprint): they are no flag, before or after the flags.
		{[]string{"-uxk-hquqXsFjm-1cTr3Tv0Zt8MqoZe74AG5j_q_T0Q"}, []string{"-uxk-hquqXsFjm-1cTr3Tv0Zt8MqoZe74AG5j_q_T0Q"}, false, ""},
		{[]string{"--json", "--Ab3_x"}, []string{"--Ab3_x"}, true, ""},
		{[]string{"--name", "-N4me", "-x9Z"}, []string{"-x9Z"}, false, "-N4me"},
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
	ts := startServer(t, func(c *config.Config) { c.SigningAlg = "HS256" })
	keys, err := ts.api().ListKeys(t.Context())
	if err != nil || len(keys) != 1 {
		t.Fatalf("keys = %v, %v", keys, err)
	}
	k1 := keys[0].KID
	res := runCLI(t, runKeys, ts.env(), "rotate", "--in", "24h")
	var k2 string
	if _, err := fmt.Sscanf(res.stdout, "kid: %s\n", &k2); err != nil || res.code != 0 || !strings.Contains(res.stdout, "starts signing at") ||
		!strings.Contains(res.stderr, "issuer keys secret "+k2) {
		t.Errorf("rotate --in: exit %d\nstdout %q\nstderr %q", res.code, res.stdout, res.stderr)
	}
	nb, _ := time.Parse(time.RFC3339, requestBody(t, ts, "POST /admin/keys/rotate")["not_before"].(string))
	if d := time.Until(nb); d < 23*time.Hour || d > 25*time.Hour {
		t.Errorf("not_before sent = %v, want about 24h from now", nb)
	}

	res = runCLI(t, runKeys, ts.env(), "secret", k2)
	var jwk adminapi.KeySecret
	if err := json.Unmarshal([]byte(res.stdout), &jwk); err != nil || res.code != 0 || jwk.Kty != "oct" || jwk.Kid != k2 || jwk.K == "" {
		t.Errorf("secret: exit %d, stdout %q (%v); want the oct JWK", res.code, res.stdout, err)
	}
	if !strings.Contains(res.stderr, "whoever has it can mint tokens") {
		t.Errorf("secret: stderr %q, want a warning", res.stderr)
	}

	res = runCLI(t, runKeys, ts.env(), "revoke", k2)
	if res.code != 0 || !strings.Contains(res.stdout, "revoked: "+k2+"\n") || !strings.Contains(res.stdout, "current: "+k1) ||
		!strings.Contains(res.stdout, "until their cache expires") {
		t.Errorf("revoke: exit %d\nstdout %q\nstderr %q", res.code, res.stdout, res.stderr)
	}
	res = runCLI(t, runKeys, ts.env(), "revoke", k1, "--json")
	var out adminapi.RevokedKey
	if err := json.Unmarshal([]byte(res.stdout), &out); err != nil || out.Revoked.KID != k1 || out.Current.KID == k1 || out.Current.KID == "" {
		t.Errorf("revoke --json: %q (%v)", res.stdout, err)
	}
	want := []string{"GET /admin/keys", "POST /admin/keys/rotate", "GET /admin/keys/" + k2 + "/secret", "DELETE /admin/keys/" + k2, "DELETE /admin/keys/" + k1}
	if got := ts.log(); !slices.Equal(got, want) {
		t.Errorf("requests = %q, want %q", got, want)
	}
}

// TestClientsUpdateConcurrentAdmin: `clients update` reads the client and
// writes its whole metadata back. When another admin changes the client in
// between, the write is refused (412 through If-Match) instead of undoing
// that change, and the CLI says to run it again.
func TestClientsUpdateConcurrentAdmin(t *testing.T) {
	ts := startServer(t)
	c := ts.createClient(t, billing)
	var done atomic.Bool
	ts.mu.Lock()
	ts.before = func(r *http.Request) {
		if r.Method != http.MethodPut || !done.CompareAndSwap(false, true) {
			return
		}
		func() { // the other admin, between the CLI's GET and PUT
			cur, err := ts.api().GetClient(context.Background(), c.ClientID)
			if err != nil {
				t.Error(err)
				return
			}
			m := cur.ClientMetadata
			m.Scope = "read write"
			if _, err := ts.api().UpdateClient(context.Background(), c.ClientID, m); err != nil {
				t.Error(err)
			}
		}()
	}
	ts.mu.Unlock()

	res := runCLI(t, runClients, ts.env(), "update", c.ClientID, "--name", "billing-v2")
	if res.code == 0 || !strings.Contains(res.stderr, "changed since it was read") {
		t.Fatalf("update racing another admin: exit %d, stderr %q; want a failure saying the client changed", res.code, res.stderr)
	}
	got, err := ts.api().GetClient(context.Background(), c.ClientID)
	if err != nil || got.Scope != "read write" || got.ClientName != "billing" {
		t.Fatalf("client after the refused update: name %q, scope %q, %v; want the other admin's change only", got.ClientName, got.Scope, err)
	}
	if res := runCLI(t, runClients, ts.env(), "update", c.ClientID, "--name", "billing-v2"); res.code != 0 {
		t.Fatalf("update run again: exit %d, stderr %q", res.code, res.stderr)
	}
}

package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/issuer-oauth/issuer/internal/admin"
	"github.com/issuer-oauth/issuer/internal/adminapi"
	"github.com/issuer-oauth/issuer/internal/keys"
	"github.com/issuer-oauth/issuer/internal/password"
	"github.com/issuer-oauth/issuer/internal/secret"
	"github.com/issuer-oauth/issuer/internal/store"
	"github.com/issuer-oauth/issuer/internal/store/bolt"
	"github.com/issuer-oauth/issuer/internal/testutil"
)

const token = "admin-token-for-the-admin-tests-0123456789"

// fakeKeys is a KeyManager whose operations answer err (or a fixed key).
type fakeKeys struct {
	err       error
	scheduled *time.Time
}

var key1 = keys.KeyInfo{ID: "k1", Alg: "ES256", State: "current", CreatedAt: time.Unix(1735689600, 0).UTC(), NotBefore: time.Unix(1735689600, 0).UTC()}

func (f *fakeKeys) List() []keys.KeyInfo { return []keys.KeyInfo{key1} }
func (f *fakeKeys) Rotate(context.Context) (keys.KeyInfo, error) {
	return keys.KeyInfo{ID: "k2", Alg: "ES256", State: "current"}, f.err
}
func (f *fakeKeys) Schedule(_ context.Context, nb time.Time) (keys.KeyInfo, error) {
	f.scheduled = &nb
	return keys.KeyInfo{ID: "k2", Alg: "ES256", State: "next", NotBefore: nb}, f.err
}
func (f *fakeKeys) Revoke(_ context.Context, kid string) (keys.KeyInfo, keys.KeyInfo, error) {
	return keys.KeyInfo{ID: kid}, key1, f.err
}
func (f *fakeKeys) Secret(kid string) (keys.Secret, error) {
	return keys.Secret{Kty: "oct", Kid: kid, Alg: "HS256", K: "c2VjcmV0"}, f.err
}

// unavailable is a store that cannot be reached.
type unavailable struct{ admin.Store }

func (unavailable) ListClients(context.Context) ([]store.Client, error) {
	return nil, fmt.Errorf("dial: %w", store.ErrUnavailable)
}

type fixture struct {
	srv       *httptest.Server
	st        *bolt.Store
	hasher    *secret.Hasher
	keys      *fakeKeys
	passwords *password.Hasher
	lockouts  *fakeLockouts
	logs      *testutil.Buffer // the handler's log, as JSON lines
}

// newFixture serves an admin handler on a bbolt store in t.TempDir(),
// wrapped by wrap when not nil. mutate may change the handler's Config.
func newFixture(t *testing.T, wrap func(admin.Store) admin.Store, mutate ...func(*admin.Config)) *fixture {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "issuer.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	passwords, err := password.New(password.Config{})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{st: st, hasher: secret.NewHasher([]byte("pepper-pepper-pepper-pepper-0123")), keys: &fakeKeys{},
		passwords: passwords, lockouts: &fakeLockouts{until: map[string]time.Time{}}, logs: &testutil.Buffer{}}
	var s admin.Store = st
	if wrap != nil {
		s = wrap(st)
	}
	cfg := admin.Config{Token: token, MaxBodyBytes: 1 << 10, Passwords: f.passwords, Lockouts: f.lockouts}
	for _, m := range mutate {
		m(&cfg)
	}
	log := slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := admin.New(cfg, s, f.keys, f.hasher, log)
	f.srv = httptest.NewServer(h)
	t.Cleanup(f.srv.Close)
	return f
}

// call sends an authenticated request and decodes the JSON answer into out,
// which it zeroes first.
func (f *fixture) call(t *testing.T, method, path string, body any, out any) int {
	t.Helper()
	code, raw := f.raw(t, method, path, body)
	decode(t, method+" "+path, code, raw, out)
	return code
}

// decode zeroes out (a pointer) and decodes the answer raw into it, unless
// out is nil or the answer is a 204.
func decode(t *testing.T, what string, code int, raw []byte, out any) {
	t.Helper()
	if out != nil && code != http.StatusNoContent {
		reflect.ValueOf(out).Elem().SetZero()
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s: %d, body not JSON: %v", what, code, err)
		}
	}
}

// raw sends an authenticated request and returns the answer's status and
// body. body is sent as it is when a string, as JSON otherwise.
func (f *fixture) raw(t *testing.T, method, path string, body any) (int, []byte) {
	t.Helper()
	var r *bytes.Reader
	switch b := body.(type) {
	case nil:
		r = bytes.NewReader(nil)
	case string:
		r = bytes.NewReader([]byte(b))
	default:
		raw, _ := json.Marshal(b)
		r = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, f.srv.URL+path, r)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if got := resp.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("%s %s: Cache-Control %q, want no-store", method, path, got)
	}
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", method, path, err)
	}
	return resp.StatusCode, raw
}

func TestAuthentication(t *testing.T) {
	f := newFixture(t, nil)
	for _, auth := range []string{"", "Bearer", "Bearer ", "Bearer wrong", "bearer " + token, "Basic " + token, "Bearer " + token + "x", "Bearer " + token[:len(token)-1]} {
		req, _ := http.NewRequest("GET", f.srv.URL+"/admin/clients", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var e adminapi.ErrorBody
		json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != 401 || e.Error != "invalid_token" || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer ") {
			t.Errorf("Authorization %q: %d %+v, want 401 invalid_token with a Bearer challenge", auth, resp.StatusCode, e)
		}
	}
}

func TestClientLifecycle(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	var created adminapi.ClientInfo
	if code := f.call(t, "POST", "/admin/clients", adminapi.ClientMetadata{ClientName: "billing", Scope: "write read read", Audience: []string{"https://a", "https://a"}}, &created); code != 201 {
		t.Fatalf("create: %d", code)
	}
	want := adminapi.ClientMetadata{ClientName: "billing", GrantTypes: []string{"client_credentials", "refresh_token"},
		Scope: "write read", Audience: []string{"https://a"}, TokenEndpointAuthMethod: "client_secret_basic"}
	if fmt.Sprint(created.ClientMetadata) != fmt.Sprint(want) || len(created.ClientSecret) < 43 || created.ClientIDIssuedAt == 0 {
		t.Errorf("created = %+v, want %+v with a 256-bit secret", created, want)
	}
	stored, err := f.st.GetClient(ctx, created.ClientID)
	if err != nil || !f.hasher.Verify(created.ClientID, created.ClientSecret, stored.SecretHash) {
		t.Fatalf("the store does not hold the secret's hash: %v", err)
	}
	if bytes.Contains(stored.SecretHash, []byte(created.ClientSecret)) {
		t.Errorf("the secret is stored in the clear")
	}

	var got adminapi.ClientInfo
	if code := f.call(t, "GET", "/admin/clients/"+created.ClientID, nil, &got); code != 200 || got.ClientSecret != "" || got.ClientName != "billing" {
		t.Errorf("get: %d %+v (the secret must not be shown again)", code, got)
	}
	var list adminapi.ClientList
	if code := f.call(t, "GET", "/admin/clients", nil, &list); code != 200 || len(list.Clients) != 1 || list.Clients[0].ClientSecret != "" {
		t.Errorf("list: %d %+v", code, list)
	}

	update := want
	update.ClientName, update.Scope, update.IntrospectAll = "billing-v2", "read", true
	if code := f.call(t, "PUT", "/admin/clients/"+created.ClientID, update, &got); code != 200 || fmt.Sprint(got.ClientMetadata) != fmt.Sprint(update) {
		t.Errorf("update: %d %+v, want %+v", code, got.ClientMetadata, update)
	}
	if after, _ := f.st.GetClient(ctx, created.ClientID); !bytes.Equal(after.SecretHash, stored.SecretHash) {
		t.Errorf("update changed the secret")
	}

	var rotated adminapi.ClientInfo
	if code := f.call(t, "POST", "/admin/clients/"+created.ClientID+"/secret", nil, &rotated); code != 200 || rotated.ClientSecret == "" || rotated.ClientSecret == created.ClientSecret {
		t.Fatalf("rotate: %d %+v", code, rotated)
	}
	after, _ := f.st.GetClient(ctx, created.ClientID)
	if f.hasher.Verify(created.ClientID, created.ClientSecret, after.SecretHash) || !f.hasher.Verify(created.ClientID, rotated.ClientSecret, after.SecretHash) {
		t.Errorf("after rotation the store verifies the old secret or not the new one")
	}

	if code := f.call(t, "DELETE", "/admin/clients/"+created.ClientID, nil, nil); code != 204 {
		t.Errorf("delete: %d", code)
	}
	for _, m := range []string{"GET", "PUT", "DELETE", "POST"} {
		path := "/admin/clients/" + created.ClientID
		var body any
		if m == "PUT" {
			body = want
		}
		if m == "POST" {
			path += "/secret"
		}
		var e adminapi.ErrorBody
		if code := f.call(t, m, path, body, &e); code != 404 || e.Error != "not_found" {
			t.Errorf("%s %s after delete: %d %+v, want 404 not_found", m, path, code, e)
		}
	}
}

func TestInvalidMetadata(t *testing.T) {
	f := newFixture(t, nil)
	const aud = `"audience":["https://api.example.com"]`
	for _, tc := range []struct{ body, want string }{
		{`{"audience":[]}`, "audience: at least one"},
		{`{"audience":["has space"]}`, `audience: "has space" must be an absolute URI`},
		{`{"audience":["api"]}`, `audience: "api" must be an absolute URI with a scheme`},
		{`{"audience":["//api.example.com/"]}`, "must be an absolute URI with a scheme"},
		{`{"audience":["https://api.example.com/#x"]}`, "must not have a fragment"},
		{`{"audience":["https://api.example.com/é"]}`, "printable ASCII"},
		{`{"grant_types":["password"],` + aud + `}`, "grant_types"},
		{`{"grant_types":["refresh_token"],` + aud + `}`, "grant_types"},
		{`{"scope":"bad\"scope",` + aud + `}`, "scope"},
		{`{"token_endpoint_auth_method":"none",` + aud + `}`, "token_endpoint_auth_method"},
		{`{"client_name":"` + strings.Repeat("n", 300) + `",` + aud + `}`, "client_name is longer"},
		{`{"client_name":"pay\u202egnp.exe",` + aud + `}`, "client_name must be printable"},
		{`{"client_name":"a\u2066b",` + aud + `}`, "client_name must be printable"},
		{`{"client_name":"a\u200fb",` + aud + `}`, "client_name must be printable"},
		{`{"client_name":"line\nbreak",` + aud + `}`, "client_name must be printable"},
		{`{not json`, "JSON object"},
		{`[]`, "JSON object"},
	} {
		var e adminapi.ErrorBody
		if code := f.call(t, "POST", "/admin/clients", tc.body, &e); code != 400 || e.Error != "invalid_client_metadata" || !strings.Contains(e.ErrorDescription, tc.want) {
			t.Errorf("%s: %d %+v, want 400 invalid_client_metadata saying %q", tc.body, code, e, tc.want)
		}
	}
	var e adminapi.ErrorBody
	if code := f.call(t, "POST", "/admin/clients", strings.Repeat(" ", 2<<10), &e); code != 413 {
		t.Errorf("a body over MaxBodyBytes: %d %+v, want 413", code, e)
	}
	if code := f.call(t, "GET", "/admin/nothing", nil, &e); code != 404 || e.Error != "not_found" {
		t.Errorf("unknown admin path: %d %+v, want 404 not_found", code, e)
	}
}

func TestStoreUnavailable(t *testing.T) {
	f := newFixture(t, func(s admin.Store) admin.Store { return unavailable{s} })
	var e adminapi.ErrorBody
	if code := f.call(t, "GET", "/admin/clients", nil, &e); code != 503 || e.Error != "temporarily_unavailable" {
		t.Errorf("list with the store down: %d %+v, want 503 temporarily_unavailable", code, e)
	}
}

func TestKeys(t *testing.T) {
	f := newFixture(t, nil)
	var list adminapi.KeyList
	if code := f.call(t, "GET", "/admin/keys", nil, &list); code != 200 || len(list.Keys) != 1 || list.Keys[0].KID != "k1" || !list.Keys[0].NotBefore.Equal(key1.NotBefore) {
		t.Errorf("list: %d %+v", code, list)
	}
	var k adminapi.Key
	if code := f.call(t, "POST", "/admin/keys/rotate", nil, &k); code != 201 || k.State != "current" || f.keys.scheduled != nil {
		t.Errorf("rotate: %d %+v, want an emergency rotation", code, k)
	}
	nb := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second)
	if code := f.call(t, "POST", "/admin/keys/rotate", adminapi.RotateKeyRequest{NotBefore: &nb}, &k); code != 201 || k.State != "next" || f.keys.scheduled == nil || !f.keys.scheduled.Equal(nb) {
		t.Errorf("schedule: %d %+v", code, k)
	}
	var e adminapi.ErrorBody
	if code := f.call(t, "POST", "/admin/keys/rotate", `{"not_before":"tomorrow"}`, &e); code != 400 || e.Error != "invalid_request" {
		t.Errorf("rotate with a bad body: %d %+v", code, e)
	}
	var rk adminapi.RevokedKey
	if code := f.call(t, "DELETE", "/admin/keys/kx", nil, &rk); code != 200 || rk.Revoked.KID != "kx" || rk.Current.KID != "k1" {
		t.Errorf("revoke: %d %+v", code, rk)
	}
	var sec adminapi.KeySecret
	if code := f.call(t, "GET", "/admin/keys/k9/secret", nil, &sec); code != 200 || sec.Kty != "oct" || sec.Kid != "k9" || sec.K == "" {
		t.Errorf("secret: %d %+v", code, sec)
	}

	for _, tc := range []struct {
		err        error
		status     int
		code, desc string
	}{
		{keys.ErrUnknownKey, 404, "not_found", "issuer keys list"},
		{keys.ErrFileKeys, 409, "keys_in_files", "SIGHUP"},
		{keys.ErrNotSymmetric, 409, "not_symmetric", "asymmetric"},
		{keys.ErrNextPending, 409, "next_key_pending", "revoke it first"},
		{keys.ErrTooSoon, 400, "invalid_request", "publish lead"},
		{fmt.Errorf("dial: %w", store.ErrUnavailable), 503, "temporarily_unavailable", "retry"},
	} {
		f.keys.err = tc.err
		for _, req := range []struct{ method, path string }{{"POST", "/admin/keys/rotate"}, {"DELETE", "/admin/keys/k1"}, {"GET", "/admin/keys/k1/secret"}} {
			var e adminapi.ErrorBody
			if code := f.call(t, req.method, req.path, nil, &e); code != tc.status || e.Error != tc.code || !strings.Contains(e.ErrorDescription, tc.desc) {
				t.Errorf("%s %s with %v: %d %+v, want %d %s mentioning %q", req.method, req.path, tc.err, code, e, tc.status, tc.code, tc.desc)
			}
		}
	}
}

// TestUpdateIfMatch: a GET's ETag makes a PUT a change of that version
// only. Two admins who read the client, each change a field and write the
// whole back: the second gets 412 instead of undoing the first's change.
func TestUpdateIfMatch(t *testing.T) {
	f := newFixture(t, nil)
	u, _ := url.Parse(f.srv.URL)
	api := adminapi.NewClient(u, token, nil)
	ctx := t.Context()
	created, err := api.CreateClient(ctx, adminapi.ClientMetadata{ClientName: "orig", Scope: "read", Audience: []string{"https://api.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	first, err := api.GetClient(ctx, created.ClientID)
	if err != nil || first.ETag == "" {
		t.Fatalf("GET: ETag %q, %v; want an ETag", first.ETag, err)
	}
	second, _ := api.GetClient(ctx, created.ClientID)

	m := first.ClientMetadata
	m.ClientName = "renamed"
	updated, err := api.UpdateClientIfMatch(ctx, created.ClientID, first.ETag, m)
	if err != nil || updated.ETag == "" || updated.ETag == first.ETag {
		t.Fatalf("PUT with the current ETag: %v, ETag %q after %q; want 200 and a new ETag", err, updated.ETag, first.ETag)
	}

	m = second.ClientMetadata
	m.Scope = "read write"
	_, err = api.UpdateClientIfMatch(ctx, created.ClientID, second.ETag, m)
	var ae *adminapi.Error
	if !errors.As(err, &ae) || ae.Status != http.StatusPreconditionFailed || ae.Code != "precondition_failed" {
		t.Fatalf("PUT with a stale ETag: %v, want 412 precondition_failed", err)
	}
	now, _ := api.GetClient(ctx, created.ClientID)
	if now.ClientName != "renamed" || now.Scope != "read" || now.ETag != updated.ETag {
		t.Errorf("after the refused PUT: name %q, scope %q, ETag %q; want the first admin's change, untouched", now.ClientName, now.Scope, now.ETag)
	}

	// Without If-Match a PUT still applies its whole body, as before.
	m.ClientName = "last"
	if _, err := api.UpdateClient(ctx, created.ClientID, m); err != nil {
		t.Fatalf("PUT without If-Match: %v", err)
	}
}

package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/issuer-oauth/issuer/internal/config"
	"github.com/issuer-oauth/issuer/internal/store"
)

// compatClientID is the simplejwt_client_id of the test issuers.
const compatClientID = "spa-frontend"

// SimpleJWT's answers (rest_framework_simplejwt and Django REST framework,
// their default messages), written out here rather than taken from the
// package under test.
const (
	sjTokenNotValid = `{"detail":"Token is invalid or expired","code":"token_not_valid"}`
	sjNoAccount     = `{"detail":"No active account found with the given credentials"}`
)

// withSimpleJWT turns on the password grant and the SimpleJWT-compatible
// endpoints, for the client compatClientID.
func withSimpleJWT(c *config.Config) {
	c.PasswordGrant = true
	c.SimpleJWTCompat = true
	c.SimpleJWTClientID = compatClientID
}

// startCompat starts an issuer with the SimpleJWT-compatible endpoints
// and registers their client, compatClientID: grants password and
// refresh_token, scope "read write admin", audiences e2eAudience then
// another. It returns the issuer and the client's secret (for the
// endpoints that authenticate clients: revocation, introspection).
func startCompat(t *testing.T, mutate ...func(*config.Config)) (*testIssuer, string) {
	t.Helper()
	ti := startIssuer(t, append([]func(*config.Config){withSimpleJWT}, mutate...)...)
	ti.putCompatClient(t, []string{"password", "refresh_token"})
	resp, m := ti.admin(t, "POST", "/admin/clients/"+compatClientID+"/secret", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("rotate the compat client's secret: %d %v", resp.StatusCode, m)
	}
	return ti, m["client_secret"].(string)
}

// putCompatClient stores the client compatClientID with grants: its id
// is fixed by the configuration, which the admin API cannot choose.
func (ti *testIssuer) putCompatClient(t *testing.T, grants []string) {
	t.Helper()
	now := ti.clock.Now()
	c := store.Client{
		ID:         compatClientID,
		Name:       "single-page front end",
		GrantTypes: grants,
		Scopes:     []string{"read", "write", "admin"},
		Audiences:  []string{e2eAudience, "https://other.example.com"},
		AuthMethod: "client_secret_basic",
		CreatedAt:  now,
		UpdatedAt:  now,
	}
	if err := ti.app.store.CreateClient(context.Background(), c); err != nil {
		t.Fatal(err)
	}
}

// sjResponse is an answer of a SimpleJWT-compatible endpoint.
type sjResponse struct {
	status int
	header http.Header
	body   []byte
}

// sjSend sends body with contentType to the SimpleJWT-compatible endpoint
// sub ("", "refresh/", "verify/", "blacklist/") under the default path.
func (ti *testIssuer) sjSend(t *testing.T, method, sub, contentType, body string) sjResponse {
	t.Helper()
	req, _ := http.NewRequest(method, ti.base+"/api/token/"+sub, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return sjResponse{resp.StatusCode, resp.Header, b}
}

// sjPost posts the JSON of fields to the endpoint sub.
func (ti *testIssuer) sjPost(t *testing.T, sub string, fields map[string]any) sjResponse {
	t.Helper()
	b, _ := json.Marshal(fields)
	return ti.sjSend(t, "POST", sub, "application/json", string(b))
}

// sjLogin logs in at {path} and returns the access and refresh tokens,
// failing t unless the answer is 200 with exactly those two members.
func (ti *testIssuer) sjLogin(t *testing.T, username, pw string) (access, refresh string) {
	t.Helper()
	return ti.sjPair(t, "login", ti.sjPost(t, "", map[string]any{"username": username, "password": pw}))
}

// sjRefresh refreshes at {path}refresh/ and returns the new pair.
func (ti *testIssuer) sjRefresh(t *testing.T, refresh string) (string, string) {
	t.Helper()
	return ti.sjPair(t, "refresh", ti.sjPost(t, "refresh/", map[string]any{"refresh": refresh}))
}

func (ti *testIssuer) sjPair(t *testing.T, what string, r sjResponse) (access, refresh string) {
	t.Helper()
	var m map[string]string
	if r.status != http.StatusOK || json.Unmarshal(r.body, &m) != nil || len(m) != 2 || m["access"] == "" || m["refresh"] == "" {
		t.Fatalf("%s: %d %s, want 200 {\"access\",\"refresh\"}", what, r.status, r.body)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("%s: Cache-Control %q, want no-store", what, cc)
	}
	return m["access"], m["refresh"]
}

// is reports whether r has status and a body equal, as JSON, to want.
func (r sjResponse) is(status int, want string) bool {
	var got, w any
	if json.Unmarshal(r.body, &got) != nil || json.Unmarshal([]byte(want), &w) != nil {
		return false
	}
	return r.status == status && reflect.DeepEqual(got, w)
}

// check fails t unless r has status and body want (compared as JSON).
func (r sjResponse) check(t *testing.T, what string, status int, want string) {
	t.Helper()
	if !r.is(status, want) {
		t.Errorf("%s: %d %s, want %d %s", what, r.status, bytes.TrimSpace(r.body), status, want)
	}
}

// TestSimpleJWTLogin: {path} gives SimpleJWT's pair; the access token is
// an RFC 9068 token of the compat client for the user, with SimpleJWT's
// token_type and user id claims, the client's first audience and the
// scope that client and user share; the refresh token is no access token.
func TestSimpleJWTLogin(t *testing.T) {
	ti, _ := startCompat(t)
	alice := ti.createUser(t, "alice", "correct horse battery", func(u *store.User) {
		u.Scopes = []string{"read", "write", "delete"}
	})
	access, refresh := ti.sjLogin(t, "alice", "correct horse battery")

	c := ti.verifyAccess(t, access, e2eAudience)
	if c.Subject != alice.ID || c.ClientID != compatClientID {
		t.Errorf("sub = %q, client_id = %q; want the user id %q and %q", c.Subject, c.ClientID, alice.ID, compatClientID)
	}
	if got := strings.Fields(c.Scope); !slices.Equal(slices.Sorted(slices.Values(got)), []string{"read", "write"}) {
		t.Errorf("scope = %q, want read write (client ∩ user)", c.Scope)
	}
	if len(c.Audience) != 1 || c.Audience[0] != e2eAudience {
		t.Errorf("aud = %v, want the client's first audience only", c.Audience)
	}
	_, claims := decodeJWT(t, access)
	if claims["token_type"] != "access" || claims["user_id"] != alice.ID {
		t.Errorf("token_type = %v, user_id = %v; want access and %q", claims["token_type"], claims["user_id"], alice.ID)
	}

	header, rc := decodeJWT(t, refresh)
	if header["typ"] == "at+jwt" || rc["token_type"] != nil || rc["aud"] == e2eAudience || slices.Contains(toStrings(rc["aud"]), e2eAudience) {
		t.Errorf("refresh token header %v claims %v: looks like an access token", header, rc)
	}
	if _, err := ti.checkAccess(t, refresh, e2eAudience); err == nil {
		t.Errorf("the refresh token verifies as an access token")
	}
	if strings.Contains(ti.logs.String(), "correct horse battery") {
		t.Errorf("the password is in the log")
	}
}

// TestSimpleJWTUserIDClaim: simplejwt_user_id_claim renames the
// user id claim (SimpleJWT's USER_ID_CLAIM).
func TestSimpleJWTUserIDClaim(t *testing.T) {
	ti, _ := startCompat(t, func(c *config.Config) { c.SimpleJWTUserIDClaim = "uid" })
	alice := ti.createUser(t, "alice", "alice's password")
	access, _ := ti.sjLogin(t, "alice", "alice's password")
	if _, claims := decodeJWT(t, access); claims["uid"] != alice.ID || claims["user_id"] != nil {
		t.Errorf("claims = %v, want uid = %q and no user_id", claims, alice.ID)
	}
}

// TestSimpleJWTRefresh: {path}refresh/ rotates (ROTATE_REFRESH_TOKENS with
// BLACKLIST_AFTER_ROTATION); a retired refresh token presented again is
// token_not_valid and ends its family, so the newer one fails too (RFC
// 9700 §4.14.2). A refresh token of another client is not valid here, and
// trying it does not end its family.
func TestSimpleJWTRefresh(t *testing.T) {
	ti, _ := startCompat(t)
	alice := ti.createUser(t, "alice", "alice's password")
	access1, refresh1 := ti.sjLogin(t, "alice", "alice's password")

	access2, refresh2 := ti.sjRefresh(t, refresh1)
	if refresh2 == refresh1 || access2 == access1 {
		t.Errorf("refresh gave back the same tokens")
	}
	if c := ti.verifyAccess(t, access2, e2eAudience); c.Subject != alice.ID || c.ClientID != compatClientID {
		t.Errorf("refreshed access token: sub %q client_id %q", c.Subject, c.ClientID)
	}
	if _, claims := decodeJWT(t, access2); claims["token_type"] != "access" || claims["user_id"] != alice.ID {
		t.Errorf("refreshed access token claims = %v, want token_type access and user_id", claims)
	}

	ti.sjPost(t, "refresh/", map[string]any{"refresh": refresh1}).check(t, "reused refresh token", 401, sjTokenNotValid)
	ti.sjPost(t, "refresh/", map[string]any{"refresh": refresh2}).check(t, "newer refresh token of a family ended by reuse", 401, sjTokenNotValid)
	if !strings.Contains(ti.logs.String(), "refresh token reused; family revoked") {
		t.Errorf("the reuse is not logged")
	}

	// Not refresh tokens of this client.
	other, osec := ti.createClient(t, map[string]any{"grant_types": []string{"password", "refresh_token"}})
	_, m := ti.login(t, other, osec, "alice", "alice's password")
	foreign, _ := m["refresh_token"].(string)
	if foreign == "" {
		t.Fatalf("password grant at the token endpoint: %v", m)
	}
	_, live := ti.sjLogin(t, "alice", "alice's password")
	for _, tc := range []struct{ name, token string }{
		{"another client's refresh token", foreign},
		{"an access token", access2},
		{"garbage", "not.a.token"},
		{"a refresh token with a character changed", live[:len(live)-2] + flip(live[len(live)-2])},
	} {
		ti.sjPost(t, "refresh/", map[string]any{"refresh": tc.token}).check(t, tc.name, 401, sjTokenNotValid)
	}
	if status, r := ti.refresh(t, other, osec, foreign); status != 200 {
		t.Errorf("the other client's refresh token after it was tried at the compat endpoint: %d %v", status, r)
	}
	ti.sjRefresh(t, live)
}

// flip returns another base64url character than c.
func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

// TestSimpleJWTVerify: {path}verify/ answers 200 {} for a live access
// token, and token_not_valid for garbage, an expired access token, a
// revoked one (RFC 7009) and a refresh token retired by rotation.
func TestSimpleJWTVerify(t *testing.T) {
	ti, sec := startCompat(t)
	ti.createUser(t, "alice", "alice's password")
	access, refresh := ti.sjLogin(t, "alice", "alice's password")
	verify := func(token string) sjResponse { return ti.sjPost(t, "verify/", map[string]any{"token": token}) }

	verify(access).check(t, "a live access token", 200, `{}`)
	// As SimpleJWT's TokenVerifyView (an UntypedToken): a live refresh
	// token verifies too.
	verify(refresh).check(t, "a live refresh token", 200, `{}`)
	for _, garbage := range []string{"garbage", "a.b.c", access[:len(access)-3]} {
		verify(garbage).check(t, "garbage "+garbage[:min(len(garbage), 8)], 401, sjTokenNotValid)
	}

	_, refresh2 := ti.sjRefresh(t, refresh)
	verify(refresh).check(t, "a refresh token retired by rotation", 401, sjTokenNotValid)
	verify(refresh2).check(t, "its successor", 200, `{}`)

	revoked, _ := ti.sjLogin(t, "alice", "alice's password")
	if status, m := ti.revoke(t, compatClientID, sec, revoked); status != 200 {
		t.Fatalf("revocation: %d %v", status, m)
	}
	verify(revoked).check(t, "a revoked access token", 401, sjTokenNotValid)
	verify(access).check(t, "another access token of the user", 200, `{}`)

	ti.clock.Advance(ti.cfg.AccessTokenTTL + time.Second)
	verify(access).check(t, "an expired access token", 401, sjTokenNotValid)
}

// TestSimpleJWTBlacklist: {path}blacklist/ ends the refresh token's family
// (200 {}); the token fails at refresh/ and blacklist/ afterwards, and the
// family's access tokens at verify/. Access tokens and other clients'
// refresh tokens are not refresh tokens of this endpoint.
func TestSimpleJWTBlacklist(t *testing.T) {
	ti, _ := startCompat(t)
	ti.createUser(t, "alice", "alice's password")
	_, refresh := ti.sjLogin(t, "alice", "alice's password")
	access, refresh2 := ti.sjRefresh(t, refresh)

	ti.sjPost(t, "blacklist/", map[string]any{"refresh": refresh2}).check(t, "blacklist", 200, `{}`)
	ti.sjPost(t, "refresh/", map[string]any{"refresh": refresh2}).check(t, "refresh with a blacklisted token", 401, sjTokenNotValid)
	ti.sjPost(t, "blacklist/", map[string]any{"refresh": refresh2}).check(t, "blacklist it again", 401, sjTokenNotValid)
	ti.sjPost(t, "verify/", map[string]any{"token": refresh2}).check(t, "verify a blacklisted token", 401, sjTokenNotValid)
	// Unlike SimpleJWT's verify/, the issuer's ends the family's access
	// tokens with it, as introspection does (resource servers that verify
	// offline accept them until they expire, in both).
	ti.sjPost(t, "verify/", map[string]any{"token": access}).check(t, "an access token of the family", 401, sjTokenNotValid)

	ti.sjPost(t, "blacklist/", map[string]any{"refresh": access}).check(t, "blacklist an access token", 401, sjTokenNotValid)
	other, osec := ti.createClient(t, map[string]any{"grant_types": []string{"password", "refresh_token"}})
	_, m := ti.login(t, other, osec, "alice", "alice's password")
	ti.sjPost(t, "blacklist/", map[string]any{"refresh": m["refresh_token"]}).check(t, "blacklist another client's refresh token", 401, sjTokenNotValid)
	if status, r := ti.refresh(t, other, osec, m["refresh_token"].(string)); status != 200 {
		t.Errorf("the other client's refresh token after the compat blacklist refused it: %d %v", status, r)
	}
}

// TestSimpleJWTBadCredentials: every failure of the user's credentials is
// SimpleJWT's one answer, 401 with exactly its detail and the challenge of
// its views.
func TestSimpleJWTBadCredentials(t *testing.T) {
	ti, _ := startCompat(t)
	ti.createUser(t, "alice", "alice's password")
	ti.createUser(t, "dave", "dave's password", func(u *store.User) { u.Disabled = true })
	ti.createUser(t, "imported", "", func(u *store.User) { u.PasswordHash = "!unusable-django-password" })
	for _, tc := range []struct{ name, username, pw string }{
		{"unknown user", "nobody", "whatever"},
		{"wrong password", "alice", "wrong"},
		{"username of another case", "Alice", "alice's password"},
		{"disabled user", "dave", "dave's password"},
		{"unusable password", "imported", "!unusable-django-password"},
	} {
		r := ti.sjPost(t, "", map[string]any{"username": tc.username, "password": tc.pw})
		r.check(t, tc.name, 401, sjNoAccount)
		if got := r.header.Get("WWW-Authenticate"); got != `Bearer realm="api"` {
			t.Errorf("%s: WWW-Authenticate %q", tc.name, got)
		}
	}
}

// TestSimpleJWTRequests: the request checks of Django REST framework, in
// its shapes: missing, blank and null fields, form bodies, content types,
// methods and paths.
func TestSimpleJWTRequests(t *testing.T) {
	ti, _ := startCompat(t)
	ti.createUser(t, "alice", "alice's password")
	const required, blank = `["This field is required."]`, `["This field may not be blank."]`
	for _, tc := range []struct {
		name, sub, body string
		status          int
		want            string
	}{
		{"login without fields", "", `{}`, 400, `{"username":` + required + `,"password":` + required + `}`},
		{"login without password", "", `{"username":"alice"}`, 400, `{"password":` + required + `}`},
		{"login with blank fields", "", `{"username":"","password":"  "}`, 400, `{"username":` + blank + `,"password":` + blank + `}`},
		{"login with a null username", "", `{"username":null,"password":"x"}`, 400, `{"username":["This field may not be null."]}`},
		{"login with a list", "", `{"username":["alice"],"password":"x"}`, 400, `{"username":["Not a valid string."]}`},
		{"refresh without a token", "refresh/", `{}`, 400, `{"refresh":` + required + `}`},
		{"refresh with a blank token", "refresh/", `{"refresh":""}`, 400, `{"refresh":` + blank + `}`},
		{"verify without a token", "verify/", `{"refresh":"x"}`, 400, `{"token":` + required + `}`},
		{"blacklist without a token", "blacklist/", `{}`, 400, `{"refresh":` + required + `}`},
		{"not JSON", "", `{"username":`, 400, `{"detail":"JSON parse error - the body must be a JSON object."}`},
	} {
		ti.sjSend(t, "POST", tc.sub, "application/json", tc.body).check(t, tc.name, tc.status, tc.want)
	}

	t.Run("form bodies", func(t *testing.T) {
		r := ti.sjSend(t, "POST", "", "application/x-www-form-urlencoded", url.Values{"username": {"alice"}, "password": {"alice's password"}}.Encode())
		_, refresh := ti.sjPair(t, "form login", r)
		r = ti.sjSend(t, "POST", "refresh/", "application/x-www-form-urlencoded; charset=utf-8", url.Values{"refresh": {refresh}}.Encode())
		access, _ := ti.sjPair(t, "form refresh", r)
		ti.sjSend(t, "POST", "verify/", "application/x-www-form-urlencoded", url.Values{"token": {access}}.Encode()).check(t, "form verify", 200, `{}`)
		ti.sjSend(t, "POST", "", "application/x-www-form-urlencoded", "password=x").check(t, "form without username", 400, `{"username":`+required+`}`)
	})

	t.Run("content types", func(t *testing.T) {
		for _, ct := range []string{"text/plain", "application/xml", ""} {
			want := `{"detail":"Unsupported media type \"` + ct + `\" in request."}`
			ti.sjSend(t, "POST", "", ct, `{"username":"alice","password":"alice's password"}`).check(t, "content type "+ct, 415, want)
		}
	})

	t.Run("methods", func(t *testing.T) {
		for _, sub := range []string{"", "refresh/", "verify/", "blacklist/"} {
			for _, method := range []string{"GET", "PUT", "DELETE", "OPTIONS"} {
				r := ti.sjSend(t, method, sub, "", "")
				r.check(t, method+" "+sub, 405, `{"detail":"Method \"`+method+`\" not allowed."}`)
				if allow := r.header.Get("Allow"); allow != "POST" {
					t.Errorf("%s %s: Allow %q, want POST: the only method answered", method, sub, allow)
				}
			}
		}
	})

	// Only the four endpoints are under the path, as in SimpleJWT's
	// URLconf; not a login at any other path below it.
	t.Run("paths", func(t *testing.T) {
		for _, sub := range []string{"obtain/", "foo/refresh/", "refresh/verify/", "token/", "verify/x", "refresh"} {
			r := ti.sjPost(t, sub, map[string]any{"username": "alice", "password": "alice's password", "refresh": "x", "token": "x"})
			r.check(t, "POST /api/token/"+sub, 404, `{"detail":"Not found."}`)
		}
	})

}

// TestSimpleJWTAddressLimit: past password_failures_per_address, a login
// from the address is 429 with Retry-After in Django REST framework's
// throttling shape, the right password included.
func TestSimpleJWTAddressLimit(t *testing.T) {
	ti, _ := startCompat(t, func(c *config.Config) { c.PasswordFailuresPerAddress = 3 })
	ti.createUser(t, "alice", "alice's password")
	for range 3 {
		ti.sjPost(t, "", map[string]any{"username": "alice", "password": "guess"}).check(t, "failure", 401, sjNoAccount)
	}
	r := ti.sjPost(t, "", map[string]any{"username": "alice", "password": "alice's password"})
	var m map[string]string
	_ = json.Unmarshal(r.body, &m)
	if r.status != 429 || r.header.Get("Retry-After") == "" || !strings.HasPrefix(m["detail"], "Request was throttled. Expected available in ") {
		t.Errorf("login from an address over its limit: %d %s, Retry-After %q", r.status, r.body, r.header.Get("Retry-After"))
	}
}

// TestSimpleJWTMisconfigured: a simplejwt_client_id that names no client,
// or a client without the password and refresh_token grants, is an
// operator's mistake: 500, and a log line that says what to do.
func TestSimpleJWTMisconfigured(t *testing.T) {
	for _, tc := range []struct {
		name   string
		grants []string // nil: no client
	}{
		{"no client", nil},
		{"client without refresh_token", []string{"password"}},
		{"client without password", []string{"client_credentials", "refresh_token"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ti := startIssuer(t, withSimpleJWT)
			if tc.grants != nil {
				ti.putCompatClient(t, tc.grants)
			}
			ti.createUser(t, "alice", "alice's password")
			ti.sjPost(t, "", map[string]any{"username": "alice", "password": "alice's password"}).
				check(t, "login", 500, `{"detail":"The token service is not configured."}`)
			lines := logLines(t, ti, "client_id", compatClientID)
			if !slices.ContainsFunc(lines, func(l map[string]any) bool {
				msg, _ := l["msg"].(string)
				return l["level"] == "ERROR" && strings.Contains(msg, "simplejwt_client_id") && strings.Contains(msg, "password,refresh_token")
			}) {
				t.Errorf("no error line naming simplejwt_client_id and the grants it needs:\n%s", ti.logs)
			}
		})
	}
}

// TestSimpleJWTOff: without simplejwt_compat the path is nobody's: the
// catch-all 404.
func TestSimpleJWTOff(t *testing.T) {
	ti := startIssuer(t, withPasswordGrant)
	ti.createUser(t, "alice", "alice's password")
	r := ti.sjPost(t, "", map[string]any{"username": "alice", "password": "alice's password"})
	var m map[string]any
	if r.status != 404 || json.Unmarshal(r.body, &m) != nil || m["error"] != "not_found" {
		t.Errorf("POST /api/token/ with the compat endpoints off: %d %s, want the catch-all 404", r.status, r.body)
	}
}

// TestSimpleJWTPath: simplejwt_path moves the endpoints; the default path
// is then nobody's.
func TestSimpleJWTPath(t *testing.T) {
	ti, _ := startCompat(t, func(c *config.Config) { c.SimpleJWTPath = "/auth/jwt/" })
	ti.createUser(t, "alice", "alice's password")
	body := `{"username":"alice","password":"alice's password"}`
	req, _ := http.NewRequest("POST", ti.base+"/auth/jwt/", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if resp, m := ti.do(t, req); resp.StatusCode != 200 || m["access"] == nil {
		t.Errorf("login at /auth/jwt/: %d %v", resp.StatusCode, m)
	}
	r := ti.sjSend(t, "POST", "", "application/json", body)
	var m map[string]any
	if r.status != 404 || json.Unmarshal(r.body, &m) != nil || m["error"] != "not_found" {
		t.Errorf("POST /api/token/ with simplejwt_path /auth/jwt/: %d %s, want the catch-all 404", r.status, r.body)
	}
}

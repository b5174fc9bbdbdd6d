package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/issuer-oauth/issuer/internal/config"
	"github.com/issuer-oauth/issuer/internal/keys"
	"github.com/issuer-oauth/issuer/verify/verifytest"
)

// TestOversizedTokenRefused stores a client whose scope the admin API
// would refuse (as an older release, or a direct store write, may have
// left it): its token would be longer than keys.MaxTokenLen, which
// introspection and the refresh grant refuse to parse. The token endpoint
// must answer server_error and log why, not hand out a token the issuer
// itself then calls inactive.
func TestOversizedTokenRefused(t *testing.T) {
	ti := startIssuer(t)
	id, sec := ti.createClient(t, map[string]any{"scope": "read"})
	c, err := ti.app.store.GetClient(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	c.Scopes = nil
	for i := range 250 {
		c.Scopes = append(c.Scopes, fmt.Sprintf("orders.line-items.read.%03d", i))
	}
	if err := ti.app.store.UpdateClient(context.Background(), c); err != nil {
		t.Fatal(err)
	}

	resp, m := ti.token(t, id, sec, true, url.Values{"grant_type": {"client_credentials"}})
	if resp.StatusCode != http.StatusInternalServerError || m["error"] != "server_error" {
		if tok, _ := m["access_token"].(string); tok != "" {
			t.Errorf("a token of %d bytes was issued (introspection says active=%v)", len(tok), ti.introspect(t, id, sec, tok)["active"])
		}
		t.Fatalf("token: status %d, error %v, want 500 server_error", resp.StatusCode, m["error"])
	}
	logs := ti.logs.String()
	for _, want := range []string{"token request failed", id, fmt.Sprintf("over the %d that introspection and refresh parse", keys.MaxTokenLen)} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log does not say %q:\n%s", want, logs)
		}
	}
}

// TestRegistrationCapsTokenSize registers clients and users beyond the
// limits of the admin API (docs/admin.md): each is refused
// with an error naming the field, where it used to be accepted and its
// tokens then refused by introspection and the refresh grant.
func TestRegistrationCapsTokenSize(t *testing.T) {
	ti := startIssuer(t, withPasswordGrant)
	var many []string
	for i := range 250 {
		many = append(many, fmt.Sprintf("orders.read.%03d", i))
	}
	auds := func(n int) []string {
		var out []string
		for i := range n {
			out = append(out, fmt.Sprintf("https://api%02d.example.com/", i))
		}
		return out
	}
	claims := map[string]string{}
	for i := range 20 {
		claims[fmt.Sprintf("claim%02d", i)] = strings.Repeat("v", 40)
	}
	for _, tc := range []struct {
		name, path, code, want string
		body                   map[string]any
	}{
		{"250 scopes", "/admin/clients", "invalid_client_metadata", "scope: at most 100 scope tokens, not 250",
			map[string]any{"scope": strings.Join(many, " ")}},
		{"scope over 640 bytes", "/admin/clients", "invalid_client_metadata", "scope: 719 bytes, over 640",
			map[string]any{"scope": strings.Join(many[:99], " ")[:599] + strings.Repeat("&", 20)}},
		{"a long scope token", "/admin/clients", "invalid_client_metadata", "each at most 128 characters",
			map[string]any{"scope": strings.Repeat("s", 129)}},
		{"11 audiences", "/admin/clients", "invalid_client_metadata", "audience: at most 10, not 11",
			map[string]any{"audience": auds(11)}},
		{"audiences over 512 bytes", "/admin/clients", "invalid_client_metadata", "audience: 600 bytes together, over 512",
			map[string]any{"audience": []string{"https://a.example/" + strings.Repeat("p", 182), "https://b.example/" + strings.Repeat("p", 182),
				"https://c.example/" + strings.Repeat("p", 182)}}},
		{"a long audience", "/admin/clients", "invalid_client_metadata", "must be 1 to 256 characters",
			map[string]any{"audience": []string{"https://api.example.com/" + strings.Repeat("p", 233)}}},
		{"a long client_name", "/admin/clients", "invalid_client_metadata", "client_name is longer than 200 characters",
			map[string]any{"client_name": strings.Repeat("é", 201)}},
		{"user claims over 640 bytes", "/admin/users", "invalid_request", "claims: 940 bytes of names and values together, over 640",
			map[string]any{"username": "alice", "claims": claims}},
		{"user scope of 250 tokens", "/admin/users", "invalid_request", "scope: at most 100 scope tokens, not 250",
			map[string]any{"username": "bob", "scope": strings.Join(many, " ")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.path == "/admin/clients" && tc.body["audience"] == nil {
				tc.body["audience"] = []string{"https://api.example.com"}
			}
			resp, m := ti.admin(t, "POST", tc.path, tc.body)
			desc, _ := m["error_description"].(string)
			if resp.StatusCode != http.StatusBadRequest || m["error"] != tc.code || !strings.Contains(desc, tc.want) {
				t.Errorf("status %d, error %v %q; want 400 %s saying %q", resp.StatusCode, m["error"], desc, tc.code, tc.want)
			}
		})
	}
}

// TestTokensAtTheLimitsFit reaches every limit at once: a client with the
// longest scope and audiences, a user with the longest username and
// claims, all audiences requested with resource=, SimpleJWT's claims, a
// DPoP binding, a status-list claim and a 4096-bit RSA key. Its tokens fit
// keys.MaxTokenLen with room for the
// issuer URL and client id that the limits were computed for, so
// introspection calls them active and the refresh grant takes them.
func TestTokensAtTheLimitsFit(t *testing.T) {
	ti, sec := startCompat(t, func(c *config.Config) {
		c.SigningAlg, c.RSAKeyBits = "RS256", 4096
		c.SimpleJWTUserIDClaim = strings.Repeat("u", 64)
		c.StatusList = true
	})
	// pad appends to s the characters that JSON encodes longest ('&', 6
	// bytes) and then 'x' until s takes n bytes in a token.
	pad := func(s string, n int) string {
		for encLen(s)+6 <= n {
			s += "&"
		}
		for encLen(s) < n {
			s += "x"
		}
		return s
	}
	var scopes []string
	for i := 0; len(scopes) < 100 && encLen(strings.Join(scopes, " "))+11 <= 640; i++ {
		scopes = append(scopes, pad(fmt.Sprintf("s%02d", i), 10))
	}
	last := len(scopes) - 1
	scopes[last] = pad(scopes[last], 10+640-encLen(strings.Join(scopes, " ")))
	var auds []string
	for i := range 10 {
		n := 51
		if i < 2 {
			n = 52
		}
		auds = append(auds, pad(fmt.Sprintf("https://api%d.example.com/?", i), n))
	}
	meta := map[string]any{"grant_types": []string{"password", "refresh_token"}, "scope": strings.Join(scopes, " "), "audience": auds}
	if resp, m := ti.admin(t, "PUT", "/admin/clients/"+compatClientID, meta); resp.StatusCode != http.StatusOK {
		t.Fatalf("client at the limits: %d %v", resp.StatusCode, m)
	}
	claims := map[string]string{}
	for i := range 20 {
		claims[fmt.Sprintf("c%02d", i)] = pad("", 29)
	}
	username, pw := strings.Repeat("<", 150), "correct horse battery"
	if resp, m := ti.admin(t, "POST", "/admin/users", map[string]any{"username": username, "password": pw, "claims": claims}); resp.StatusCode != http.StatusCreated {
		t.Fatalf("user at the limits: %d %v", resp.StatusCode, m)
	}

	// The budget assumes a 128-byte issuer URL and a 64-byte client id;
	// this test's are shorter, and their room is kept free.
	room := func(n int) int { return (4*n + 2) / 3 }
	// The status claim's URI holds the issuer URL once more.
	accessRoom := 2*room(128-len(ti.URL)) + room(64-len(compatClientID)) + 4
	refreshRoom := 2*room(128-len(ti.URL)) + 2*room(64-len(compatClientID)) + 4

	form := url.Values{"grant_type": {"password"}, "username": {username}, "password": {pw}, "resource": auds}
	key := verifytest.NewDPoPKey(t, "ES256")
	resp, m := ti.dpopToken(t, compatClientID, sec, form, key.Proof(t, "POST", ti.URL+PathToken, "", ""))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("password grant: %d %v", resp.StatusCode, m["error_description"])
	}
	access, refresh := m["access_token"].(string), m["refresh_token"].(string)
	sjAccess, _ := ti.sjLogin(t, username, pw)
	for _, tok := range []struct {
		what, raw string
		room      int
	}{{"access token", access, accessRoom}, {"SimpleJWT access token", sjAccess, accessRoom}, {"refresh token", refresh, refreshRoom}} {
		t.Logf("%s: %d bytes, %d kept for the issuer URL and client id", tok.what, len(tok.raw), tok.room)
		if len(tok.raw)+tok.room > keys.MaxTokenLen {
			t.Errorf("%s: %d bytes and %d of room, over %d", tok.what, len(tok.raw), tok.room, keys.MaxTokenLen)
		}
	}
	if _, c := decodeJWT(t, access); len(toStrings(c["aud"])) != 10 || c["c19"] == nil || c["cnf"] == nil || c["status"] == nil {
		t.Errorf("the access token does not name all 10 audiences and carry the claims, cnf and status: %v", c)
	}
	for _, tok := range []string{access, sjAccess} {
		if got := ti.introspect(t, compatClientID, sec, tok); got["active"] != true {
			t.Errorf("introspection of an access token of %d bytes: %v, want active", len(tok), got)
		}
	}
	resp, m = ti.token(t, compatClientID, sec, true, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}})
	if resp.StatusCode != http.StatusOK {
		t.Errorf("refresh: %d %v", resp.StatusCode, m["error_description"])
	}
}

// encLen is the length of s as a JSON string in a token, without quotes.
func encLen(s string) int {
	b, _ := json.Marshal(s)
	return len(b) - 2
}

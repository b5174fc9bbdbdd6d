package server

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/issuer-oauth/issuer/internal/config"
	"github.com/issuer-oauth/issuer/internal/password"
	"github.com/issuer-oauth/issuer/internal/redistest"
	"github.com/issuer-oauth/issuer/internal/secret"
	"github.com/issuer-oauth/issuer/internal/store"
)

// withPasswordGrant turns the password grant on.
func withPasswordGrant(c *config.Config) { c.PasswordGrant = true }

// createUser stores a user with an argon2id hash of pw (or hash, when
// given) and returns it.
func (ti *testIssuer) createUser(t *testing.T, username, pw string, mutate ...func(*store.User)) store.User {
	t.Helper()
	h, err := password.New(password.Config{})
	if err != nil {
		t.Fatal(err)
	}
	hash, err := h.Hash(context.Background(), pw)
	if err != nil {
		t.Fatal(err)
	}
	now := ti.clock.Now()
	u := store.User{ID: secret.Random(12), Username: username, PasswordHash: hash, CreatedAt: now, UpdatedAt: now}
	for _, m := range mutate {
		m(&u)
	}
	if err := ti.app.store.CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	return u
}

// login asks for tokens with the password grant.
func (ti *testIssuer) login(t *testing.T, id, sec, username, pw string, extra ...string) (*http.Response, map[string]any) {
	t.Helper()
	form := url.Values{"grant_type": {"password"}, "username": {username}, "password": {pw}}
	for i := 0; i+1 < len(extra); i += 2 {
		form.Set(extra[i], extra[i+1])
	}
	return ti.token(t, id, sec, true, form)
}

func TestPasswordGrantOffByDefault(t *testing.T) {
	ti := startIssuer(t)
	if gts := toStrings(ti.metadata(t)["grant_types_supported"]); strings.Contains(strings.Join(gts, " "), "password") {
		t.Errorf("grant_types_supported = %v with the password grant off", gts)
	}
	resp, m := ti.admin(t, "POST", "/admin/clients", map[string]any{"grant_types": []string{"password"}, "audience": []string{"https://api.example.com"}})
	if resp.StatusCode != 400 || !strings.Contains(m["error_description"].(string), "ISSUER_PASSWORD_GRANT") {
		t.Errorf("registering a password client with the grant off: %d %v, want 400 naming the setting", resp.StatusCode, m)
	}
	id, sec := ti.createClient(t, map[string]any{})
	if resp, m := ti.login(t, id, sec, "alice", "pw"); resp.StatusCode != 400 || m["error"] != "unsupported_grant_type" {
		t.Errorf("password grant while off: %d %v, want unsupported_grant_type", resp.StatusCode, m)
	}
}

// TestPasswordGrant: a user's username and password give an access token
// whose sub is the user id, scope the intersection of client, user and
// request, and the user's claims; golang.org/x/oauth2's
// PasswordCredentialsToken (a client nobody here wrote) gets it too.
func TestPasswordGrant(t *testing.T) {
	ti := startIssuer(t, withPasswordGrant)
	if gts := toStrings(ti.metadata(t)["grant_types_supported"]); !strings.Contains(strings.Join(gts, " "), "password") {
		t.Errorf("grant_types_supported = %v, want password listed", gts)
	}
	id, sec := ti.createClient(t, map[string]any{"grant_types": []string{"password", "refresh_token"}, "scope": "read write admin"})
	alice := ti.createUser(t, "alice", "correct horse battery", func(u *store.User) {
		u.Scopes = []string{"read", "write"}
		u.Claims = map[string]string{"email": "alice@example.com", "sub": "forged", "department": "billing"}
	})

	resp, m := ti.login(t, id, sec, "alice", "correct horse battery")
	if resp.StatusCode != 200 {
		t.Fatalf("login: %d %v", resp.StatusCode, m)
	}
	if m["scope"] != "read write" || m["refresh_token"] == nil || m["token_type"] != "Bearer" {
		t.Errorf("token response = %v, want scope read write (client ∩ user) and a refresh token", m)
	}
	c := ti.verifyAccess(t, m["access_token"].(string), e2eAudience)
	if c.Subject != alice.ID || c.ClientID != id {
		t.Errorf("sub = %q, client_id = %q; want the user id %q and the client", c.Subject, c.ClientID, alice.ID)
	}
	_, claims := decodeJWT(t, m["access_token"].(string))
	if claims["email"] != "alice@example.com" || claims["department"] != "billing" || claims["token_type"] != nil {
		t.Errorf("claims = %v, want the user's claims and no token_type", claims)
	}
	if resp, m := ti.login(t, id, sec, "alice", "correct horse battery", "scope", "admin"); resp.StatusCode != 400 || m["error"] != "invalid_scope" {
		t.Errorf("a scope the user lacks: %d %v, want invalid_scope", resp.StatusCode, m)
	}
	if resp, m := ti.login(t, id, sec, "alice", "correct horse battery", "scope", "delete"); resp.StatusCode != 400 || m["error"] != "invalid_scope" {
		t.Errorf("a scope the client lacks: %d %v, want invalid_scope", resp.StatusCode, m)
	}

	// The refresh token rotates; its access tokens keep the user.
	status, r := ti.refresh(t, id, sec, m["refresh_token"].(string))
	if status != 200 {
		t.Fatalf("refresh: %d %v", status, r)
	}
	if c := ti.verifyAccess(t, r["access_token"].(string), e2eAudience); c.Subject != alice.ID {
		t.Errorf("refreshed sub = %q, want %q", c.Subject, alice.ID)
	}
	if status, r2 := ti.refresh(t, id, sec, m["refresh_token"].(string)); status != 400 || r2["error"] != "invalid_grant" {
		t.Errorf("reuse of a rotated user refresh token: %d %v", status, r2)
	}

	cfg := oauth2.Config{ClientID: id, ClientSecret: sec, Endpoint: oauth2.Endpoint{TokenURL: ti.metadata(t)["token_endpoint"].(string), AuthStyle: oauth2.AuthStyleInHeader}, Scopes: []string{"read"}}
	tok, err := cfg.PasswordCredentialsToken(context.Background(), "alice", "correct horse battery")
	if err != nil || tok.Extra("scope") != "read" {
		t.Fatalf("x/oauth2 PasswordCredentialsToken = %v, %v", tok, err)
	}
	if _, err := cfg.PasswordCredentialsToken(context.Background(), "alice", "wrong"); err == nil {
		t.Errorf("x/oauth2 with a wrong password succeeded")
	}

	// A client without the password grant may not use it.
	other, osec := ti.createClient(t, map[string]any{})
	if resp, m := ti.login(t, other, osec, "alice", "correct horse battery"); resp.StatusCode != 400 || m["error"] != "unauthorized_client" {
		t.Errorf("client without the password grant: %d %v, want unauthorized_client", resp.StatusCode, m)
	}
	// A client with only the password grant gets no refresh token.
	noRefresh, nsec := ti.createClient(t, map[string]any{"grant_types": []string{"password"}})
	if resp, m := ti.login(t, noRefresh, nsec, "alice", "correct horse battery"); resp.StatusCode != 200 || m["refresh_token"] != nil {
		t.Errorf("password-only client: %d %v, want tokens without a refresh token", resp.StatusCode, m)
	}
	if resp, m := ti.login(t, id, "wrong-secret", "alice", "correct horse battery"); resp.StatusCode != 401 || m["error"] != "invalid_client" {
		t.Errorf("wrong client secret: %d %v", resp.StatusCode, m)
	}
	for _, tc := range []struct{ username, pw string }{{"", "x"}, {"alice", ""}} {
		if resp, m := ti.login(t, id, sec, tc.username, tc.pw); resp.StatusCode != 400 || m["error"] != "invalid_request" {
			t.Errorf("username %q password %q: %d %v, want invalid_request", tc.username, tc.pw, resp.StatusCode, m)
		}
	}
	if strings.Contains(ti.logs.String(), "correct horse battery") {
		t.Errorf("the password is in the log")
	}
}

// TestPasswordGrantFailuresLookAlike: unknown user, wrong password,
// disabled user and locked user get the same answer, and a locked user
// fails with the right password too until an unlock.
func TestPasswordGrantFailuresLookAlike(t *testing.T) {
	ti := startIssuer(t, withPasswordGrant, func(c *config.Config) { c.PasswordFailuresPerUser = 3 })
	id, sec := ti.createClient(t, map[string]any{"grant_types": []string{"password"}})
	ti.createUser(t, "alice", "alice's password")
	ti.createUser(t, "dave", "dave's password", func(u *store.User) { u.Disabled = true })
	ti.createUser(t, "imported", "", func(u *store.User) { u.PasswordHash = "!unusable-django-password" })

	var want map[string]any
	for i, tc := range []struct{ name, username, pw string }{
		{"unknown user", "nobody", "whatever"},
		{"wrong password", "alice", "wrong"},
		{"disabled user", "dave", "dave's password"},
		{"unusable password", "imported", "!unusable-django-password"},
		{"wrong password again", "alice", "wrong"},
		{"wrong password a third time", "alice", "wrong"},
		{"locked user, right password", "alice", "alice's password"},
	} {
		resp, m := ti.login(t, id, sec, tc.username, tc.pw)
		if resp.StatusCode != 400 || m["error"] != "invalid_grant" {
			t.Errorf("%s: %d %v, want 400 invalid_grant", tc.name, resp.StatusCode, m)
		}
		if i == 0 {
			want = m
		} else if m["error_description"] != want["error_description"] {
			t.Errorf("%s: description %q differs from an unknown user's %q", tc.name, m["error_description"], want["error_description"])
		}
	}
	until, err := ti.app.limiter.LockedUntil(context.Background(), "alice")
	if err != nil || until.IsZero() {
		t.Fatalf("alice is not locked: %v %v", until, err)
	}
	if err := ti.app.limiter.Unlock(context.Background(), "alice"); err != nil {
		t.Fatal(err)
	}
	if resp, m := ti.login(t, id, sec, "alice", "alice's password"); resp.StatusCode != 200 {
		t.Errorf("after the unlock: %d %v", resp.StatusCode, m)
	}
}

// TestPasswordGrantAddressLimit: an address past password_failures_per_address
// gets 429 with Retry-After, the right password included.
func TestPasswordGrantAddressLimit(t *testing.T) {
	ti := startIssuer(t, withPasswordGrant, func(c *config.Config) { c.PasswordFailuresPerAddress = 4 })
	id, sec := ti.createClient(t, map[string]any{"grant_types": []string{"password"}})
	ti.createUser(t, "alice", "alice's password")
	for i := range 4 {
		if resp, _ := ti.login(t, id, sec, "user"+string(rune('a'+i)), "guess"); resp.StatusCode != 400 {
			t.Fatalf("failure %d: %d", i, resp.StatusCode)
		}
	}
	resp, m := ti.login(t, id, sec, "alice", "alice's password")
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" || m["error"] != "temporarily_unavailable" {
		t.Errorf("login from an address over its limit: %d %v, Retry-After %q", resp.StatusCode, m, resp.Header.Get("Retry-After"))
	}
	// Client credentials from the same address are not concerned.
	cid, csec := ti.createClient(t, map[string]any{})
	if resp, m := ti.token(t, cid, csec, true, url.Values{"grant_type": {"client_credentials"}}); resp.StatusCode != 200 {
		t.Errorf("client credentials from the address: %d %v", resp.StatusCode, m)
	}
}

// TestPasswordGrantUserChangesEndTokens: disabling a user, changing its
// password or deleting it ends its refresh tokens at once.
func TestPasswordGrantUserChangesEndTokens(t *testing.T) {
	ti := startIssuer(t, withPasswordGrant)
	ctx := context.Background()
	id, sec := ti.createClient(t, map[string]any{"grant_types": []string{"password", "refresh_token"}})
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, username string)
	}{
		{"disabled", func(t *testing.T, username string) {
			u, _ := ti.app.store.GetUser(ctx, username)
			u.Disabled = true
			if _, err := ti.app.store.UpdateUser(ctx, u); err != nil {
				t.Fatal(err)
			}
		}},
		{"password changed", func(t *testing.T, username string) {
			if _, err := ti.app.store.SetUserPassword(ctx, username, "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"); err != nil {
				t.Fatal(err)
			}
		}},
		{"deleted", func(t *testing.T, username string) {
			if err := ti.app.store.DeleteUser(ctx, username); err != nil {
				t.Fatal(err)
			}
		}},
		{"deleted and created again", func(t *testing.T, username string) {
			if err := ti.app.store.DeleteUser(ctx, username); err != nil {
				t.Fatal(err)
			}
			ti.createUser(t, username, "pw-"+username)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			username := strings.ReplaceAll(tc.name, " ", "-")
			ti.createUser(t, username, "pw-"+username)
			_, m := ti.login(t, id, sec, username, "pw-"+username)
			rt, _ := m["refresh_token"].(string)
			if rt == "" {
				t.Fatalf("login: %v", m)
			}
			status, r := ti.refresh(t, id, sec, rt)
			if status != 200 {
				t.Fatalf("refresh before the change: %d %v", status, r)
			}
			rt = r["refresh_token"].(string)
			if got := ti.introspect(t, id, sec, rt); got["active"] != true {
				t.Errorf("introspection before the change = %v", got)
			}
			tc.change(t, username)
			if got := ti.introspect(t, id, sec, rt); got["active"] != false {
				t.Errorf("introspection of the refresh token after the user was %s = %v, want inactive", tc.name, got)
			}
			if status, r := ti.refresh(t, id, sec, rt); status != 400 || r["error"] != "invalid_grant" {
				t.Errorf("refresh after the user was %s: %d %v, want invalid_grant", tc.name, status, r)
			}
		})
	}
}

// TestPasswordGrantUpgradesHashes: a user imported with a Django PBKDF2
// hash logs in with its old password; the hash becomes argon2id.
func TestPasswordGrantUpgradesHashes(t *testing.T) {
	ti := startIssuer(t, withPasswordGrant)
	id, sec := ti.createClient(t, map[string]any{"grant_types": []string{"password"}})
	// Django's pbkdf2_sha256 format at Django 3.2's 260000 iterations
	// (internal/password checks it against hashes made by real Django).
	const django = "pbkdf2_sha256$260000$c2FsdHNhbHQ$jeXKsi501L4hDGZp/ghLyVZ5JR3mw3GI7rp8CyCSWxs="
	ti.createUser(t, "migrated", "", func(u *store.User) { u.PasswordHash = django })
	resp, m := ti.login(t, id, sec, "migrated", "django-password")
	if resp.StatusCode != 200 {
		t.Fatalf("login with the Django hash: %d %v", resp.StatusCode, m)
	}
	u, err := ti.app.store.GetUser(context.Background(), "migrated")
	if err != nil || !strings.HasPrefix(u.PasswordHash, "$argon2id$") {
		t.Errorf("hash after login = %q (%v), want argon2id", u.PasswordHash, err)
	}
	if resp, m := ti.login(t, id, sec, "migrated", "django-password"); resp.StatusCode != 200 {
		t.Errorf("second login with the upgraded hash: %d %v", resp.StatusCode, m)
	}
}

// TestPasswordLockAcrossInstances: failures at one instance lock the
// username at the other (two instances on one Redis).
func TestPasswordLockAcrossInstances(t *testing.T) {
	srv := redistest.Start(t)
	master := secret.Random(32)
	lim := func(c *config.Config) { c.PasswordFailuresPerUser = 3 }
	a := startIssuer(t, withPasswordGrant, lim, onRedis(srv.URL(), master))
	b := startIssuer(t, withPasswordGrant, lim, onRedis(srv.URL(), master), sameURL(a.URL))
	id, sec := a.createClient(t, map[string]any{"grant_types": []string{"password"}})
	a.createUser(t, "alice", "alice's password")
	for range 3 {
		if resp, _ := a.login(t, id, sec, "alice", "wrong"); resp.StatusCode != 400 {
			t.Fatalf("failure at A: %d", resp.StatusCode)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, m := b.login(t, id, sec, "alice", "alice's password")
		if resp.StatusCode == 400 && m["error"] == "invalid_grant" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("B still lets alice in after 3 failures at A: %d %v", resp.StatusCode, m)
		}
		// B let the right password in before the hint reached it.
		time.Sleep(20 * time.Millisecond)
	}
}

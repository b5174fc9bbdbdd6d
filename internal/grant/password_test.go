package grant

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/issuer-oauth/issuer/internal/oauth"
	"github.com/issuer-oauth/issuer/internal/password"
	"github.com/issuer-oauth/issuer/internal/store"
)

// fakePasswords is a Passwords that accepts one password and records the
// calls, so that the tests see which work a login did.
type fakePasswords struct {
	mu                      sync.Mutex
	verify, dummy, hash     int
	err                     error // returned by Verify and DummyVerify
	rehash                  bool
	rightPassword, newHashV string
}

func (f *fakePasswords) Verify(_ context.Context, encoded, pw string) (bool, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.verify++
	return f.err == nil && pw == f.rightPassword && encoded != "", f.rehash, f.err
}

func (f *fakePasswords) DummyVerify(context.Context, string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dummy++
	return f.err
}

func (f *fakePasswords) Hash(context.Context, string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hash++
	return f.newHashV, nil
}

// passwordHarness is the harness with the password grant on, a client
// allowed it, and the user alice.
func passwordHarness(t *testing.T) (*harness, *fakePasswords, testClient) {
	t.Helper()
	hs := newHarness(t)
	pw := &fakePasswords{rightPassword: "alice's password", newHashV: "$argon2id$upgraded"}
	hs.h.users, hs.h.passwords = hs.st, pw
	c := testClient{"svc-password", "pw-s3cr3t-DDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDD", oauth.AuthClientSecretBasic, []string{oauth.GrantPassword, oauth.GrantRefreshToken}}
	ctx := context.Background()
	if err := hs.st.CreateClient(ctx, store.Client{ID: c.id, SecretHash: hs.hasher.Hash(c.id, c.secret), GrantTypes: c.grants,
		Scopes: []string{"read", "write"}, Audiences: []string{apiAudience}, AuthMethod: c.method}); err != nil {
		t.Fatal(err)
	}
	if err := hs.st.CreateUser(ctx, store.User{ID: "u-alice", Username: "alice", PasswordHash: "pbkdf2_sha256$stored"}); err != nil {
		t.Fatal(err)
	}
	return hs, pw, c
}

func (hs *harness) passwordLogin(t *testing.T, c testClient, username, pw string) (int, map[string]any) {
	t.Helper()
	form := url.Values{"grant_type": {"password"}, "username": {username}, "password": {pw}}
	req := httptest.NewRequest(http.MethodPost, "/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", formCT)
	req.Header.Set("Authorization", basicAuth(c.id, c.secret))
	rec := httptest.NewRecorder()
	hs.h.ServeHTTP(rec, req)
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	return rec.Code, m
}

// TestPasswordWork: an unknown username costs one dummy verification, a
// known one one verification: the same work, so the same time.
func TestPasswordWork(t *testing.T) {
	hs, pw, c := passwordHarness(t)
	status, m := hs.passwordLogin(t, c, "nobody", "guess")
	if status != 400 || m["error_description"] != errBadCredentials.Description || pw.dummy != 1 || pw.verify != 0 {
		t.Errorf("unknown user: %d %v, %d dummy and %d real verifications; want invalid_grant after 1 dummy", status, m, pw.dummy, pw.verify)
	}
	status, m = hs.passwordLogin(t, c, "alice", "guess")
	if status != 400 || m["error_description"] != errBadCredentials.Description || pw.dummy != 1 || pw.verify != 1 {
		t.Errorf("wrong password: %d %v, %d dummy and %d real verifications", status, m, pw.dummy, pw.verify)
	}
	if status, m = hs.passwordLogin(t, c, "alice", "alice's password"); status != 200 || pw.hash != 0 {
		t.Errorf("right password: %d %v, %d rehashes", status, m, pw.hash)
	}
}

// TestPasswordBusy: a full pool of hash computations answers 503
// temporarily_unavailable, not a credential failure.
func TestPasswordBusy(t *testing.T) {
	hs, pw, c := passwordHarness(t)
	pw.err = password.ErrBusy
	for _, username := range []string{"alice", "nobody"} {
		if status, m := hs.passwordLogin(t, c, username, "alice's password"); status != 503 || m["error"] != "temporarily_unavailable" {
			t.Errorf("%s with the pool busy: %d %v, want 503 temporarily_unavailable", username, status, m)
		}
	}
}

// TestPasswordBrokenHash: a stored hash that cannot be read fails like a
// wrong password (and is logged), not with a server error.
func TestPasswordBrokenHash(t *testing.T) {
	hs, pw, c := passwordHarness(t)
	pw.err = fmt.Errorf("stored hash: %w", password.ErrMalformed)
	if status, m := hs.passwordLogin(t, c, "alice", "alice's password"); status != 400 || m["error"] != "invalid_grant" {
		t.Errorf("unreadable stored hash: %d %v, want invalid_grant", status, m)
	}
}

// TestPasswordRehash: a login with a hash below the configured parameters
// stores a new one, unless the hash changed meanwhile.
func TestPasswordRehash(t *testing.T) {
	hs, pw, c := passwordHarness(t)
	pw.rehash = true
	if status, m := hs.passwordLogin(t, c, "alice", "alice's password"); status != 200 {
		t.Fatalf("login: %d %v", status, m)
	}
	u, err := hs.st.GetUser(context.Background(), "alice")
	if err != nil || u.PasswordHash != "$argon2id$upgraded" || pw.hash != 1 {
		t.Errorf("hash after the login = %q (%v), %d rehashes; want the upgraded one", u.PasswordHash, err, pw.hash)
	}
}

package admin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/issuer-oauth/issuer/internal/admin"
	"github.com/issuer-oauth/issuer/internal/adminapi"
	"github.com/issuer-oauth/issuer/internal/djangotest"
	"github.com/issuer-oauth/issuer/internal/password"
	"github.com/issuer-oauth/issuer/internal/store"
)

// fakeLockouts is Lockouts with the lockouts a test sets.
type fakeLockouts struct {
	mu       sync.Mutex
	until    map[string]time.Time
	err      error
	unlocked []string
}

func (f *fakeLockouts) LockedUntil(_ context.Context, username string) (time.Time, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.until[username], f.err
}

func (f *fakeLockouts) Unlock(_ context.Context, username string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	delete(f.until, username)
	f.unlocked = append(f.unlocked, username)
	return nil
}

func (f *fakeLockouts) set(username string, until time.Time, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.until[username], f.err = until, err
}

// busy is a PasswordHasher with no free slot.
type busy struct{}

func (busy) Hash(context.Context, string) (string, error) { return "", password.ErrBusy }

// usersDown is a store whose users cannot be reached.
type usersDown struct{ admin.Store }

func (usersDown) ListUsers(context.Context) ([]store.User, error) {
	return nil, fmt.Errorf("dial: %w", store.ErrUnavailable)
}

func ptr(s string) *string { return &s }

// bigBodies lets requests carry long passwords and many claims.
func bigBodies(c *admin.Config) { c.MaxBodyBytes = 64 << 10 }

// verify reports whether the stored hash of username matches pw.
func (f *fixture) verify(t *testing.T, username, pw string) bool {
	t.Helper()
	u, err := f.st.GetUser(t.Context(), username)
	if err != nil {
		t.Fatalf("GetUser(%q): %v", username, err)
	}
	ok, _, err := f.passwords.Verify(t.Context(), u.PasswordHash, pw)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return ok
}

var hexID = regexp.MustCompile(`^[0-9a-f]{32}$`)

func TestUserLifecycle(t *testing.T) {
	f := newFixture(t, nil)
	var answers []string // every answer body, checked for hashes at the end
	call := func(method, path string, body any, out any) int {
		t.Helper()
		code, raw := f.raw(t, method, path, body)
		answers = append(answers, string(raw))
		decode(t, method+" "+path, code, raw, out)
		return code
	}

	// Created without a password: one is generated and shown once.
	var alice adminapi.UserInfo
	if code := call("POST", "/admin/users", adminapi.UserRequest{Username: "alice", Scope: ptr("write read read"), Claims: map[string]string{"tenant": "acme"}}, &alice); code != 201 {
		t.Fatalf("create: %d %+v", code, alice)
	}
	if !hexID.MatchString(alice.UserID) || alice.Username != "alice" || alice.Disabled || alice.Scope == nil || *alice.Scope != "write read" ||
		!maps.Equal(alice.Claims, map[string]string{"tenant": "acme"}) || alice.CreatedAt.IsZero() || !alice.LockedUntil.IsZero() {
		t.Errorf("created = %+v", alice)
	}
	if len(alice.Password) != 32 { // 24 random bytes, base64url
		t.Fatalf("generated password %q, want 32 characters (192 bits)", alice.Password)
	}
	if !f.verify(t, "alice", alice.Password) || f.verify(t, "alice", alice.Password+"x") {
		t.Errorf("the stored hash does not verify the generated password (or verifies another)")
	}
	stored, _ := f.st.GetUser(t.Context(), "alice")
	if !strings.HasPrefix(stored.PasswordHash, "$argon2id$") || stored.ID != alice.UserID || stored.Scopes == nil {
		t.Errorf("stored = %+v, want an argon2id hash under the answered id", stored)
	}

	// Created with a password: none in the answer.
	var bob adminapi.UserInfo
	if code := call("POST", "/admin/users", adminapi.UserRequest{Username: "bob", Password: ptr("bob's password"), Disabled: true}, &bob); code != 201 || bob.Password != "" || !bob.Disabled || bob.Scope != nil || bob.UserID == alice.UserID {
		t.Fatalf("create with password: %d %+v", code, bob)
	}
	if !f.verify(t, "bob", "bob's password") {
		t.Errorf("bob's password does not verify")
	}

	var got adminapi.UserInfo
	if code := call("GET", "/admin/users/alice", nil, &got); code != 200 || got.Password != "" || got.UserID != alice.UserID {
		t.Errorf("get: %d %+v (the password must not be shown again)", code, got)
	}
	var list adminapi.UserList
	if code := call("GET", "/admin/users", nil, &list); code != 200 || len(list.Users) != 2 || list.Users[0].Username != "alice" || list.Users[1].Username != "bob" {
		t.Errorf("list: %d %+v", code, list)
	}

	// PUT replaces the profile; the password stays.
	if code := call("PUT", "/admin/users/alice", adminapi.UserRequest{Username: "alice", Disabled: true, Scope: ptr(""), Claims: map[string]string{"org": "x"}}, &got); code != 200 ||
		!got.Disabled || got.Scope == nil || *got.Scope != "" || !maps.Equal(got.Claims, map[string]string{"org": "x"}) || got.Password != "" {
		t.Errorf("update: %d %+v", code, got)
	}
	if !f.verify(t, "alice", alice.Password) {
		t.Errorf("update changed the password")
	}
	if code := call("PUT", "/admin/users/alice", `{}`, &got); code != 200 || got.Disabled || got.Scope != nil || len(got.Claims) != 0 || got.Claims == nil {
		t.Errorf("update to defaults: %d %+v, want enabled, unrestricted, claims {}", code, got)
	}
	var e adminapi.ErrorBody
	if code := call("PUT", "/admin/users/alice", `{"password":"new password 1"}`, &e); code != 400 || e.Error != "invalid_request" || !strings.Contains(e.ErrorDescription, "set-password") {
		t.Errorf("PUT with a password: %d %+v, want 400 pointing at set-password", code, e)
	}
	if code := call("PUT", "/admin/users/alice", adminapi.UserRequest{Username: "alicia"}, &e); code != 400 || !strings.Contains(e.ErrorDescription, "username cannot be changed") {
		t.Errorf("PUT renaming: %d %+v", code, e)
	}

	// set-password: given, then generated; each ends the refresh tokens.
	gen := stored.Generation
	if code := call("POST", "/admin/users/alice/password", adminapi.UserRequest{Password: ptr("correct horse battery")}, &got); code != 200 || got.Password != "" || got.UserID != alice.UserID {
		t.Errorf("set-password: %d %+v", code, got)
	}
	if !f.verify(t, "alice", "correct horse battery") || f.verify(t, "alice", alice.Password) {
		t.Errorf("after set-password the store verifies the old password or not the new one")
	}
	if code := call("POST", "/admin/users/alice/password", nil, &got); code != 200 || len(got.Password) != 32 {
		t.Fatalf("set-password, generated: %d %+v", code, got)
	}
	if !f.verify(t, "alice", got.Password) {
		t.Errorf("the generated password does not verify")
	}
	if after, _ := f.st.GetUser(t.Context(), "alice"); after.Generation < gen+2 {
		t.Errorf("generation %d after two password changes from %d: refresh tokens did not end", after.Generation, gen)
	}
	if code := call("POST", "/admin/users/alice/password", `{"password":"new password 2","scope":"x"}`, &e); code != 400 || !strings.Contains(e.ErrorDescription, "PUT") {
		t.Errorf("set-password with a profile field: %d %+v", code, e)
	}

	if code := call("DELETE", "/admin/users/bob", nil, nil); code != 204 {
		t.Errorf("delete: %d", code)
	}
	for _, req := range []struct {
		method, path string
		body         any
	}{
		{"GET", "/admin/users/bob", nil},
		{"PUT", "/admin/users/bob", `{}`},
		{"DELETE", "/admin/users/bob", nil},
		{"POST", "/admin/users/bob/password", nil},
		{"POST", "/admin/users/bob/unlock", nil},
	} {
		if code := call(req.method, req.path, req.body, &e); code != 404 || e.Error != "not_found" || e.ErrorDescription != "no user with this username" {
			t.Errorf("%s %s after delete: %d %+v, want 404 not_found", req.method, req.path, code, e)
		}
	}
	if code := call("POST", "/admin/users", adminapi.UserRequest{Username: "alice"}, &e); code != 409 || e.Error != "already_exists" {
		t.Errorf("create of a taken username: %d %+v, want 409", code, e)
	}

	// Neither a password nor a hash reaches an answer or the log.
	hashes := []string{stored.PasswordHash}
	if u, err := f.st.GetUser(t.Context(), "alice"); err == nil {
		hashes = append(hashes, u.PasswordHash)
	}
	logs := f.logs.String()
	for _, s := range append(hashes, "bob's password", "correct horse battery", alice.Password, got.Password, "$argon2id$") {
		if strings.Contains(logs, s) {
			t.Errorf("the log contains %q:\n%s", s, logs)
		}
		for i, a := range answers {
			if s != alice.Password && s != got.Password && strings.Contains(a, s) {
				t.Errorf("answer %d contains %q: %s", i, s, a)
			}
		}
	}
	if !strings.Contains(logs, `"msg":"user created"`) || !strings.Contains(logs, `"user_id":"`+alice.UserID+`"`) {
		t.Errorf("the log does not tell of the creation:\n%s", logs)
	}
}

// TestUserScopeOnTheWire: an unrestricted user has no scope member; one
// allowed nothing has "scope":"".
func TestUserScopeOnTheWire(t *testing.T) {
	f := newFixture(t, nil)
	for _, tc := range []struct {
		username, body string
		wantMember     string // "" for none
		wantStored     []string
	}{
		{"u1", `{"username":"u1"}`, "", nil},
		{"u2", `{"username":"u2","scope":null}`, "", nil},
		{"u3", `{"username":"u3","scope":""}`, `"scope":""`, []string{}},
		{"u4", `{"username":"u4","scope":" read  write "}`, `"scope":"read write"`, []string{"read", "write"}},
	} {
		code, raw := f.raw(t, "POST", "/admin/users", tc.body)
		if code != 201 {
			t.Fatalf("%s: %d %s", tc.body, code, raw)
		}
		if has := strings.Contains(string(raw), `"scope"`); has != (tc.wantMember != "") || !strings.Contains(string(raw), tc.wantMember) {
			t.Errorf("%s: answer %s, want scope member %q", tc.body, raw, tc.wantMember)
		}
		u, _ := f.st.GetUser(t.Context(), tc.username)
		if !slices.Equal(u.Scopes, tc.wantStored) || (u.Scopes == nil) != (tc.wantStored == nil) {
			t.Errorf("%s: stored scopes %#v, want %#v", tc.body, u.Scopes, tc.wantStored)
		}
	}
}

func TestUserInvalid(t *testing.T) {
	f := newFixture(t, nil, bigBodies)
	manyClaims := map[string]string{}
	for i := range 21 {
		manyClaims[fmt.Sprintf("c%d", i)] = "v"
	}
	tests := []struct {
		name string
		body any
		want string // in the description
	}{
		{"no username", `{"password":"long enough"}`, "username is required"},
		{"empty body", ``, `{"username":"alice"}`},
		{"username too long", adminapi.UserRequest{Username: strings.Repeat("é", 151)}, "longer than 150"},
		{"username with a space", adminapi.UserRequest{Username: "a b"}, "without whitespace"},
		{"username with a tab", adminapi.UserRequest{Username: "a\tb"}, "without whitespace"},
		{"username with a control character", adminapi.UserRequest{Username: "a\x00b"}, "printable"},
		{"username .", adminapi.UserRequest{Username: "."}, `"." or ".."`},
		{"username ..", adminapi.UserRequest{Username: ".."}, `"." or ".."`},
		{"password too short", adminapi.UserRequest{Username: "a", Password: ptr("seven77")}, "8 to 1024"},
		{"password empty", adminapi.UserRequest{Username: "a", Password: ptr("")}, "8 to 1024"},
		{"password too long", adminapi.UserRequest{Username: "a", Password: ptr(strings.Repeat("p", 1025))}, "8 to 1024"},
		{"bad scope", adminapi.UserRequest{Username: "a", Scope: ptr(`bad"scope`)}, "scope tokens"},
		{"too many claims", adminapi.UserRequest{Username: "a", Claims: manyClaims}, "at most 20"},
		{"reserved claim", adminapi.UserRequest{Username: "a", Claims: map[string]string{"sub": "x"}}, `"sub" is set by the issuer`},
		{"reserved claim token_type", adminapi.UserRequest{Username: "a", Claims: map[string]string{"token_type": "x"}}, `"token_type"`},
		{"empty claim name", adminapi.UserRequest{Username: "a", Claims: map[string]string{"": "x"}}, "1 to 64"},
		{"long claim name", adminapi.UserRequest{Username: "a", Claims: map[string]string{strings.Repeat("n", 65): "x"}}, "1 to 64"},
		{"long claim value", adminapi.UserRequest{Username: "a", Claims: map[string]string{"n": strings.Repeat("v", 257)}}, "at most 256"},
		{"claim value with a newline", adminapi.UserRequest{Username: "a", Claims: map[string]string{"n": "a\nb"}}, "control characters"},
		{"unknown field", `{"username":"a","scopes":"read"}`, `unknown field "scopes"`},
		{"not JSON", `{"username":"a","password":"secret-password-in-bad-json`, "the JSON ends early"},
		{"bad JSON", `{"username":"a","password":"secret-password" x}`, "invalid JSON at byte"},
		{"an array", `[]`, "not an object"},
		{"password not a string", `{"username":"a","password":12345678}`, "password is a JSON number"},
		{"two objects", `{"username":"a"}{"username":"b"}`, "data after the object"},
		{"several problems", adminapi.UserRequest{Username: "a b", Password: ptr("short")}, "whitespace; password must be"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e adminapi.ErrorBody
			if code := f.call(t, "POST", "/admin/users", tt.body, &e); code != 400 || e.Error != "invalid_request" || !strings.Contains(e.ErrorDescription, tt.want) {
				t.Errorf("%d %+v, want 400 invalid_request mentioning %q", code, e, tt.want)
			}
			if strings.Contains(e.ErrorDescription, "secret-password") || strings.Contains(e.ErrorDescription, "seven77") {
				t.Errorf("the description quotes the password: %q", e.ErrorDescription)
			}
		})
	}
	if users, _ := f.st.ListUsers(t.Context()); len(users) != 0 {
		t.Errorf("invalid requests created %d users", len(users))
	}
	// The limits themselves are accepted.
	edge := map[string]string{strings.Repeat("n", 64): strings.Repeat("v", 256)}
	for i := range 19 {
		edge[fmt.Sprintf("c%d", i)] = ""
	}
	req := adminapi.UserRequest{Username: strings.Repeat("é", 150), Password: ptr(strings.Repeat("p", 1024)), Claims: edge}
	if code := f.call(t, "POST", "/admin/users", req, nil); code != 201 {
		t.Errorf("a user at every limit: %d, want 201", code)
	}
	if code := f.call(t, "POST", "/admin/users", adminapi.UserRequest{Username: "eight", Password: ptr("8 chars!")}, nil); code != 201 {
		t.Errorf("an 8-character password: %d, want 201", code)
	}
}

// TestUserPasswordNotFromURL: a password in the query string is ignored.
func TestUserPasswordNotFromURL(t *testing.T) {
	f := newFixture(t, nil)
	const inURL = "password-in-the-url"
	var u adminapi.UserInfo
	if code := f.call(t, "POST", "/admin/users?password="+inURL, `{"username":"q"}`, &u); code != 201 || u.Password == "" || u.Password == inURL {
		t.Fatalf("create: %d %+v, want a generated password", code, u)
	}
	if f.verify(t, "q", inURL) {
		t.Errorf("the password of the query string was set on create")
	}
	if code := f.call(t, "POST", "/admin/users/q/password?password="+inURL, nil, &u); code != 200 || u.Password == "" || f.verify(t, "q", inURL) {
		t.Errorf("set-password: %d %+v, want a generated password, not the query's", code, u)
	}
}

func TestUserLockout(t *testing.T) {
	f := newFixture(t, nil)
	for _, name := range []string{"alice", "bob"} {
		if code := f.call(t, "POST", "/admin/users", adminapi.UserRequest{Username: name}, nil); code != 201 {
			t.Fatalf("create %s: %d", name, code)
		}
	}
	until := time.Now().Add(10 * time.Minute).UTC().Truncate(time.Second)
	f.lockouts.set("alice", until, nil)
	f.lockouts.set("bob", time.Now().Add(-time.Minute), nil) // over already

	var u adminapi.UserInfo
	if code := f.call(t, "GET", "/admin/users/alice", nil, &u); code != 200 || !u.LockedUntil.Equal(until) {
		t.Errorf("get a locked user: %d locked_until %v, want %v", code, u.LockedUntil, until)
	}
	code, raw := f.raw(t, "GET", "/admin/users/bob", nil)
	if code != 200 || strings.Contains(string(raw), "locked_until") {
		t.Errorf("get a user whose lockout is over: %d %s, want no locked_until", code, raw)
	}
	var list adminapi.UserList
	if code := f.call(t, "GET", "/admin/users", nil, &list); code != 200 || !list.Users[0].LockedUntil.Equal(until) || !list.Users[1].LockedUntil.IsZero() {
		t.Errorf("list: %d %+v", code, list)
	}
	code, raw = f.raw(t, "POST", "/admin/users/alice/unlock", nil)
	if code != 200 || strings.Contains(string(raw), "locked_until") || !slices.Equal(f.lockouts.unlocked, []string{"alice"}) {
		t.Errorf("unlock: %d %s, unlocked %q", code, raw, f.lockouts.unlocked)
	}
	if code := f.call(t, "GET", "/admin/users/alice", nil, &u); code != 200 || !u.LockedUntil.IsZero() {
		t.Errorf("get after unlock: %d %+v", code, u)
	}

	f.lockouts.set("alice", time.Time{}, fmt.Errorf("redis: %w", store.ErrUnavailable))
	for _, req := range []struct{ method, path string }{{"GET", "/admin/users/alice"}, {"GET", "/admin/users"}, {"POST", "/admin/users/alice/unlock"}} {
		var e adminapi.ErrorBody
		if code := f.call(t, req.method, req.path, nil, &e); code != 503 || e.Error != "temporarily_unavailable" {
			t.Errorf("%s %s with the lockouts unreachable: %d %+v, want 503", req.method, req.path, code, e)
		}
	}
	// A write still answers, with the generated password it made.
	if code := f.call(t, "POST", "/admin/users", adminapi.UserRequest{Username: "carol"}, &u); code != 201 || u.Password == "" {
		t.Errorf("create with the lockouts unreachable: %d %+v, want 201 with the password", code, u)
	}
}

// TestUserNoLockouts: without Lockouts nobody is locked and unlock works.
func TestUserNoLockouts(t *testing.T) {
	f := newFixture(t, nil, func(c *admin.Config) { c.Lockouts = nil })
	f.call(t, "POST", "/admin/users", adminapi.UserRequest{Username: "alice"}, nil)
	code, raw := f.raw(t, "GET", "/admin/users/alice", nil)
	if code != 200 || strings.Contains(string(raw), "locked_until") {
		t.Errorf("get: %d %s", code, raw)
	}
	if code := f.call(t, "POST", "/admin/users/alice/unlock", nil, nil); code != 200 {
		t.Errorf("unlock: %d", code)
	}
}

func TestUserUnavailable(t *testing.T) {
	f := newFixture(t, nil, func(c *admin.Config) { c.Passwords = busy{} })
	for _, req := range []struct {
		path string
		body any
	}{{"/admin/users", adminapi.UserRequest{Username: "a"}}, {"/admin/users/a/password", nil}} {
		var e adminapi.ErrorBody
		if code := f.call(t, "POST", req.path, req.body, &e); code != 503 || e.Error != "temporarily_unavailable" || !strings.Contains(e.ErrorDescription, "retry") {
			t.Errorf("POST %s with every hashing slot busy: %d %+v, want 503 temporarily_unavailable", req.path, code, e)
		}
	}
	f = newFixture(t, func(s admin.Store) admin.Store { return usersDown{s} })
	var e adminapi.ErrorBody
	if code := f.call(t, "GET", "/admin/users", nil, &e); code != 503 || e.Error != "temporarily_unavailable" {
		t.Errorf("list with the store down: %d %+v, want 503", code, e)
	}
}

// djangoUsers makes alice (PBKDF2, with an email and names), bob
// (inactive) and carol (an unusable password) in a Django project.
const djangoUsers = `
from django.contrib.auth.models import Group, User
Group.objects.create(name="staff")
User.objects.create_user("alice", "alice@example.com", "alice-pw", first_name="Alice", last_name="Liddell")
User.objects.create_user("bob", password="bob-pw", is_active=False)
User.objects.create_user("carol")
`

// TestImportDjango imports the dumpdata of a real Django project, again
// (nothing changes), and once more after a password change in Django.
func TestImportDjango(t *testing.T) {
	p := djangotest.NewProject(t)
	p.Shell(t, djangoUsers)
	dump := p.Manage(t, "dumpdata", "auth.user", "auth.group")
	var records []struct {
		Model  string `json:"model"`
		Fields struct {
			Username string `json:"username"`
			Password string `json:"password"`
		} `json:"fields"`
	}
	if err := json.Unmarshal(dump, &records); err != nil {
		t.Fatal(err)
	}
	djangoHash := map[string]string{}
	for _, r := range records {
		if r.Model == "auth.user" {
			djangoHash[r.Fields.Username] = r.Fields.Password
		}
	}

	f := newFixture(t, nil)
	var res adminapi.ImportResult
	if code := f.call(t, "POST", "/admin/users/import", string(dump), &res); code != 200 ||
		!reflectEqual(res, adminapi.ImportResult{Created: 3, Skipped: 1, Errors: []adminapi.ImportError{}}) {
		t.Fatalf("first import: %d %+v, want 3 created, the group skipped", code, res)
	}
	for _, tc := range []struct {
		username string
		disabled bool
		claims   map[string]string
		pw       string // "" when no password works
	}{
		{"alice", false, map[string]string{"email": "alice@example.com", "given_name": "Alice", "family_name": "Liddell"}, "alice-pw"},
		{"bob", true, nil, "bob-pw"},
		{"carol", false, nil, ""},
	} {
		u, err := f.st.GetUser(t.Context(), tc.username)
		if err != nil {
			t.Fatalf("%s: %v", tc.username, err)
		}
		if u.PasswordHash != djangoHash[tc.username] || u.Disabled != tc.disabled || !maps.Equal(u.Claims, tc.claims) || u.Scopes != nil || !hexID.MatchString(u.ID) {
			t.Errorf("%s: stored %+v, want the Django hash verbatim, disabled %v, claims %v", tc.username, u, tc.disabled, tc.claims)
		}
		if tc.pw != "" && !f.verify(t, tc.username, tc.pw) {
			t.Errorf("%s: the Django password does not verify", tc.username)
		}
	}
	if !strings.HasPrefix(djangoHash["carol"], "!") || f.verify(t, "carol", "") {
		t.Errorf("carol's Django password %q is not unusable, or verifies", djangoHash["carol"][:1])
	}
	bob, _ := f.st.GetUser(t.Context(), "bob")

	if code := f.call(t, "POST", "/admin/users/import", string(dump), &res); code != 200 ||
		!reflectEqual(res, adminapi.ImportResult{Skipped: 4, Errors: []adminapi.ImportError{}}) {
		t.Errorf("the same dump again: %d %+v, want all skipped", code, res)
	}

	p.Shell(t, `
from django.contrib.auth.models import User
u = User.objects.get(username="bob")
u.set_password("bob's new pw")
u.save()
`)
	dump = p.Manage(t, "dumpdata", "auth.user")
	if code := f.call(t, "POST", "/admin/users/import", string(dump), &res); code != 200 ||
		!reflectEqual(res, adminapi.ImportResult{Updated: 1, Skipped: 2, Errors: []adminapi.ImportError{}}) {
		t.Errorf("after bob's password change: %d %+v, want 1 updated, 2 skipped", code, res)
	}
	after, _ := f.st.GetUser(t.Context(), "bob")
	if !f.verify(t, "bob", "bob's new pw") || f.verify(t, "bob", "bob-pw") || after.Generation <= bob.Generation || after.ID != bob.ID {
		t.Errorf("bob after the import: the new password does not verify, the old one does, or the refresh tokens did not end (generation %d → %d)", bob.Generation, after.Generation)
	}

	logs := f.logs.String()
	for name, h := range djangoHash {
		if strings.Contains(logs, h) {
			t.Errorf("the log contains %s's Django hash", name)
		}
	}
	if strings.Contains(logs, "pbkdf2_sha256$") {
		t.Errorf("the log contains a hash:\n%s", logs)
	}
}

// reflectEqual compares import results.
func reflectEqual(a, b adminapi.ImportResult) bool {
	return a.Created == b.Created && a.Updated == b.Updated && a.Skipped == b.Skipped && slices.Equal(a.Errors, b.Errors)
}

const hashA = "pbkdf2_sha256$1000$saltsalt$GIPyqxhH5xGq7aO+8cJ6Dg0S0hVc58UGj8yHG3Y4cxA="

// record is a dumpdata record of auth.user.
func record(pk int, username, hash string, active bool, email string) string {
	b, _ := json.Marshal(map[string]any{"model": "auth.user", "pk": pk, "fields": map[string]any{
		"username": username, "password": hash, "is_active": active, "email": email, "first_name": "", "last_name": ""}})
	return string(b)
}

func TestImportRecords(t *testing.T) {
	f := newFixture(t, nil)
	// dora exists with a scope and a claim of the admin's.
	if code := f.call(t, "POST", "/admin/users", adminapi.UserRequest{Username: "dora", Scope: ptr("read"),
		Claims: map[string]string{"tenant": "acme", "email": "old@example.com"}}, nil); code != 201 {
		t.Fatalf("create dora: %d", code)
	}
	dump := "[" + strings.Join([]string{
		record(1, "ann", hashA, true, ""),
		record(2, "has space", hashA, true, ""),
		record(3, "bo", "md5$salt$0123456789abcdef0123456789abcdef", true, ""),
		record(4, "dora", hashA, false, "dora@example.com"),
		`{"model": "auth.user", "pk": 5, "fields": {"username": "ed"}}`,
		record(6, "ann", hashA, true, ""),
	}, ",\n") + "]"
	var res adminapi.ImportResult
	if code := f.call(t, "POST", "/admin/users/import", dump, &res); code != 200 {
		t.Fatalf("import: %d %+v", code, res)
	}
	if res.Created != 1 || res.Updated != 1 || res.Skipped != 0 {
		t.Errorf("counts %+v, want 1 created (ann), 1 updated (dora)", res)
	}
	var got []string
	for _, e := range res.Errors {
		got = append(got, fmt.Sprintf("%d %s %s", e.Index, e.PK, e.Error))
		if strings.Contains(e.Error, "0123456789abcdef") || strings.Contains(e.Error, "userimport:") {
			t.Errorf("error %q quotes the hash or the package", e.Error)
		}
	}
	want := []string{
		"1 2 username must be printable characters without whitespace",
		"2 3 unsupported password hash: password: unknown hash format: Django's md5 hasher is not supported",
		"4 5 invalid record: no password",
		"5 6 duplicate username: also in record 0",
	}
	if !slices.Equal(got, want) {
		t.Errorf("errors =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	dora, _ := f.st.GetUser(t.Context(), "dora")
	if dora.PasswordHash != hashA || !dora.Disabled || !slices.Equal(dora.Scopes, []string{"read"}) ||
		!maps.Equal(dora.Claims, map[string]string{"tenant": "acme", "email": "dora@example.com"}) {
		t.Errorf("dora = %+v, want the dump's hash, disabled, her scope and tenant kept, the dump's email", dora)
	}

	// Django's claims that are gone in the dump go; the admin's stay.
	dump = "[" + record(4, "dora", hashA, false, "") + "]"
	if code := f.call(t, "POST", "/admin/users/import", dump, &res); code != 200 || res.Updated != 1 {
		t.Errorf("import without an email: %d %+v", code, res)
	}
	dora, _ = f.st.GetUser(t.Context(), "dora")
	if !maps.Equal(dora.Claims, map[string]string{"tenant": "acme"}) {
		t.Errorf("dora's claims = %v, want only tenant", dora.Claims)
	}

	for _, tc := range []struct {
		name, body string
		status     int
		want       string
	}{
		{"not a list", `{"model":"auth.user"}`, 400, "dumpdata"},
		{"not JSON", `[{"model": "auth.user", "fields": {"password": pbkdf2_sha256$1$x$y}}]`, 400, "invalid JSON at byte"},
		{"empty", ``, 400, "dumpdata"},
	} {
		var e adminapi.ErrorBody
		if code := f.call(t, "POST", "/admin/users/import", tc.body, &e); code != tc.status || e.Error != "invalid_request" || !strings.Contains(e.ErrorDescription, tc.want) {
			t.Errorf("%s: %d %+v, want %d mentioning %q", tc.name, code, e, tc.status, tc.want)
		}
		if strings.Contains(e.ErrorDescription, "pbkdf2") {
			t.Errorf("%s: the description quotes the input: %q", tc.name, e.ErrorDescription)
		}
	}
}

// TestImportModel: a custom user model is imported under its label, and a
// dump without a record of the model is refused rather than skipped.
func TestImportModel(t *testing.T) {
	f := newFixture(t, nil)
	custom := strings.Replace(record(1, "ann", hashA, true, ""), `"auth.user"`, `"accounts.user"`, 1)
	dump := "[" + custom + "]"
	var e adminapi.ErrorBody
	if code := f.call(t, "POST", "/admin/users/import", dump, &e); code != 400 || e.Error != "invalid_request" ||
		!strings.Contains(e.ErrorDescription, "no auth.user record, only 1 of other models") || !strings.Contains(e.ErrorDescription, "?model=") {
		t.Errorf("a custom model's dump without model: %d %+v, want 400 naming ?model=", code, e)
	}
	var res adminapi.ImportResult
	if code := f.call(t, "POST", "/admin/users/import?model=Accounts.User", dump, &res); code != 200 || res.Created != 1 {
		t.Errorf("with ?model=Accounts.User: %d %+v, want 1 created", code, res)
	}
	for _, model := range []string{"accounts", "a.b.c", "a b.user", ".user"} {
		if code := f.call(t, "POST", "/admin/users/import?model="+url.QueryEscape(model), dump, &e); code != 400 || !strings.Contains(e.ErrorDescription, "app_label.model_name") {
			t.Errorf("model %q: %d %+v, want 400", model, code, e)
		}
	}
	if code := f.call(t, "POST", "/admin/users/import", "[]", &res); code != 200 || res.Created+res.Updated+res.Skipped+len(res.Errors) != 0 {
		t.Errorf("an empty dump: %d %+v, want nothing done", code, res)
	}
}

// TestImportLimit: the import has its own body limit, larger than
// MaxBodyBytes.
func TestImportLimit(t *testing.T) {
	f := newFixture(t, nil, func(c *admin.Config) { c.MaxImportBytes = 4 << 10 })
	var users []string
	for i := range 15 {
		users = append(users, record(i, fmt.Sprintf("user%d", i), hashA, true, ""))
	}
	small := "[" + strings.Join(users, ",") + "]" // over MaxBodyBytes (1 KiB), within MaxImportBytes
	var res adminapi.ImportResult
	if code := f.call(t, "POST", "/admin/users/import", small, &res); code != 200 || res.Created != 15 {
		t.Errorf("a %d-byte import: %d %+v, want 15 created", len(small), code, res)
	}
	var e adminapi.ErrorBody
	big := "[" + strings.Repeat(record(1, "x", hashA, true, "")+",", 100) + record(1, "x", hashA, true, "") + "]"
	if code := f.call(t, "POST", "/admin/users/import", big, &e); code != 413 || !strings.Contains(e.ErrorDescription, "4096 bytes") {
		t.Errorf("a %d-byte import: %d %+v, want 413", len(big), code, e)
	}
}

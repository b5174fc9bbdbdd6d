package main

// `issuer users …` against the real admin API (startServer), and the
// passwords it sets used at the real token endpoint.

import (
	"bytes"
	"context"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/issuer-oauth/issuer/internal/adminapi"
	"github.com/issuer-oauth/issuer/internal/config"
)

// users is runUsers with stdin as its standard input.
func users(stdin string) runner {
	return func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
		return runUsers(ctx, args, getenv, strings.NewReader(stdin), stdout, stderr)
	}
}

// createUser creates a user through the admin API (not the CLI).
func (ts *testServer) createUser(t *testing.T, r adminapi.UserRequest) adminapi.UserInfo {
	t.Helper()
	u, err := ts.api().CreateUser(t.Context(), r)
	if err != nil {
		t.Fatalf("create user: %v", err)
	}
	ts.log() // the test looks at the CLI's requests only
	return u
}

func ptr(s string) *string { return &s }

// generatedPassword returns the password line of a user's text output.
func generatedPassword(t *testing.T, stdout string) string {
	t.Helper()
	for line := range strings.Lines(stdout) {
		if pw, ok := strings.CutPrefix(line, "password: "); ok {
			pw = strings.TrimSuffix(pw, "\n")
			if len(pw) != 32 {
				t.Fatalf("generated password %q, want 32 characters", pw)
			}
			return pw
		}
	}
	t.Fatalf("stdout = %q, want a password line", stdout)
	return ""
}

const storeNow = "Store the password now: it is shown only once.\n"

func TestUsersCreate(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		stdin    string
		wantBody map[string]any // the POST body
		wantPW   bool           // a generated password in the output
		wantJSON bool
	}{
		{
			name:     "generated password",
			args:     []string{"create", "alice"},
			wantBody: map[string]any{"username": "alice"},
			wantPW:   true,
		},
		{
			name:     "password from stdin",
			args:     []string{"create", "--password-stdin", "alice"},
			stdin:    "stdin password 1\nignored second line\n",
			wantBody: map[string]any{"username": "alice", "password": "stdin password 1"},
		},
		{
			name:     "password from stdin, CRLF and no more",
			args:     []string{"create", "alice", "--password-stdin"},
			stdin:    "stdin password 2\r\n",
			wantBody: map[string]any{"username": "alice", "password": "stdin password 2"},
		},
		{
			name:     "password from stdin without a newline",
			args:     []string{"create", "alice", "--password-stdin"},
			stdin:    " spaces kept ",
			wantBody: map[string]any{"username": "alice", "password": " spaces kept "},
		},
		{
			name:  "every field",
			args:  []string{"create", "alice", "--disabled", "--scope", "read write", "--claim", "tenant=acme", "--claim=org=a=b", "--claim", "empty="},
			stdin: "",
			wantBody: map[string]any{"username": "alice", "disabled": true, "scope": "read write",
				"claims": map[string]any{"tenant": "acme", "org": "a=b", "empty": ""}},
			wantPW: true,
		},
		{
			name:     "no scope allowed",
			args:     []string{"create", "alice", "--scope", ""},
			wantBody: map[string]any{"username": "alice", "scope": ""},
			wantPW:   true,
		},
		{
			name:     "json",
			args:     []string{"create", "--json", "alice"},
			wantBody: map[string]any{"username": "alice"},
			wantPW:   true,
			wantJSON: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t)
			res := runCLI(t, users(tt.stdin), ts.env(), tt.args...)
			if res.code != 0 {
				t.Fatalf("exit code = %d, want 0; stderr:\n%s", res.code, res.stderr)
			}
			if got, want := ts.log(), []string{"POST /admin/users"}; !slices.Equal(got, want) {
				t.Errorf("requests = %q, want %q", got, want)
			}
			if got := requestBody(t, ts, "POST /admin/users"); !reflect.DeepEqual(got, tt.wantBody) {
				t.Errorf("POST body = %v, want %v", got, tt.wantBody)
			}
			if pw, ok := tt.wantBody["password"].(string); ok && strings.Contains(res.stdout+res.stderr, pw) {
				t.Errorf("the output shows the password from stdin:\n%s%s", res.stdout, res.stderr)
			}
			wantStderr := ""
			if tt.wantPW {
				wantStderr = storeNow
			}
			if res.stderr != wantStderr {
				t.Errorf("stderr = %q, want %q", res.stderr, wantStderr)
			}
			var u adminapi.UserInfo
			if tt.wantJSON {
				if err := json.Unmarshal([]byte(res.stdout), &u); err != nil || len(u.Password) != 32 || u.Username != "alice" {
					t.Fatalf("stdout JSON = %+v (%v), want alice with a password\n%s", u, err, res.stdout)
				}
				return
			}
			if !strings.HasPrefix(res.stdout, "user_id: ") || !strings.Contains(res.stdout, "\nusername: alice\n") {
				t.Errorf("stdout = %q, want the user", res.stdout)
			}
			if has := strings.Contains(res.stdout, "\npassword: "); has != tt.wantPW {
				t.Errorf("stdout = %q, want a password line: %v", res.stdout, tt.wantPW)
			}
		})
	}
}

func TestUsersListGet(t *testing.T) {
	ts := startServer(t)
	res := runCLI(t, users(""), ts.env(), "list")
	if res.code != 0 || res.stdout != "" || !strings.Contains(res.stderr, "issuer users create USERNAME") {
		t.Errorf("empty list: exit %d, stdout %q, stderr %q; want 0, nothing, a hint", res.code, res.stdout, res.stderr)
	}
	a := ts.createUser(t, adminapi.UserRequest{Username: "alice", Scope: ptr("read"), Claims: map[string]string{"tenant": "acme", "email": "a@example.com"}})
	b := ts.createUser(t, adminapi.UserRequest{Username: "bob", Disabled: true, Scope: ptr("")})
	c := ts.createUser(t, adminapi.UserRequest{Username: "carol"})
	a.Password, b.Password, c.Password = "", "", ""

	res = runCLI(t, users(""), ts.env(), "list")
	if res.code != 0 || res.stderr != "" {
		t.Fatalf("list: exit %d, stderr %q", res.code, res.stderr)
	}
	want := "USERNAME  USER_ID" + strings.Repeat(" ", 25) + "  DISABLED  SCOPE           LOCKED_UNTIL\n" +
		"alice     " + a.UserID + "  false     read            -\n" +
		"bob       " + b.UserID + "  true      (none)          -\n" +
		"carol     " + c.UserID + "  false     (unrestricted)  -\n"
	if res.stdout != want {
		t.Errorf("list stdout =\n%s\nwant\n%s", res.stdout, want)
	}
	res = runCLI(t, users(""), ts.env(), "list", "--json")
	var list adminapi.UserList
	if err := json.Unmarshal([]byte(res.stdout), &list); err != nil || res.code != 0 {
		t.Fatalf("list --json: exit %d (%v)\n%s", res.code, err, res.stdout)
	}
	if want := []adminapi.UserInfo{a, b, c}; !reflect.DeepEqual(list.Users, want) {
		t.Errorf("list --json = %+v, want %+v", list.Users, want)
	}

	res = runCLI(t, users(""), ts.env(), "get", "alice")
	human := "user_id: " + a.UserID + `
username: alice
disabled: false
scope: read
claims: {"email":"a@example.com","tenant":"acme"}
created_at: ` + adminapi.FormatTime(a.CreatedAt) + `
updated_at: ` + adminapi.FormatTime(a.UpdatedAt) + `
locked_until: -
`
	if res.code != 0 || res.stdout != human || res.stderr != "" {
		t.Errorf("get: exit %d, stderr %q, stdout =\n%s\nwant\n%s", res.code, res.stderr, res.stdout, human)
	}
	res = runCLI(t, users(""), ts.env(), "get", "--json", "carol")
	var got adminapi.UserInfo
	if err := json.Unmarshal([]byte(res.stdout), &got); err != nil || res.code != 0 || !reflect.DeepEqual(got, c) {
		t.Errorf("get --json: exit %d, %+v (%v), want %+v", res.code, got, err, c)
	}
	if strings.Contains(res.stdout, `"scope"`) {
		t.Errorf("get --json of an unrestricted user has a scope member:\n%s", res.stdout)
	}
	if got, want := ts.log(), []string{"GET /admin/users", "GET /admin/users", "GET /admin/users/alice", "GET /admin/users/carol"}; !slices.Equal(got, want) {
		t.Errorf("requests = %q, want %q", got, want)
	}
}

func TestUsersUpdate(t *testing.T) {
	base := map[string]any{"scope": "read", "claims": map[string]any{"tenant": "acme", "org": "x"}}
	with := func(changes map[string]any) map[string]any { return changed(base, changes) }
	tests := []struct {
		name string
		args []string
		want map[string]any // PUT body
	}{
		{"disable", []string{"update", "alice", "--disabled"}, with(map[string]any{"disabled": true})},
		{"disable explicitly", []string{"update", "--disabled=true", "alice"}, with(map[string]any{"disabled": true})},
		{"enable", []string{"update", "alice", "--disabled=false"}, base},
		{"scope", []string{"update", "alice", "--scope", "read write"}, with(map[string]any{"scope": "read write"})},
		{"no scope", []string{"update", "alice", "--scope", ""}, with(map[string]any{"scope": ""})},
		{"unrestricted", []string{"update", "alice", "--unrestricted-scope"}, with(map[string]any{"scope": nil})},
		{"claim added, others kept", []string{"update", "alice", "--claim", "email=a@example.com", "--claim", "org=y"},
			with(map[string]any{"claims": map[string]any{"tenant": "acme", "org": "y", "email": "a@example.com"}})},
		{"claims cleared", []string{"update", "alice", "--clear-claims"}, with(map[string]any{"claims": nil})},
		{"claims replaced", []string{"update", "alice", "--claim", "org=z", "--clear-claims"}, with(map[string]any{"claims": map[string]any{"org": "z"}})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t)
			ts.createUser(t, adminapi.UserRequest{Username: "alice", Scope: ptr("read"), Claims: map[string]string{"tenant": "acme", "org": "x"}})
			res := runCLI(t, users(""), ts.env(), tt.args...)
			if res.code != 0 || res.stderr != "" {
				t.Fatalf("exit code = %d, stderr = %q; want 0 and nothing", res.code, res.stderr)
			}
			if got, want := ts.log(), []string{"GET /admin/users/alice", "PUT /admin/users/alice"}; !slices.Equal(got, want) {
				t.Errorf("requests = %q, want %q", got, want)
			}
			if got := requestBody(t, ts, "PUT /admin/users/alice"); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("PUT body = %v, want %v", got, tt.want)
			}
			if !strings.Contains(res.stdout, "\nusername: alice\n") {
				t.Errorf("stdout = %q, want the updated user", res.stdout)
			}
		})
	}
	t.Run("json", func(t *testing.T) {
		ts := startServer(t)
		ts.createUser(t, adminapi.UserRequest{Username: "alice"})
		res := runCLI(t, users(""), ts.env(), "update", "alice", "--disabled", "--json")
		var got adminapi.UserInfo
		if err := json.Unmarshal([]byte(res.stdout), &got); err != nil || res.code != 0 || !got.Disabled || got.Password != "" {
			t.Errorf("update --json: exit %d, %+v (%v)", res.code, got, err)
		}
	})
}

func TestUsersSetPasswordUnlockDelete(t *testing.T) {
	ts := startServer(t)
	ts.createUser(t, adminapi.UserRequest{Username: "alice"})
	ts.createUser(t, adminapi.UserRequest{Username: "bob"})

	res := runCLI(t, users(""), ts.env(), "set-password", "alice")
	if res.code != 0 || res.stderr != storeNow {
		t.Fatalf("set-password: exit %d, stderr %q", res.code, res.stderr)
	}
	generatedPassword(t, res.stdout)
	if body := ts.body("POST /admin/users/alice/password"); len(body) != 0 {
		t.Errorf("set-password without --password-stdin sent %q, want no body (the server generates)", body)
	}
	res = runCLI(t, users("new password for alice\n"), ts.env(), "set-password", "alice", "--password-stdin")
	if res.code != 0 || res.stderr != "" || strings.Contains(res.stdout, "password") {
		t.Errorf("set-password --password-stdin: exit %d, stdout %q, stderr %q; want the user without a password", res.code, res.stdout, res.stderr)
	}
	if got := requestBody(t, ts, "POST /admin/users/alice/password"); !reflect.DeepEqual(got, map[string]any{"password": "new password for alice"}) {
		t.Errorf("set-password body = %v", got)
	}
	res = runCLI(t, users(""), ts.env(), "set-password", "--json", "alice")
	var u adminapi.UserInfo
	if err := json.Unmarshal([]byte(res.stdout), &u); err != nil || res.code != 0 || len(u.Password) != 32 {
		t.Errorf("set-password --json: exit %d, %+v (%v)", res.code, u, err)
	}

	res = runCLI(t, users(""), ts.env(), "unlock", "alice")
	if res.code != 0 || res.stdout != "unlocked user alice\n" || res.stderr != "" {
		t.Errorf("unlock: exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}
	res = runCLI(t, users(""), ts.env(), "unlock", "alice", "--json")
	if err := json.Unmarshal([]byte(res.stdout), &u); err != nil || res.code != 0 || u.Username != "alice" || !u.LockedUntil.IsZero() {
		t.Errorf("unlock --json: exit %d, %+v (%v)", res.code, u, err)
	}

	res = runCLI(t, users(""), ts.env(), "delete", "alice")
	if res.code != 0 || res.stdout != "deleted user alice\n" || res.stderr != "" {
		t.Errorf("delete: exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}
	res = runCLI(t, users(""), ts.env(), "delete", "--json", "bob")
	var del struct {
		Username string `json:"username"`
		Deleted  bool   `json:"deleted"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &del); err != nil || res.code != 0 || del.Username != "bob" || !del.Deleted {
		t.Errorf("delete --json: exit %d, %+v (%v)", res.code, del, err)
	}
	want := []string{"POST /admin/users/alice/password", "POST /admin/users/alice/password", "POST /admin/users/alice/password",
		"POST /admin/users/alice/unlock", "POST /admin/users/alice/unlock", "DELETE /admin/users/alice", "DELETE /admin/users/bob"}
	if got := ts.log(); !slices.Equal(got, want) {
		t.Errorf("requests = %q, want %q", got, want)
	}
	if res := runCLI(t, users(""), ts.env(), "list", "--json"); !strings.Contains(res.stdout, `"users": []`) {
		t.Errorf("list after deleting both: %s", res.stdout)
	}
}

// djangoHash is password's hash as Django's PBKDF2PasswordHasher writes it.
func djangoHash(t *testing.T, password string) string {
	t.Helper()
	key, err := pbkdf2.Key(sha256.New, password, []byte("somesalt"), 1000, 32)
	if err != nil {
		t.Fatal(err)
	}
	return "pbkdf2_sha256$1000$somesalt$" + base64.StdEncoding.EncodeToString(key)
}

// dumpRecord is a record of manage.py dumpdata auth.user.
func dumpRecord(pk int, username, hash string, active bool) string {
	return fmt.Sprintf(`{"model": "auth.user", "pk": %d, "fields": {"password": %q, "last_login": null, "is_superuser": false, "username": %q,
  "first_name": "", "last_name": "", "email": "", "is_staff": false, "is_active": %t, "date_joined": "2024-01-02T03:04:05Z", "groups": [], "user_permissions": []}}`,
		pk, hash, username, active)
}

func TestUsersImport(t *testing.T) {
	ts := startServer(t)
	hash := djangoHash(t, "ann's old password")
	dump := "[\n" + dumpRecord(1, "ann", hash, true) + ",\n" + dumpRecord(2, "ben", hash, false) + "\n]\n"
	file := filepath.Join(t.TempDir(), "users.json")
	if err := os.WriteFile(file, []byte(dump), 0o600); err != nil {
		t.Fatal(err)
	}

	res := runCLI(t, users(""), ts.env(), "import", file)
	if res.code != 0 || res.stdout != "created: 2, updated: 0, skipped: 0\n" || res.stderr != "" {
		t.Errorf("import: exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}
	if got := ts.body("POST /admin/users/import"); string(got) != dump {
		t.Errorf("import sent %q, want the file as it is", got)
	}
	res = runCLI(t, users(dump), ts.env(), "import", "-")
	if res.code != 0 || res.stdout != "created: 0, updated: 0, skipped: 2\n" {
		t.Errorf("import - (again): exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}
	if u, err := ts.api().GetUser(t.Context(), "ben"); err != nil || !u.Disabled {
		t.Errorf("ben = %+v, %v; want disabled (inactive in Django)", u, err)
	}

	bad := "[\n" + dumpRecord(1, "ann", djangoHash(t, "ann's new password"), true) + ",\n" +
		dumpRecord(2, "ben ny", hash, true) + ",\n" + dumpRecord(3, "cy", "md5$x$0123456789abcdef0123456789abcdef", true) + "\n]"
	res = runCLI(t, users(bad), ts.env(), "import", "-")
	wantErr := "record 1 (pk 2): username must be printable characters without whitespace\n" +
		"record 2 (pk 3): unsupported password hash: password: unknown hash format: Django's md5 hasher is not supported\n" +
		"issuer: records not imported: 2; fix them and import again (importing is idempotent)\n"
	if res.code != 1 || res.stdout != "created: 0, updated: 1, skipped: 0\n" || res.stderr != wantErr {
		t.Errorf("import with bad records: exit %d, stdout %q, stderr =\n%s\nwant exit 1, 1 updated and\n%s", res.code, res.stdout, res.stderr, wantErr)
	}
	custom := "[" + strings.Replace(dumpRecord(9, "dee", hash, true), `"auth.user"`, `"accounts.user"`, 1) + "]"
	res = runCLI(t, users(custom), ts.env(), "import", "-")
	if res.code != 1 || res.stdout != "" || !strings.Contains(res.stderr, "no auth.user record, only 1 of other models") || !strings.Contains(res.stderr, "--model") {
		t.Errorf("a custom model's dump without --model: exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}
	res = runCLI(t, users(custom), ts.env(), "import", "--model", "accounts.user", "-")
	if res.code != 0 || res.stdout != "created: 1, updated: 0, skipped: 0\n" {
		t.Errorf("import --model accounts.user: exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}

	res = runCLI(t, users(bad), ts.env(), "import", "-", "--json")
	var got adminapi.ImportResult
	if err := json.Unmarshal([]byte(res.stdout), &got); err != nil || res.code != 1 || got.Skipped != 1 || len(got.Errors) != 2 || got.Errors[1].PK != "3" {
		t.Errorf("import --json with bad records: exit %d, %+v (%v)", res.code, got, err)
	}
	if !strings.HasSuffix(res.stderr, "; fix them and import again (importing is idempotent)\n") || strings.Count(res.stderr, "\n") != 1 {
		t.Errorf("import --json stderr = %q, want one summary line", res.stderr)
	}
}

// TestUsersPasswordLogin: the passwords the CLI sets and imports log in at
// the token endpoint (RFC 6749 §4.3).
func TestUsersPasswordLogin(t *testing.T) {
	ts := startServer(t, func(c *config.Config) { c.PasswordGrant = true })
	cl := ts.createClient(t, adminapi.ClientMetadata{ClientName: "app", GrantTypes: []string{"password", "refresh_token"}, Scope: "read"})
	login := func(username, password string) error {
		cfg := oauth2.Config{ClientID: cl.ClientID, ClientSecret: cl.ClientSecret,
			Endpoint: oauth2.Endpoint{TokenURL: ts.URL + "/oauth2/token", AuthStyle: oauth2.AuthStyleInHeader}}
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		_, err := cfg.PasswordCredentialsToken(ctx, username, password)
		return err
	}

	res := runCLI(t, users(""), ts.env(), "create", "gen")
	if res.code != 0 {
		t.Fatalf("create: exit %d, %s", res.code, res.stderr)
	}
	if err := login("gen", generatedPassword(t, res.stdout)); err != nil {
		t.Errorf("login with the generated password: %v", err)
	}
	if res := runCLI(t, users("piped password\n"), ts.env(), "create", "piped", "--password-stdin"); res.code != 0 {
		t.Fatalf("create --password-stdin: exit %d, %s", res.code, res.stderr)
	}
	if err := login("piped", "piped password"); err != nil {
		t.Errorf("login with the piped password: %v", err)
	}
	if res := runCLI(t, users("changed password\n"), ts.env(), "set-password", "piped", "--password-stdin"); res.code != 0 {
		t.Fatalf("set-password: exit %d, %s", res.code, res.stderr)
	}
	if login("piped", "piped password") == nil || login("piped", "changed password") != nil {
		t.Errorf("after set-password the old password logs in, or the new one does not")
	}
	dump := "[" + dumpRecord(7, "django", djangoHash(t, "from django"), true) + "]"
	if res := runCLI(t, users(dump), ts.env(), "import", "-"); res.code != 0 {
		t.Fatalf("import: exit %d, %s", res.code, res.stderr)
	}
	if err := login("django", "from django"); err != nil {
		t.Errorf("login with the imported Django password: %v", err)
	}
	if res := runCLI(t, users(""), ts.env(), "update", "django", "--disabled"); res.code != 0 {
		t.Fatalf("update --disabled: exit %d, %s", res.code, res.stderr)
	}
	if login("django", "from django") == nil {
		t.Errorf("a disabled user logged in")
	}
}

func TestUsersErrors(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		stdin      string
		wantCode   int
		wantStderr []string // substrings
		notStderr  string   // must not appear
		wantNoReqs bool
	}{
		{name: "no subcommand", wantCode: 2, wantStderr: []string{"missing subcommand", "Usage: issuer users SUBCOMMAND", "create USERNAME", "set-password USERNAME", "import FILE"}, wantNoReqs: true},
		{name: "unknown subcommand", args: []string{"rename"}, wantCode: 2, wantStderr: []string{`unknown subcommand "rename"`}, wantNoReqs: true},
		{name: "create without username", args: []string{"create", "--disabled"}, wantCode: 2,
			wantStderr: []string{`issuer: missing username: run "issuer users create USERNAME"`, "Usage: issuer users create USERNAME"}, notStderr: "shows them", wantNoReqs: true},
		{name: "get without username", args: []string{"get"}, wantCode: 2, wantStderr: []string{`missing username: run "issuer users get USERNAME"; "issuer users list" shows them`}, wantNoReqs: true},
		{name: "set-password without username", args: []string{"set-password", "--password-stdin"}, stdin: "password1\n", wantCode: 2, wantStderr: []string{"missing username"}, wantNoReqs: true},
		{name: "unlock without username", args: []string{"unlock"}, wantCode: 2, wantStderr: []string{"missing username"}, wantNoReqs: true},
		{name: "delete without username", args: []string{"delete"}, wantCode: 2, wantStderr: []string{"missing username"}, wantNoReqs: true},
		{name: "import without file", args: []string{"import"}, wantCode: 2, wantStderr: []string{`missing file: run "issuer users import FILE"`}, notStderr: "shows them", wantNoReqs: true},
		{name: "username ..", args: []string{"get", ".."}, wantCode: 2, wantStderr: []string{`invalid username ".."`}, wantNoReqs: true},
		{name: "two usernames", args: []string{"get", "a", "b"}, wantCode: 2, wantStderr: []string{`unexpected argument "b"`}, wantNoReqs: true},
		{name: "claim without =", args: []string{"create", "alice", "--claim", "tenant"}, wantCode: 2,
			wantStderr: []string{`invalid value "tenant" for flag -claim: use NAME=VALUE, such as --claim tenant=acme`, "Usage: issuer users create"}, wantNoReqs: true},
		{name: "claim without name", args: []string{"update", "alice", "--claim", "=x"}, wantCode: 2, wantStderr: []string{"use NAME=VALUE"}, wantNoReqs: true},
		{name: "update without changes", args: []string{"update", "alice", "--json"}, wantCode: 2, wantStderr: []string{"nothing to update"}, wantNoReqs: true},
		{name: "scope and unrestricted", args: []string{"update", "alice", "--scope", "read", "--unrestricted-scope"}, wantCode: 2,
			wantStderr: []string{"--scope and --unrestricted-scope contradict each other"}, wantNoReqs: true},
		{name: "empty stdin", args: []string{"create", "alice", "--password-stdin"}, wantCode: 2, wantStderr: []string{"--password-stdin: standard input holds no password"}, wantNoReqs: true},
		{name: "empty first line", args: []string{"set-password", "alice", "--password-stdin"}, stdin: "\npassword\n", wantCode: 2, wantStderr: []string{"holds no password"}, wantNoReqs: true},
		{name: "password line too long", args: []string{"create", "alice", "--password-stdin"}, stdin: strings.Repeat("p", 5000), wantCode: 2,
			wantStderr: []string{"longer than a password may be"}, notStderr: "ppp", wantNoReqs: true},
		{name: "short password", args: []string{"create", "alice", "--password-stdin"}, stdin: "short1\n", wantCode: 1,
			wantStderr: []string{"issuer: 400: invalid_request: password must be 8 to 1024 characters"}, notStderr: "short1"},
		{name: "bad username", args: []string{"create", "al ice"}, wantCode: 1, wantStderr: []string{"issuer: 400: invalid_request: username must be printable characters without whitespace"}},
		{name: "reserved claim", args: []string{"create", "alice", "--claim", "sub=x"}, wantCode: 1, wantStderr: []string{`400: invalid_request: claims: "sub" is set by the issuer itself`}},
		{name: "username taken", args: []string{"create", "taken"}, wantCode: 1, wantStderr: []string{"issuer: 409: already_exists: a user with this username already exists\n"}},
		{name: "unknown user", args: []string{"get", "nobody"}, wantCode: 1, wantStderr: []string{"issuer: 404: not_found: no user with this username\n"}},
		{name: "update unknown user", args: []string{"update", "nobody", "--disabled"}, wantCode: 1, wantStderr: []string{"issuer: 404: not_found: no user with this username\n"}},
		{name: "set-password unknown user", args: []string{"set-password", "nobody"}, wantCode: 1, wantStderr: []string{"issuer: 404: not_found"}},
		{name: "unlock unknown user", args: []string{"unlock", "nobody"}, wantCode: 1, wantStderr: []string{"issuer: 404: not_found"}},
		{name: "delete unknown user", args: []string{"delete", "no/body"}, wantCode: 1, wantStderr: []string{"issuer: 404: not_found"}},
		{name: "import missing file", args: []string{"import", "/nonexistent/users.json"}, wantCode: 1,
			wantStderr: []string{"issuer: cannot read the dump: open /nonexistent/users.json: no such file or directory\n"}, wantNoReqs: true},
		{name: "import not a dump", args: []string{"import", "-"}, stdin: `{"users": []}`, wantCode: 1,
			wantStderr: []string{"issuer: 400: invalid_request: the body must be the JSON output of manage.py dumpdata auth.user: not a dumpdata JSON list"}},
		{name: "wrong token", args: []string{"list", "--admin-token", "wrong-token-1234"}, wantCode: 1, wantStderr: []string{"issuer: 401: invalid_token", "the admin token was refused"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t)
			ts.createUser(t, adminapi.UserRequest{Username: "taken"})
			res := runCLI(t, users(tt.stdin), ts.env(), tt.args...)
			checkFailure(t, ts, res, tt.wantCode, tt.wantStderr, tt.wantNoReqs)
			if tt.notStderr != "" && strings.Contains(res.stderr, tt.notStderr) {
				t.Errorf("stderr =\n%s\nwant it not to contain %q", res.stderr, tt.notStderr)
			}
		})
	}
}

// TestUsersThroughRun: main's dispatch reaches `issuer users` with its
// stdin, and the usage names the group.
func TestUsersThroughRun(t *testing.T) {
	ts := startServer(t)
	env := ts.env()
	var out, errb bytes.Buffer
	code := run(t.Context(), []string{"users", "create", "alice", "--password-stdin", "--json"}, func(k string) string { return env[k] },
		strings.NewReader("through run 123\n"), &out, &errb)
	var u adminapi.UserInfo
	if err := json.Unmarshal(out.Bytes(), &u); code != 0 || err != nil || u.Username != "alice" || u.Password != "" {
		t.Errorf("run users create: exit %d, %+v (%v); stderr %s", code, u, err, errb.String())
	}
	out.Reset()
	if code := run(t.Context(), []string{"help"}, func(string) string { return "" }, nil, &out, io.Discard); code != 0 || !strings.Contains(out.String(), "issuer users SUBCOMMAND") {
		t.Errorf("usage: exit %d\n%s", code, out.String())
	}
	out.Reset()
	if code := run(t.Context(), []string{"users", "help"}, func(string) string { return "" }, nil, &out, io.Discard); code != 0 ||
		!strings.Contains(out.String(), "Usage: issuer users SUBCOMMAND") || !strings.Contains(out.String(), "import FILE") {
		t.Errorf("users help: exit %d\n%s", code, out.String())
	}
}

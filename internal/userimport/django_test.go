package userimport

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/issuer-oauth/issuer/internal/djangotest"
	"github.com/issuer-oauth/issuer/internal/password"
)

// createUsers makes users in a Django project with each of Django's
// default hashers at its default cost.
const createUsers = `
from django.contrib.auth.models import Group, User
from django.contrib.auth.hashers import make_password

Group.objects.create(name="staff")

def user(username, password, hasher, **fields):
    u = User(username=username, **fields)
    if password is None:
        u.set_unusable_password()
    else:
        u.password = make_password(password, hasher=hasher)
    u.save()

user("alice", "alice-pw", "pbkdf2_sha256", email="alice@example.com", first_name="Alice", last_name="Liddell")
user("bob", "bob-pw", "pbkdf2_sha1")
user("carol", "carol-pw", "argon2", email="carol@example.com")
user("dave", "dave-pw", "bcrypt_sha256", first_name="Dave")
user("erin", "erin-pw", "pbkdf2_sha256", is_active=False)
user("frank", None, None)
user("名前.with+sign@x", "pässwörd ✓", "argon2")
User.objects.create_superuser("root", "root@example.com", "root-pw")
`

// TestDumpdata imports the output of manage.py dumpdata of a real Django
// project and logs each user in with its Django password.
func TestDumpdata(t *testing.T) {
	p := djangotest.NewProject(t)
	p.Shell(t, createUsers)
	dump := p.Manage(t, "dumpdata", "auth.user", "auth.group")

	res, err := ParseDjango(bytes.NewReader(dump), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Errors) != 0 || res.Skipped != 1 {
		t.Errorf("Errors = %v, Skipped = %d; want none, 1 (the group)", res.Errors, res.Skipped)
	}
	type want struct {
		password string // "" for none
		disabled bool
		claims   map[string]string
	}
	wants := map[string]want{
		"alice":          {"alice-pw", false, map[string]string{"email": "alice@example.com", "given_name": "Alice", "family_name": "Liddell"}},
		"bob":            {"bob-pw", false, nil},
		"carol":          {"carol-pw", false, map[string]string{"email": "carol@example.com"}},
		"dave":           {"dave-pw", false, map[string]string{"given_name": "Dave"}},
		"erin":           {"erin-pw", true, nil},
		"frank":          {"", false, nil},
		"名前.with+sign@x": {"pässwörd ✓", false, nil},
		"root":           {"root-pw", false, map[string]string{"email": "root@example.com"}},
	}
	if len(res.Users) != len(wants) {
		t.Errorf("%d users, want %d", len(res.Users), len(wants))
	}
	h, err := password.New(password.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range res.Users {
		w, ok := wants[u.Username]
		if !ok {
			t.Errorf("unexpected user %q", u.Username)
			continue
		}
		if u.PK == "" || u.Disabled != w.disabled || !reflect.DeepEqual(u.Claims, w.claims) {
			t.Errorf("%s: PK %q, Disabled %v, Claims %v; want a PK, %v, %v", u.Username, u.PK, u.Disabled, u.Claims, w.disabled, w.claims)
		}
		if w.password == "" {
			if password.Usable(u.PasswordHash) {
				t.Errorf("%s: the unusable password is usable", u.Username)
			}
			continue
		}
		ok, rehash, err := h.Verify(t.Context(), u.PasswordHash, w.password)
		if !ok || !rehash || err != nil {
			t.Errorf("%s: Verify = %v, %v, %v; want true, true, nil", u.Username, ok, rehash, err)
		}
	}
}

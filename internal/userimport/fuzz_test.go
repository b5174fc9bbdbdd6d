package userimport

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/issuer-oauth/issuer/internal/password"
)

// FuzzParseDjango feeds ParseDjango arbitrary input: it never panics, it
// accepts exactly the JSON lists within the limits, every entry is
// accounted for once, and what it returns as users can be imported.
func FuzzParseDjango(f *testing.F) {
	for _, s := range []string{
		`[]`,
		`[{"model": "auth.user", "pk": 1, "fields": {"password": "` + pbkdf2Hash + `", "username": "alice", "first_name": "A", "last_name": "", "email": "a@x", "is_active": true}}]`,
		`[{"model": "auth.user", "pk": "2", "fields": {"password": "` + argonHash + `", "username": "bob", "is_active": false}}, {"model": "auth.group", "pk": 1, "fields": {"name": "g"}}]`,
		`[{"model": "auth.user", "pk": 3, "fields": {"password": "bcrypt_sha256$$2b$12$uodcsj8wxnxKbFShaLLs1eEx5GagbvM/3XSkHO5XdUwNg5ArNHkgS", "username": "c"}}, 5, null, "x", {"model": null}]`,
		`[{"model": "auth.user", "pk": 4, "fields": {"password": "!unusable", "username": "d"}}, {"model": "auth.user", "pk": 5, "fields": {"password": "", "username": "d"}}]`,
		`[{"model": "auth.user", "fields": {"password": "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5aw", "username": "e\u0000"}}]`,
		`{"model": "auth.user"}`, `[`, `[1,`, `[] x`,
	} {
		f.Add([]byte(s))
	}
	const maxBytes, maxRecords = 1 << 16, 50
	f.Fuzz(func(t *testing.T, in []byte) {
		res, err := ParseDjango(bytes.NewReader(in), Options{MaxBytes: maxBytes, MaxRecords: maxRecords})
		var entries []json.RawMessage
		listErr := json.Unmarshal(in, &entries)
		// JSON null unmarshals into a nil slice without an error, but it
		// is no dumpdata list.
		isList := listErr == nil && entries != nil
		if err != nil {
			if res != nil {
				t.Fatal("a result with an error")
			}
			if isList && len(in) <= maxBytes && len(entries) <= maxRecords {
				t.Fatalf("ParseDjango refused a JSON list within the limits: %v", err)
			}
			return
		}
		if !isList || len(in) > maxBytes || len(entries) > maxRecords {
			t.Fatalf("ParseDjango accepted what is not a JSON list within the limits (%v)", listErr)
		}
		if n := len(res.Users) + len(res.Errors) + res.Skipped; n != len(entries) {
			t.Fatalf("%d entries, %d users + %d errors + %d skipped", len(entries), len(res.Users), len(res.Errors), res.Skipped)
		}
		seen := map[string]bool{}
		for _, u := range res.Users {
			if err := checkUsername(u.Username); err != nil || seen[u.Username] {
				t.Fatalf("user %q: %v, seen before %v", u.Username, err, seen[u.Username])
			}
			seen[u.Username] = true
			if err := password.Check(u.PasswordHash); err != nil {
				t.Fatalf("user %q: %v", u.Username, err)
			}
			for name, v := range u.Claims {
				if v == "" || name != "email" && name != "given_name" && name != "family_name" {
					t.Fatalf("user %q: claim %q = %q", u.Username, name, v)
				}
			}
		}
		last := -1
		for _, e := range res.Errors {
			if e.Index <= last || e.Index >= len(entries) {
				t.Fatalf("error index %d after %d, of %d entries", e.Index, last, len(entries))
			}
			last = e.Index
			if !errors.Is(&e, ErrRecord) && !errors.Is(&e, ErrUsername) && !errors.Is(&e, ErrDuplicate) && !errors.Is(&e, ErrPasswordHash) {
				t.Fatalf("error %v wraps none of the record errors", &e)
			}
		}
	})
}

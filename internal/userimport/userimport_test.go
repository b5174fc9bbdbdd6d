package userimport

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/issuer-oauth/issuer/internal/password"
)

const (
	pbkdf2Hash = "pbkdf2_sha256$1000$saltsalt$GIPyqxhH5xGq7aO+8cJ6Dg0S0hVc58UGj8yHG3Y4cxA="
	argonHash  = "argon2$argon2id$v=19$m=256,t=2,p=2$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5aw"
)

func TestParseDjango(t *testing.T) {
	type recErr struct {
		index int
		pk    string
		err   error
	}
	tests := []struct {
		name    string
		in      string
		opts    Options
		users   []User
		errs    []recErr
		skipped int
	}{
		{name: "empty list", in: "[]"},
		{name: "empty list, whitespace", in: " \n[\n]\n"},
		{
			name: "a full Django user",
			in: `[{"model": "auth.user", "pk": 7, "fields": {"password": "` + pbkdf2Hash + `", "last_login": null,
				"is_superuser": true, "username": "alice", "first_name": "Alice", "last_name": "Liddell",
				"email": "alice@example.com", "is_staff": true, "is_active": true,
				"date_joined": "2024-01-02T03:04:05Z", "groups": [1], "user_permissions": []}}]`,
			users: []User{{PK: "7", Username: "alice", PasswordHash: pbkdf2Hash,
				Claims: map[string]string{"email": "alice@example.com", "given_name": "Alice", "family_name": "Liddell"}}},
		},
		{
			name:  "inactive, empty claims, string pk",
			in:    `[{"model": "auth.user", "pk": "u-1", "fields": {"username": "bob", "password": "` + argonHash + `", "is_active": false, "email": "", "first_name": "", "last_name": null}}]`,
			users: []User{{PK: "u-1", Username: "bob", PasswordHash: argonHash, Disabled: true}},
		},
		{
			name:  "no is_active, no pk (natural keys)",
			in:    `[{"model": "auth.user", "fields": {"username": "carol", "password": "` + argonHash + `"}}]`,
			users: []User{{Username: "carol", PasswordHash: argonHash}},
		},
		{
			name: "unusable and empty passwords come in",
			in: `[{"model": "auth.user", "pk": 1, "fields": {"username": "dave", "password": "!Yq7gsnf2Y8oQk0Q9e4e0m7QgHn5uC4DwYJ9yq6mN"}},
				{"model": "auth.user", "pk": 2, "fields": {"username": "erin", "password": ""}}]`,
			users: []User{
				{PK: "1", Username: "dave", PasswordHash: "!Yq7gsnf2Y8oQk0Q9e4e0m7QgHn5uC4DwYJ9yq6mN"},
				{Index: 1, PK: "2", Username: "erin", PasswordHash: ""},
			},
		},
		{
			name: "other models are skipped",
			in: `[{"model": "auth.group", "pk": 1, "fields": {"name": "staff", "permissions": []}},
				{"model": "auth.user", "pk": 1, "fields": {"username": "frank", "password": "` + pbkdf2Hash + `"}},
				{"model": "contenttypes.contenttype", "pk": "x", "fields": {}}]`,
			users:   []User{{Index: 1, PK: "1", Username: "frank", PasswordHash: pbkdf2Hash}},
			skipped: 2,
		},
		{
			name:    "custom user model",
			in:      `[{"model": "accounts.user", "pk": 1, "fields": {"username": "gina", "password": "` + pbkdf2Hash + `"}}, {"model": "auth.user", "pk": 2, "fields": {"username": "x", "password": ""}}]`,
			opts:    Options{Model: "Accounts.User"},
			users:   []User{{PK: "1", Username: "gina", PasswordHash: pbkdf2Hash}},
			skipped: 1,
		},
		{
			name: "invalid records are reported, the others read",
			in: `[
				{"model": "auth.user", "pk": 1, "fields": {"username": "", "password": "` + pbkdf2Hash + `"}},
				{"model": "auth.user", "pk": 2, "fields": {"username": "hal", "password": "md5$salt$0123456789abcdef0123456789abcdef"}},
				{"model": "auth.user", "pk": 3, "fields": {"username": "ivy", "password": "plain text password"}},
				{"model": "auth.user", "pk": 4, "fields": {"username": "jo", "password": "pbkdf2_sha256$99999999$s$GIPyqxhH5xGq7aO+8cJ6Dg0S0hVc58UGj8yHG3Y4cxA="}},
				{"model": "auth.user", "pk": 5, "fields": {"username": "kim", "password": "` + pbkdf2Hash + `"}},
				{"model": "auth.user", "pk": 6, "fields": {"username": "kim", "password": "` + argonHash + `"}},
				{"model": "auth.user", "pk": 7, "fields": {"username": "` + strings.Repeat("é", 151) + `", "password": ""}},
				{"model": "auth.user", "pk": 8, "fields": {"username": "tab\there", "password": ""}},
				{"model": "auth.user", "pk": 9, "fields": {"password": ""}},
				{"model": "auth.user", "pk": 10, "fields": {"username": "lee"}},
				{"model": "auth.user", "pk": 11, "fields": {"username": 5, "password": ""}},
				{"model": "auth.user", "pk": 12, "fields": {"username": "mo", "password": "", "is_active": "yes"}},
				{"model": "auth.user", "pk": 13},
				{"model": "auth.user", "pk": 14, "fields": []},
				{"pk": 15, "fields": {"username": "ned", "password": ""}},
				{"model": "auth.user", "pk": {"a": 1}, "fields": {"username": "oz", "password": ""}},
				5,
				"auth.user",
				{"model": "auth.user", "pk": 18, "fields": {"username": "` + strings.Repeat("é", 150) + `", "password": ""}}
			]`,
			users: []User{
				{Index: 4, PK: "5", Username: "kim", PasswordHash: pbkdf2Hash},
				{Index: 18, PK: "18", Username: strings.Repeat("é", 150)},
			},
			errs: []recErr{
				{0, "1", ErrUsername},
				{1, "2", password.ErrUnknownFormat},
				{2, "3", ErrPasswordHash},
				{3, "4", password.ErrParams},
				{5, "6", ErrDuplicate},
				{6, "7", ErrUsername},
				{7, "8", ErrUsername},
				{8, "9", ErrRecord},
				{9, "10", ErrRecord},
				{10, "11", ErrRecord},
				{11, "12", ErrRecord},
				{12, "13", ErrRecord},
				{13, "14", ErrRecord},
				{14, "", ErrRecord},
				{15, "", ErrRecord},
				{16, "", ErrRecord},
				{17, "", ErrRecord},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := ParseDjango(strings.NewReader(tc.in), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(res.Users, tc.users) {
				t.Errorf("Users = %+v\nwant %+v", res.Users, tc.users)
			}
			if res.Skipped != tc.skipped {
				t.Errorf("Skipped = %d, want %d", res.Skipped, tc.skipped)
			}
			if len(res.Errors) != len(tc.errs) {
				t.Fatalf("Errors = %v, want %d", res.Errors, len(tc.errs))
			}
			for i, want := range tc.errs {
				got := res.Errors[i]
				if got.Index != want.index || got.PK != want.pk || !errors.Is(&got, want.err) {
					t.Errorf("Errors[%d] = %d, %q, %v; want %d, %q, %v", i, got.Index, got.PK, got.Err, want.index, want.pk, want.err)
				}
				if msg := got.Error(); strings.Contains(msg, "saltsalt") || strings.Contains(msg, "plain text") || strings.Contains(msg, "0123456789abcdef") {
					t.Errorf("Errors[%d] = %q quotes the password hash", i, msg)
				}
			}
		})
	}
}

func TestParseDjangoFails(t *testing.T) {
	user := `{"model": "auth.user", "pk": 1, "fields": {"username": "a", "password": ""}}`
	tests := []struct {
		name string
		in   string
		opts Options
		want error
	}{
		{"empty input", "", Options{}, ErrFormat},
		{"an object", `{"model": "auth.user"}`, Options{}, ErrFormat},
		{"a string", `"[]"`, Options{}, ErrFormat},
		{"not JSON", `[{"model": "auth.user", "fields": {"password": pbkdf2_sha256$1$x$y}}]`, Options{}, ErrFormat},
		{"cut short", "[" + user + ",", Options{}, ErrFormat},
		{"unclosed", "[" + user, Options{}, ErrFormat},
		{"data after the list", "[" + user + "] []", Options{}, ErrFormat},
		{"garbage after the list", "[" + user + "] x", Options{}, ErrFormat},
		{"too large", "[" + user + "," + user + "]", Options{MaxBytes: int64(len(user) + 10)}, ErrTooLarge},
		{"too large by one byte", "[" + user + "]", Options{MaxBytes: int64(len(user) + 1)}, ErrTooLarge},
		{"too large, valid prefix", "[" + user + "]" + strings.Repeat(" ", 100), Options{MaxBytes: int64(len(user) + 2)}, ErrTooLarge},
		{"too many records", "[" + user + "," + user + "," + user + "]", Options{MaxRecords: 2}, ErrTooManyRecords},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := ParseDjango(strings.NewReader(tc.in), tc.opts)
			if !errors.Is(err, tc.want) || res != nil {
				t.Errorf("ParseDjango = %v, %v; want nil, %v", res, err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "pbkdf2") {
				t.Errorf("error %q quotes the input", err)
			}
		})
	}

	// At the limits exactly.
	in := "[" + user + "," + strings.Replace(user, `"a"`, `"b"`, 1) + "]"
	if res, err := ParseDjango(strings.NewReader(in), Options{MaxBytes: int64(len(in)), MaxRecords: 2}); err != nil || len(res.Users) != 2 {
		t.Errorf("ParseDjango at the limits = %v, %v; want 2 users", res, err)
	}
	if _, err := ParseDjango(strings.NewReader("[]"), Options{MaxBytes: -1}); err == nil {
		t.Error("ParseDjango with a negative limit succeeded")
	}
	readErr := errors.New("disk on fire")
	if _, err := ParseDjango(iotest.ErrReader(readErr), Options{}); !errors.Is(err, readErr) {
		t.Errorf("ParseDjango of a failing reader: %v, want %v", err, readErr)
	}
}

package password

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/issuer-oauth/issuer/internal/djangotest"
)

var update = flag.Bool("update", false, "rewrite testdata/vectors.json with hashes newly made by Django")

const vectorsFile = "testdata/vectors.json"

// vector is a password and its hash made by Django or argon2-cffi (the
// Argon2 reference implementation's Python binding).
type vector struct {
	Name string `json:"name"`
	// Hasher names what made the hash: a Django hasher ("pbkdf2_sha256",
	// "pbkdf2_sha1", "argon2", "bcrypt_sha256", or "unusable" for
	// make_password(None)), or argon2-cffi ("argon2-cffi" at the
	// parameters Args, "argon2i-django30" for Argon2i as Django 3.0 and
	// earlier wrote it).
	Hasher string `json:"hasher"`
	// Fast selects Django's hasher with its cost lowered (PBKDF2 1000
	// iterations, Argon2 m=256 KiB, bcrypt cost 4), so that many cases run
	// quickly; otherwise the hasher has Django's defaults.
	Fast     bool   `json:"fast,omitempty"`
	Args     []int  `json:"args,omitempty"` // argon2-cffi m, t, p
	Password string `json:"password"`
	Encoded  string `json:"encoded"`
	// Match and Rehash are what Verify must answer for Password.
	Match  bool `json:"match"`
	Rehash bool `json:"rehash"`
	// Pin keeps the vector in testdata/vectors.json.
	Pin bool `json:"-"`
}

// makeHashes reads a JSON list of vectors and writes the list of their
// hashes, made by Django's own hashers.
const makeHashes = `
import json, sys
import argon2
from django.conf import settings
settings.configure(PASSWORD_HASHERS=[
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
])
import django
django.setup()
from django.contrib.auth import hashers
from django.utils.crypto import get_random_string

class FastPBKDF2(hashers.PBKDF2PasswordHasher):
    iterations = 1000

class FastPBKDF2SHA1(hashers.PBKDF2SHA1PasswordHasher):
    iterations = 1000

class FastArgon2(hashers.Argon2PasswordHasher):
    memory_cost = 256
    parallelism = 2

class FastBCryptSHA256(hashers.BCryptSHA256PasswordHasher):
    rounds = 4

fast = {"pbkdf2_sha256": FastPBKDF2(), "pbkdf2_sha1": FastPBKDF2SHA1(),
        "argon2": FastArgon2(), "bcrypt_sha256": FastBCryptSHA256()}

def make(v):
    pw = v["password"]
    if v["hasher"] == "unusable":
        return hashers.make_password(None)
    if v["hasher"] == "argon2-cffi":
        m, t, p = v["args"]
        return argon2.PasswordHasher(time_cost=t, memory_cost=m, parallelism=p, hash_len=32, salt_len=16).hash(pw)
    if v["hasher"] == "argon2i-django30":
        # Django 3.0's Argon2PasswordHasher.encode, at its defaults.
        data = argon2.low_level.hash_secret(pw.encode(), get_random_string(12).encode(), time_cost=2,
            memory_cost=512, parallelism=2, hash_len=argon2.DEFAULT_HASH_LENGTH, type=argon2.low_level.Type.I)
        return "argon2" + data.decode("ascii")
    hasher = fast[v["hasher"]] if v.get("fast") else v["hasher"]
    encoded = hashers.make_password(pw, hasher=hasher)
    assert hashers.check_password(pw, encoded, preferred=hashers.get_hasher(hasher))
    return encoded

json.dump([make(v) for v in json.load(sys.stdin)], sys.stdout)
`

// djangoVectors are the cases made by live Django.
func djangoVectors() []vector {
	const pw = "correct horse battery staple"
	vs := []vector{
		{Name: "Django 3.2 default PBKDF2-SHA256 (260000 iterations)", Hasher: "pbkdf2_sha256", Password: pw, Match: true, Rehash: true, Pin: true},
		{Name: "Django PBKDF2-SHA1 (260000 iterations)", Hasher: "pbkdf2_sha1", Password: pw, Match: true, Rehash: true, Pin: true},
		{Name: "Django 3.2 default Argon2id (m=100 MiB, t=2, p=8)", Hasher: "argon2", Password: pw, Match: true, Rehash: true, Pin: true},
		{Name: "Django unusable password", Hasher: "unusable", Password: pw, Pin: true},
		{Name: "Argon2i as Django 3.0 wrote it", Hasher: "argon2i-django30", Password: pw, Match: true, Rehash: true, Pin: true},
		{Name: "argon2-cffi Argon2id at our defaults", Hasher: "argon2-cffi", Args: []int{19456, 2, 1}, Password: pw, Match: true, Pin: true},
		{Name: "argon2-cffi Argon2id below our memory", Hasher: "argon2-cffi", Args: []int{12288, 3, 1}, Password: pw, Match: true, Rehash: true, Pin: true},
	}
	passwords := []struct{ name, password string }{
		{"empty", ""},
		{"unicode", "pässwörd ✓ 密码"},
		{"symbols", "$ ! \x00 'quoted' \"double\" \\ \t"},
		{"200 bytes", strings.Repeat("0123456789", 20)},
	}
	for _, hasher := range []string{"pbkdf2_sha256", "pbkdf2_sha1", "argon2", "bcrypt_sha256"} {
		for _, p := range passwords {
			vs = append(vs, vector{Name: "Django " + hasher + ", " + p.name + " password", Hasher: hasher, Fast: true,
				Password: p.password, Match: true, Rehash: true, Pin: true})
		}
	}
	return vs
}

// checkVector checks Verify's answer for v, and that a wrong password does
// not match.
func checkVector(t *testing.T, h *Hasher, v vector) {
	t.Helper()
	if err := Check(v.Encoded); err != nil {
		t.Errorf("%s: Check = %v", v.Name, err)
	}
	ok, rehash, err := h.Verify(t.Context(), v.Encoded, v.Password)
	if err != nil || ok != v.Match || rehash != v.Rehash {
		t.Errorf("%s: Verify = %v, %v, %v; want %v, %v, nil", v.Name, ok, rehash, err, v.Match, v.Rehash)
	}
	if !v.Fast {
		return
	}
	for _, wrong := range []string{v.Password + "x", strings.ToUpper(v.Password) + "X", "x"} {
		if ok, rehash, err := h.Verify(t.Context(), v.Encoded, wrong); ok || rehash || err != nil {
			t.Errorf("%s: Verify(wrong password) = %v, %v, %v; want false, false, nil", v.Name, ok, rehash, err)
		}
	}
}

// TestDjangoHashes checks hashes that Django makes now: it fails if
// Debian's python3-django, python3-argon2 and python3-bcrypt are missing
// (scripts/test-deps.sh installs them).
func TestDjangoHashes(t *testing.T) {
	vs := djangoVectors()
	in, err := json.Marshal(vs)
	if err != nil {
		t.Fatal(err)
	}
	var encoded []string
	if err := json.Unmarshal(djangotest.Run(t, makeHashes, in), &encoded); err != nil || len(encoded) != len(vs) {
		t.Fatalf("Django's output: %d hashes, %v; want %d", len(encoded), err, len(vs))
	}
	h := newHasher(t)
	var pinned []vector
	for i := range vs {
		vs[i].Encoded = encoded[i]
		checkVector(t, h, vs[i])
		if vs[i].Pin {
			pinned = append(pinned, vs[i])
		}
	}
	if *update {
		writeVectors(t, pinned)
	}
}

// TestOurHashesInPython checks that argon2-cffi, and Django given its
// "argon2" prefix, accept the hashes Hash makes.
func TestOurHashesInPython(t *testing.T) {
	h := newHasher(t)
	type pair struct {
		Encoded  string `json:"encoded"`
		Password string `json:"password"`
	}
	var pairs []pair
	for _, pw := range []string{"", "pässwörd ✓"} {
		encoded, err := h.Hash(t.Context(), pw)
		if err != nil {
			t.Fatal(err)
		}
		pairs = append(pairs, pair{encoded, pw}, pair{encoded, pw + "x"})
	}
	in, err := json.Marshal(pairs)
	if err != nil {
		t.Fatal(err)
	}
	const check = `
import json, sys
import argon2
from django.conf import settings
settings.configure(PASSWORD_HASHERS=["django.contrib.auth.hashers.Argon2PasswordHasher"])
import django
django.setup()
from django.contrib.auth.hashers import check_password

def cffi(encoded, pw):
    try:
        return argon2.PasswordHasher().verify(encoded, pw)
    except argon2.exceptions.VerifyMismatchError:
        return False

json.dump([[cffi(p["encoded"], p["password"]), check_password(p["password"], "argon2" + p["encoded"])]
           for p in json.load(sys.stdin)], sys.stdout)
`
	var got [][2]bool
	if err := json.Unmarshal(djangotest.Run(t, check, in), &got); err != nil || len(got) != len(pairs) {
		t.Fatalf("Python's output: %v, %v", got, err)
	}
	for i, p := range pairs {
		want := i%2 == 0
		if got[i] != [2]bool{want, want} {
			t.Errorf("password %q: argon2-cffi, Django = %v, want %v for both", p.Password, got[i], want)
		}
	}
}

func writeVectors(t *testing.T, vs []vector) {
	t.Helper()
	file := struct {
		Comment string   `json:"comment"`
		Vectors []vector `json:"vectors"`
	}{
		Comment: "Made by Django 3.2 and argon2-cffi: go test ./internal/password -run TestDjangoHashes -update",
		Vectors: vs,
	}
	b, err := json.MarshalIndent(file, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.FromSlash(vectorsFile), append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

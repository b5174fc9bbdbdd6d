package password

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// TestVectors checks hashes made once by Django and argon2-cffi and kept in
// testdata, so that the parsing is pinned without Python.
func TestVectors(t *testing.T) {
	b, err := os.ReadFile(filepath.FromSlash(vectorsFile))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Vectors []vector `json:"vectors"`
	}
	if err := json.Unmarshal(b, &file); err != nil {
		t.Fatal(err)
	}
	h := newHasher(t)
	seen := map[string]bool{}
	for _, v := range file.Vectors {
		checkVector(t, h, v)
		seen[v.Hasher] = true
	}
	for _, hasher := range []string{"pbkdf2_sha256", "pbkdf2_sha1", "argon2", "bcrypt_sha256", "unusable", "argon2-cffi", "argon2i-django30"} {
		if !seen[hasher] {
			t.Errorf("no vector made by %s", hasher)
		}
	}
}

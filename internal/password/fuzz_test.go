package password

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzCheck parses stored hashes, which come from imports: parsing never
// panics, whatever it accepts is within the bounds, and its errors never
// quote the hash.
func FuzzCheck(f *testing.F) {
	if b, err := os.ReadFile(filepath.FromSlash(vectorsFile)); err == nil {
		var file struct{ Vectors []vector }
		if json.Unmarshal(b, &file) == nil {
			for _, v := range file.Vectors {
				f.Add(v.Encoded)
			}
		}
	}
	for _, s := range []string{
		"", "!", "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5",
		"pbkdf2_sha256$1$s$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"bcrypt_sha256$$2b$04$abcdefghijklmnopqrstuvABCDEFGHIJKLMNOPQRSTUVWXYZ01234",
		"scrypt$salt$16384$8$1$aGFzaA==",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, encoded string) {
		s, err := parse(encoded)
		if err != nil {
			if s != nil {
				t.Fatalf("parse returned a hash and %v", err)
			}
			if !errors.Is(err, ErrUnknownFormat) && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrParams) {
				t.Fatalf("error %v wraps none of the sentinels", err)
			}
			// The messages are fixed words and numbers: no run of 24
			// characters without a space.
			for _, field := range strings.FieldsFunc(encoded, func(r rune) bool { return r == '$' || r == ' ' }) {
				if len(field) >= 24 && strings.Contains(err.Error(), field) {
					t.Fatalf("error %q quotes the hash", err)
				}
			}
			return
		}
		if (s == nil) == Usable(encoded) {
			t.Fatalf("parse = %v for a hash with Usable = %v", s, Usable(encoded))
		}
		switch s := s.(type) {
		case *argonHash:
			p := s.params
			if checkArgon(uint64(p.Memory), uint64(p.Time), uint64(p.Threads)) != nil ||
				len(s.salt) < minArgonSaltLen || len(s.salt) > maxArgonSaltLen ||
				len(s.key) < minArgonKeyLen || len(s.key) > maxArgonKeyLen {
				t.Fatalf("accepted out of bounds: %v, salt %d, key %d", p, len(s.salt), len(s.key))
			}
		case *pbkdf2Hash:
			if s.iter < 1 || s.iter > maxPBKDF2Iter || s.salt == "" || len(s.key) != s.hash().Size() {
				t.Fatalf("accepted out of bounds: %d iterations, key %d", s.iter, len(s.key))
			}
		case *bcryptHash:
			if len(s.hash) != 60 || s.hash[4] > '1' || s.hash[4] == '1' && s.hash[5] > '5' {
				t.Fatal("accepted a bcrypt hash out of bounds")
			}
		}
	})
}

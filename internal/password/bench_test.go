package password

import (
	"testing"

	"golang.org/x/crypto/argon2"
)

const benchPassword = "correct horse battery staple"

// BenchmarkVerify is a successful Verify of a hash at the default
// parameters: parsing, the slot and the comparison around the key
// derivation that BenchmarkIDKey measures alone.
func BenchmarkVerify(b *testing.B) {
	h := newHasher(b)
	encoded, err := h.Hash(b.Context(), benchPassword)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if ok, _, err := h.Verify(b.Context(), encoded, benchPassword); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

// BenchmarkIDKey is the bare Argon2id key derivation at the default
// parameters, the baseline of BenchmarkVerify.
func BenchmarkIDKey(b *testing.B) {
	p := DefaultParams()
	salt := random(saltLen)
	for b.Loop() {
		argon2.IDKey([]byte(benchPassword), salt, p.Time, p.Memory, p.Threads, keyLen)
	}
}

// BenchmarkDummyVerify is the cost of an unknown username.
func BenchmarkDummyVerify(b *testing.B) {
	h := newHasher(b)
	for b.Loop() {
		if err := h.DummyVerify(b.Context(), benchPassword); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyDjango is the cost of a first login of a user moved from
// Django, at the defaults of Django's hashers.
func BenchmarkVerifyDjango(b *testing.B) {
	h := newHasher(b)
	tests := []struct {
		name    string
		encoded string
	}{
		{"pbkdf2_sha256/260000 (Django 3.2)", djangoPBKDF2(b, "pbkdf2_sha256", 260_000, "salt", benchPassword)},
		{"pbkdf2_sha256/600000 (Django 4.2)", djangoPBKDF2(b, "pbkdf2_sha256", 600_000, "salt", benchPassword)},
		{"pbkdf2_sha256/1000000 (Django 5.2)", djangoPBKDF2(b, "pbkdf2_sha256", 1_000_000, "salt", benchPassword)},
		{"pbkdf2_sha1/260000", djangoPBKDF2(b, "pbkdf2_sha1", 260_000, "salt", benchPassword)},
		{"argon2/m=102400,t=2,p=8", "argon2" + argonPHC(b, "argon2id", Params{Memory: 102400, Time: 2, Threads: 8}, 16, 16, benchPassword)},
		{"bcrypt_sha256/12", djangoBcryptSHA256(b, 12, benchPassword)},
	}
	for _, tc := range tests {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				if ok, _, err := h.Verify(b.Context(), tc.encoded, benchPassword); !ok || err != nil {
					b.Fatal(ok, err)
				}
			}
		})
	}
}

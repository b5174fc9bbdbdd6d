package secret

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var testPepper = Derive([]byte("0123456789abcdef0123456789abcdef"), PurposeClientSecrets)

func TestHashBindsClientID(t *testing.T) {
	h := NewHasher(testPepper)
	tests := []struct {
		name       string
		id1, s1    string
		id2, s2    string
		wantVerify bool
	}{
		{"same client and secret", "client-1", "s3cret", "client-1", "s3cret", true},
		{"hash copied to another client", "client-1", "s3cret", "client-2", "s3cret", false},
		{"client id prefix", "client-1", "s3cret", "client-", "s3cret", false},
		{"id and secret boundary moved", "client-1", "s3cret", "client-1s", "3cret", false},
		{"id and secret swapped", "a", "b", "b", "a", false},
		{"empty client id", "client-1", "s3cret", "", "s3cret", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hash := h.Hash(tc.id1, tc.s1)
			if got, want := h.Verify(tc.id2, tc.s2, hash), tc.wantVerify; got != want {
				t.Errorf("Verify(%q, %q, Hash(%q, %q)) = %v, want %v", tc.id2, tc.s2, tc.id1, tc.s1, got, want)
			}
			if got, want := bytes.Equal(h.Hash(tc.id2, tc.s2), hash), tc.wantVerify; got != want {
				t.Errorf("Hash(%q, %q) == Hash(%q, %q) is %v, want %v", tc.id2, tc.s2, tc.id1, tc.s1, got, want)
			}
		})
	}
}

func TestVerify(t *testing.T) {
	h := NewHasher(testPepper)
	secret := NewClientSecret()
	hash := h.Hash("client-1", secret)
	if got, want := len(hash), 32; got != want {
		t.Fatalf("len(Hash) = %d, want %d", got, want)
	}
	if bytes.Contains(hash, []byte(secret)) {
		t.Fatalf("hash contains the secret")
	}
	other := NewHasher(Derive([]byte("another master secret, 32+ chars long"), PurposeClientSecrets))

	tests := []struct {
		name   string
		h      *Hasher
		id     string
		secret string
		hash   []byte
		want   bool
	}{
		{"right secret", h, "client-1", secret, hash, true},
		{"wrong secret", h, "client-1", NewClientSecret(), hash, false},
		{"secret with one character changed", h, "client-1", secret[:len(secret)-1] + flip(secret[len(secret)-1]), hash, false},
		{"secret prefix", h, "client-1", secret[:len(secret)-1], hash, false},
		{"secret with a suffix", h, "client-1", secret + "x", hash, false},
		{"empty secret", h, "client-1", "", hash, false},
		{"another client", h, "client-2", secret, hash, false},
		{"hash truncated", h, "client-1", secret, hash[:16], false},
		{"hash empty", h, "client-1", secret, nil, false},
		{"hash extended", h, "client-1", secret, append(append([]byte(nil), hash...), 0), false},
		{"another pepper", other, "client-1", secret, hash, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.h.Verify(tc.id, tc.secret, tc.hash); got != tc.want {
				t.Errorf("Verify = %v, want %v", got, tc.want)
			}
		})
	}
}

func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

func TestVerifyUnknown(t *testing.T) {
	h := NewHasher(testPepper)
	for _, s := range []string{"", "x", NewClientSecret(), "unknown client", strings.Repeat("a", 1000)} {
		if h.VerifyUnknown(s) {
			t.Errorf("VerifyUnknown(%q) = true, want false", s)
		}
	}
	// Even a secret that matches the dummy hash is not accepted.
	h.dummy = h.Hash("unknown client", "guess")
	if h.VerifyUnknown("guess") {
		t.Errorf("VerifyUnknown matching the dummy hash = true, want false")
	}
}

func TestNewClientSecret(t *testing.T) {
	const n = 1000
	seen := make(map[string]bool, n)
	for range n {
		s := NewClientSecret()
		if got, want := len(s), 43; got != want {
			t.Fatalf("len(NewClientSecret()) = %d, want %d", got, want)
		}
		raw, err := base64.RawURLEncoding.Strict().DecodeString(s)
		if err != nil {
			t.Fatalf("NewClientSecret() = %q is not unpadded base64url: %v", s, err)
		}
		if got, want := len(raw)*8, 256; got < want {
			t.Fatalf("NewClientSecret() carries %d bits, want >= %d", got, want)
		}
		if seen[s] {
			t.Fatalf("NewClientSecret() repeated %q", s)
		}
		seen[s] = true
	}
}

func TestRandom(t *testing.T) {
	for _, n := range []int{0, 1, 16, 32, 64} {
		s := Random(n)
		raw, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil || len(raw) != n {
			t.Errorf("Random(%d) = %q decodes to %d bytes (%v), want %d", n, s, len(raw), err, n)
		}
	}
}

func TestDerive(t *testing.T) {
	master := []byte("0123456789abcdef0123456789abcdef")
	purposes := []string{PurposeKeyEncryption, PurposeClientSecrets, PurposeRefreshTokens}
	seen := map[string]string{}
	for _, p := range purposes {
		t.Run(p, func(t *testing.T) {
			k := Derive(master, p)
			if got, want := len(k), 32; got != want {
				t.Fatalf("len(Derive) = %d, want %d", got, want)
			}
			if again := Derive(master, p); !bytes.Equal(again, k) {
				t.Errorf("Derive is not deterministic: %x then %x", k, again)
			}
			if bytes.Equal(k, master[:32]) {
				t.Errorf("Derive returned the master secret")
			}
			if prev, ok := seen[string(k)]; ok {
				t.Errorf("Derive(%q) = Derive(%q)", p, prev)
			}
			seen[string(k)] = p
			if other := Derive([]byte("another master secret, 32+ chars long"), p); bytes.Equal(other, k) {
				t.Errorf("Derive(%q) is the same under another master", p)
			}
		})
	}
}

func TestLoadOrCreateMaster(t *testing.T) {
	t.Run("creates 0600 in 0700 and reloads", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "data", "nested")
		file := filepath.Join(dir, "secret")
		first, err := LoadOrCreateMaster(file)
		if err != nil {
			t.Fatalf("first LoadOrCreateMaster: %v", err)
		}
		if got := len(first); got < MinMasterLen {
			t.Errorf("len(master) = %d, want >= %d", got, MinMasterLen)
		}
		fi, err := os.Stat(file)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := fi.Mode().Perm(), os.FileMode(0o600); got != want {
			t.Errorf("file mode = %v, want %v", got, want)
		}
		for _, d := range []string{dir, filepath.Dir(dir)} {
			di, err := os.Stat(d)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := di.Mode().Perm(), os.FileMode(0o700); got != want {
				t.Errorf("dir %s mode = %v, want %v", d, got, want)
			}
		}
		second, err := LoadOrCreateMaster(file)
		if err != nil {
			t.Fatalf("second LoadOrCreateMaster: %v", err)
		}
		if !bytes.Equal(first, second) {
			t.Errorf("second call = %q, want %q", second, first)
		}
		if third, _ := LoadOrCreateMaster(file); !bytes.Equal(third, first) {
			t.Errorf("third call = %q, want %q", third, first)
		}
	})

	t.Run("distinct per file", func(t *testing.T) {
		dir := t.TempDir()
		a, err1 := LoadOrCreateMaster(filepath.Join(dir, "a"))
		b, err2 := LoadOrCreateMaster(filepath.Join(dir, "b"))
		if err1 != nil || err2 != nil {
			t.Fatalf("LoadOrCreateMaster: %v, %v", err1, err2)
		}
		if bytes.Equal(a, b) {
			t.Errorf("two new files hold the same secret %q", a)
		}
	})

	t.Run("operator-provided file is trimmed", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "secret")
		want := strings.Repeat("k", MinMasterLen)
		if err := os.WriteFile(file, []byte("  "+want+"\r\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := LoadOrCreateMaster(file)
		if err != nil {
			t.Fatalf("LoadOrCreateMaster: %v", err)
		}
		if string(got) != want {
			t.Errorf("LoadOrCreateMaster = %q, want %q", got, want)
		}
	})

	short := []struct {
		name    string
		content string
	}{
		{"empty", ""},
		{"newline only", "\n"},
		{"short", "short\n"},
		{"one character short", strings.Repeat("x", MinMasterLen-1) + "\n"},
		{"one character short with padding", "   " + strings.Repeat("x", MinMasterLen-1) + "   "},
	}
	for _, tc := range short {
		content := tc.content
		t.Run("rejects short file: "+tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "secret")
			if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadOrCreateMaster(file)
			if err == nil {
				t.Fatalf("LoadOrCreateMaster on %q succeeded, want an error", content)
			}
			for _, want := range []string{file, "delete it", "fewer than 32"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error = %q, want it to contain %q", err, want)
				}
			}
			if b, _ := os.ReadFile(file); string(b) != content {
				t.Errorf("file rewritten to %q, want it left as %q", b, content)
			}
		})
	}

	t.Run("unreadable path", func(t *testing.T) {
		dir := t.TempDir()
		regular := filepath.Join(dir, "regular")
		if err := os.WriteFile(regular, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name string
			file string
		}{
			{"path is a directory", dir},
			{"parent is a regular file", filepath.Join(regular, "secret")},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				got, err := LoadOrCreateMaster(tc.file)
				if err == nil {
					t.Fatalf("LoadOrCreateMaster(%q) = %q, want an error", tc.file, got)
				}
				for _, want := range []string{"secret file", tc.file} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error = %q, want it to contain %q", err, want)
					}
				}
			})
		}
	})
}

func BenchmarkHash(b *testing.B) {
	h := NewHasher(testPepper)
	s := NewClientSecret()
	b.ReportAllocs()
	for b.Loop() {
		h.Hash("client-1", s)
	}
}

func BenchmarkVerify(b *testing.B) {
	h := NewHasher(testPepper)
	s := NewClientSecret()
	hash := h.Hash("client-1", s)
	b.ReportAllocs()
	for b.Loop() {
		h.Verify("client-1", s, hash)
	}
}

// Package secret derives the issuer's internal keys from its master secret
// (ISSUER_SECRET) and hashes client secrets.
//
// Client secrets are generated here with 256 bits of entropy, so a password
// hash (bcrypt, PBKDF2, Argon2) would add cost without adding safety: nobody can
// guess a 256-bit value however fast the hash is. They are kept as
// HMAC-SHA-256 under a pepper derived from the master secret, bound to the
// client id, and compared in constant time. A copy of the store alone is
// therefore not enough to check a guessed secret offline.
package secret

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// MinMasterLen is the shortest master secret accepted, in characters.
const MinMasterLen = 32

// Purposes of the keys derived from the master secret. Each derived key is
// used for exactly one of them.
const (
	PurposeKeyEncryption = "issuer key-encryption v1"
	PurposeClientSecrets = "issuer client-secret pepper v1"
	PurposeRefreshTokens = "issuer refresh-token hs256 v1"
	PurposeDPoPNonces    = "issuer dpop-nonce hmac v1"
	// PurposeRefreshRetries encrypts the answers kept for retried
	// refreshes (refresh_token_reuse_interval).
	PurposeRefreshRetries = "issuer refresh-retry aes-256-gcm v1"
)

// Derive returns a 32-byte key for purpose, derived from master with
// HKDF-SHA-256 (RFC 5869).
func Derive(master []byte, purpose string) []byte {
	k, err := hkdf.Key(sha256.New, master, nil, purpose, 32)
	if err != nil { // only for lengths HKDF cannot produce; 32 always works
		panic(fmt.Sprintf("secret: hkdf: %v", err))
	}
	return k
}

// Random returns n random bytes encoded as unpadded base64url.
func Random(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never returns an error
	return base64.RawURLEncoding.EncodeToString(b)
}

// LoadOrCreateMaster returns the master secret kept in file, creating the
// file with a new random secret (0600, in a 0700 directory) when it does not
// exist. It is how the embedded store works with no ISSUER_SECRET set.
func LoadOrCreateMaster(file string) ([]byte, error) {
	b, err := os.ReadFile(file)
	if err == nil {
		s := strings.TrimSpace(string(b))
		if len(s) < MinMasterLen {
			return nil, fmt.Errorf("secret file %s holds fewer than %d characters; delete it to generate a new one (existing keys and client secrets then stop working)", file, MinMasterLen)
		}
		return []byte(s), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read secret file: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	s := Random(32)
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create secret file: %w", err)
	}
	if _, err := f.WriteString(s + "\n"); err != nil {
		f.Close()
		return nil, fmt.Errorf("write secret file: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("write secret file: %w", err)
	}
	return []byte(s), nil
}

// Hasher hashes and verifies client secrets.
type Hasher struct {
	pepper []byte
	dummy  []byte
}

// NewHasher returns a Hasher keyed with pepper (see PurposeClientSecrets).
func NewHasher(pepper []byte) *Hasher {
	h := &Hasher{pepper: pepper}
	h.dummy = h.Hash("unknown client", Random(32))
	return h
}

// NewClientSecret returns a new client secret: 32 random bytes (256 bits),
// base64url-encoded into 43 characters.
func NewClientSecret() string { return Random(32) }

// Hash returns the keyed hash of a client's secret. The client id is part of
// the input, so a hash copied onto another client does not verify.
func (h *Hasher) Hash(clientID, secret string) []byte {
	m := hmac.New(sha256.New, h.pepper)
	m.Write([]byte(clientID))
	m.Write([]byte{0})
	m.Write([]byte(secret))
	return m.Sum(nil)
}

// Verify reports whether secret is the client's secret, in time that does not
// depend on how much of it matches.
func (h *Hasher) Verify(clientID, secret string, hash []byte) bool {
	return hmac.Equal(h.Hash(clientID, secret), hash)
}

// VerifyUnknown does the work of Verify for a client that does not exist and
// returns false, so that an unknown client id takes as long as a wrong secret.
func (h *Hasher) VerifyUnknown(secret string) bool {
	_ = hmac.Equal(h.Hash("unknown client", secret), h.dummy)
	return false
}

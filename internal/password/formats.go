package password

import (
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Bounds on the parameters of a stored hash (see the package comment).
const (
	maxEncodedLen     = 1024
	maxArgonMemory    = 256 << 10 // KiB
	maxArgonTime      = 10
	maxArgonThreads   = 16
	maxArgonWork      = 1 << 20 // KiB × passes: 1 GiB
	minArgonSaltLen   = 8
	maxArgonSaltLen   = 64
	minArgonKeyLen    = 16
	maxArgonKeyLen    = 64
	maxPBKDF2Iter     = 10_000_000
	maxPBKDF2SaltLen  = 256
	maxBcryptCost     = 15
	argonVersion      = 19 // 0x13, the only version golang.org/x/crypto/argon2 computes
	unusablePrefix    = "!"
	djangoArgonPrefix = "argon2"
)

// stored is a parsed hash that can check a password.
type stored interface {
	// verify reports whether password matches, in constant time with
	// respect to the stored key.
	verify(password string) bool
	// current reports whether the hash is Argon2id in PHC form at target
	// or above, so that it need not be replaced.
	current(target Params) bool
}

// Usable reports whether encoded can ever verify a password: false for an
// empty string and for Django's unusable passwords ("!" followed by random
// characters).
func Usable(encoded string) bool {
	return encoded != "" && !strings.HasPrefix(encoded, unusablePrefix)
}

// Check reports whether Verify can check passwords against encoded without
// computing anything: nil for a supported hash within bounds and for an
// unusable password (which Verify rejects without error), otherwise an
// error wrapping ErrUnknownFormat, ErrMalformed or ErrParams.
func Check(encoded string) error {
	_, err := parse(encoded)
	return err
}

// parse parses encoded; it returns nil and no error for an unusable
// password.
func parse(encoded string) (stored, error) {
	if !Usable(encoded) {
		return nil, nil
	}
	if len(encoded) > maxEncodedLen {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrMalformed, maxEncodedLen)
	}
	switch {
	case strings.HasPrefix(encoded, "$argon2"):
		return checked(parsePHC(encoded, false))
	case strings.HasPrefix(encoded, djangoArgonPrefix+"$"):
		return checked(parsePHC(encoded[len(djangoArgonPrefix):], true))
	case strings.HasPrefix(encoded, "pbkdf2_sha256$"):
		return checked(parsePBKDF2(encoded, sha256.New))
	case strings.HasPrefix(encoded, "pbkdf2_sha1$"):
		return checked(parsePBKDF2(encoded, sha1.New))
	case strings.HasPrefix(encoded, "bcrypt_sha256$"):
		return checked(parseBcryptSHA256(encoded))
	}
	// Name the Django hashers that are known but not supported, so that
	// an import report says what to do; never echo anything else, which
	// might be a password stored in clear.
	if algorithm, _, ok := strings.Cut(encoded, "$"); ok {
		switch algorithm {
		case "bcrypt", "scrypt", "sha1", "md5", "unsalted_sha1", "unsalted_md5", "crypt":
			return nil, fmt.Errorf("%w: Django's %s hasher is not supported", ErrUnknownFormat, algorithm)
		}
	}
	return nil, ErrUnknownFormat
}

// checked returns s as a stored, or no stored at all (rather than a nil
// pointer in an interface) when err is not nil.
func checked[S stored](s S, err error) (stored, error) {
	if err != nil {
		return nil, err
	}
	return s, nil
}

// argonHash is an Argon2 hash: ours in PHC form, or Django's.
type argonHash struct {
	id     bool // Argon2id; Argon2i otherwise
	django bool // written by Django ("argon2" before the PHC string)
	params Params
	salt   []byte
	key    []byte
}

func (h *argonHash) verify(password string) bool {
	var key []byte
	if h.id {
		key = argon2.IDKey([]byte(password), h.salt, h.params.Time, h.params.Memory, h.params.Threads, uint32(len(h.key)))
	} else {
		key = argon2.Key([]byte(password), h.salt, h.params.Time, h.params.Memory, h.params.Threads, uint32(len(h.key)))
	}
	return subtle.ConstantTimeCompare(key, h.key) == 1
}

func (h *argonHash) current(target Params) bool {
	return h.id && !h.django &&
		h.params.Memory >= target.Memory &&
		h.params.Time >= target.Time &&
		h.params.Threads >= target.Threads &&
		len(h.salt) >= saltLen && len(h.key) >= keyLen
}

// parsePHC parses "$argon2id$v=19$m=M,t=T,p=P$salt$key" (or argon2i). The
// parameters must be in this order, in decimal without leading zeros, and
// salt and key in standard base64 without padding, as the PHC string format
// and the Argon2 reference implementation write them.
func parsePHC(s string, django bool) (*argonHash, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" {
		return nil, fmt.Errorf("%w: argon2: want 5 fields", ErrMalformed)
	}
	h := &argonHash{django: django}
	switch parts[1] {
	case "argon2id":
		h.id = true
	case "argon2i":
	default:
		return nil, fmt.Errorf("%w: argon2 variant is not argon2id or argon2i", ErrUnknownFormat)
	}
	v, ok := strings.CutPrefix(parts[2], "v=")
	if !ok {
		return nil, fmt.Errorf("%w: argon2 version missing (version 1.0 is not supported)", ErrUnknownFormat)
	}
	if n, ok := decimal(v, 32); !ok || n != argonVersion {
		return nil, fmt.Errorf("%w: argon2 version is not 19", ErrUnknownFormat)
	}
	m, t, p, err := argonParams(parts[3])
	if err != nil {
		return nil, err
	}
	if err := checkArgon(m, t, p); err != nil {
		return nil, err
	}
	h.params = Params{Memory: uint32(m), Time: uint32(t), Threads: uint8(p)}
	if h.salt, err = base64.RawStdEncoding.DecodeString(parts[4]); err != nil {
		return nil, fmt.Errorf("%w: argon2 salt is not base64", ErrMalformed)
	}
	if h.key, err = base64.RawStdEncoding.DecodeString(parts[5]); err != nil {
		return nil, fmt.Errorf("%w: argon2 key is not base64", ErrMalformed)
	}
	if len(h.salt) < minArgonSaltLen || len(h.salt) > maxArgonSaltLen {
		return nil, fmt.Errorf("%w: argon2 salt of %d bytes, want %d to %d", ErrMalformed, len(h.salt), minArgonSaltLen, maxArgonSaltLen)
	}
	if len(h.key) < minArgonKeyLen || len(h.key) > maxArgonKeyLen {
		return nil, fmt.Errorf("%w: argon2 key of %d bytes, want %d to %d", ErrMalformed, len(h.key), minArgonKeyLen, maxArgonKeyLen)
	}
	return h, nil
}

// argonParams parses "m=M,t=T,p=P".
func argonParams(s string) (m, t, p uint64, err error) {
	fields := strings.Split(s, ",")
	if len(fields) != 3 {
		return 0, 0, 0, fmt.Errorf("%w: argon2 parameters are not m=…,t=…,p=…", ErrMalformed)
	}
	var out [3]uint64
	for i, name := range []string{"m=", "t=", "p="} {
		v, ok := strings.CutPrefix(fields[i], name)
		if !ok {
			return 0, 0, 0, fmt.Errorf("%w: argon2 parameters are not m=…,t=…,p=…", ErrMalformed)
		}
		if out[i], ok = decimal(v, 32); !ok {
			return 0, 0, 0, fmt.Errorf("%w: argon2 parameter %s is not a 32-bit decimal number", ErrMalformed, name[:1])
		}
	}
	return out[0], out[1], out[2], nil
}

// checkArgon applies the bounds on Argon2 parameters: those of RFC 9106
// §3.1 (t ≥ 1, 1 ≤ p, m ≥ 8p) and ours on cost.
func checkArgon(m, t, p uint64) error {
	switch {
	case t < 1 || p < 1:
		return fmt.Errorf("%w: argon2 t and p must be at least 1", ErrMalformed)
	case m < 8*p:
		return fmt.Errorf("%w: argon2 m must be at least 8p", ErrMalformed)
	case m > maxArgonMemory:
		return fmt.Errorf("%w: argon2 memory %d KiB above %d KiB", ErrParams, m, maxArgonMemory)
	case t > maxArgonTime:
		return fmt.Errorf("%w: argon2 time %d above %d", ErrParams, t, maxArgonTime)
	case p > maxArgonThreads:
		return fmt.Errorf("%w: argon2 parallelism %d above %d", ErrParams, p, maxArgonThreads)
	case m*t > maxArgonWork:
		return fmt.Errorf("%w: argon2 memory × time %d KiB above %d KiB", ErrParams, m*t, maxArgonWork)
	}
	return nil
}

// decimal parses a decimal number without sign or leading zeros that fits
// in bits bits.
func decimal(s string, bits int) (uint64, bool) {
	if s == "" || len(s) > 1 && s[0] == '0' {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, bits)
	return n, err == nil
}

// pbkdf2Hash is Django's PBKDF2PasswordHasher or PBKDF2SHA1PasswordHasher.
type pbkdf2Hash struct {
	hash func() hash.Hash
	iter int
	salt string
	key  []byte
}

func (h *pbkdf2Hash) verify(password string) bool {
	key, err := pbkdf2.Key(h.hash, password, []byte(h.salt), h.iter, len(h.key))
	if err != nil {
		// Only possible in FIPS 140-3 mode, for a salt or key below its
		// minimum length: such a hash cannot be checked there.
		return false
	}
	return subtle.ConstantTimeCompare(key, h.key) == 1
}

func (h *pbkdf2Hash) current(Params) bool { return false }

// parsePBKDF2 parses "<algorithm>$<iterations>$<salt>$<key>", the key in
// padded standard base64 and as long as the digest, as Django writes it.
func parsePBKDF2(s string, newHash func() hash.Hash) (*pbkdf2Hash, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 4 {
		return nil, fmt.Errorf("%w: pbkdf2: want 4 fields", ErrMalformed)
	}
	iter, ok := decimal(parts[1], 64)
	if !ok || iter < 1 {
		return nil, fmt.Errorf("%w: pbkdf2 iterations are not a positive number", ErrMalformed)
	}
	if iter > maxPBKDF2Iter {
		return nil, fmt.Errorf("%w: pbkdf2 iterations %d above %d", ErrParams, iter, maxPBKDF2Iter)
	}
	if parts[2] == "" || len(parts[2]) > maxPBKDF2SaltLen {
		return nil, fmt.Errorf("%w: pbkdf2 salt empty or longer than %d bytes", ErrMalformed, maxPBKDF2SaltLen)
	}
	key, err := base64.StdEncoding.DecodeString(parts[3])
	if err != nil {
		return nil, fmt.Errorf("%w: pbkdf2 key is not base64", ErrMalformed)
	}
	if size := newHash().Size(); len(key) != size {
		return nil, fmt.Errorf("%w: pbkdf2 key of %d bytes, want %d", ErrMalformed, len(key), size)
	}
	return &pbkdf2Hash{hash: newHash, iter: int(iter), salt: parts[2], key: key}, nil
}

// bcryptHash is Django's BCryptSHA256PasswordHasher: bcrypt of the
// lowercase hex SHA-256 of the password, which keeps long passwords from
// being cut at bcrypt's 72 bytes.
type bcryptHash struct {
	hash []byte // "$2b$12$" and 53 characters
}

func (h *bcryptHash) verify(password string) bool {
	digest := sha256.Sum256([]byte(password))
	// The hash was checked by parseBcryptSHA256, so any error is a
	// mismatch; bcrypt compares in constant time.
	return bcrypt.CompareHashAndPassword(h.hash, []byte(hex.EncodeToString(digest[:]))) == nil
}

func (h *bcryptHash) current(Params) bool { return false }

// parseBcryptSHA256 parses "bcrypt_sha256$$2b$<cost>$<22 salt and 31 hash
// characters>" (minor version a, b or y). It checks everything itself, so
// that no error of the bcrypt package, which may quote the hash, is passed
// on.
func parseBcryptSHA256(s string) (*bcryptHash, error) {
	b := s[len("bcrypt_sha256$"):]
	if len(b) != 60 || b[0] != '$' || b[1] != '2' || b[3] != '$' || b[6] != '$' {
		return nil, fmt.Errorf("%w: bcrypt: want $2b$<cost>$ and 53 characters", ErrMalformed)
	}
	if b[2] != 'a' && b[2] != 'b' && b[2] != 'y' {
		return nil, fmt.Errorf("%w: bcrypt version is not 2a, 2b or 2y", ErrUnknownFormat)
	}
	if b[4] < '0' || b[4] > '9' || b[5] < '0' || b[5] > '9' {
		return nil, fmt.Errorf("%w: bcrypt cost is not two digits", ErrMalformed)
	}
	cost := int(b[4]-'0')*10 + int(b[5]-'0')
	if cost < bcrypt.MinCost {
		return nil, fmt.Errorf("%w: bcrypt cost below %d", ErrMalformed, bcrypt.MinCost)
	}
	if cost > maxBcryptCost {
		return nil, fmt.Errorf("%w: bcrypt cost %d above %d", ErrParams, cost, maxBcryptCost)
	}
	for i := 7; i < len(b); i++ {
		c := b[i]
		if !(c == '.' || c == '/' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9') {
			return nil, fmt.Errorf("%w: bcrypt salt and hash are not bcrypt base64", ErrMalformed)
		}
	}
	return &bcryptHash{hash: []byte(b)}, nil
}

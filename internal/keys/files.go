package keys

import (
	"bytes"
	"cmp"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// maxKeyFileBytes bounds the size of a key file.
const maxKeyFileBytes = 64 << 10

// fileSet tracks the key files of a directory.
type fileSet struct {
	dir string
	// seen is the listing the loaded keys were read from.
	seen []fileStat
	// firstSeen is when this process first loaded each kid: a key is
	// published from then on, and may sign one publish lead later.
	firstSeen map[string]time.Time
}

// fileStat is what a poll compares: a change to any of it rereads the
// directory.
type fileStat struct {
	name  string
	mtime time.Time
	size  int64
}

func newFileSet(dir string) *fileSet {
	return &fileSet{dir: dir, firstSeen: map[string]time.Time{}}
}

// list returns the key files of the directory, by name. Symbolic links are
// followed (as in a Kubernetes secret volume); hidden files and
// directories are skipped.
func (fs *fileSet) list() ([]fileStat, error) {
	des, err := os.ReadDir(fs.dir)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeyDir, err)
	}
	var out []fileStat
	for _, de := range des {
		name := de.Name()
		if strings.HasPrefix(name, ".") || (filepath.Ext(name) != ".pem" && filepath.Ext(name) != ".key") {
			continue
		}
		fi, err := os.Stat(filepath.Join(fs.dir, name))
		if err != nil {
			return nil, fmt.Errorf("%w: key file %s: %w", ErrKeyDir, name, err)
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		out = append(out, fileStat{name: name, mtime: fi.ModTime(), size: fi.Size()})
	}
	return out, nil
}

// reloadFiles rereads the directory: always when force, else only when its
// listing changed. Any file that does not load fails the whole reload, so
// the loaded keys stay as they were.
func (k *Keys) reloadFiles(force bool) error {
	fs := k.files
	listing, err := fs.list()
	if err != nil {
		return err
	}
	if !force && slices.EqualFunc(listing, fs.seen, func(a, b fileStat) bool {
		return a.name == b.name && a.mtime.Equal(b.mtime) && a.size == b.size
	}) {
		return nil
	}
	if len(listing) == 0 {
		return fmt.Errorf("%w: %s holds no key file: add a *.pem private key (or a *.key file with the base64 of an HS256 secret)", ErrKeyDir, fs.dir)
	}
	type loadedFile struct {
		fileStat
		s *signer
	}
	var files []loadedFile
	byKid := map[string]bool{}
	for _, f := range listing {
		s, err := k.loadFile(filepath.Join(fs.dir, f.name))
		if err != nil {
			return fmt.Errorf("%w: key file %s: %w", ErrKeyDir, f.name, err)
		}
		files = append(files, loadedFile{f, s})
	}
	// Rotation order: oldest file first; of two files holding one key,
	// the older counts.
	slices.SortFunc(files, func(a, b loadedFile) int {
		return cmp.Or(a.mtime.Compare(b.mtime), strings.Compare(a.name, b.name))
	})
	now := k.clock()
	firstSeen := make(map[string]time.Time, len(files))
	var entries []*entry
	for _, f := range files {
		if byKid[f.s.kid] {
			continue
		}
		byKid[f.s.kid] = true
		seen, ok := fs.firstSeen[f.s.kid]
		if !ok {
			seen = now
		}
		firstSeen[f.s.kid] = seen
		entries = append(entries, &entry{signer: *f.s, createdAt: f.mtime, notBefore: seen.Add(k.PublishLead()), file: f.name})
	}
	// When no key has been published for the lead, the oldest signs at
	// once: there is nothing else to sign with.
	if !slices.ContainsFunc(entries, func(e *entry) bool { return !e.notBefore.After(now) }) {
		entries[0].notBefore = firstSeen[entries[0].kid]
	}
	st, err := newState(entries)
	if err != nil {
		return err
	}
	fs.seen, fs.firstSeen = listing, firstSeen
	k.mu.Lock()
	k.state = st
	k.mu.Unlock()
	return nil
}

// loadFile reads one key file: a *.pem private key, or a *.key file with
// the base64 of an HS256 secret.
func (k *Keys) loadFile(path string) (*signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(data) > maxKeyFileBytes {
		return nil, fmt.Errorf("larger than %d bytes", maxKeyFileBytes)
	}
	if filepath.Ext(path) == ".key" {
		return parseSecretFile(data)
	}
	return parsePEM(data, k.cfg.Alg == "PS256")
}

// parseSecretFile reads the base64 (standard or URL alphabet, with or
// without padding) of an HS256 secret of at least 32 bytes.
func parseSecretFile(data []byte) (*signer, error) {
	text := string(bytes.TrimSpace(data))
	var secret []byte
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(text); err == nil {
			secret = b
			break
		}
	}
	switch {
	case secret == nil:
		return nil, errors.New("not base64: a *.key file holds the base64 of an HS256 secret, e.g. from openssl rand -base64 32")
	case len(secret) < minHMACKeyLen:
		return nil, fmt.Errorf("the HS256 secret is %d bytes; use at least %d random bytes (openssl rand -base64 32)", len(secret), minHMACKeyLen)
	}
	return newSigner(jwt.SigningMethodHS256, secret)
}

// parsePEM reads the one private key of a PEM file: PKCS #8 ("PRIVATE
// KEY"), SEC 1 ("EC PRIVATE KEY", P-256) or PKCS #1 ("RSA PRIVATE KEY").
// Other blocks ("EC PARAMETERS", certificates) are skipped. RSA keys sign
// with PS256 when pss, else RS256.
func parsePEM(data []byte, pss bool) (*signer, error) {
	var priv any
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		var (
			p   any
			err error
		)
		switch b.Type {
		case "PRIVATE KEY":
			p, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			p, err = x509.ParseECPrivateKey(b.Bytes)
		case "RSA PRIVATE KEY":
			p, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return nil, errors.New("the private key is encrypted; store it unencrypted (openssl pkcs8 -topk8 -nocrypt) and protect the file instead")
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s block: %w", b.Type, err)
		}
		if priv != nil {
			return nil, errors.New("holds more than one private key; keep one key per file")
		}
		priv = p
	}
	if priv == nil {
		return nil, errors.New(`no PEM private key ("PRIVATE KEY", "EC PRIVATE KEY" or "RSA PRIVATE KEY")`)
	}
	var method jwt.SigningMethod
	switch p := priv.(type) {
	case *ecdsa.PrivateKey:
		if p.Curve != elliptic.P256() {
			return nil, fmt.Errorf("an EC key on %s; ES256 needs P-256 (openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256)", p.Curve.Params().Name)
		}
		method = jwt.SigningMethodES256
	case ed25519.PrivateKey:
		method = jwt.SigningMethodEdDSA
	case *rsa.PrivateKey:
		if p.N.BitLen() < 2048 {
			return nil, fmt.Errorf("an RSA key of %d bits; use at least 2048", p.N.BitLen())
		}
		method = jwt.SigningMethodRS256
		if pss {
			method = jwt.SigningMethodPS256
		}
	default:
		return nil, fmt.Errorf("unsupported private key type %T; use EC P-256, Ed25519 or RSA", priv)
	}
	return newSigner(method, priv.(crypto.Signer))
}

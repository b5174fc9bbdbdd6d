// Package keys owns the issuer's signing keys: it generates them (or loads
// them from PEM files), keeps their private parts encrypted (AES-256-GCM) in
// the store, signs access tokens (RFC 9068) and refresh tokens, renders the
// public keys as a JWK Set (RFC 7517) with a precomputed ETag, and rotates
// them without a resource API ever rejecting a valid token.
//
// Access tokens are signed with the current key: ES256, EdDSA, RS256 or
// PS256, whose public half every resource API can fetch, or HS256, a shared
// secret that is never published. Refresh tokens are signed with HS256 under
// a key derived from the master secret that is never published: only the
// issuer verifies them, no JWKS-based verifier can ever accept one, and
// signing one costs microseconds.
//
// # Key states and rotation
//
// Every key has a NotBefore: the instant it may start signing. At any
// instant the current key, the one that signs, is the newest key whose
// NotBefore has passed; newer keys are next, older keys are retired. Every
// asymmetric key, whatever its state, is in the JWK Set.
//
// Scheduled rotation (Config.RotationPeriod) adds the next key to the store
// one publish lead (two JWK Set max-ages) before it starts signing, so that
// every resource API's cached key set holds it before the first token it
// signs. A retired key stays published until every token it signed has
// expired (its successor's NotBefore plus the access-token lifetime plus
// RetentionMargin), and is then deleted. Rotate is the emergency rotation:
// its key signs at once. Revoke removes a key at once.
//
// With Config.Dir the keys are the files of a directory instead (see
// Config.Dir for the rules); nothing is generated or stored.
package keys

import (
	"context"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/issuer-oauth/issuer/internal/store"
)

// Token types written into the JWT "typ" header.
const (
	TypeAccess  = "at+jwt" // RFC 9068
	TypeRefresh = "rt+jwt" // ours; never accepted as an access token
)

// MaxTokenLen bounds the size of a token this package will parse (and
// sign): 8 KiB, as the verify package's DefaultMaxTokenSize, so that what
// the issuer signs, it and every resource API using verify also parse.
const MaxTokenLen = 8192

// RetentionMargin is how long, beyond the access-token lifetime, a retired
// key stays published after its successor started signing: it covers clock
// skew between instances and an instance that learns of the new key late.
const RetentionMargin = time.Minute

// minHMACKeyLen is the shortest HS256 secret accepted (RFC 7518 §3.2: at
// least the hash size).
const minHMACKeyLen = 32

// Key states in KeyInfo.State.
const (
	StateNext    = "next"
	StateCurrent = "current"
	StateRetired = "retired"
)

// Errors of the key operations. The admin API maps them to status codes.
var (
	// ErrInvalidToken is returned by ParseRefresh and ParseAccess for any
	// token that is not a valid, unexpired token of this issuer.
	ErrInvalidToken = errors.New("keys: invalid token")
	// ErrFileKeys means the keys come from files (Config.Dir) and cannot
	// be changed through the issuer.
	ErrFileKeys = errors.New("keys: the signing keys are the files of the key directory: add a key file to rotate, remove one to revoke, then reload or wait for the next poll")
	// ErrUnknownKey means no key has the kid.
	ErrUnknownKey = errors.New("keys: no signing key with this kid")
	// ErrNotSymmetric means the key has no shared secret: its public key
	// is in the JWK Set.
	ErrNotSymmetric = errors.New("keys: the key is asymmetric; its public key is in the JWK Set and it has no shared secret")
	// ErrNextPending means a next key is already waiting to sign.
	ErrNextPending = errors.New("keys: a next key is already waiting to start signing; revoke it first to schedule another")
	// ErrTooSoon means a scheduled key would start signing before it has
	// been published for the publish lead.
	ErrTooSoon = errors.New("keys: a scheduled key must start signing at least the publish lead (2 × jwks_max_age) from now")
	// ErrTooLong means a token would be longer than MaxTokenLen. It is not
	// issued: introspection and the refresh grant would refuse it.
	ErrTooLong = errors.New("keys: token longer than this issuer accepts")
)

// Errors about the values of a Config, for the caller to name the setting
// they came from. New returns them; Reload and Maintain may return
// ErrKeyDir and ErrWrongEncryptionKey too.
var (
	// ErrUnsupportedAlg means Config.Alg is not ES256, EdDSA, RS256, PS256
	// or HS256.
	ErrUnsupportedAlg = errors.New("keys: unsupported signing algorithm")
	// ErrRSAKeyBits means Config.RSAKeyBits is not 2048, 3072 or 4096.
	ErrRSAKeyBits = errors.New("keys: unsupported RSA key size")
	// ErrKeyDir means the files of Config.Dir do not load: the directory
	// cannot be read, holds no key file, or holds a file that is not a
	// usable key (the error names it and says why).
	ErrKeyDir = errors.New("keys: bad key directory")
	// ErrWrongEncryptionKey means Config.EncryptionKey does not decrypt a
	// key in the store: the stored keys were encrypted under another one.
	ErrWrongEncryptionKey = errors.New("keys: the encryption key does not decrypt a stored signing key")
)

// Store is the part of the store this package needs.
type Store interface {
	InitKeys(ctx context.Context, k store.Key) ([]store.Key, error)
	ListKeys(ctx context.Context) ([]store.Key, error)
	AddKey(ctx context.Context, k store.Key) error
	AddNextKey(ctx context.Context, k store.Key, now time.Time) ([]store.Key, error)
	DeleteKey(ctx context.Context, id string) error
}

// Config configures Keys.
type Config struct {
	// Issuer is the iss claim of every token and the aud of refresh tokens.
	Issuer string
	// Alg is the access-token signing algorithm of new keys: ES256, EdDSA,
	// RS256, PS256 or HS256. With Dir it only decides whether RSA key
	// files sign with RS256 or PS256.
	Alg string
	// RSAKeyBits is the size of new RSA keys: 2048 (when 0), 3072 or 4096.
	RSAKeyBits int
	// EncryptionKey (32 bytes) encrypts private keys at rest.
	EncryptionKey []byte
	// RefreshKey (32 bytes) signs refresh tokens with HS256.
	RefreshKey []byte
	// JWKSMaxAge is the Cache-Control max-age of the JWK Set (5 minutes
	// when 0). Twice it is the publish lead: how long a key is published
	// before it starts signing.
	JWKSMaxAge time.Duration
	// AccessTTL is the lifetime of access tokens (5 minutes when 0): a
	// retired key stays published this long (plus RetentionMargin) after
	// its successor started signing.
	AccessTTL time.Duration
	// RotationPeriod is how long each generated key signs before the next
	// one takes over; 0 turns scheduled rotation off. HS256 keys are never
	// rotated on schedule: resource APIs would need each new secret before
	// it signs (see Schedule).
	RotationPeriod time.Duration
	// Dir, when not empty, is a directory whose files are the signing
	// keys: every *.pem file (a PKCS #8 "PRIVATE KEY", a SEC 1 "EC PRIVATE
	// KEY" on P-256 or a PKCS #1 "RSA PRIVATE KEY" of at least 2048 bits)
	// and every *.key file (the base64 of an HS256 secret of at least 32
	// bytes). Nothing is generated or stored; Rotate, Schedule and Revoke
	// fail with ErrFileKeys. The signer is the newest file (by
	// modification time) published for at least the publish lead, or the
	// oldest file when none has been.
	Dir string
	// Now returns the current time; time.Now when nil.
	Now func() time.Time
}

// KeyInfo describes a signing key without its private part.
type KeyInfo struct {
	ID    string `json:"kid"`
	Alg   string `json:"alg"`
	State string `json:"state"` // next, current or retired
	// CreatedAt is when the key was generated (for a file: its
	// modification time).
	CreatedAt time.Time `json:"created_at"`
	// NotBefore is when the key starts (or started) signing.
	NotBefore time.Time `json:"not_before"`
	// RetiresAt is when the key stops signing: its successor's NotBefore,
	// or for the current key without a successor the scheduled end of its
	// rotation period. Zero when unknown.
	RetiresAt time.Time `json:"retires_at,omitzero"`
	// RemovedAt is when the key leaves the JWK Set and the store, once
	// every token it signed has expired. Zero when unknown (no successor
	// yet, or a key file, which stays until the file is removed).
	RemovedAt time.Time `json:"removed_at,omitzero"`
	// File is the key's file name, for keys loaded from Config.Dir.
	File string `json:"file,omitempty"`
}

// Secret is an HS256 key as an RFC 7517 "oct" JSON Web Key, for resource
// APIs that verify HS256 access tokens.
type Secret struct {
	Kty string `json:"kty"` // "oct"
	Kid string `json:"kid"`
	Alg string `json:"alg"` // "HS256"
	K   string `json:"k"`   // the secret, base64url without padding
}

// Keys signs tokens and publishes the verification keys. It is safe for
// concurrent use.
type Keys struct {
	st      Store
	cfg     Config
	aead    cipher.AEAD
	refresh *jws // HS256 under Config.RefreshKey, typ rt+jwt
	now     func() time.Time
	// refreshParser and accessParser are built once: a jwt.Parser is safe
	// for concurrent use (ParseWithClaims only reads it; its one write, a
	// missing validator filled in, never happens to a parser made by
	// jwt.NewParser; checked in jwt/v5 v5.3.1). Their time function is
	// k.now, so an injected clock keeps working.
	refreshParser *jwt.Parser
	accessParser  *jwt.Parser

	// opMu serializes the operations that read the store (or the
	// directory) and replace the state, so that a slow one cannot put
	// back an older key set.
	opMu  sync.Mutex
	files *fileSet // with Config.Dir

	mu    sync.RWMutex
	state *state
	// floor is a lower bound on the clock: a key added by Rotate in the
	// millisecond of an older one starts a millisecond later, and this
	// instance treats that instant as reached.
	floor time.Time
}

// state is one loaded key set.
type state struct {
	entries []*entry // in rotation order: oldest first
	byKid   map[string]*entry
	jwks    []byte
	etag    string
}

// entry is a loaded key.
type entry struct {
	signer
	createdAt time.Time
	notBefore time.Time
	file      string
}

// signer is a key that signs access tokens. For HS256, priv and pub are
// both the secret ([]byte); otherwise priv is a crypto.Signer and pub its
// public key.
type signer struct {
	kid    string
	method jwt.SigningMethod
	priv   any
	pub    any
	access *jws // signs access tokens: the key's header, typ at+jwt
}

func (s *signer) symmetric() bool { return s.method == jwt.SigningMethodHS256 }

// New loads the signing keys: from Config.Dir when set, else from the
// store, generating the first one when the store has none. When the current
// stored key's algorithm is not cfg.Alg, a key of cfg.Alg is added and signs
// from now on.
func New(ctx context.Context, st Store, cfg Config) (*Keys, error) {
	if _, err := methodFor(cfg.Alg); err != nil {
		return nil, err
	}
	switch cfg.RSAKeyBits {
	case 0:
		cfg.RSAKeyBits = 2048
	case 2048, 3072, 4096:
	default:
		return nil, fmt.Errorf("%w %d; use 2048, 3072 or 4096", ErrRSAKeyBits, cfg.RSAKeyBits)
	}
	if len(cfg.EncryptionKey) != 32 || len(cfg.RefreshKey) != 32 {
		return nil, errors.New("keys: encryption and refresh keys must be 32 bytes")
	}
	block, err := aes.NewCipher(cfg.EncryptionKey)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.JWKSMaxAge <= 0 {
		cfg.JWKSMaxAge = 5 * time.Minute
	}
	if cfg.AccessTTL <= 0 {
		cfg.AccessTTL = 5 * time.Minute
	}
	cfg.RotationPeriod = max(cfg.RotationPeriod, 0)
	cfg.RefreshKey = slices.Clone(cfg.RefreshKey) // signs and verifies; the caller's slice may change
	k := &Keys{st: st, cfg: cfg, aead: aead, now: cfg.Now}
	k.refresh = newJWS(jwt.SigningMethodHS256, cfg.RefreshKey, "", TypeRefresh)
	k.refreshParser, k.accessParser = k.newRefreshParser(), k.newAccessParser()

	if cfg.Dir != "" {
		k.files = newFileSet(cfg.Dir)
		if err := k.reloadFiles(true); err != nil {
			return nil, err
		}
		return k, nil
	}

	stored, err := st.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("keys: load signing keys: %w", err)
	}
	if len(stored) == 0 {
		first, err := k.generate(cfg.Alg, k.clock())
		if err != nil {
			return nil, err
		}
		if stored, err = st.InitKeys(ctx, first); err != nil {
			return nil, fmt.Errorf("keys: store the first signing key: %w", err)
		}
	}
	if err := k.load(stored); err != nil {
		return nil, err
	}
	if k.current().method.Alg() != cfg.Alg {
		// A next key of the old algorithm would take over again at its
		// NotBefore: it has signed nothing yet, so it can go.
		for _, in := range k.List() {
			if in.State == StateNext && in.Alg != cfg.Alg {
				if err := st.DeleteKey(ctx, in.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
					return nil, fmt.Errorf("keys: remove next key %s of the previous algorithm: %w", in.ID, err)
				}
			}
		}
		if _, err := k.Rotate(ctx); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// PublishLead is how long a key is in the JWK Set before it starts
// signing: two JWK Set max-ages, so that a resource API that fetched the
// set just before the key appeared has refetched it at least once, with
// room to spare, before the first token the key signs.
func (k *Keys) PublishLead() time.Duration { return 2 * k.cfg.JWKSMaxAge }

// List describes every key, oldest first, with its state now.
func (k *Keys) List() []KeyInfo {
	st := k.loaded()
	now := k.clock()
	cur := st.currentAt(now)
	infos := make([]KeyInfo, len(st.entries))
	for i, e := range st.entries {
		in := KeyInfo{ID: e.kid, Alg: e.method.Alg(), CreatedAt: e.createdAt, NotBefore: e.notBefore, File: e.file}
		switch {
		case e == cur:
			in.State = StateCurrent
		case slices.Index(st.entries, cur) < i:
			in.State = StateNext
		default:
			in.State = StateRetired
		}
		// A key stops signing when the first newer key starts.
		for _, later := range st.entries[i+1:] {
			if in.RetiresAt.IsZero() || later.notBefore.Before(in.RetiresAt) {
				in.RetiresAt = later.notBefore
			}
		}
		if in.RetiresAt.IsZero() && e == cur && k.files == nil && k.cfg.RotationPeriod > 0 && !e.symmetric() {
			in.RetiresAt = e.notBefore.Add(k.cfg.RotationPeriod) // as scheduled
		} else if !in.RetiresAt.IsZero() && k.files == nil {
			in.RemovedAt = in.RetiresAt.Add(k.cfg.AccessTTL + RetentionMargin)
		}
		infos[i] = in
	}
	return infos
}

// JWKS returns the JWK Set document, its ETag and its Cache-Control max-age.
// It holds every asymmetric key, whatever its state, and never an HS256
// key: with HS256 keys only, its "keys" array is empty.
func (k *Keys) JWKS() (body []byte, etag string, maxAge time.Duration) {
	st := k.loaded()
	return st.jwks, st.etag, k.cfg.JWKSMaxAge
}

// Alg returns the algorithm of the current signing key.
func (k *Keys) Alg() string { return k.current().method.Alg() }

// Secret returns the HS256 key kid as an "oct" JSON Web Key, for the
// resource APIs that verify HS256 tokens: ErrUnknownKey when there is no
// such key, ErrNotSymmetric when it is asymmetric.
func (k *Keys) Secret(kid string) (Secret, error) {
	e, ok := k.loaded().byKid[kid]
	switch {
	case !ok:
		return Secret{}, ErrUnknownKey
	case !e.symmetric():
		return Secret{}, ErrNotSymmetric
	}
	return Secret{Kty: "oct", Kid: e.kid, Alg: e.method.Alg(), K: b64.EncodeToString(e.priv.([]byte))}, nil
}

func (k *Keys) loaded() *state {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.state
}

// clock is the current time, never before the floor.
func (k *Keys) clock() time.Time {
	now := k.now()
	k.mu.RLock()
	defer k.mu.RUnlock()
	if now.Before(k.floor) {
		return k.floor
	}
	return now
}

// current is the key that signs now.
func (k *Keys) current() *entry { return k.loaded().currentAt(k.clock()) }

// currentAt is the newest key whose NotBefore is not after now, or the
// oldest key when none is.
func (s *state) currentAt(now time.Time) *entry {
	for _, e := range slices.Backward(s.entries) {
		if !e.notBefore.After(now) {
			return e
		}
	}
	return s.entries[0]
}

// load decrypts the stored keys (ordered by NotBefore) and swaps in a new
// state.
func (k *Keys) load(stored []store.Key) error {
	if len(stored) == 0 {
		return errors.New("keys: the store holds no signing key")
	}
	entries := make([]*entry, len(stored))
	for i, sk := range stored {
		s, err := k.decrypt(sk)
		if err != nil {
			return err
		}
		entries[i] = &entry{signer: *s, createdAt: sk.CreatedAt, notBefore: sk.NotBefore}
	}
	st, err := newState(entries)
	if err != nil {
		return err
	}
	k.mu.Lock()
	k.state = st
	k.mu.Unlock()
	return nil
}

// newState builds the state of entries, which are in rotation order.
func newState(entries []*entry) (*state, error) {
	jwks := jwkSet{Keys: []jwk{}}
	byKid := make(map[string]*entry, len(entries))
	for _, e := range entries {
		byKid[e.kid] = e
		if e.symmetric() {
			continue // never published
		}
		j, err := publicJWK(&e.signer)
		if err != nil {
			return nil, err
		}
		jwks.Keys = append(jwks.Keys, j)
	}
	body, err := json.Marshal(jwks)
	if err != nil {
		return nil, fmt.Errorf("keys: encode JWKS: %w", err)
	}
	sum := sha256.Sum256(body)
	etag := `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`
	return &state{entries: entries, byKid: byKid, jwks: body, etag: etag}, nil
}

func methodFor(alg string) (jwt.SigningMethod, error) {
	switch alg {
	case "ES256":
		return jwt.SigningMethodES256, nil
	case "EdDSA":
		return jwt.SigningMethodEdDSA, nil
	case "RS256":
		return jwt.SigningMethodRS256, nil
	case "PS256":
		return jwt.SigningMethodPS256, nil
	case "HS256":
		return jwt.SigningMethodHS256, nil
	}
	return nil, fmt.Errorf("%w %q; use ES256, EdDSA, RS256, PS256 or HS256", ErrUnsupportedAlg, alg)
}

// generate makes a new key of alg that starts signing at notBefore,
// encrypted for the store.
func (k *Keys) generate(alg string, notBefore time.Time) (store.Key, error) {
	method, err := methodFor(alg)
	if err != nil {
		return store.Key{}, err
	}
	var (
		priv  any
		plain []byte // what is encrypted: PKCS #8 DER, or the HMAC secret
	)
	switch alg {
	case "ES256":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "EdDSA":
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case "RS256", "PS256":
		priv, err = rsa.GenerateKey(rand.Reader, k.cfg.RSAKeyBits)
	case "HS256":
		secret := make([]byte, minHMACKeyLen)
		_, err = rand.Read(secret)
		priv, plain = secret, secret
	}
	if err != nil {
		return store.Key{}, fmt.Errorf("keys: generate %s key: %w", alg, err)
	}
	s, err := newSigner(method, priv)
	if err != nil {
		return store.Key{}, err
	}
	if plain == nil {
		if plain, err = x509.MarshalPKCS8PrivateKey(priv); err != nil {
			return store.Key{}, fmt.Errorf("keys: encode private key: %w", err)
		}
	}
	nonce := make([]byte, k.aead.NonceSize())
	_, _ = rand.Read(nonce)
	sealed := k.aead.Seal(nonce, nonce, plain, []byte(s.kid+"."+alg))
	return store.Key{
		ID:        s.kid,
		Alg:       alg,
		Private:   sealed,
		CreatedAt: k.clock().UTC().Truncate(time.Millisecond),
		NotBefore: notBefore.UTC().Truncate(time.Millisecond),
	}, nil
}

// newSigner returns the signer of priv (a crypto.Signer, or the []byte
// secret of HS256) with its RFC 7638 thumbprint as kid.
func newSigner(method jwt.SigningMethod, priv any) (*signer, error) {
	s := &signer{method: method, priv: priv}
	switch p := priv.(type) {
	case []byte:
		if method != jwt.SigningMethodHS256 || len(p) < minHMACKeyLen {
			return nil, fmt.Errorf("keys: an HMAC secret needs HS256 and at least %d bytes", minHMACKeyLen)
		}
		s.pub = p
	case crypto.Signer:
		if method == jwt.SigningMethodHS256 {
			return nil, errors.New("keys: HS256 needs a shared secret, not an asymmetric key")
		}
		s.pub = p.Public()
	default:
		return nil, fmt.Errorf("keys: unsupported private key %T", priv)
	}
	kid, err := thumbprint(s)
	if err != nil {
		return nil, err
	}
	s.kid = kid
	s.access = newJWS(method, priv, kid, TypeAccess)
	return s, nil
}

func (k *Keys) decrypt(sk store.Key) (*signer, error) {
	method, err := methodFor(sk.Alg)
	if err != nil {
		// Not ErrUnsupportedAlg: Config.Alg is not at fault.
		return nil, fmt.Errorf("keys: stored key %s has algorithm %q, which this version does not support", sk.ID, sk.Alg)
	}
	n := k.aead.NonceSize()
	if len(sk.Private) < n {
		return nil, fmt.Errorf("keys: stored key %s is truncated", sk.ID)
	}
	plain, err := k.aead.Open(nil, sk.Private[:n], sk.Private[n:], []byte(sk.ID+"."+sk.Alg))
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", ErrWrongEncryptionKey, sk.ID)
	}
	var priv any = plain
	if method != jwt.SigningMethodHS256 {
		if priv, err = x509.ParsePKCS8PrivateKey(plain); err != nil {
			return nil, fmt.Errorf("keys: stored key %s: %w", sk.ID, err)
		}
	}
	s, err := newSigner(method, priv)
	if err != nil {
		return nil, fmt.Errorf("keys: stored key %s: %w", sk.ID, err)
	}
	if err := checkKeyFits(s); err != nil {
		return nil, fmt.Errorf("keys: stored key %s: %w", sk.ID, err)
	}
	if s.kid != sk.ID {
		return nil, fmt.Errorf("keys: stored key %s holds the key %s", sk.ID, s.kid)
	}
	return s, nil
}

// checkKeyFits reports whether the key of s suits its algorithm.
func checkKeyFits(s *signer) error {
	ok := false
	switch pub := s.pub.(type) {
	case *ecdsa.PublicKey:
		ok = s.method == jwt.SigningMethodES256 && pub.Curve == elliptic.P256()
	case ed25519.PublicKey:
		ok = s.method == jwt.SigningMethodEdDSA
	case *rsa.PublicKey:
		ok = (s.method == jwt.SigningMethodRS256 || s.method == jwt.SigningMethodPS256) && pub.N.BitLen() >= 2048
	case []byte:
		ok = s.method == jwt.SigningMethodHS256
	}
	if !ok {
		return fmt.Errorf("a %T does not fit %s", s.pub, s.method.Alg())
	}
	return nil
}

// jwk is a public JSON Web Key (RFC 7517, 7518, 8037).
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
}

type jwkSet struct {
	Keys []jwk `json:"keys"`
}

var b64 = base64.RawURLEncoding

// publicJWK renders the public half of s; it never includes private members
// and refuses symmetric keys.
func publicJWK(s *signer) (jwk, error) {
	j := jwk{Kid: s.kid, Use: "sig", Alg: s.method.Alg()}
	switch pub := s.pub.(type) {
	case *ecdsa.PublicKey:
		raw, err := pub.Bytes() // 0x04 || X || Y
		if err != nil {
			return jwk{}, fmt.Errorf("keys: %w", err)
		}
		size := (len(raw) - 1) / 2
		j.Kty, j.Crv = "EC", "P-256"
		j.X, j.Y = b64.EncodeToString(raw[1:1+size]), b64.EncodeToString(raw[1+size:])
	case ed25519.PublicKey:
		j.Kty, j.Crv, j.X = "OKP", "Ed25519", b64.EncodeToString(pub)
	case *rsa.PublicKey:
		j.Kty = "RSA"
		j.N = b64.EncodeToString(pub.N.Bytes())
		j.E = b64.EncodeToString(big.NewInt(int64(pub.E)).Bytes())
	default:
		return jwk{}, fmt.Errorf("keys: no public JWK for %T", pub)
	}
	return j, nil
}

// thumbprint is the RFC 7638 JWK thumbprint of s's key, used as kid. For
// an HS256 secret it is the thumbprint of the "oct" JWK: a SHA-256 hash of
// the secret, which does not reveal it.
func thumbprint(s *signer) (string, error) {
	var members string
	if secret, ok := s.pub.([]byte); ok {
		members = fmt.Sprintf(`{"k":%q,"kty":"oct"}`, b64.EncodeToString(secret))
	} else {
		j, err := publicJWK(s)
		if err != nil {
			return "", err
		}
		switch j.Kty { // required members in lexicographic order, no whitespace
		case "EC":
			members = fmt.Sprintf(`{"crv":%q,"kty":"EC","x":%q,"y":%q}`, j.Crv, j.X, j.Y)
		case "OKP":
			members = fmt.Sprintf(`{"crv":%q,"kty":"OKP","x":%q}`, j.Crv, j.X)
		case "RSA":
			members = fmt.Sprintf(`{"e":%q,"kty":"RSA","n":%q}`, j.E, j.N)
		}
	}
	sum := sha256.Sum256([]byte(members))
	return b64.EncodeToString(sum[:]), nil
}

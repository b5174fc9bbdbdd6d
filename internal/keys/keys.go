// Package keys owns the issuer's signing keys: it generates them, keeps their
// private parts encrypted (AES-256-GCM) in the store, signs access tokens
// (RFC 9068) and refresh tokens, and renders the public keys as a JWK Set
// (RFC 7517) with a precomputed ETag.
//
// Access tokens are signed with the current asymmetric key, whose public half
// every resource API can fetch. Refresh tokens are signed with HS256 under a
// key derived from the master secret that is never published: only the issuer
// verifies them, no JWKS-based verifier can ever accept one, and signing one
// costs microseconds.
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
	"log/slog"
	"math/big"
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

// MaxTokenLen bounds the size of a token this package will parse.
const MaxTokenLen = 4096

// ErrInvalidToken is returned by ParseRefresh for any token that is not a
// valid, unexpired refresh token of this issuer.
var ErrInvalidToken = errors.New("keys: invalid token")

// Store is the part of the store this package needs.
type Store interface {
	InitKeys(ctx context.Context, k store.Key) ([]store.Key, error)
	ListKeys(ctx context.Context) ([]store.Key, error)
	AddKey(ctx context.Context, k store.Key) error
}

// Config configures Keys.
type Config struct {
	// Issuer is the iss claim of every token and the aud of refresh tokens.
	Issuer string
	// Alg is the access-token signing algorithm: ES256, EdDSA, RS256 or PS256.
	Alg string
	// EncryptionKey (32 bytes) encrypts private keys at rest.
	EncryptionKey []byte
	// RefreshKey (32 bytes) signs refresh tokens with HS256.
	RefreshKey []byte
	// JWKSMaxAge is the Cache-Control max-age of the JWK Set.
	JWKSMaxAge time.Duration
	// Now returns the current time; time.Now when nil.
	Now func() time.Time
}

// KeyInfo describes a signing key without its private part.
type KeyInfo struct {
	ID        string    `json:"kid"`
	Alg       string    `json:"alg"`
	State     string    `json:"state"` // next, current or retired
	CreatedAt time.Time `json:"created_at"`
	NotBefore time.Time `json:"not_before"`
}

// Keys signs tokens and publishes the verification keys. It is safe for
// concurrent use.
type Keys struct {
	st      Store
	cfg     Config
	aead    cipher.AEAD
	refresh jwt.SigningMethod
	now     func() time.Time

	mu    sync.RWMutex
	state *state
}

type state struct {
	current *signer
	byKid   map[string]*signer
	infos   []KeyInfo
	jwks    []byte
	etag    string
}

type signer struct {
	kid    string
	method jwt.SigningMethod
	key    crypto.Signer
}

// New loads the signing keys from the store, generating the first one when
// the store has none. When the newest key's algorithm is not cfg.Alg, a key of
// cfg.Alg is added and signs from now on.
func New(ctx context.Context, st Store, cfg Config) (*Keys, error) {
	if _, err := methodFor(cfg.Alg); err != nil {
		return nil, err
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
	k := &Keys{st: st, cfg: cfg, aead: aead, refresh: jwt.SigningMethodHS256, now: cfg.Now}

	stored, err := st.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("keys: load signing keys: %w", err)
	}
	if len(stored) == 0 {
		first, err := k.generate(cfg.Alg, k.now())
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
		if _, err := k.Rotate(ctx); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// Rotate adds a new key of the configured algorithm that signs at once
// (emergency rotation). Older keys stay published.
func (k *Keys) Rotate(ctx context.Context) (KeyInfo, error) {
	// The new key must be strictly the newest, or "current" would be
	// ambiguous between keys that start in the same millisecond.
	at := k.now()
	for _, in := range k.List() {
		if !in.NotBefore.Before(at) {
			at = in.NotBefore.Add(time.Millisecond)
		}
	}
	sk, err := k.generate(k.cfg.Alg, at)
	if err != nil {
		return KeyInfo{}, err
	}
	if err := k.st.AddKey(ctx, sk); err != nil {
		return KeyInfo{}, fmt.Errorf("keys: store new key: %w", err)
	}
	// When at was pushed past now (a key started in this millisecond), the
	// new key would otherwise stay "next" until some later Reload.
	stored, err := k.st.ListKeys(ctx)
	if err != nil {
		return KeyInfo{}, fmt.Errorf("keys: list signing keys: %w", err)
	}
	now := k.now()
	if now.Before(sk.NotBefore) {
		now = sk.NotBefore
	}
	if err := k.loadAt(stored, now); err != nil {
		return KeyInfo{}, err
	}
	for _, in := range k.List() {
		if in.ID == sk.ID {
			return in, nil
		}
	}
	return KeyInfo{}, fmt.Errorf("keys: new key %s not found after reload", sk.ID)
}

// Reload reads the keys from the store again (another instance may have
// rotated them).
func (k *Keys) Reload(ctx context.Context) error {
	stored, err := k.st.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("keys: list signing keys: %w", err)
	}
	return k.load(stored)
}

// List describes every key, oldest first.
func (k *Keys) List() []KeyInfo {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return append([]KeyInfo(nil), k.state.infos...)
}

// JWKS returns the JWK Set document, its ETag and its Cache-Control max-age.
func (k *Keys) JWKS() (body []byte, etag string, maxAge time.Duration) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.state.jwks, k.state.etag, k.cfg.JWKSMaxAge
}

// Alg returns the algorithm of the current signing key.
func (k *Keys) Alg() string { return k.current().method.Alg() }

func (k *Keys) current() *signer {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.state.current
}

// load decrypts the stored keys and swaps in a new state: the current signer
// is the newest key whose NotBefore has passed.
func (k *Keys) load(stored []store.Key) error { return k.loadAt(stored, k.now()) }

// loadAt is load as of now.
func (k *Keys) loadAt(stored []store.Key, now time.Time) error {
	var (
		cur   *signer
		curAt time.Time
		jwks  = jwkSet{Keys: []jwk{}}
		infos []KeyInfo
	)
	signers := make([]*signer, len(stored))
	for i, sk := range stored {
		s, err := k.decrypt(sk)
		if err != nil {
			return err
		}
		signers[i] = s
		j, err := publicJWK(s)
		if err != nil {
			return err
		}
		jwks.Keys = append(jwks.Keys, j)
		if !sk.NotBefore.After(now) && (cur == nil || !sk.NotBefore.Before(curAt)) {
			cur, curAt = s, sk.NotBefore
		}
	}
	if cur == nil {
		return errors.New("keys: the store holds no key that may sign yet")
	}
	for i, sk := range stored {
		st := "retired"
		switch {
		case signers[i] == cur:
			st = "current"
		case sk.NotBefore.After(now):
			st = "next"
		}
		infos = append(infos, KeyInfo{ID: sk.ID, Alg: sk.Alg, State: st, CreatedAt: sk.CreatedAt, NotBefore: sk.NotBefore})
	}
	body, err := json.Marshal(jwks)
	if err != nil {
		return fmt.Errorf("keys: encode JWKS: %w", err)
	}
	sum := sha256.Sum256(body)
	etag := `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`

	k.mu.Lock()
	byKid := make(map[string]*signer, len(signers))
	for _, s := range signers {
		byKid[s.kid] = s
	}
	k.state = &state{current: cur, byKid: byKid, infos: infos, jwks: body, etag: etag}
	k.mu.Unlock()
	return nil
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
		return nil, errors.New("ISSUER_SIGNING_ALG (signing_alg): HS256 access tokens are not supported yet; use ES256, EdDSA, RS256 or PS256")
	}
	return nil, fmt.Errorf("ISSUER_SIGNING_ALG (signing_alg): unknown algorithm %q; use ES256, EdDSA, RS256 or PS256", alg)
}

// generate makes a new key of alg, encrypted for the store.
func (k *Keys) generate(alg string, now time.Time) (store.Key, error) {
	var (
		priv crypto.Signer
		err  error
	)
	switch alg {
	case "ES256":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "EdDSA":
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case "RS256", "PS256":
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		_, err = methodFor(alg)
	}
	if err != nil {
		return store.Key{}, fmt.Errorf("keys: generate %s key: %w", alg, err)
	}
	method, _ := methodFor(alg)
	kid, err := thumbprint(&signer{method: method, key: priv})
	if err != nil {
		return store.Key{}, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return store.Key{}, fmt.Errorf("keys: encode private key: %w", err)
	}
	nonce := make([]byte, k.aead.NonceSize())
	_, _ = rand.Read(nonce)
	sealed := k.aead.Seal(nonce, nonce, der, []byte(kid+"."+alg))
	t := now.UTC().Truncate(time.Millisecond)
	return store.Key{ID: kid, Alg: alg, Private: sealed, CreatedAt: t, NotBefore: t}, nil
}

func (k *Keys) decrypt(sk store.Key) (*signer, error) {
	method, err := methodFor(sk.Alg)
	if err != nil {
		return nil, fmt.Errorf("keys: stored key %s: %w", sk.ID, err)
	}
	n := k.aead.NonceSize()
	if len(sk.Private) < n {
		return nil, fmt.Errorf("keys: stored key %s is truncated", sk.ID)
	}
	der, err := k.aead.Open(nil, sk.Private[:n], sk.Private[n:], []byte(sk.ID+"."+sk.Alg))
	if err != nil {
		return nil, fmt.Errorf("ISSUER_SECRET (secret) does not decrypt signing key %s in the store: set the secret the keys were created with", sk.ID)
	}
	priv, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("keys: stored key %s: %w", sk.ID, err)
	}
	s, ok := priv.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("keys: stored key %s is not a signing key", sk.ID)
	}
	return &signer{kid: sk.ID, method: method, key: s}, nil
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

// publicJWK renders the public half of s; it never includes private members.
func publicJWK(s *signer) (jwk, error) {
	j := jwk{Kid: s.kid, Use: "sig", Alg: s.method.Alg()}
	switch pub := s.key.Public().(type) {
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
		return jwk{}, fmt.Errorf("keys: unsupported public key %T", pub)
	}
	return j, nil
}

// thumbprint is the RFC 7638 JWK thumbprint of s's public key, used as kid.
func thumbprint(s *signer) (string, error) {
	j, err := publicJWK(s)
	if err != nil {
		return "", err
	}
	var members string
	switch j.Kty { // required members in lexicographic order, no whitespace
	case "EC":
		members = fmt.Sprintf(`{"crv":%q,"kty":"EC","x":%q,"y":%q}`, j.Crv, j.X, j.Y)
	case "OKP":
		members = fmt.Sprintf(`{"crv":%q,"kty":"OKP","x":%q}`, j.Crv, j.X)
	case "RSA":
		members = fmt.Sprintf(`{"e":%q,"kty":"RSA","n":%q}`, j.E, j.N)
	}
	sum := sha256.Sum256([]byte(members))
	return b64.EncodeToString(sum[:]), nil
}

// Watch reloads the keys every interval, and at once whenever changes fires
// (a store that tells of key changes made by other instances), until ctx
// ends. A failed reload keeps the keys it had and is logged.
func (k *Keys) Watch(ctx context.Context, interval time.Duration, changes <-chan struct{}, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-changes:
		}
		before := k.current().kid
		if err := k.Reload(ctx); err != nil {
			if ctx.Err() == nil {
				log.WarnContext(ctx, "reloading signing keys failed; keeping the loaded ones", "err", err)
			}
			continue
		}
		if cur := k.current().kid; cur != before {
			log.InfoContext(ctx, "signing key changed", "kid", cur)
		}
	}
}

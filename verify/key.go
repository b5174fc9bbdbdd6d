package verify

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"

	"github.com/golang-jwt/jwt/v5"
)

// MinRSABits is the smallest RSA modulus accepted as a verification key
// (RFC 7518 §3.3 requires 2048 bits).
const MinRSABits = 2048

// Key is a verification key: its kid, the one algorithm it verifies and
// the public key (or, for HS256, the shared secret). Build one with NewKey,
// ParseJWKS or NewHMACKey.
type Key struct {
	id     string
	alg    string
	pub    crypto.PublicKey
	secret []byte // HS256 only; then pub is nil
	method jwt.SigningMethod
}

// MinHMACKeyLen is the shortest HS256 secret NewHMACKey accepts (RFC 7518
// §3.2: at least the size of the hash).
const MinHMACKeyLen = 32

// NewHMACKey returns the HS256 key kid with the shared secret, for an
// issuer that signs access tokens with HS256 (its admin command `issuer
// keys secret KID` prints kid and secret as an "oct" JWK; k is the base64url
// of the secret). secret must be at least MinHMACKeyLen bytes.
//
// An HMAC key works only in a Verifier built with WithKeys: New refuses to
// combine one with WithJWKSURL, and a Verifier refuses HMAC keys that come
// from any other KeySet. So a key set fetched over the network can never
// supply HMAC material (ParseJWKS skips "oct" keys), and since each key
// verifies only its own algorithm, no public key is ever used as an HMAC
// secret.
func NewHMACKey(kid string, secret []byte) (*Key, error) {
	if len(secret) < MinHMACKeyLen {
		return nil, fmt.Errorf("verify: the HS256 secret is %d bytes; it must be at least %d", len(secret), MinHMACKeyLen)
	}
	return &Key{id: kid, alg: "HS256", secret: bytes.Clone(secret), method: jwt.SigningMethodHS256}, nil
}

// hmac reports whether k is an HS256 key.
func (k *Key) hmac() bool { return k.secret != nil }

// equal reports whether k and o are the same key: kid, algorithm and key
// material.
func (k *Key) equal(o *Key) bool {
	if k.id != o.id || k.alg != o.alg || k.hmac() != o.hmac() {
		return false
	}
	if k.hmac() {
		return bytes.Equal(k.secret, o.secret)
	}
	pub, ok := k.pub.(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(o.pub)
}

// verifyKey is what the signature check uses: the public key, or the
// secret of an HS256 key.
func (k *Key) verifyKey() any {
	if k.hmac() {
		return k.secret
	}
	return k.pub
}

// ID returns the key's kid.
func (k *Key) ID() string { return k.id }

// Alg returns the JWS algorithm the key verifies.
func (k *Key) Alg() string { return k.alg }

// Public returns the public key (*ecdsa.PublicKey, ed25519.PublicKey or
// *rsa.PublicKey); nil for an HS256 key, whose secret it never returns.
func (k *Key) Public() crypto.PublicKey { return k.pub }

// NewKey returns the key kid that verifies signatures of algorithm alg with
// pub. The algorithm must fit the key: ES256, ES384 and ES512 an ECDSA key
// on P-256, P-384 and P-521; EdDSA an Ed25519 key; RS256, RS384, RS512,
// PS256, PS384 and PS512 an RSA key of at least MinRSABits bits. Symmetric
// keys and "none" are refused.
func NewKey(kid, alg string, pub crypto.PublicKey) (*Key, error) {
	method, err := methodFor(alg, pub)
	if err != nil {
		return nil, err
	}
	return &Key{id: kid, alg: alg, pub: pub, method: method}, nil
}

// supportedAlg reports whether alg is an algorithm this package verifies.
func supportedAlg(alg string) bool {
	switch alg {
	case "ES256", "ES384", "ES512", "EdDSA", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		return true
	}
	return false
}

func methodFor(alg string, pub crypto.PublicKey) (jwt.SigningMethod, error) {
	var want elliptic.Curve
	switch alg {
	case "ES256":
		want = elliptic.P256()
	case "ES384":
		want = elliptic.P384()
	case "ES512":
		want = elliptic.P521()
	}
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if want == nil || k.Curve != want {
			return nil, fmt.Errorf("verify: algorithm %q does not fit an ECDSA key on %s", alg, k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
		if alg != "EdDSA" || len(k) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("verify: algorithm %q does not fit an Ed25519 key", alg)
		}
	case *rsa.PublicKey:
		switch alg {
		case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		default:
			return nil, fmt.Errorf("verify: algorithm %q does not fit an RSA key", alg)
		}
		if k.N == nil || k.N.BitLen() < MinRSABits {
			return nil, fmt.Errorf("verify: RSA key shorter than %d bits", MinRSABits)
		}
		if k.E < 3 || k.E%2 == 0 {
			return nil, errors.New("verify: RSA key with an invalid public exponent")
		}
	default:
		return nil, fmt.Errorf("verify: unsupported public key type %T (symmetric keys are never accepted)", pub)
	}
	m := jwt.GetSigningMethod(alg)
	if m == nil {
		return nil, fmt.Errorf("verify: unsupported algorithm %q", alg)
	}
	return m, nil
}

// jwk is the part of a JSON Web Key (RFC 7517, 7518, 8037) this package reads.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	N   string `json:"n"`
	E   string `json:"e"`
	D   string `json:"d"`
}

// ParseJWKS parses a JWK Set (RFC 7517 §5) into verification keys. Keys
// that cannot verify access tokens are skipped: symmetric ("oct") keys, keys
// whose use is not "sig", keys of unsupported types, curves or algorithms,
// RSA keys under MinRSABits, and later keys repeating a kid. A key's
// algorithm is its "alg" member; without one it follows from the key type
// (ES256, ES384 or ES512 for the curve, EdDSA for Ed25519, RS256 for RSA).
// ParseJWKS fails when the document is not a JWK Set or when no key is left.
func ParseJWKS(data []byte) ([]*Key, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("verify: JWK Set: %w", err)
	}
	if set.Keys == nil {
		return nil, errors.New(`verify: JWK Set: no "keys" member`)
	}
	var (
		keys    []*Key
		seen    = map[string]bool{}
		skipped []error
	)
	for i, raw := range set.Keys {
		var j jwk
		if err := json.Unmarshal(raw, &j); err != nil {
			skipped = append(skipped, fmt.Errorf("key %d: %w", i, err))
			continue
		}
		k, err := j.key()
		if err != nil {
			skipped = append(skipped, fmt.Errorf("key %d (kid %.64q): %w", i, j.Kid, err))
			continue
		}
		if seen[k.id] {
			skipped = append(skipped, fmt.Errorf("key %d: kid %.64q repeats an earlier key", i, j.Kid))
			continue
		}
		seen[k.id] = true
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("verify: JWK Set holds no usable verification key: %w", errors.Join(skipped...))
	}
	return keys, nil
}

var b64 = base64.RawURLEncoding.Strict()

func (j *jwk) key() (*Key, error) {
	if j.D != "" {
		return nil, errors.New("private key in a public key set")
	}
	if j.Use != "" && j.Use != "sig" {
		return nil, fmt.Errorf("use %.16q is not sig", j.Use)
	}
	var (
		pub crypto.PublicKey
		alg = j.Alg
	)
	switch j.Kty {
	case "EC":
		var curve elliptic.Curve
		var inferred string
		switch j.Crv {
		case "P-256":
			curve, inferred = elliptic.P256(), "ES256"
		case "P-384":
			curve, inferred = elliptic.P384(), "ES384"
		case "P-521":
			curve, inferred = elliptic.P521(), "ES512"
		default:
			return nil, fmt.Errorf("unsupported curve %.16q", j.Crv)
		}
		size := (curve.Params().BitSize + 7) / 8
		x, errX := b64.DecodeString(j.X)
		y, errY := b64.DecodeString(j.Y)
		if errX != nil || errY != nil || len(x) != size || len(y) != size {
			return nil, errors.New("bad EC coordinates")
		}
		point := append(append([]byte{4}, x...), y...)
		k, err := ecdsa.ParseUncompressedPublicKey(curve, point)
		if err != nil {
			return nil, fmt.Errorf("bad EC key: %w", err)
		}
		pub = k
		if alg == "" {
			alg = inferred
		}
	case "OKP":
		if j.Crv != "Ed25519" {
			return nil, fmt.Errorf("unsupported curve %.16q", j.Crv)
		}
		x, err := b64.DecodeString(j.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return nil, errors.New("bad Ed25519 key")
		}
		pub = ed25519.PublicKey(x)
		if alg == "" {
			alg = "EdDSA"
		}
	case "RSA":
		n, errN := b64.DecodeString(j.N)
		e, errE := b64.DecodeString(j.E)
		if errN != nil || errE != nil || len(n) == 0 || n[0] == 0 || len(e) == 0 || len(e) > 4 || e[0] == 0 {
			return nil, errors.New("bad RSA modulus or exponent")
		}
		var exp int64
		for _, b := range e {
			exp = exp<<8 | int64(b)
		}
		if exp > math.MaxInt32 {
			return nil, errors.New("RSA exponent too large")
		}
		pub = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(exp)}
		if alg == "" {
			alg = "RS256"
		}
	case "oct":
		return nil, errors.New("symmetric key")
	default:
		return nil, fmt.Errorf("unsupported key type %.16q", j.Kty)
	}
	return NewKey(j.Kid, alg, pub)
}

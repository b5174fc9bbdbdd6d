// Package jwk parses the public signature keys of an RFC 7517 JWK Set: the
// subset that client assertions (RFC 7523) and workload-identity tokens are
// signed with. It knows RSA (RS256, PS256; at least 2048 bits), EC P-256
// (ES256) and OKP Ed25519 (EdDSA, RFC 8037) keys, and nothing else.
//
// Parse is strict, for the key sets an administrator registers: every key
// must be usable, public and uniquely identified, or the set is refused
// with an error that names the key and what to fix. ParseRemote is for the
// key sets that other parties publish (a client's jwks_uri, a trusted
// issuer's JWKS): it skips the keys it cannot use (encryption keys, other
// key types) and keeps the rest.
package jwk

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
	"math/big"
	"slices"
)

// Algorithms are the JWS algorithms of the keys this package knows, in the
// order the metadata advertises them.
var Algorithms = []string{"RS256", "PS256", "ES256", "EdDSA"}

// Limits of a key set.
const (
	// MaxSetBytes bounds the JSON of a key set.
	MaxSetBytes = 64 << 10
	// MaxKeys bounds the keys of a set, so that an assertion without a kid
	// costs a bounded number of signature checks.
	MaxKeys = 32
	// MaxKIDLen bounds a key id.
	MaxKIDLen  = 256
	minRSABits = 2048
	maxRSABits = 8192
)

// ErrInvalid is wrapped by every error of Parse and ParseRemote.
var ErrInvalid = errors.New("invalid JWK Set")

// Key is a public signature key of a set.
type Key struct {
	// ID is the kid; empty when the key has none.
	ID string
	// Public is an *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey.
	Public crypto.PublicKey
	// Algs are the JWS algorithms the key may verify: its alg member when
	// it has one, otherwise every algorithm of its type.
	Algs []string
}

// Allows reports whether the key verifies signatures of alg.
func (k Key) Allows(alg string) bool { return slices.Contains(k.Algs, alg) }

// Set is a parsed key set.
type Set []Key

// Candidates returns the keys that may have signed a JWS with the header's
// kid (empty: any key) and alg.
func (s Set) Candidates(kid, alg string) []Key {
	var out []Key
	for _, k := range s {
		if (kid == "" || k.ID == kid) && k.Allows(alg) {
			out = append(out, k)
		}
	}
	return out
}

// Algs returns the algorithms that some key of the set verifies, in the
// order of Algorithms.
func (s Set) Algs() []string {
	var out []string
	for _, a := range Algorithms {
		if slices.ContainsFunc(s, func(k Key) bool { return k.Allows(a) }) {
			out = append(out, a)
		}
	}
	return out
}

// raw is one JWK as it is written.
type raw struct {
	Kty    string   `json:"kty"`
	Kid    *string  `json:"kid"`
	Alg    string   `json:"alg"`
	Use    string   `json:"use"`
	KeyOps []string `json:"key_ops"`
	Crv    string   `json:"crv"`
	N      string   `json:"n"`
	E      string   `json:"e"`
	X      string   `json:"x"`
	Y      string   `json:"y"`
	// Private members, whose presence refuses a key.
	D  *json.RawMessage `json:"d"`
	P  *json.RawMessage `json:"p"`
	Q  *json.RawMessage `json:"q"`
	DP *json.RawMessage `json:"dp"`
	DQ *json.RawMessage `json:"dq"`
	QI *json.RawMessage `json:"qi"`
	K  *json.RawMessage `json:"k"`
}

func (r raw) private() bool {
	return r.D != nil || r.P != nil || r.Q != nil || r.DP != nil || r.DQ != nil || r.QI != nil || r.K != nil
}

// Parse parses a JWK Set that an administrator registers: every key must be
// a public signature key of a supported type and algorithm, with a unique
// kid (a set of one key may leave it out); at least one key and at most
// MaxKeys.
func Parse(data []byte) (Set, error) {
	keys, err := decode(data)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: the set has no keys; give at least one public key", ErrInvalid)
	}
	set := make(Set, 0, len(keys))
	seen := make(map[string]bool, len(keys))
	for i, r := range keys {
		k, err := parseKey(r)
		if err != nil {
			return nil, fmt.Errorf("%w: key %d: %v", ErrInvalid, i, err)
		}
		switch {
		case k.ID == "" && len(keys) > 1:
			return nil, fmt.Errorf("%w: key %d has no kid; every key of a set of several needs a unique kid", ErrInvalid, i)
		case seen[k.ID]:
			return nil, fmt.Errorf("%w: key %d: kid %q is used twice; kids must be unique", ErrInvalid, i, k.ID)
		}
		seen[k.ID] = true
		set = append(set, k)
	}
	return set, nil
}

// ParseRemote parses a JWK Set published by another party, keeping the
// public signature keys it can use and skipping the others. A set without
// any usable key is an error.
func ParseRemote(data []byte) (Set, error) {
	keys, err := decode(data)
	if err != nil {
		return nil, err
	}
	var set Set
	for _, r := range keys {
		if k, err := parseKey(r); err == nil {
			set = append(set, k)
		}
	}
	if len(set) == 0 {
		return nil, fmt.Errorf("%w: no usable public signature key (RSA, EC P-256 or Ed25519)", ErrInvalid)
	}
	return set, nil
}

func decode(data []byte) ([]raw, error) {
	if len(data) > MaxSetBytes {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrInvalid, MaxSetBytes)
	}
	var doc struct {
		Keys *[]json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%w: not a JSON object with a \"keys\" array", ErrInvalid)
	}
	if doc.Keys == nil {
		return nil, fmt.Errorf("%w: no \"keys\" array", ErrInvalid)
	}
	if len(*doc.Keys) > MaxKeys {
		return nil, fmt.Errorf("%w: %d keys; at most %d", ErrInvalid, len(*doc.Keys), MaxKeys)
	}
	out := make([]raw, len(*doc.Keys))
	for i, m := range *doc.Keys {
		if err := json.Unmarshal(m, &out[i]); err != nil || bytes.HasPrefix(bytes.TrimSpace(m), []byte("null")) {
			return nil, fmt.Errorf("%w: key %d is not a JSON object of JWK members", ErrInvalid, i)
		}
	}
	return out, nil
}

// parseKey checks one JWK and returns its public key.
func parseKey(r raw) (Key, error) {
	var k Key
	if r.private() {
		return k, errors.New("holds private or symmetric key material (d, p, q, dp, dq, qi or k); register only the public key")
	}
	if r.Kid != nil {
		if *r.Kid == "" || len(*r.Kid) > MaxKIDLen {
			return k, fmt.Errorf("kid must be 1 to %d bytes", MaxKIDLen)
		}
		k.ID = *r.Kid
	}
	if r.Use != "" && r.Use != "sig" {
		return k, fmt.Errorf("use %q: only signature keys (\"sig\") verify assertions", r.Use)
	}
	if len(r.KeyOps) > 0 && !slices.Contains(r.KeyOps, "verify") {
		return k, errors.New(`key_ops does not include "verify"`)
	}
	var typeAlgs []string
	switch r.Kty {
	case "RSA":
		typeAlgs = []string{"RS256", "PS256"}
		pub, err := rsaKey(r)
		if err != nil {
			return k, err
		}
		k.Public = pub
	case "EC":
		typeAlgs = []string{"ES256"}
		if r.Crv != "P-256" {
			return k, fmt.Errorf("EC curve %q is not supported; use P-256 (ES256)", r.Crv)
		}
		x, errX := coord(r.X, 32)
		y, errY := coord(r.Y, 32)
		if errX != nil || errY != nil {
			return k, errors.New("x and y must be 32-byte base64url coordinates of P-256")
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return k, errors.New("the point (x, y) is not on P-256")
		}
		k.Public = pub
	case "OKP":
		typeAlgs = []string{"EdDSA"}
		if r.Crv != "Ed25519" {
			return k, fmt.Errorf("OKP curve %q is not supported; use Ed25519 (EdDSA)", r.Crv)
		}
		x, err := coord(r.X, ed25519.PublicKeySize)
		if err != nil {
			return k, errors.New("x must be a 32-byte base64url Ed25519 public key")
		}
		k.Public = ed25519.PublicKey(x)
	case "":
		return k, errors.New("kty is missing; use RSA, EC or OKP")
	default:
		return k, fmt.Errorf("kty %q is not supported; use RSA, EC (P-256) or OKP (Ed25519)", r.Kty)
	}
	switch {
	case r.Alg == "":
		k.Algs = typeAlgs
	case slices.Contains(typeAlgs, r.Alg):
		k.Algs = []string{r.Alg}
	default:
		return k, fmt.Errorf("alg %q does not fit a %s key; use %v", r.Alg, r.Kty, typeAlgs)
	}
	return k, nil
}

func rsaKey(r raw) (*rsa.PublicKey, error) {
	n, err := base64.RawURLEncoding.DecodeString(r.N)
	if err != nil || len(n) == 0 || n[0] == 0 {
		return nil, errors.New("n must be the base64url modulus without leading zero bytes")
	}
	e, err := base64.RawURLEncoding.DecodeString(r.E)
	if err != nil || len(e) == 0 || len(e) > 4 || e[0] == 0 {
		return nil, errors.New("e must be a base64url exponent of at most 4 bytes")
	}
	var exp int
	for _, b := range e {
		exp = exp<<8 | int(b)
	}
	if exp < 3 || exp%2 == 0 {
		return nil, errors.New("e must be odd and at least 3")
	}
	bits := len(n) * 8
	mod := new(big.Int).SetBytes(n)
	if mod.BitLen() < minRSABits || bits > maxRSABits {
		return nil, fmt.Errorf("RSA modulus of %d bits; use %d to %d bits", mod.BitLen(), minRSABits, maxRSABits)
	}
	return &rsa.PublicKey{N: mod, E: exp}, nil
}

// coord decodes a fixed-length base64url member.
func coord(s string, size int) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != size {
		return nil, errors.New("bad length")
	}
	return b, nil
}

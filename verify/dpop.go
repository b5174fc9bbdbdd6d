package verify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// DPoP (RFC 9449, "OAuth 2.0 Demonstrating Proof of Possession") binds an
// access token to a key pair of the client: the token carries the
// RFC 7638 thumbprint of the public key (cnf.jkt), and every request that
// presents it carries a fresh proof, a JWT signed with the private key
// over the request's method and URL. A stolen token is useless without
// the key. This file holds the proof checks of RFC 9449 §4.3 that both
// ends share: the issuer's token endpoint and a resource API
// (DPoPVerifier, dpop_middleware.go).

// DPoP errors. CheckDPoPProof's errors wrap ErrDPoPProof; the replay
// caches' wrap ErrDPoPReplay.
var (
	// ErrDPoPProof: the DPoP proof is missing, malformed, or does not
	// match the request (RFC 9449 §4.3).
	ErrDPoPProof = errors.New("verify: invalid DPoP proof")
	// ErrDPoPReplay: the proof's jti was already used.
	ErrDPoPReplay = errors.New("verify: DPoP proof replayed")
	// ErrDPoPNonce: the server requires a nonce (RFC 9449 §8, §9) and the
	// proof has none, or a stale one.
	ErrDPoPNonce = errors.New("verify: DPoP nonce required")
	// ErrDPoPBound: the access token is bound to a DPoP key (it has
	// cnf.jkt) but was presented as a Bearer token, or with a proof of
	// another key (RFC 9449 §7.1).
	ErrDPoPBound = errors.New("verify: DPoP-bound access token")
)

// dpopAlgs are the proof algorithms accepted: asymmetric only (RFC 9449
// §4.3 check 5).
var dpopAlgs = []string{"ES256", "ES384", "EdDSA", "RS256", "PS256"}

// DPoPAlgorithms returns the JWS algorithms accepted for DPoP proofs, for
// dpop_signing_alg_values_supported and the algs of a DPoP challenge.
func DPoPAlgorithms() []string { return slices.Clone(dpopAlgs) }

// MaxDPoPProofSize bounds the DPoP header: a proof with an RSA-4096 key
// fits in under 3 KiB.
const MaxDPoPProofSize = 8 << 10

// MaxDPoPJTILen bounds the jti of a proof, which a server keeps until the
// proof is too old to be accepted.
const MaxDPoPJTILen = 256

// DefaultDPoPMaxAge is how old a proof's iat may be by default.
const DefaultDPoPMaxAge = 5 * time.Minute

// ProofCheck is what a DPoP proof must match.
type ProofCheck struct {
	// Method is the request's method, which htm must equal.
	Method string
	// URL is the public URL of the request (its scheme and host as the
	// client sees them, not as a proxy forwards them), which htu must
	// match once both are normalized (RFC 3986 §6.2.2, §6.2.3) and their
	// query and fragment dropped.
	URL string
	// AccessToken, when not empty, is the access token presented with the
	// proof, whose SHA-256 hash ath must be (RFC 9449 §4.2); when empty
	// the proof must have no ath (a token request).
	AccessToken string
	// Now is the time of the check.
	Now time.Time
	// MaxAge is how old iat may be; DefaultDPoPMaxAge when zero.
	MaxAge time.Duration
	// Leeway is how far in the future iat may be (clock skew);
	// DefaultLeeway when zero.
	Leeway time.Duration
}

// Proof is a DPoP proof that CheckDPoPProof verified.
type Proof struct {
	// JKT is the RFC 7638 SHA-256 thumbprint of the proof's key, base64url:
	// the cnf.jkt of the access tokens bound to it.
	JKT string
	// ID is the jti; ReplayID is the value to record as used.
	ID string
	// Nonce is the nonce claim; "" when the proof has none.
	Nonce string
	// IssuedAt is the iat claim.
	IssuedAt time.Time
	// Until is how long the jti must be remembered: a proof is refused
	// once its iat is older than the maximum age.
	Until time.Time
}

// ReplayID is the key under which the proof's jti is recorded as used:
// the jti within the key's namespace, so that a client's jti values never
// collide with another's. It is at most 45 + MaxDPoPJTILen bytes long.
func (p *Proof) ReplayID() string { return p.JKT + ":" + p.ID }

// proofClaims are the claims of a DPoP proof. Claim validation of the JWT
// parser is off: CheckDPoPProof checks them.
type proofClaims struct {
	ID       string      `json:"jti"`
	Method   string      `json:"htm"`
	URL      string      `json:"htu"`
	IssuedAt numericDate `json:"iat"`
	Nonce    string      `json:"nonce"`
	ATH      string      `json:"ath"`
}

var _ jwt.Claims = (*proofClaims)(nil)

func (c *proofClaims) GetExpirationTime() (*jwt.NumericDate, error) { return nil, nil }
func (c *proofClaims) GetIssuedAt() (*jwt.NumericDate, error)       { return c.IssuedAt.jwt(), nil }
func (c *proofClaims) GetNotBefore() (*jwt.NumericDate, error)      { return nil, nil }
func (c *proofClaims) GetIssuer() (string, error)                   { return "", nil }
func (c *proofClaims) GetSubject() (string, error)                  { return "", nil }
func (c *proofClaims) GetAudience() (jwt.ClaimStrings, error)       { return nil, nil }

var proofParser = jwt.NewParser(jwt.WithValidMethods(dpopAlgs), jwt.WithoutClaimsValidation(), jwt.WithStrictDecoding())

// privateJWKMembers are the members of a private or symmetric JWK (RFC
// 7518 §6): a proof's jwk must be a public key (RFC 9449 §4.3 check 7).
var privateJWKMembers = [...]string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

// CheckDPoPProof verifies raw, the value of a request's one DPoP header,
// as RFC 9449 §4.3 lists: a JWT at most MaxDPoPProofSize long without
// duplicate member names; typ dpop+jwt; an asymmetric alg of
// DPoPAlgorithms that fits the key; a public jwk header; jti (at most
// MaxDPoPJTILen bytes), htm, htu and iat present; htm and htu matching the
// request; iat no older than the maximum age and no further in the future
// than the leeway; ath the hash of the access token when one is
// presented, absent otherwise; and the signature by the jwk. Every check
// but the signature runs first. Nonces and jti replay are the caller's:
// they need state (see Nonces and ReplayCache). Every error wraps
// ErrDPoPProof.
func CheckDPoPProof(raw string, pc ProofCheck) (*Proof, error) {
	if len(raw) > MaxDPoPProofSize {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrDPoPProof, len(raw), MaxDPoPProofSize)
	}
	if pc.MaxAge <= 0 {
		pc.MaxAge = DefaultDPoPMaxAge
	}
	if pc.Leeway <= 0 {
		pc.Leeway = DefaultLeeway
	}
	var (
		c      proofClaims
		jkt    string
		reason error
	)
	_, err := proofParser.ParseWithClaims(raw, &c, func(t *jwt.Token) (any, error) {
		k, thumb, err := checkProof(raw, t, &c, &pc)
		if err != nil {
			reason = err
			return nil, err
		}
		jkt = thumb
		return k.pub, nil
	})
	switch {
	case reason != nil:
		return nil, fmt.Errorf("%w: %w", ErrDPoPProof, reason)
	case err != nil:
		return nil, fmt.Errorf("%w: %w", ErrDPoPProof, err)
	}
	return &Proof{JKT: jkt, ID: c.ID, Nonce: c.Nonce, IssuedAt: c.IssuedAt.Time, Until: c.IssuedAt.Add(pc.MaxAge)}, nil
}

// checkProof runs every check of CheckDPoPProof but the signature, and
// returns the key that must have signed the proof and its thumbprint.
func checkProof(raw string, t *jwt.Token, c *proofClaims, pc *ProofCheck) (*Key, string, error) {
	if err := checkUnique(raw); err != nil {
		return nil, "", err
	}
	if typ, _ := t.Header["typ"].(string); !strings.EqualFold(typ, "dpop+jwt") {
		return nil, "", fmt.Errorf("typ %.32q is not dpop+jwt", typ)
	}
	for _, h := range [...]string{"crit", "jku", "x5u", "x5c"} {
		if _, ok := t.Header[h]; ok {
			return nil, "", fmt.Errorf("forbidden header %s", h)
		}
	}
	m, ok := t.Header["jwk"].(map[string]any)
	if !ok {
		return nil, "", errors.New("no jwk header")
	}
	for _, name := range privateJWKMembers {
		if _, ok := m[name]; ok {
			return nil, "", errors.New("the jwk is a private or symmetric key")
		}
	}
	var j jwk
	for name, dst := range map[string]*string{"kty": &j.Kty, "crv": &j.Crv, "x": &j.X, "y": &j.Y, "n": &j.N, "e": &j.E, "alg": &j.Alg, "use": &j.Use} {
		v, ok := m[name]
		if !ok {
			continue
		}
		if *dst, ok = v.(string); !ok {
			return nil, "", fmt.Errorf("jwk member %s is not a string", name)
		}
	}
	alg := t.Method.Alg()
	if j.Alg != "" && j.Alg != alg {
		return nil, "", fmt.Errorf("alg %s differs from the jwk's %.16q", alg, j.Alg)
	}
	j.Alg = alg
	k, err := j.key()
	if err != nil {
		return nil, "", fmt.Errorf("jwk: %w", err)
	}
	switch {
	case c.ID == "":
		return nil, "", errors.New("no jti")
	case len(c.ID) > MaxDPoPJTILen:
		return nil, "", fmt.Errorf("jti longer than %d bytes", MaxDPoPJTILen)
	case c.Method == "":
		return nil, "", errors.New("no htm")
	case c.URL == "":
		return nil, "", errors.New("no htu")
	case !c.IssuedAt.set:
		return nil, "", errors.New("no iat")
	}
	if c.Method != pc.Method {
		return nil, "", fmt.Errorf("htm %.16q is not the request's method", c.Method)
	}
	want, err := NormalizeHTU(pc.URL)
	if err != nil {
		return nil, "", fmt.Errorf("the request URL: %w", err)
	}
	if got, err := NormalizeHTU(c.URL); err != nil || got != want {
		return nil, "", fmt.Errorf("htu %.128q is not the request's URL", c.URL)
	}
	switch {
	case c.IssuedAt.After(pc.Now.Add(pc.Leeway)):
		return nil, "", fmt.Errorf("iat %s is in the future", c.IssuedAt.UTC().Format(time.RFC3339))
	case c.IssuedAt.Before(pc.Now.Add(-pc.MaxAge)):
		return nil, "", fmt.Errorf("iat %s is older than %s", c.IssuedAt.UTC().Format(time.RFC3339), pc.MaxAge)
	}
	if pc.AccessToken == "" {
		if c.ATH != "" {
			return nil, "", errors.New("ath without an access token")
		}
	} else {
		sum := sha256.Sum256([]byte(pc.AccessToken))
		if subtle.ConstantTimeCompare([]byte(c.ATH), []byte(b64.EncodeToString(sum[:]))) != 1 {
			return nil, "", errors.New("ath is not the hash of the access token")
		}
	}
	return k, thumbprint(&j), nil
}

// thumbprint is the RFC 7638 SHA-256 thumbprint of a public key that
// jwk.key accepted: the required members, in lexicographic order, without
// white space. The members are base64url strings and names, which need no
// escaping.
func thumbprint(j *jwk) string {
	var s string
	switch j.Kty {
	case "EC":
		s = `{"crv":"` + j.Crv + `","kty":"EC","x":"` + j.X + `","y":"` + j.Y + `"}`
	case "OKP":
		s = `{"crv":"` + j.Crv + `","kty":"OKP","x":"` + j.X + `"}`
	case "RSA":
		s = `{"e":"` + j.E + `","kty":"RSA","n":"` + j.N + `"}`
	}
	sum := sha256.Sum256([]byte(s))
	return b64.EncodeToString(sum[:])
}

// NormalizeHTU returns the form of an http or https URL in which DPoP
// compares htu with the request's URL: scheme and host in lower case,
// without the scheme's default port, the path decoded ("/" when empty),
// and no query or fragment (RFC 9449 §4.3 check 9).
func NormalizeHTU(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", errors.New("not a URL")
	}
	scheme := strings.ToLower(u.Scheme)
	if (scheme != "http" && scheme != "https") || u.Host == "" || u.User != nil || u.Opaque != "" {
		return "", errors.New("not an absolute http or https URL")
	}
	host := strings.ToLower(u.Host)
	if port := u.Port(); (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		host = strings.TrimSuffix(host, ":"+port)
	}
	host = strings.TrimSuffix(host, ":") // an empty port is the default
	path := u.Path
	if path == "" {
		path = "/"
	}
	return scheme + "://" + host + path, nil
}

// Nonces makes and checks stateless DPoP nonces (RFC 9449 §8 at an
// authorization server, §9 at a resource server): a nonce is a time step
// and an HMAC-SHA256 of it under a secret key, so every server that has
// the key accepts the nonces of every other, without shared state. A nonce
// is accepted during its own step, the one before and the one after (for
// clock skew between servers): for between one and two steps.
type Nonces struct {
	key  []byte
	step time.Duration
}

// MinNonceKeyLen is the shortest key NewNonces accepts.
const MinNonceKeyLen = 32

// NewNonces returns the nonces of key (at least MinNonceKeyLen random
// bytes, the same on every server) that change every step (at least a
// second).
func NewNonces(key []byte, step time.Duration) (*Nonces, error) {
	if len(key) < MinNonceKeyLen {
		return nil, fmt.Errorf("%w: the nonce key is %d bytes; it must be at least %d", ErrInvalidConfig, len(key), MinNonceKeyLen)
	}
	if step < time.Second {
		return nil, fmt.Errorf("%w: the nonce step %s is shorter than a second", ErrInvalidConfig, step)
	}
	return &Nonces{key: slices.Clone(key), step: step}, nil
}

// nonceLen is the length of a nonce: base64url of 8 bytes of step and 16
// of MAC.
const nonceLen = 32

func (n *Nonces) make(step uint64) string {
	var b [24]byte
	binary.BigEndian.PutUint64(b[:8], step)
	mac := hmac.New(sha256.New, n.key)
	mac.Write(b[:8])
	copy(b[8:], mac.Sum(nil))
	return b64.EncodeToString(b[:])
}

func (n *Nonces) stepOf(now time.Time) uint64 { return uint64(now.UnixNano() / int64(n.step)) }

// Nonce returns the nonce of now.
func (n *Nonces) Nonce(now time.Time) string { return n.make(n.stepOf(now)) }

// Valid reports whether nonce is a nonce of these keys of the step of now,
// the one before or the one after.
func (n *Nonces) Valid(nonce string, now time.Time) bool {
	if len(nonce) != nonceLen {
		return false
	}
	var b [24]byte
	if m, err := b64.Decode(b[:], []byte(nonce)); err != nil || m != len(b) {
		return false
	}
	step, cur := binary.BigEndian.Uint64(b[:8]), n.stepOf(now)
	if step+1 < cur || step > cur+1 {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(n.make(step)), []byte(nonce)) == 1
}

// ReplayCache remembers the jti of DPoP proofs, so that each proof is
// accepted once. Use records id as used until the given time and fails
// with an error wrapping ErrDPoPReplay when it was already recorded and
// has not expired; of concurrent calls with one id exactly one succeeds.
// MemoryReplayCache serves one process; package dpopredis shares the
// cache between the replicas of an API through Redis.
type ReplayCache interface {
	Use(ctx context.Context, id string, until time.Time) error
}

// MemoryReplayCache is an in-process ReplayCache. Entries are dropped
// once expired; a full sweep runs at most once per sweep interval.
type MemoryReplayCache struct {
	now func() time.Time

	mu        sync.Mutex
	seen      map[string]time.Time
	nextSweep time.Time
}

var _ ReplayCache = (*MemoryReplayCache)(nil)

// NewMemoryReplayCache returns an empty in-process replay cache on the
// clock now (time.Now when nil).
func NewMemoryReplayCache(now func() time.Time) *MemoryReplayCache {
	if now == nil {
		now = time.Now
	}
	return &MemoryReplayCache{now: now, seen: map[string]time.Time{}}
}

// sweepInterval is how often MemoryReplayCache drops expired entries.
const sweepInterval = time.Minute

// Use implements ReplayCache.
func (m *MemoryReplayCache) Use(_ context.Context, id string, until time.Time) error {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if now.After(m.nextSweep) {
		for k, t := range m.seen {
			if !t.After(now) {
				delete(m.seen, k)
			}
		}
		m.nextSweep = now.Add(sweepInterval)
	}
	if t, ok := m.seen[id]; ok && t.After(now) {
		return fmt.Errorf("%w: jti already used", ErrDPoPReplay)
	}
	m.seen[id] = until
	return nil
}

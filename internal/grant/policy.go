package grant

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/issuer-oauth/issuer/internal/oauth"
	"github.com/issuer-oauth/issuer/internal/store"
)

// Per-client policy (docs/client-policy.md): a client's own token
// lifetimes, family cap and quota, where it has them, else the server's.

// accessTTL is the lifetime of c's access tokens.
func (h *Handler) accessTTL(c store.Client) time.Duration {
	if c.AccessTokenTTL > 0 {
		return c.AccessTokenTTL
	}
	return h.cfg.AccessTTL
}

// refreshTTL is the lifetime of c's refresh tokens.
func (h *Handler) refreshTTL(c store.Client) time.Duration {
	if c.RefreshTokenTTL > 0 {
		return c.RefreshTokenTTL
	}
	return h.cfg.RefreshTTL
}

// familyEnd is the absolute end of a refresh-token family of c that began
// at start; zero when c's families have none (refresh_token_max_lifetime
// 0).
func (h *Handler) familyEnd(c store.Client, start time.Time) time.Time {
	max := h.cfg.RefreshMaxLifetime
	if c.RefreshTokenMaxLifetime > 0 {
		max = c.RefreshTokenMaxLifetime
	}
	if max <= 0 {
		return time.Time{}
	}
	return start.Add(max)
}

// expiries are the expiries of the access and refresh tokens issued to c
// at now in a family that began at start (now, for a new family): each its
// lifetime from now, and neither past the family's end, so that nothing
// of a family outlives it (the earlier end wins).
func (h *Handler) expiries(c store.Client, start, now time.Time) (access, refresh time.Time) {
	access, refresh = now.Add(h.accessTTL(c)), now.Add(h.refreshTTL(c))
	if end := h.familyEnd(c, start); !end.IsZero() {
		access, refresh = earlier(access, end), earlier(refresh, end)
	}
	return access, refresh
}

func earlier(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// expiresIn is the expires_in of an access token issued at now that
// expires at exp (whole seconds, as exp is in the token).
func expiresIn(exp, now time.Time) int64 {
	return exp.Truncate(time.Second).Unix() - now.Truncate(time.Second).Unix()
}

// Retried refreshes (docs/refresh.md): the answer to a refresh is
// kept, sealed, for the client's refresh_token_reuse_interval, and a retry
// of the same request with the same token gets it back.

// retrySealer seals the kept answers with AES-256-GCM under a key derived
// from ISSUER_SECRET (secret.PurposeRefreshRetries; Config.RetryKey), so that every
// instance opens what another sealed and the store never holds tokens in
// the clear.
type retrySealer struct{ aead cipher.AEAD }

func newRetrySealer(key []byte) *retrySealer {
	switch {
	case len(key) == 0:
		// One process on its own: a key of its own does.
		key = make([]byte, 32)
		_, _ = rand.Read(key)
	case len(key) != 32:
		sum := sha256.Sum256(key)
		key = sum[:]
	}
	block, err := aes.NewCipher(key)
	if err != nil { // only for key lengths other than 16, 24 and 32
		panic(fmt.Sprintf("grant: retry key: %v", err))
	}
	aead, err := cipher.NewGCM(block)
	if err != nil { // only for a block size other than 16
		panic(fmt.Sprintf("grant: retry key: %v", err))
	}
	return &retrySealer{aead: aead}
}

// seal encrypts resp, bound to the family and the token it answers.
func (s *retrySealer) seal(resp *tokenResponse, family, jti string) []byte {
	var buf [2048]byte
	plain := appendToken(buf[:0], resp) // the JSON of the response, as written
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	_, _ = rand.Read(nonce) // crypto/rand.Read never returns an error
	return s.aead.Seal(nonce, nonce, plain, retryAD(family, jti))
}

// errRetryOpen means a kept answer would not decrypt: sealed under another
// ISSUER_SECRET, or altered in the store.
var errRetryOpen = errors.New("grant: the kept answer of a retried refresh does not decrypt; do all instances share ISSUER_SECRET?")

// open decrypts what seal returned for the family and token.
func (s *retrySealer) open(sealed []byte, family, jti string) (*tokenResponse, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n {
		return nil, errRetryOpen
	}
	plain, err := s.aead.Open(nil, sealed[:n], sealed[n:], retryAD(family, jti))
	if err != nil {
		return nil, errRetryOpen
	}
	var resp tokenResponse
	if err := json.Unmarshal(plain, &resp); err != nil {
		return nil, fmt.Errorf("grant: decode kept answer: %w", err)
	}
	return &resp, nil
}

func retryAD(family, jti string) []byte { return []byte(family + "\x00" + jti) }

// retryRequest identifies a refresh request for its retry: the scope and
// the audience asked for, and the DPoP key (jkt, empty without a proof)
// the kept access token is bound to; the client and the token are compared
// apart. A retry that asks for anything else is not the same request.
func retryRequest(scope []string, audience []string, jkt string) string {
	sum := sha256.Sum256([]byte(jkt + "\x00" + oauth.FormatScope(scope) + "\x00" + strings.Join(audience, "\x00")))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

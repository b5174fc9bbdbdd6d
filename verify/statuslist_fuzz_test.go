package verify

import (
	"bytes"
	"compress/zlib"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// FuzzStatusList feeds the status-list parser arbitrary lists: a fuzzed
// lst (the ZLIB stream, base64url-encoded here) and bits inside a JWT
// signed by the issuer's key, and the fuzzed bytes as a whole JWT. Nothing
// may panic, nothing may inflate past the limit, and whatever parses has
// the entry size it declared and the bits the stream holds.
func FuzzStatusList(f *testing.F) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	key, err := NewKey("k1", "ES256", &priv.PublicKey)
	if err != nil {
		f.Fatal(err)
	}
	now := time.Unix(1_900_000_000, 0)
	const iss, uri = "https://issuer.example", "https://issuer.example/statuslists/1"
	v, err := New(iss, "api", WithKeys(key), WithClock(func() time.Time { return now }))
	if err != nil {
		f.Fatal(err)
	}
	deflate := func(b []byte) []byte {
		var z bytes.Buffer
		w := zlib.NewWriter(&z)
		_, _ = w.Write(b)
		_ = w.Close()
		return z.Bytes()
	}
	f.Add(deflate([]byte{0, 0x08, 0xff}), 1)
	f.Add(deflate(make([]byte, 4<<10)), 2)
	f.Add(deflate(make([]byte, maxStatusListBits+1)), 1) // a bomb, just past the limit
	f.Add([]byte("x\x9c"), 8)
	f.Add([]byte("eyJhbGciOiJFUzI1NiJ9.e30.AAAA"), 4)

	f.Fuzz(func(t *testing.T, lst []byte, bits int) {
		ctx := context.Background()
		if _, err := v.parseStatusList(ctx, string(lst), uri, 0); err == nil {
			t.Fatalf("fuzzed bytes parsed as a list signed by the issuer's key: %q", lst)
		}
		tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
			"sub": uri, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "ttl": 30,
			"status_list": map[string]any{"bits": bits, "lst": b64.EncodeToString(lst)},
		})
		tok.Header["kid"], tok.Header["typ"] = "k1", "statuslist+jwt"
		raw, err := tok.SignedString(priv)
		if err != nil {
			t.Fatal(err)
		}
		e, err := v.parseStatusList(ctx, raw, uri, 0)
		inflated, ierr := inflateStatusList(bits, b64.EncodeToString(lst))
		if (err == nil) != (ierr == nil) {
			t.Fatalf("parse error %v, inflate error %v: they disagree", err, ierr)
		}
		if err != nil {
			return
		}
		if len(e.bits) > maxStatusListBits || e.size != bits || !bytes.Equal(e.bits, inflated) {
			t.Fatalf("parsed %d bytes of %d-bit entries, want at most %d bytes of %d-bit entries, as inflated", len(e.bits), e.size, maxStatusListBits, bits)
		}
		if !e.fresh.Equal(now.Add(30 * time.Second)) {
			t.Fatalf("fresh until %v, want %v (ttl 30)", e.fresh, now.Add(30*time.Second))
		}
		// A lookup of the last entry cannot go out of range.
		s := &statusLists{v: v, lists: map[string]*statusEntry{uri: &e}, origin: iss}
		e.fresh = now.Add(time.Second)
		if n := int64(len(e.bits)) * 8 / int64(bits); n > 0 {
			last := n - 1
			err := s.check(ctx, &statusClaim{StatusList: &struct {
				Idx *int64 `json:"idx"`
				URI string `json:"uri"`
			}{Idx: &last, URI: uri}})
			if err != nil && !errors.Is(err, ErrRevoked) {
				t.Fatalf("status of the last entry: %v", err)
			}
		}
	})
}

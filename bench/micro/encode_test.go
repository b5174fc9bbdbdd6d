package micro

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// accessClaims has the JSON shape of keys.AccessClaims (RFC 9068).
type accessClaims struct {
	jwt.RegisteredClaims
	ClientID string `json:"client_id"`
	Scope    string `json:"scope,omitempty"`
}

const (
	benchClient = "0123456789abcdef0123456789abcdef"
	benchKid    = "2yA4Vq0n8m6eRZr2KcJ4d2v3gqgq1mN3m2Xn2c3J5u8"
	benchJTI    = "q1mN3m2Xn2c3J5u8aaaaaa"
)

var b64 = base64.RawURLEncoding

// jwtToken builds the access token as internal/keys does, with jwt/v5: the
// header a map, the claims a struct, both through encoding/json.
func jwtToken(now time.Time) *jwt.Token {
	t := jwt.NewWithClaims(jwt.SigningMethodES256, accessClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: issuer, Subject: benchClient, Audience: jwt.ClaimStrings{"https://api.example.com"},
			ExpiresAt: jwt.NewNumericDate(now.Add(5 * time.Minute)), IssuedAt: jwt.NewNumericDate(now), ID: benchJTI,
		},
		ClientID: benchClient, Scope: "read write",
	})
	t.Header["typ"] = "at+jwt"
	t.Header["kid"] = benchKid
	return t
}

// appendSigningInput builds the same header and claims with appends, the
// header encoded once.
func appendSigningInput(dst []byte, hdr string, now time.Time) []byte {
	claims := make([]byte, 0, 256)
	claims = append(claims, `{"iss":"`+issuer+`","sub":"`+benchClient+`","aud":["https://api.example.com"],"exp":`...)
	claims = strconv.AppendInt(claims, now.Add(5*time.Minute).Unix(), 10)
	claims = append(claims, `,"iat":`...)
	claims = strconv.AppendInt(claims, now.Unix(), 10)
	claims = append(claims, `,"jti":"`+benchJTI+`","client_id":"`+benchClient+`","scope":"read write"}`...)
	dst = append(dst, hdr...)
	dst = append(dst, '.')
	return b64.AppendEncode(dst, claims)
}

// BenchmarkAccessToken separates the cost of encoding an ES256 access
// token from the signature: jwt/v5 (as internal/keys signs today) against
// appends with a precomputed header, with and without the signature.
func BenchmarkAccessToken(b *testing.B) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	hdr := b64.EncodeToString([]byte(`{"alg":"ES256","kid":"` + benchKid + `","typ":"at+jwt"}`))
	now := time.Now()
	b.Run("encode/jwt-v5", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := jwtToken(now).SigningString(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encode/append", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 512)
		for b.Loop() {
			buf = appendSigningInput(buf[:0], hdr, now)
		}
	})
	b.Run("sign/jwt-v5", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := jwtToken(now).SignedString(key); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("sign/append+SignASN1", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 512)
		for b.Loop() {
			buf = appendSigningInput(buf[:0], hdr, now)
			h := sha256.Sum256(buf)
			if _, err := ecdsa.SignASN1(rand.Reader, key, h[:]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

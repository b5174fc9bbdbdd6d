package keys

import (
	"crypto/hmac"
	"crypto/sha256"
	"hash"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/issuer-oauth/issuer/internal/jsonenc"
)

// jws signs compact JWS (RFC 7515 §7.1) with one key under one JOSE header.
// The header is encoded once, when the key is loaded; the claims are
// appended by hand (appendAccessClaims, appendRefreshClaims) to the bytes
// that jwt/v5 would marshal with encoding/json, without its reflection and
// its header map. encode_test.go checks that the tokens are the same.
type jws struct {
	header string // the base64url header segment
	method jwt.SigningMethod
	key    any // what method.Sign takes: a crypto.Signer, or the HS256 secret
	// macs pools *macState keyed with the secret, for HS256 only: the
	// HMAC is computed here, as jwt.SigningMethodHS256.Sign does, without
	// keying a new one for every token.
	macs *sync.Pool
}

// macState is an HMAC-SHA-256 keyed with one secret and the buffers of
// one token.
type macState struct {
	mac hash.Hash
	buf []byte // the token
	sum []byte
}

// maxPooledBuf is the largest token buffer put back in a pool: a token
// with a huge claim must not pin its buffer.
const maxPooledBuf = 16 << 10

// newJWS returns the signer of method and key whose header holds alg, kid
// (when not empty) and typ, in the order of encoding/json's sorted map keys,
// as jwt/v5 wrote it.
func newJWS(method jwt.SigningMethod, key any, kid, typ string) *jws {
	h := append([]byte(nil), `{"alg":`...)
	h = jsonenc.AppendString(h, method.Alg())
	if kid != "" {
		h = append(h, `,"kid":`...)
		h = jsonenc.AppendString(h, kid)
	}
	h = append(h, `,"typ":`...)
	h = jsonenc.AppendString(h, typ)
	h = append(h, '}')
	j := &jws{header: b64.EncodeToString(h), method: method, key: key}
	if secret, ok := key.([]byte); ok && method == jwt.SigningMethodHS256 {
		j.macs = &sync.Pool{New: func() any {
			return &macState{mac: hmac.New(sha256.New, secret)}
		}}
	}
	return j
}

// sign returns the compact JWS of the claims JSON.
func (j *jws) sign(claims []byte) (string, error) {
	if j.macs != nil {
		st := j.macs.Get().(*macState)
		st.buf = j.appendSigningInput(st.buf[:0], claims)
		st.mac.Reset()
		st.mac.Write(st.buf)
		st.sum = st.mac.Sum(st.sum[:0])
		st.buf = append(st.buf, '.')
		st.buf = b64.AppendEncode(st.buf, st.sum)
		out := string(st.buf)
		if cap(st.buf) <= maxPooledBuf {
			j.macs.Put(st)
		}
		return out, nil
	}
	var scratch [1024]byte
	buf := j.appendSigningInput(scratch[:0], claims)
	// The method's Sign, so that the signature format (ECDSA r || s of
	// fixed size, PSS salt length) stays jwt/v5's.
	sig, err := j.method.Sign(string(buf), j.key)
	if err != nil {
		return "", err
	}
	buf = append(buf, '.')
	buf = b64.AppendEncode(buf, sig)
	return string(buf), nil
}

func (j *jws) appendSigningInput(dst, claims []byte) []byte {
	dst = append(dst, j.header...)
	dst = append(dst, '.')
	return b64.AppendEncode(dst, claims)
}

// appendAccessClaims appends c as encoding/json marshals it.
func appendAccessClaims(dst []byte, c *AccessClaims) []byte {
	dst = append(dst, '{')
	dst = appendRegisteredClaims(dst, &c.RegisteredClaims)
	dst = appendName(dst, "client_id")
	dst = jsonenc.AppendString(dst, c.ClientID)
	dst = appendOptString(dst, "scope", c.Scope)
	dst = appendOptString(dst, "token_type", c.TokenType)
	dst = appendOptString(dst, "fid", c.FamilyID)
	if c.Confirmation != nil {
		dst = appendName(dst, "cnf")
		dst = append(dst, `{"jkt":`...)
		dst = jsonenc.AppendString(dst, c.Confirmation.JKT)
		dst = append(dst, '}')
	}
	if c.Status != nil {
		dst = append(dst, `,"status":{"status_list":{"idx":`...)
		dst = strconv.AppendInt(dst, c.Status.StatusList.Idx, 10)
		dst = append(dst, `,"uri":`...)
		dst = jsonenc.AppendString(dst, c.Status.StatusList.URI)
		dst = append(dst, "}}"...)
	}
	for _, x := range c.Extra {
		if dst[len(dst)-1] != '{' {
			dst = append(dst, ',')
		}
		dst = jsonenc.AppendString(dst, x.Name)
		dst = append(dst, ':')
		dst = jsonenc.AppendString(dst, x.Value)
	}
	return append(dst, '}')
}

// appendRefreshClaims appends c as encoding/json marshals it.
func appendRefreshClaims(dst []byte, c *RefreshClaims) []byte {
	dst = append(dst, '{')
	dst = appendRegisteredClaims(dst, &c.RegisteredClaims)
	dst = appendName(dst, "client_id")
	dst = jsonenc.AppendString(dst, c.ClientID)
	dst = appendName(dst, "fid")
	dst = jsonenc.AppendString(dst, c.FamilyID)
	dst = appendOptString(dst, "scope", c.Scope)
	if len(c.Resource) > 0 {
		dst = appendName(dst, "resource")
		dst = jsonenc.AppendStrings(dst, c.Resource)
	}
	dst = appendOptString(dst, "uid", c.UserID)
	dst = appendOptString(dst, "usr", c.Username)
	if c.UserGeneration != 0 {
		dst = appendName(dst, "ugen")
		dst = strconv.AppendInt(dst, c.UserGeneration, 10)
	}
	if c.ClientGeneration != 0 {
		dst = appendName(dst, "cgen")
		dst = strconv.AppendInt(dst, c.ClientGeneration, 10)
	}
	if c.FamilyStart != 0 {
		dst = appendName(dst, "fst")
		dst = strconv.AppendInt(dst, c.FamilyStart, 10)
	}
	return append(dst, '}')
}

// appendRegisteredClaims appends the members of c, every one omitempty, in
// the order of its fields, to an object that dst has opened.
func appendRegisteredClaims(dst []byte, c *jwt.RegisteredClaims) []byte {
	dst = appendOptString(dst, "iss", c.Issuer)
	dst = appendOptString(dst, "sub", c.Subject)
	if len(c.Audience) > 0 {
		dst = appendName(dst, "aud")
		// As jwt.ClaimStrings.MarshalJSON: an array, even of one
		// audience, unless the package variable says otherwise.
		if len(c.Audience) == 1 && !jwt.MarshalSingleStringAsArray {
			dst = jsonenc.AppendString(dst, c.Audience[0])
		} else {
			dst = jsonenc.AppendStrings(dst, c.Audience)
		}
	}
	if c.ExpiresAt != nil {
		dst = appendName(dst, "exp")
		dst = appendNumericDate(dst, c.ExpiresAt)
	}
	if c.NotBefore != nil {
		dst = appendName(dst, "nbf")
		dst = appendNumericDate(dst, c.NotBefore)
	}
	if c.IssuedAt != nil {
		dst = appendName(dst, "iat")
		dst = appendNumericDate(dst, c.IssuedAt)
	}
	dst = appendOptString(dst, "jti", c.ID)
	return dst
}

// appendOptString appends the member name: v unless v is empty, as
// encoding/json does for a string field with omitempty.
func appendOptString(dst []byte, name, v string) []byte {
	if v == "" {
		return dst
	}
	dst = appendName(dst, name)
	return jsonenc.AppendString(dst, v)
}

// appendName appends the member name (which needs no escaping) and its
// colon, after a comma unless it is the object's first member.
func appendName(dst []byte, name string) []byte {
	if dst[len(dst)-1] != '{' {
		dst = append(dst, ',')
	}
	dst = append(dst, '"')
	dst = append(dst, name...)
	return append(dst, '"', ':')
}

// appendNumericDate appends d as jwt.NumericDate.MarshalJSON does: the
// seconds, with a fraction only when jwt.TimePrecision is finer than a
// second (it is a second unless a program changes it).
func appendNumericDate(dst []byte, d *jwt.NumericDate) []byte {
	p := jwt.TimePrecision
	t := d.Truncate(p)
	dst = strconv.AppendInt(dst, t.Unix(), 10)
	if p >= time.Second {
		return dst // MarshalJSON's fraction is "0" or "1", of which it keeps nothing
	}
	prec := int(math.Log10(float64(time.Second) / float64(p)))
	var frac [32]byte
	f := strconv.AppendFloat(frac[:0], float64(t.Nanosecond())/float64(time.Second), 'f', prec, 64)
	return append(dst, f[1:]...)
}

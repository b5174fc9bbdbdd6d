package keys

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/issuer-oauth/issuer/internal/testutil"
)

func refreshClaims(now time.Time) RefreshClaims {
	return RefreshClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   "client-1",
			ExpiresAt: NumericDate(now.Add(24 * time.Hour)),
			IssuedAt:  NumericDate(now),
			ID:        "jti-1",
		},
		ClientID: "client-1",
		FamilyID: "fam-1",
		Scope:    "read write",
		Resource: []string{"https://api.example", "https://other.example"},
	}
}

// rawClaims are the claims of a valid refresh token as a map, for tests
// that build tokens by hand.
func rawClaims(now time.Time) map[string]any {
	return map[string]any{
		"iss":       testIssuer,
		"aud":       []string{testIssuer},
		"sub":       "client-1",
		"client_id": "client-1",
		"jti":       "jti-1",
		"fid":       "fam-1",
		"scope":     "read",
		"iat":       now.Unix(),
		"exp":       now.Add(time.Hour).Unix(),
	}
}

const goodHeader = `{"alg":"HS256","typ":"rt+jwt"}`

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// hs256 builds a compact JWS from raw header and payload JSON, signed with
// HMAC-SHA-256 under key, whatever the header says.
func hs256(header, payload string, key []byte) string {
	return hs256Segments(b64.EncodeToString([]byte(header)), b64.EncodeToString([]byte(payload)), key)
}

func hs256Segments(header, payload string, key []byte) string {
	in := header + "." + payload
	m := hmac.New(sha256.New, key)
	m.Write([]byte(in))
	return in + "." + b64.EncodeToString(m.Sum(nil))
}

// claimsWith returns the JSON of the valid claims changed by edit.
func claimsWith(t testing.TB, now time.Time, edit func(map[string]any)) string {
	t.Helper()
	c := rawClaims(now)
	edit(c)
	return mustJSON(t, c)
}

// signWith signs claims with any jwt method and key, adding header fields.
func signWith(t testing.TB, m jwt.SigningMethod, key any, header map[string]any, claims map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, jwt.MapClaims(claims))
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign %s: %v", m.Alg(), err)
	}
	return s
}

// nonCanonical changes unused trailing bits of the last base64url character
// of seg, so that a lenient decoder still yields the same bytes.
func nonCanonical(t testing.TB, seg string) string {
	t.Helper()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	if len(seg)%4 == 0 {
		t.Fatalf("segment length %d has no unused bits", len(seg))
	}
	i := strings.IndexByte(alphabet, seg[len(seg)-1])
	return seg[:len(seg)-1] + string(alphabet[i|1])
}

type tokenEnv struct {
	k   *Keys
	now time.Time
	// another refresh token of the issuer, for splicing
	other string
}

func newTokenEnv(t testing.TB) tokenEnv {
	t.Helper()
	k := mustNew(t, &memStore{}, testConfig("ES256", testutil.NewClock(t0)))
	c := refreshClaims(t0)
	c.Subject, c.ClientID, c.ID, c.FamilyID = "client-2", "client-2", "jti-2", "fam-2"
	other, err := k.SignRefresh(c)
	if err != nil {
		t.Fatal(err)
	}
	return tokenEnv{k: k, now: t0, other: other}
}

func TestParseRefreshRoundTrip(t *testing.T) {
	e := newTokenEnv(t)
	tests := []struct {
		name string
		edit func(*RefreshClaims)
	}{
		{"all claims", func(*RefreshClaims) {}},
		{"no scope or resource", func(c *RefreshClaims) { c.Scope, c.Resource = "", nil }},
		{"one resource", func(c *RefreshClaims) { c.Resource = []string{"urn:api"} }},
		{"caller's iss and aud are replaced", func(c *RefreshClaims) {
			c.Issuer, c.Audience = "https://evil.example", jwt.ClaimStrings{"https://api.example"}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := refreshClaims(e.now)
			tc.edit(&in)
			tok, err := e.k.SignRefresh(in)
			if err != nil {
				t.Fatalf("SignRefresh: %v", err)
			}
			hdr := decodeSegment(t, tok, 0)
			if hdr["alg"] != "HS256" || hdr["typ"] != TypeRefresh {
				t.Errorf("header = %v, want alg HS256, typ %s", hdr, TypeRefresh)
			}
			got, err := e.k.ParseRefresh(tok)
			if err != nil {
				t.Fatalf("ParseRefresh: %v", err)
			}
			if got.ID != in.ID || got.FamilyID != in.FamilyID || got.ClientID != in.ClientID ||
				got.Subject != in.Subject || got.Scope != in.Scope || !slices.Equal(got.Resource, in.Resource) {
				t.Errorf("ParseRefresh = %+v, want %+v", got, in)
			}
			if got, want := got.Issuer, testIssuer; got != want {
				t.Errorf("iss = %q, want %q", got, want)
			}
			if got, want := []string(got.Audience), []string{testIssuer}; !slices.Equal(got, want) {
				t.Errorf("aud = %q, want %q", got, want)
			}
			if got.ExpiresAt == nil || !got.ExpiresAt.Equal(in.ExpiresAt.Time) {
				t.Errorf("exp = %v, want %v", got.ExpiresAt, in.ExpiresAt)
			}
			if got.IssuedAt == nil || !got.IssuedAt.Equal(in.IssuedAt.Time) {
				t.Errorf("iat = %v, want %v", got.IssuedAt, in.IssuedAt)
			}
		})
	}
}

// Another instance with the same secret and issuer accepts the token.
func TestParseRefreshOtherInstance(t *testing.T) {
	e := newTokenEnv(t)
	tok, err := e.k.SignRefresh(refreshClaims(e.now))
	if err != nil {
		t.Fatal(err)
	}
	k2 := mustNew(t, &memStore{}, testConfig("EdDSA", testutil.NewClock(t0)))
	if _, err := k2.ParseRefresh(tok); err != nil {
		t.Errorf("ParseRefresh on another instance: %v", err)
	}
}

func TestParseRefreshExpiry(t *testing.T) {
	c := testutil.NewClock(t0)
	k := mustNew(t, &memStore{}, testConfig("ES256", c))
	in := refreshClaims(t0)
	exp := in.ExpiresAt.Time
	tok, err := k.SignRefresh(in)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		now   time.Time
		valid bool
	}{
		{"at issue", t0, true},
		{"1s before expiry", exp.Add(-time.Second), true},
		{"1ns before expiry", exp.Add(-time.Nanosecond), true},
		{"at expiry", exp, false},
		{"expired by 1s", exp.Add(time.Second), false},
		{"1s before issue (another instance's clock is ahead)", t0.Add(-time.Second), true},
		{"beyond the clock skew before issue", t0.Add(-MaxClockSkew - time.Second), false}, // iat too far in the future
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c.Set(tc.now)
			_, err := k.ParseRefresh(tok)
			if got, want := err == nil, tc.valid; got != want {
				t.Fatalf("ParseRefresh at %v: err = %v, want valid %v", tc.now, err, want)
			}
			if err != nil && !errors.Is(err, ErrInvalidToken) {
				t.Errorf("err = %v, want ErrInvalidToken", err)
			}
		})
	}
}

func TestParseRefreshMaxTokenLen(t *testing.T) {
	e := newTokenEnv(t)
	var under, over string
	for n := 0; over == ""; n++ {
		c := refreshClaims(e.now)
		c.Scope = strings.Repeat("s", n)
		tok, err := e.k.SignRefresh(c)
		if errors.Is(err, ErrTooLong) {
			over = longRefresh(t, e.k)
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(tok) > MaxTokenLen {
			t.Fatalf("SignRefresh returned a token of %d bytes, over MaxTokenLen", len(tok))
		}
		under = tok
	}
	if len(under) < MaxTokenLen-4 {
		t.Errorf("SignRefresh refused at %d bytes, want it to sign up to MaxTokenLen (%d)", len(under), MaxTokenLen)
	}
	if _, err := e.k.ParseRefresh(under); err != nil {
		t.Errorf("ParseRefresh(%d bytes): %v", len(under), err)
	}
	if _, err := e.k.ParseRefresh(over); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("ParseRefresh(%d bytes) err = %v, want ErrInvalidToken", len(over), err)
	}
}

// TestSignAccessTooLong checks that SignAccess refuses a token that
// ParseAccess would refuse for its length, and signs one just within it.
func TestSignAccessTooLong(t *testing.T) {
	e := newTokenEnv(t)
	var longest int
	for n := 0; ; n += 7 {
		tok, err := e.k.SignAccess(AccessClaims{
			RegisteredClaims: jwt.RegisteredClaims{Subject: "client-1", Audience: jwt.ClaimStrings{"https://api.example.com"},
				ExpiresAt: NumericDate(e.now.Add(time.Hour)), IssuedAt: NumericDate(e.now), ID: "jti-1"},
			ClientID: "client-1",
			Scope:    strings.Repeat("s", n),
		})
		if errors.Is(err, ErrTooLong) {
			if !strings.Contains(err.Error(), "client-1") {
				t.Errorf("err = %v, want it to name the client", err)
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.k.ParseAccess(tok); err != nil {
			t.Fatalf("ParseAccess(%d bytes): %v", len(tok), err)
		}
		longest = len(tok)
	}
	if longest < MaxTokenLen-16 {
		t.Errorf("SignAccess refused after %d bytes, want it to sign up to MaxTokenLen (%d)", longest, MaxTokenLen)
	}
}

func TestParseRefreshRejects(t *testing.T) {
	e := newTokenEnv(t)
	refreshKey := e.k.cfg.RefreshKey
	attackerKey := bytes.Repeat([]byte{0x66}, 32)
	good := func(t testing.TB) map[string]any { return rawClaims(e.now) }
	rtHeader := map[string]any{"typ": TypeRefresh}

	// The control: a hand-built token with the valid claims and header is
	// accepted, so each case below fails for the reason it names.
	if _, err := e.k.ParseRefresh(hs256(goodHeader, mustJSON(t, rawClaims(e.now)), refreshKey)); err != nil {
		t.Fatalf("hand-built valid token rejected: %v", err)
	}
	valid, err := e.k.SignRefresh(refreshClaims(e.now))
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(valid, ".")
	otherParts := strings.Split(e.other, ".")

	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	issuerKey := e.k.current().priv.(crypto.Signer)
	jwksBody, _, _ := e.k.JWKS()
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(jwksBody, &set); err != nil {
		t.Fatal(err)
	}
	pkix, err := x509.MarshalPKIXPublicKey(issuerKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkix})
	pubRaw, err := issuerKey.Public().(*ecdsa.PublicKey).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	access, err := e.k.SignAccess(AccessClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   "client-1",
			Audience:  jwt.ClaimStrings{testIssuer},
			ExpiresAt: NumericDate(e.now.Add(time.Hour)),
			IssuedAt:  NumericDate(e.now),
			ID:        "jti-1",
		},
		ClientID: "client-1",
		Scope:    "read",
	})
	if err != nil {
		t.Fatal(err)
	}

	payload := mustJSON(t, rawClaims(e.now))
	edited := func(edit func(map[string]any)) string { return claimsWith(t, e.now, edit) }
	signed := func(payload string) string { return hs256(goodHeader, payload, refreshKey) }

	tests := []struct {
		name  string
		token string
	}{
		// Algorithm attacks.
		{"alg none", b64.EncodeToString([]byte(`{"alg":"none","typ":"rt+jwt"}`)) + "." + b64.EncodeToString([]byte(payload)) + "."},
		{"alg none over a real token's payload", b64.EncodeToString([]byte(`{"alg":"none","typ":"rt+jwt"}`)) + "." + parts[1] + "."},
		{"alg None", b64.EncodeToString([]byte(`{"alg":"None","typ":"rt+jwt"}`)) + "." + parts[1] + "."},
		{"alg none keeping the HS256 signature", b64.EncodeToString([]byte(`{"alg":"none","typ":"rt+jwt"}`)) + "." + parts[1] + "." + parts[2]},
		{"alg missing", hs256(`{"typ":"rt+jwt"}`, payload, refreshKey)},
		{"alg HS384 under the refresh key", signWith(t, jwt.SigningMethodHS384, refreshKey, rtHeader, good(t))},
		{"alg HS512 under the refresh key", signWith(t, jwt.SigningMethodHS512, refreshKey, rtHeader, good(t))},
		{"HS256 signed with another key", hs256(goodHeader, payload, attackerKey)},
		{"HS256 signed with an empty key", hs256(goodHeader, payload, nil)},
		{"alg confusion: RS256 by an attacker key", signWith(t, jwt.SigningMethodRS256, rsaKey, rtHeader, good(t))},
		{"alg confusion: PS256 by an attacker key", signWith(t, jwt.SigningMethodPS256, rsaKey, rtHeader, good(t))},
		{"alg confusion: ES256 by an attacker key", signWith(t, jwt.SigningMethodES256, ecKey, rtHeader, good(t))},
		{"alg confusion: EdDSA by an attacker key", signWith(t, jwt.SigningMethodEdDSA, edKey, rtHeader, good(t))},
		{"alg confusion: ES256 by the issuer's access-token key", signWith(t, jwt.SigningMethodES256, issuerKey, map[string]any{"typ": TypeRefresh, "kid": e.k.current().kid}, good(t))},
		{"HS256 keyed with the JWKS document", hs256(goodHeader, payload, jwksBody)},
		{"HS256 keyed with the published JWK", hs256(goodHeader, payload, set.Keys[0])},
		{"HS256 keyed with the public key PEM", hs256(goodHeader, payload, pubPEM)},
		{"HS256 keyed with the public key DER", hs256(goodHeader, payload, pkix)},
		{"HS256 keyed with the raw public point", hs256(goodHeader, payload, pubRaw)},
		{"HS256 keyed with the kid", hs256(`{"alg":"HS256","typ":"rt+jwt","kid":"`+e.k.current().kid+`"}`, payload, []byte(e.k.current().kid))},
		{"HS256 with an embedded attacker jwk", hs256(`{"alg":"HS256","typ":"rt+jwt","jwk":{"kty":"oct","k":"`+b64.EncodeToString(attackerKey)+`"}}`, payload, attackerKey)},
		{"HS256 with a jku to an attacker key", hs256(`{"alg":"HS256","typ":"rt+jwt","jku":"https://evil.example/jwks"}`, payload, attackerKey)},
		{"kid path injection with an empty key", hs256(`{"alg":"HS256","typ":"rt+jwt","kid":"../../../../dev/null"}`, payload, nil)},

		// Token-type confusion.
		{"typ missing", hs256(`{"alg":"HS256"}`, payload, refreshKey)},
		{"typ JWT", hs256(`{"alg":"HS256","typ":"JWT"}`, payload, refreshKey)},
		{"typ at+jwt", hs256(`{"alg":"HS256","typ":"at+jwt"}`, payload, refreshKey)},
		{"typ empty", hs256(`{"alg":"HS256","typ":""}`, payload, refreshKey)},
		{"typ not a string", hs256(`{"alg":"HS256","typ":1}`, payload, refreshKey)},
		{"access token from SignAccess", access},
		{"crit header", hs256(`{"alg":"HS256","typ":"rt+jwt","crit":["exp"],"exp":1}`, payload, refreshKey)},
		{"empty crit header", hs256(`{"alg":"HS256","typ":"rt+jwt","crit":[]}`, payload, refreshKey)},

		// Claim checks, each under a valid signature.
		{"wrong iss", signed(edited(func(c map[string]any) { c["iss"] = "https://evil.example" }))},
		{"iss with trailing slash", signed(edited(func(c map[string]any) { c["iss"] = testIssuer + "/" }))},
		{"iss missing", signed(edited(func(c map[string]any) { delete(c, "iss") }))},
		{"aud of an API", signed(edited(func(c map[string]any) { c["aud"] = "https://api.example" }))},
		{"aud list of APIs", signed(edited(func(c map[string]any) { c["aud"] = []string{"https://api.example", "https://other.example"} }))},
		{"aud missing", signed(edited(func(c map[string]any) { delete(c, "aud") }))},
		{"aud empty", signed(edited(func(c map[string]any) { c["aud"] = []string{} }))},
		{"exp missing", signed(edited(func(c map[string]any) { delete(c, "exp") }))},
		{"exp null", signed(edited(func(c map[string]any) { c["exp"] = nil }))},
		{"expired by 1s", signed(edited(func(c map[string]any) { c["exp"] = e.now.Add(-time.Second).Unix() }))},
		{"expires now", signed(edited(func(c map[string]any) { c["exp"] = e.now.Unix() }))},
		{"iat in the future beyond the clock skew", signed(edited(func(c map[string]any) { c["iat"] = e.now.Add(MaxClockSkew + time.Second).Unix() }))},
		{"iat missing", signed(edited(func(c map[string]any) { delete(c, "iat") }))},
		{"nbf in the future", signed(edited(func(c map[string]any) { c["nbf"] = e.now.Add(time.Second).Unix() }))},
		{"jti missing", signed(edited(func(c map[string]any) { delete(c, "jti") }))},
		{"jti empty", signed(edited(func(c map[string]any) { c["jti"] = "" }))},
		{"fid missing", signed(edited(func(c map[string]any) { delete(c, "fid") }))},
		{"client_id missing", signed(edited(func(c map[string]any) { delete(c, "client_id") }))},
		{"client_id and sub empty", signed(edited(func(c map[string]any) { c["client_id"], c["sub"] = "", "" }))},
		{"sub is another client", signed(edited(func(c map[string]any) { c["sub"] = "client-2" }))},
		{"sub missing", signed(edited(func(c map[string]any) { delete(c, "sub") }))},

		// Malformed JSON under a valid signature.
		{"header not JSON", hs256(`not json`, payload, refreshKey)},
		{"payload not JSON", signed(`not json`)},
		{"payload truncated JSON", signed(payload[:len(payload)/2])},
		{"payload a JSON array", signed(`[]`)},
		{"payload a JSON string", signed(`"x"`)},
		{"exp a string", signed(edited(func(c map[string]any) { c["exp"] = "2099-01-01T00:00:00Z" }))},
		{"aud a number", signed(edited(func(c map[string]any) { c["aud"] = 42 }))},
		{"client_id a number", signed(edited(func(c map[string]any) { c["client_id"] = 1 }))},
		{"fid an object", signed(edited(func(c map[string]any) { c["fid"] = map[string]any{} }))},
		{"resource a string", signed(edited(func(c map[string]any) { c["resource"] = "https://api.example" }))},
		{"duplicate alg, last none", hs256(`{"alg":"HS256","typ":"rt+jwt","alg":"none"}`, payload, refreshKey)},
		{"duplicate typ, last at+jwt", hs256(`{"alg":"HS256","typ":"rt+jwt","typ":"at+jwt"}`, payload, refreshKey)},
		{"duplicate iss, last foreign", signed(strings.TrimSuffix(payload, "}") + `,"iss":"https://evil.example"}`)},
		{"duplicate exp, last expired", signed(strings.TrimSuffix(payload, "}") + `,"exp":1}`)},
		{"duplicate aud, last an API", signed(strings.TrimSuffix(payload, "}") + `,"aud":"https://api.example"}`)},
		{"duplicate claims signed with another key", hs256(goodHeader, strings.TrimSuffix(payload, "}")+`,"sub":"client-1"}`, attackerKey)},

		// Splicing and truncation.
		{"payload swapped under a valid signature", parts[0] + "." + otherParts[1] + "." + parts[2]},
		{"signature of another token", parts[0] + "." + parts[1] + "." + otherParts[2]},
		{"signature stripped", parts[0] + "." + parts[1] + "."},
		{"signature segment missing", parts[0] + "." + parts[1]},
		{"signature truncated by one character", valid[:len(valid)-1]},
		{"signature truncated by half", parts[0] + "." + parts[1] + "." + parts[2][:len(parts[2])/2]},
		{"signature bit flipped", parts[0] + "." + parts[1] + "." + flipLast(parts[2])},
		{"signature extended", valid + "AA"},
		{"extra segment", valid + "." + parts[2]},
		{"JWE-shaped", valid + ".a.b"},
		{"padded base64", hs256Segments(parts[0]+"==", parts[1], refreshKey)},
		{"non-canonical base64 in the payload", hs256Segments(parts[0], nonCanonical(t, parts[1]), refreshKey)},
		{"longer than MaxTokenLen", longRefresh(t, e.k)},
		{"empty", ""},
		{"dots only", ".."},
		{"not base64", "a.b.c"},
		{"not base64 under a valid signature", hs256Segments("!!!", "***", refreshKey)},
	}
	seen := map[string]bool{}
	for _, tc := range tests {
		if seen[tc.name] {
			t.Fatalf("duplicate case name %q", tc.name)
		}
		seen[tc.name] = true
		t.Run(tc.name, func(t *testing.T) {
			got, err := e.k.ParseRefresh(tc.token)
			if err == nil {
				t.Fatalf("ParseRefresh succeeded with %+v, want an error", got)
			}
			t.Logf("rejected: %v", err)
			if !errors.Is(err, ErrInvalidToken) {
				t.Errorf("err = %v, want it to wrap ErrInvalidToken", err)
			}
			if got.ID != "" || got.ClientID != "" || got.FamilyID != "" {
				t.Errorf("claims returned with an error: %+v", got)
			}
		})
	}
}

func flipLast(seg string) string {
	c := byte('A')
	if seg[len(seg)-1] == 'A' {
		c = 'B'
	}
	return seg[:len(seg)-1] + string(c)
}

// longRefresh returns a refresh token of this issuer, validly signed, that
// is longer than MaxTokenLen. SignRefresh refuses to sign one, so it is
// signed here.
func longRefresh(t testing.TB, k *Keys) string {
	t.Helper()
	payload := claimsWith(t, t0, func(c map[string]any) { c["scope"] = strings.Repeat("scope ", MaxTokenLen/6+1) })
	tok := hs256(`{"alg":"HS256","typ":"`+TypeRefresh+`"}`, payload, k.cfg.RefreshKey)
	if len(tok) <= MaxTokenLen {
		t.Fatalf("token is %d bytes, want more than %d", len(tok), MaxTokenLen)
	}
	return tok
}

func BenchmarkSignRefresh(b *testing.B) {
	e := newTokenEnv(b)
	c := refreshClaims(e.now)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.k.SignRefresh(c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseRefresh(b *testing.B) {
	e := newTokenEnv(b)
	tok, err := e.k.SignRefresh(refreshClaims(e.now))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.k.ParseRefresh(tok); err != nil {
			b.Fatal(err)
		}
	}
}

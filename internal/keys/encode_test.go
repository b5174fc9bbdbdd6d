package keys

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/issuer-oauth/issuer/internal/jsonenc/jsonenctest"
	"github.com/issuer-oauth/issuer/internal/testutil"
	"github.com/issuer-oauth/issuer/verify"
)

// benchAlgs are the access-token algorithms, HS256 included.
var benchAlgs = []string{"ES256", "EdDSA", "RS256", "PS256", "HS256"}

// jwtSignAccess signs as SignAccess did before it encoded tokens itself:
// with jwt/v5, the header a map and the claims marshalled by reflection. It
// is the reference of the tests and the benchmarks.
func jwtSignAccess(k *Keys, c AccessClaims) (string, error) {
	s := k.current()
	c.Issuer = k.cfg.Issuer
	t := jwt.NewWithClaims(s.method, c)
	t.Header["typ"] = TypeAccess
	t.Header["kid"] = s.kid
	return t.SignedString(s.priv)
}

// jwtSignRefresh signs as SignRefresh did, with jwt/v5.
func jwtSignRefresh(k *Keys, c RefreshClaims) (string, error) {
	c.Issuer = k.cfg.Issuer
	c.Audience = jwt.ClaimStrings{k.cfg.Issuer}
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
	t.Header["typ"] = TypeRefresh
	return t.SignedString(k.cfg.RefreshKey)
}

// claimGen makes random claims, rich in the edge cases of JSON encoding.
type claimGen struct{ r *rand.Rand }

func newClaimGen() claimGen { return claimGen{rand.New(rand.NewPCG(1, 2))} }

func (g claimGen) string() string {
	switch g.r.IntN(6) {
	case 0:
		return ""
	case 1:
		return jsonenctest.Strings[g.r.IntN(len(jsonenctest.Strings))]
	case 2: // random bytes, often invalid UTF-8
		b := make([]byte, g.r.IntN(20))
		for i := range b {
			b[i] = byte(g.r.IntN(256))
		}
		return string(b)
	default: // a mix of pieces
		var sb strings.Builder
		for range g.r.IntN(8) {
			sb.WriteString(g.piece())
		}
		return sb.String()
	}
}

// validString is a random non-empty string of valid UTF-8.
func (g claimGen) validString() string {
	for {
		s := strings.ToValidUTF8(g.string(), "\ufffd")
		if s != "" {
			return s
		}
	}
}

func (g claimGen) piece() string {
	pieces := []string{"a", "Z09", " ", `"`, `\`, "/", "<", ">", "&", "\n", "\t", "\x00", "\x1f", "\x7f",
		"\u2028", "\u2029", "é", "日", "😀", "\ufffd", "\xff", "\xc3", "\xed\xa0\x80", "\u00e9\u0301"}
	return pieces[g.r.IntN(len(pieces))]
}

func (g claimGen) strings(elem func() string) []string {
	switch g.r.IntN(5) {
	case 0:
		return nil
	case 1:
		return []string{}
	case 2:
		return []string{elem()}
	default:
		ss := make([]string, 1+g.r.IntN(4))
		for i := range ss {
			ss[i] = elem()
		}
		return ss
	}
}

func (g claimGen) date() *jwt.NumericDate {
	switch g.r.IntN(8) {
	case 0:
		return nil
	case 1:
		return &jwt.NumericDate{} // the zero time
	case 2:
		return NumericDate(time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC))
	case 3:
		return &jwt.NumericDate{Time: time.Unix(-g.r.Int64N(1<<40), 0)}
	case 4: // not truncated: MarshalJSON truncates
		return &jwt.NumericDate{Time: time.Unix(g.r.Int64N(1<<34), g.r.Int64N(1e9))}
	case 5:
		return &jwt.NumericDate{Time: time.Unix(1<<62, 0)}
	default:
		return NumericDate(t0.Add(time.Duration(g.r.Int64N(int64(48 * time.Hour)))))
	}
}

func (g claimGen) registered() jwt.RegisteredClaims {
	return jwt.RegisteredClaims{
		Issuer:    g.string(), // replaced by the issuer
		Subject:   g.string(),
		Audience:  g.strings(g.string),
		ExpiresAt: g.date(),
		NotBefore: g.date(),
		IssuedAt:  g.date(),
		ID:        g.string(),
	}
}

func (g claimGen) access() AccessClaims {
	c := AccessClaims{RegisteredClaims: g.registered(), ClientID: g.string(), Scope: g.string(), TokenType: g.string(), FamilyID: g.string()}
	if g.r.IntN(2) == 0 {
		c.Confirmation = &Confirmation{JKT: g.string()} // a DPoP-bound token
		c.Status = &Status{StatusList: StatusListRef{Idx: g.r.Int64N(1 << 40), URI: g.string()}}
	}
	return c
}

func (g claimGen) refresh() RefreshClaims {
	return RefreshClaims{
		RegisteredClaims: g.registered(),
		ClientID:         g.string(),
		FamilyID:         g.string(),
		Scope:            g.string(),
		Resource:         g.strings(g.string),
		UserID:           g.string(),
		Username:         g.string(),
		UserGeneration:   g.r.Int64N(3) * g.r.Int64() * (1 - 2*g.r.Int64N(2)),
		ClientGeneration: g.r.Int64N(3) * g.r.Int64() * (1 - 2*g.r.Int64N(2)),
		FamilyStart:      g.r.Int64N(3) * g.r.Int64(),
	}
}

// segment returns the decoded segment i of a compact JWS.
func segment(t testing.TB, token string, i int) []byte {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d segments, want 3", len(parts))
	}
	b, err := b64.Strict().DecodeString(parts[i])
	if err != nil {
		t.Fatalf("segment %d: %v", i, err)
	}
	return b
}

// sameJWS reports how got differs from want, jwt/v5's token: their headers
// and claims must be the same JSON, byte for byte, and the same when
// decoded into maps. With a deterministic algorithm the signatures must be
// the same too.
func sameJWS(t testing.TB, got, want string, alg string) error {
	t.Helper()
	for i, name := range []string{"header", "claims"} {
		g, w := segment(t, got, i), segment(t, want, i)
		var gm, wm map[string]any
		if err := json.Unmarshal(g, &gm); err != nil {
			return fmt.Errorf("%s %s is not JSON: %v", name, g, err)
		}
		if err := json.Unmarshal(w, &wm); err != nil {
			return fmt.Errorf("jwt/v5 %s %s is not JSON: %v", name, w, err)
		}
		if !reflect.DeepEqual(gm, wm) {
			return fmt.Errorf("%s decodes to\n%v\nwant (jwt/v5)\n%v", name, gm, wm)
		}
		if !bytes.Equal(g, w) {
			return fmt.Errorf("%s = %s\nwant (jwt/v5) %s", name, g, w)
		}
	}
	if deterministic := alg == "EdDSA" || alg == "RS256" || alg == "HS256"; deterministic && got != want {
		return fmt.Errorf("token = %s\nwant (jwt/v5) %s", got, want)
	}
	return nil
}

// verifyJWT checks the signature of token with jwt/v5's parser, the
// algorithm pinned; the claims are compared elsewhere.
func verifyJWT(token string, claims jwt.Claims, method jwt.SigningMethod, key any) error {
	_, err := jwt.NewParser(
		jwt.WithValidMethods([]string{method.Alg()}),
		jwt.WithoutClaimsValidation(),
		jwt.WithStrictDecoding(),
	).ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return key, nil })
	return err
}

// TestSignMatchesJWT: for random and edge-case claims, SignAccess and
// SignRefresh write the tokens that jwt/v5 wrote, and jwt/v5 verifies them.
func TestSignMatchesJWT(t *testing.T) {
	for _, alg := range benchAlgs {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			k := mustNew(t, &memStore{}, testConfig(alg, testutil.NewClock(t0)))
			s := k.current()
			g := newClaimGen()
			n := 300
			if alg == "RS256" || alg == "PS256" {
				n = 60 // slow under -race
			}
			for i := range n {
				c := g.access()
				got, err := k.SignAccess(c)
				if err != nil {
					t.Fatalf("SignAccess(%+v): %v", c, err)
				}
				want, err := jwtSignAccess(k, c)
				if err != nil {
					t.Fatal(err)
				}
				if err := sameJWS(t, got, want, alg); err != nil {
					t.Fatalf("access token %d, claims %+v: %v", i, c, err)
				}
				if err := verifyJWT(got, &AccessClaims{}, s.method, s.pub); err != nil {
					t.Fatalf("access token %d: jwt/v5 rejects it: %v", i, err)
				}
			}
			if alg != "HS256" {
				return
			}
			for i := range n {
				c := g.refresh()
				got, err := k.SignRefresh(c)
				if err != nil {
					t.Fatalf("SignRefresh(%+v): %v", c, err)
				}
				want, err := jwtSignRefresh(k, c)
				if err != nil {
					t.Fatal(err)
				}
				if err := sameJWS(t, got, want, "HS256"); err != nil {
					t.Fatalf("refresh token %d, claims %+v: %v", i, c, err)
				}
				if err := verifyJWT(got, &RefreshClaims{}, jwt.SigningMethodHS256, k.cfg.RefreshKey); err != nil {
					t.Fatalf("refresh token %d: jwt/v5 rejects it: %v", i, err)
				}
			}
		})
	}
}

// TestSignMatchesJWTSettings: the encoding follows jwt/v5's package
// settings, should a program change them: one audience as a string, and
// fractional NumericDates.
func TestSignMatchesJWTSettings(t *testing.T) {
	// Not parallel: it changes package variables of jwt/v5.
	single, prec := jwt.MarshalSingleStringAsArray, jwt.TimePrecision
	t.Cleanup(func() { jwt.MarshalSingleStringAsArray, jwt.TimePrecision = single, prec })
	k := mustNew(t, &memStore{}, testConfig("HS256", testutil.NewClock(t0)))
	tests := []struct {
		single bool
		prec   time.Duration
	}{
		{false, time.Second},
		{true, time.Millisecond},
		{false, time.Microsecond},
		{true, time.Nanosecond},
		{true, 250 * time.Millisecond},
		{true, time.Minute},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("single as array %v, precision %v", tc.single, tc.prec), func(t *testing.T) {
			jwt.MarshalSingleStringAsArray, jwt.TimePrecision = tc.single, tc.prec
			g := newClaimGen()
			for i := range 200 {
				c := g.access()
				got, err := k.SignAccess(c)
				if err != nil {
					t.Fatal(err)
				}
				want, err := jwtSignAccess(k, c)
				if err != nil {
					t.Fatal(err)
				}
				if err := sameJWS(t, got, want, "HS256"); err != nil {
					t.Fatalf("access token %d, claims %+v: %v", i, c, err)
				}
			}
		})
	}
}

// TestSignRoundTrip: tokens with random valid claims pass ParseAccess,
// ParseRefresh and, for access tokens, the public verify package, which
// return the claims signed.
func TestSignRoundTrip(t *testing.T) {
	const audience = "https://api.example"
	for _, alg := range benchAlgs {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			c := testutil.NewClock(t0)
			k := mustNew(t, &memStore{}, testConfig(alg, c))
			s := k.current()
			var key *verify.Key
			var err error
			if s.symmetric() {
				key, err = verify.NewHMACKey(s.kid, s.priv.([]byte))
			} else {
				key, err = verify.NewKey(s.kid, alg, s.pub)
			}
			if err != nil {
				t.Fatal(err)
			}
			v, err := verify.New(testIssuer, audience, verify.WithKeys(key), verify.WithClock(c.Now))
			if err != nil {
				t.Fatal(err)
			}
			g := newClaimGen()
			for i := range 40 {
				in := AccessClaims{
					RegisteredClaims: jwt.RegisteredClaims{
						Subject:   g.validString(),
						Audience:  append(g.strings(g.validString), audience),
						ExpiresAt: NumericDate(t0.Add(time.Duration(1+g.r.IntN(3600)) * time.Second)),
						IssuedAt:  NumericDate(t0.Add(-time.Duration(g.r.IntN(3600)) * time.Second)),
						ID:        g.validString(),
					},
					ClientID: g.validString(),
					Scope:    strings.ToValidUTF8(g.string(), "\ufffd"),
				}
				if g.r.IntN(2) == 0 {
					in.NotBefore = in.IssuedAt
				}
				if g.r.IntN(2) == 0 {
					in.FamilyID = g.validString()
				}
				if g.r.IntN(2) == 0 {
					in.Status = &Status{StatusList: StatusListRef{Idx: g.r.Int64N(1 << 40), URI: g.validString()}}
				}
				tok, err := k.SignAccess(in)
				if err != nil {
					t.Fatal(err)
				}
				want := in
				want.Issuer = testIssuer
				got, err := k.ParseAccess(tok)
				if err != nil {
					t.Fatalf("token %d: ParseAccess: %v", i, err)
				}
				if sameDates(&got.RegisteredClaims, &want.RegisteredClaims); !reflect.DeepEqual(got, want) {
					t.Fatalf("token %d: ParseAccess = %+v, want %+v", i, got, want)
				}
				vc, err := v.Verify(context.Background(), tok)
				if err != nil {
					t.Fatalf("token %d: verify: %v", i, err)
				}
				if vc.Issuer != testIssuer || vc.Subject != in.Subject || vc.ClientID != in.ClientID || vc.ID != in.ID ||
					!slices.Equal(vc.Audience, in.Audience) || !slices.Equal(vc.Scopes, strings.Fields(in.Scope)) ||
					!vc.Expiry.Equal(in.ExpiresAt.Time) || !vc.IssuedAt.Equal(in.IssuedAt.Time) ||
					(in.NotBefore != nil) != !vc.NotBefore.IsZero() {
					t.Fatalf("token %d: verify = %+v, want %+v", i, vc, in)
				}
			}
			if alg != "HS256" {
				return
			}
			for i := range 40 {
				in := RefreshClaims{
					RegisteredClaims: jwt.RegisteredClaims{
						ExpiresAt: NumericDate(t0.Add(time.Duration(1+g.r.IntN(3600)) * time.Second)),
						IssuedAt:  NumericDate(t0.Add(-time.Duration(g.r.IntN(3600)) * time.Second)),
						ID:        g.validString(),
					},
					ClientID: g.validString(),
					FamilyID: g.validString(),
					Scope:    strings.ToValidUTF8(g.string(), "\ufffd"),
					Resource: g.strings(g.validString),
				}
				in.Subject = in.ClientID
				if len(in.Resource) == 0 {
					in.Resource = nil // omitted, so decoded as nil
				}
				tok, err := k.SignRefresh(in)
				if err != nil {
					t.Fatal(err)
				}
				want := in
				want.Issuer, want.Audience = testIssuer, jwt.ClaimStrings{testIssuer}
				got, err := k.ParseRefresh(tok)
				if err != nil {
					t.Fatalf("token %d: ParseRefresh: %v", i, err)
				}
				if sameDates(&got.RegisteredClaims, &want.RegisteredClaims); !reflect.DeepEqual(got, want) {
					t.Fatalf("token %d: ParseRefresh = %+v, want %+v", i, got, want)
				}
			}
		})
	}
}

// sameDates replaces the dates of got by those of want when they are the
// same instant (a decoded date is in time.Local), so that reflect.DeepEqual
// compares the rest.
func sameDates(got, want *jwt.RegisteredClaims) {
	for _, d := range []struct{ got, want **jwt.NumericDate }{
		{&got.ExpiresAt, &want.ExpiresAt}, {&got.NotBefore, &want.NotBefore}, {&got.IssuedAt, &want.IssuedAt},
	} {
		if *d.got != nil && *d.want != nil && (*d.got).Equal((*d.want).Time) {
			*d.got = *d.want
		}
	}
}

// TestSignConcurrent: goroutines signing with one HS256 key, sharing its
// pooled HMACs and the parsers, each get their own token.
func TestSignConcurrent(t *testing.T) {
	k := mustNew(t, &memStore{}, testConfig("HS256", testutil.NewClock(t0)))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				jti := fmt.Sprintf("jti-%d-%d", g, i)
				rc := refreshClaims(t0)
				rc.ID, rc.Scope = jti, strings.Repeat("s", i*40) // buffers of every size
				rt, err := k.SignRefresh(rc)
				if err != nil {
					t.Error(err)
					return
				}
				ac := accessClaims(t0)
				ac.ID = jti
				at, err := k.SignAccess(ac)
				if err != nil {
					t.Error(err)
					return
				}
				if got, err := k.ParseRefresh(rt); err != nil || got.ID != jti {
					t.Errorf("ParseRefresh = %q, %v; want jti %q", got.ID, err, jti)
				}
				if got, err := k.ParseAccess(at); err != nil || got.ID != jti {
					t.Errorf("ParseAccess = %q, %v; want jti %q", got.ID, err, jti)
				}
			}
		})
	}
	wg.Wait()
}

// TestParserClock: the parsers built by New use the injected clock.
func TestParserClock(t *testing.T) {
	c := testutil.NewClock(t0)
	k := mustNew(t, &memStore{}, testConfig("HS256", c))
	in := accessClaims(t0)
	tok, err := k.SignAccess(in)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.ParseAccess(tok); err != nil {
		t.Fatalf("ParseAccess at issue: %v", err)
	}
	c.Set(in.ExpiresAt.Time)
	if _, err := k.ParseAccess(tok); err == nil {
		t.Fatalf("ParseAccess at exp succeeded, want an error")
	}
}

func FuzzSignAccess(f *testing.F) {
	f.Add("client-1", "https://api.example", "", uint8(1), int64(1740830400), int64(0), int64(1740830100), "jti-1", "client-1", "read write", "fam-1", uint8(0b101))
	f.Add("\xff<\u2028>", "\x00", "&\"\\", uint8(2), int64(-1), int64(math.MaxInt64), int64(math.MinInt64), "", "", "", "", uint8(0b111))
	k := mustNew(f, &memStore{}, testConfig("HS256", testutil.NewClock(t0)))
	s := k.current()
	f.Fuzz(func(t *testing.T, sub, aud0, aud1 string, nAud uint8, exp, nbf, iat int64, jti, clientID, scope, fid string, dates uint8) {
		c := AccessClaims{
			RegisteredClaims: jwt.RegisteredClaims{Subject: sub, ID: jti},
			ClientID:         clientID,
			Scope:            scope,
			FamilyID:         fid,
		}
		if dates&8 != 0 {
			c.Confirmation = &Confirmation{JKT: fid} // a DPoP-bound token
		}
		switch nAud % 4 {
		case 1:
			c.Audience = jwt.ClaimStrings{aud0}
		case 2:
			c.Audience = jwt.ClaimStrings{aud0, aud1}
		case 3:
			c.Audience = jwt.ClaimStrings{}
		}
		if dates&1 != 0 {
			c.ExpiresAt = &jwt.NumericDate{Time: time.Unix(exp, exp%1e9)}
		}
		if dates&2 != 0 {
			c.NotBefore = &jwt.NumericDate{Time: time.Unix(nbf, 0)}
		}
		if dates&4 != 0 {
			c.IssuedAt = &jwt.NumericDate{Time: time.Unix(iat, 0)}
		}
		got, err := k.SignAccess(c)
		if err != nil {
			t.Fatal(err)
		}
		want, err := jwtSignAccess(k, c)
		if err != nil {
			t.Fatal(err)
		}
		if err := sameJWS(t, got, want, "HS256"); err != nil {
			t.Fatalf("claims %+v: %v", c, err)
		}
		if err := verifyJWT(got, &AccessClaims{}, s.method, s.pub); err != nil {
			t.Fatalf("jwt/v5 rejects the token: %v", err)
		}
	})
}

// The benchmarks of jwt/v5's encoding, the reference of SignAccess and
// SignRefresh, and of parsers built for every token, the reference of
// ParseAccess and ParseRefresh:
//
//	go test -run '^$' -bench 'Sign|Parse' -benchmem -count 5 ./internal/keys

func BenchmarkSignAccessJWTv5(b *testing.B) {
	for _, alg := range benchAlgs {
		b.Run(alg, func(b *testing.B) {
			c := testutil.NewClock(t0)
			k := mustNew(b, &memStore{}, testConfig(alg, c))
			claims := accessClaims(c.Now())
			b.ReportAllocs()
			for b.Loop() {
				if _, err := jwtSignAccess(k, claims); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkSignRefreshJWTv5(b *testing.B) {
	e := newTokenEnv(b)
	c := refreshClaims(e.now)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := jwtSignRefresh(e.k, c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseRefreshNewParser(b *testing.B) {
	e := newTokenEnv(b)
	tok, err := e.k.SignRefresh(refreshClaims(e.now))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.k.parseRefresh(e.k.newRefreshParser(), tok); err != nil {
			b.Fatal(err)
		}
	}
}

func benchmarkParseAccess(b *testing.B, parser func(*Keys) *jwt.Parser) {
	for _, alg := range benchAlgs {
		b.Run(alg, func(b *testing.B) {
			c := testutil.NewClock(t0)
			k := mustNew(b, &memStore{}, testConfig(alg, c))
			tok, err := k.SignAccess(accessClaims(c.Now()))
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := k.parseAccess(parser(k), tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkParseAccess(b *testing.B) {
	benchmarkParseAccess(b, func(k *Keys) *jwt.Parser { return k.accessParser })
}

func BenchmarkParseAccessNewParser(b *testing.B) {
	benchmarkParseAccess(b, (*Keys).newAccessParser)
}

// TestExtraClaims: the Extra claims of an access token are encoded after the
// others, in their order, with encoding/json's escaping, and ParseAccess
// gives them back (ordered by name).
func TestExtraClaims(t *testing.T) {
	k := mustNew(t, &memStore{}, testConfig("ES256", testutil.NewClock(t0)))
	c := AccessClaims{
		RegisteredClaims: jwt.RegisteredClaims{Subject: "u1", ID: "j1", IssuedAt: NumericDate(t0), ExpiresAt: NumericDate(t0.Add(time.Minute))},
		ClientID:         "c1",
		TokenType:        "access",
		Extra:            []Claim{{"user_id", "u1"}, {"email", "a\"<b>@example.com"}, {"name", "\u2028é"}},
	}
	tok, err := k.SignAccess(c)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	want := `"token_type":"access","user_id":"u1","email":"a\"\u003cb\u003e@example.com","name":"\u2028é"}`
	if !strings.HasSuffix(string(payload), want) {
		t.Errorf("claims = %s\nwant them to end with %s", payload, want)
	}
	var m map[string]any
	if err := json.Unmarshal(payload, &m); err != nil || m["email"] != "a\"<b>@example.com" {
		t.Errorf("claims do not decode: %v %v", m, err)
	}
	got, err := k.ParseAccess(tok)
	if err != nil {
		t.Fatal(err)
	}
	wantExtra := []Claim{{"email", "a\"<b>@example.com"}, {"name", "\u2028é"}, {"user_id", "u1"}}
	if !reflect.DeepEqual(got.Extra, wantExtra) || got.TokenType != "access" || got.Subject != "u1" {
		t.Errorf("ParseAccess = %+v, want Extra %v", got, wantExtra)
	}
}

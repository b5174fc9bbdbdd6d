package grant

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// encodeToken is what the token endpoint wrote before writeToken:
// encoding/json's Encoder, which writeToken must match byte for byte.
func encodeToken(t *testing.T, resp *tokenResponse) string {
	t.Helper()
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(resp); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// randomJSONText draws from an alphabet heavy in what JSON must escape.
func randomJSONText(r *rand.Rand) string {
	alphabet := []string{"a", "Z", "0", "-", "_", ".", " ", ":", "/", `"`, `\`, "<", ">", "&", "'",
		"\x00", "\x1f", "\t", "\n", "\r", "\x7f", "é", "日", "\u2028", "\u2029", "🎉", "\xff", "\xc3", "\ufffd"}
	var b strings.Builder
	for range r.IntN(16) {
		b.WriteString(alphabet[r.IntN(len(alphabet))])
	}
	return b.String()
}

func TestWriteTokenMatchesJSON(t *testing.T) {
	jwt := "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJzdmMifQ.c2lnbmF0dXJlLV8"
	cases := []tokenResponse{
		{AccessToken: jwt, TokenType: "Bearer", ExpiresIn: 300},
		{AccessToken: jwt, TokenType: "Bearer", ExpiresIn: 300, RefreshToken: jwt, Scope: "read write"},
		{AccessToken: jwt, TokenType: "Bearer", ExpiresIn: 300, Scope: "read"},
		{AccessToken: jwt, TokenType: "Bearer", ExpiresIn: 300, RefreshToken: jwt},
		{},
		{ExpiresIn: -1},
		{ExpiresIn: math.MaxInt64},
		{ExpiresIn: math.MinInt64},
		// scope-tokens may hold what encoding/json escapes for HTML
		{AccessToken: jwt, TokenType: "Bearer", Scope: "a<b c>d e&f"},
		{AccessToken: `q"b\s`, TokenType: "\x00\x1f\t\n\r\x7f", RefreshToken: "é日🎉", Scope: "\u2028\u2029"},
		{AccessToken: "\xff", TokenType: "a\xc3", RefreshToken: "\xed\xa0\x80", Scope: "\ufffd"},
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		cases = append(cases, tokenResponse{
			AccessToken:  randomJSONText(r),
			TokenType:    randomJSONText(r),
			ExpiresIn:    r.Int64() - math.MaxInt64/2,
			RefreshToken: randomJSONText(r),
			Scope:        randomJSONText(r),
		})
	}
	for _, resp := range cases {
		want := encodeToken(t, &resp)
		rec := httptest.NewRecorder()
		writeToken(rec, &resp)
		if got := rec.Body.String(); got != want {
			t.Errorf("writeToken(%+v) wrote\n%s\nwant\n%s", resp, got, want)
		}
		if rec.Code != http.StatusOK {
			t.Errorf("writeToken(%+v): status %d, want 200", resp, rec.Code)
		}
		for k, v := range map[string]string{
			"Content-Type":   "application/json",
			"Cache-Control":  "no-store",
			"Pragma":         "no-cache",
			"Content-Length": strconv.Itoa(len(want)),
		} {
			if got := rec.Header().Values(k); len(got) != 1 || got[0] != v {
				t.Errorf("writeToken(%+v): header %s = %q, want %q", resp, k, got, v)
			}
		}
	}
}

// FuzzWriteToken checks writeToken against encoding/json on any strings.
func FuzzWriteToken(f *testing.F) {
	f.Add("eyJ.eyJ.sig", "Bearer", int64(300), "eyJ.eyJ.sig", "read write")
	f.Add(`"\`, "<>&", int64(-1), "\u2028", "\xff")
	f.Fuzz(func(t *testing.T, access, typ string, expiresIn int64, refresh, scope string) {
		resp := tokenResponse{AccessToken: access, TokenType: typ, ExpiresIn: expiresIn, RefreshToken: refresh, Scope: scope}
		rec := httptest.NewRecorder()
		writeToken(rec, &resp)
		if got, want := rec.Body.String(), encodeToken(t, &resp); got != want {
			t.Errorf("writeToken(%+v) wrote %q, want %q", resp, got, want)
		}
	})
}

// discard is a ResponseWriter that keeps nothing, so that a benchmark
// measures the writer and not the recorder.
type discard struct{ h http.Header }

func (d discard) Header() http.Header       { return d.h }
func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) WriteHeader(int)             {}

// BenchmarkWriteToken compares writeToken with the encoding/json Encoder it
// replaced (writeJSON), on a response of the size ES256 tokens have.
func BenchmarkWriteToken(b *testing.B) {
	tok := strings.Repeat("eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIn0", 8) + "." + strings.Repeat("c2ln", 20)
	resp := &tokenResponse{AccessToken: tok, TokenType: "Bearer", ExpiresIn: 300, RefreshToken: tok, Scope: "read write"}
	for _, bc := range []struct {
		name  string
		write func(http.ResponseWriter, *tokenResponse)
	}{
		{"encoding-json", func(w http.ResponseWriter, resp *tokenResponse) { writeJSON(w, resp) }},
		{"append", writeToken},
	} {
		b.Run(bc.name, func(b *testing.B) {
			w := discard{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				bc.write(w, resp)
			}
		})
	}
}

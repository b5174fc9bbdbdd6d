package jsonenc_test

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/issuer-oauth/issuer/internal/jsonenc"
)

// edgeStrings are edge cases of JSON string encoding.
var edgeStrings = []string{
	"",
	"plain ascii",
	`"quoted" and \backslashed\`,
	"\x00\x01\x07\x08\x09\x0a\x0b\x0c\x0d\x1b\x1f\x20\x7f",
	"<script>alert('&amp;')</script>",
	"line\u2028para\u2029end",
	"é日本語😀",
	"\ufffd valid replacement character",
	"\xff",
	"a\xffb\xfe",
	"\xc3",                 // truncated two-byte sequence
	"\xe6\x97",             // truncated three-byte sequence
	"\xed\xa0\x80",         // an encoded surrogate
	"\xc0\xaf",             // overlong '/'
	"\xf4\x90\x80\x80",     // beyond U+10FFFF
	"\xe2\x80\xa8\xe2\x80", // U+2028 then a truncated one
	strings.Repeat("long ", 200),
}

// marshalString is encoding/json's encoding of s.
func marshalString(t testing.TB, s string) []byte {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAppendString(t *testing.T) {
	all := edgeStrings
	for b := range 256 {
		all = append(all, string([]byte{byte(b)}), "x"+string([]byte{byte(b)})+"y")
	}
	for r := range rune(0x3000) {
		all = append(all, string(r))
	}
	for _, s := range all {
		got, want := jsonenc.AppendString([]byte("prefix"), s), append([]byte("prefix"), marshalString(t, s)...)
		if !bytes.Equal(got, want) {
			t.Errorf("jsonenc.AppendString(%q) = %s, want %s", s, got, want)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range edgeStrings {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := jsonenc.AppendString(nil, s), marshalString(t, s); !bytes.Equal(got, want) {
			t.Errorf("jsonenc.AppendString(%q) = %s, want %s", s, got, want)
		}
	})
}

func TestAppendStrings(t *testing.T) {
	lists := [][]string{nil, {}, {""}, {"read"}, {"read", "write"}, edgeStrings}
	r := rand.New(rand.NewPCG(3, 4))
	for range 500 {
		l := make([]string, r.IntN(4))
		for i := range l {
			l[i] = edgeStrings[r.IntN(len(edgeStrings))]
		}
		lists = append(lists, l)
	}
	for _, l := range lists {
		want, err := json.Marshal(l)
		if err != nil {
			t.Fatal(err)
		}
		if got := jsonenc.AppendStrings([]byte("prefix"), l); !bytes.Equal(got, append([]byte("prefix"), want...)) {
			t.Errorf("AppendStrings(%q) = %s, want prefix%s", l, got, want)
		}
	}
}

func TestPlain(t *testing.T) {
	all := append([]string{}, edgeStrings...)
	for b := range 256 {
		all = append(all, string([]byte{byte(b)}), "x"+string([]byte{byte(b)})+"y")
	}
	for _, s := range all {
		ascii := strings.IndexFunc(s, func(r rune) bool { return r >= 0x80 }) < 0
		want := ascii && string(marshalString(t, s)) == `"`+s+`"`
		if got := jsonenc.Plain(s); got != want {
			t.Errorf("Plain(%q) = %v, want %v", s, got, want)
		}
	}
}

package jsonenc_test

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/issuer-oauth/issuer/internal/jsonenc"
	"github.com/issuer-oauth/issuer/internal/jsonenc/jsonenctest"
)

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
	all := jsonenctest.Strings
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
	for _, s := range jsonenctest.Strings {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := jsonenc.AppendString(nil, s), marshalString(t, s); !bytes.Equal(got, want) {
			t.Errorf("jsonenc.AppendString(%q) = %s, want %s", s, got, want)
		}
	})
}

func TestAppendStrings(t *testing.T) {
	lists := [][]string{nil, {}, {""}, {"read"}, {"read", "write"}, jsonenctest.Strings}
	r := rand.New(rand.NewPCG(3, 4))
	for range 500 {
		l := make([]string, r.IntN(4))
		for i := range l {
			l[i] = jsonenctest.Strings[r.IntN(len(jsonenctest.Strings))]
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
	all := append([]string{}, jsonenctest.Strings...)
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

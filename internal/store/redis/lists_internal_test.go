package redis

import (
	"encoding/json"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/issuer-oauth/issuer/internal/jsonenc"
)

// listCases are lists whose strings need no escaping, and lists whose
// strings need every kind of escaping encoding/json does.
var listCases = [][]string{
	nil,
	{},
	{""},
	{"read"},
	{"read", "offline_access"},
	{"https://api.example.com", "urn:example:resource"},
	{" spaced ", "a,b", `","`, "[x]", "{}", "null"},
	{`quote"`, `back\slash`, "tab\t", "nl\n", "nul\x00", "del\x7f"},
	{"<script>", "a&b", "x>y"},
	{"é", "日本", "\u2028", "\u2029", "emoji 🎉"},
	{"\xff", "a\xc3", "\xed\xa0\x80"}, // invalid UTF-8
}

// randomString draws from an alphabet heavy in what JSON must escape.
func randomString(r *rand.Rand) string {
	alphabet := []string{"a", "Z", "0", " ", ",", "[", "]", `"`, `\`, "/", "<", ">", "&",
		"\x00", "\x1f", "\t", "\n", "\x7f", "é", "\u2028", "🎉", "\xff", "\xc3"}
	var b strings.Builder
	for range r.IntN(12) {
		b.WriteString(alphabet[r.IntN(len(alphabet))])
	}
	return b.String()
}

func TestAppendListMatchesJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	cases := slices.Clone(listCases)
	for range 2000 {
		list := make([]string, r.IntN(4))
		for i := range list {
			list[i] = randomString(r)
		}
		cases = append(cases, list)
	}
	for _, list := range cases {
		want, err := json.Marshal(list)
		if err != nil {
			t.Fatal(err)
		}
		if got := jsonenc.AppendStrings(nil, list); string(got) != string(want) {
			t.Errorf("jsonenc.AppendStrings(%q) = %s, want %s", list, got, want)
		}
		// What AppendStrings wrote decodes to the list, as encoding/json
		// decodes it.
		checkDecodeList(t, string(want))
	}
}

func TestDecodeListMatchesJSON(t *testing.T) {
	for _, s := range []string{
		"", "null", "[]", `[""]`, `["a"]`, `["a","b"]`, `["a", "b"]`, ` ["a"]`, `["a"] `,
		`["a",]`, `[,"a"]`, `["a""b"]`, `["a"]]`, `[["a"]]`, `["a\"b"]`, `["\u0041"]`, `["a\/b"]`,
		`[1]`, `{}`, `"a"`, "nul", "[", "]", `["`, `["a`, `["a"`, "[\"\xff\"]", "[\"\t\"]",
		`["é"]`, `["<&>"]`, "[null]", `[null,"a"]`,
	} {
		checkDecodeList(t, s)
	}
}

// FuzzDecodeList checks that decodeList agrees with encoding/json on any
// input: what Redis holds may have been written by any version.
func FuzzDecodeList(f *testing.F) {
	for _, list := range listCases {
		b, _ := json.Marshal(list)
		f.Add(string(b))
	}
	f.Add(`["a",]`)
	f.Add(`[ "a" ]`)
	f.Fuzz(checkDecodeList)
}

func checkDecodeList(t *testing.T, s string) {
	t.Helper()
	var want []string
	wantErr := json.Unmarshal([]byte(s), &want)
	got, err := decodeList(s)
	switch {
	case (err != nil) != (wantErr != nil):
		t.Errorf("decodeList(%q) error = %v, want %v", s, err, wantErr)
	case err == nil && (!slices.Equal(got, want) || (got == nil) != (want == nil)):
		t.Errorf("decodeList(%q) = %#v, want %#v", s, got, want)
	}
}

func BenchmarkLists(b *testing.B) {
	scopes, audience := []string{"read", "write"}, []string{"https://api.example.com"}
	b.Run("encode/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = json.Marshal(scopes)
			_, _ = json.Marshal(audience)
		}
	})
	b.Run("encode/append", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			lists := jsonenc.AppendStrings(make([]byte, 0, listSize(scopes)+listSize(audience)), scopes)
			_ = jsonenc.AppendStrings(lists, audience)
		}
	})
	s, a := string(jsonenc.AppendStrings(nil, scopes)), string(jsonenc.AppendStrings(nil, audience))
	b.Run("decode/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var x, y []string
			_ = json.Unmarshal([]byte(s), &x)
			_ = json.Unmarshal([]byte(a), &y)
		}
	})
	b.Run("decode/plain", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = decodeList(s)
			_, _ = decodeList(a)
		}
	})
}

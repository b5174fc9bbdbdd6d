package oauth

import (
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestValidScopeToken(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"read", true},
		{"api:read", true},
		{"!#$%&'()*+,-./09:;<=>?@AZ[]^_`az{|}~", true},
		{strings.Repeat("a", 128), true},
		{"", false},
		{strings.Repeat("a", 129), false},
		{"a b", false},
		{"a\tb", false},
		{"a\"b", false},
		{"a\\b", false},
		{"a\x7f", false},
		{"a\x00", false},
		{"é", false},
		{"\xff", false},
	} {
		if got := ValidScopeToken(tc.in); got != tc.want {
			t.Errorf("ValidScopeToken(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestParseScope(t *testing.T) {
	for _, tc := range []struct {
		in     string
		want   []string
		wantOK bool
	}{
		{"", nil, true},
		{"   ", nil, true},
		{"read", []string{"read"}, true},
		{"read write", []string{"read", "write"}, true},
		{"  write   read ", []string{"write", "read"}, true},
		{"read write read write", []string{"read", "write"}, true},
		{"read\twrite", nil, false},
		{"read\nwrite", nil, false},
		{`read "write"`, nil, false},
		{"read wr\\ite", nil, false},
		{"read " + strings.Repeat("x", 129), nil, false},
		{"réad", nil, false},
	} {
		got, ok := ParseScope(tc.in)
		if ok != tc.wantOK || !slices.Equal(got, tc.want) {
			t.Errorf("ParseScope(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.wantOK)
		}
	}
}

// TestParseScopeLong parses a scope of the largest body the token endpoint
// takes by default (64 KiB): thousands of distinct tokens, all kept, in
// order. Deduplicating with a linear search made this cost about a third of
// a second of CPU per request.
func TestParseScopeLong(t *testing.T) {
	var b strings.Builder
	var want []string
	for i := 0; b.Len() < 64<<10; i++ {
		tok := strconv.FormatInt(int64(i), 36)
		b.WriteString(tok + " " + tok + " ")
		want = append(want, tok)
	}
	got, ok := ParseScope(b.String())
	if !ok || !slices.Equal(got, want) {
		t.Errorf("ParseScope(%d distinct tokens, each twice) = %d tokens, %v; want %d, true", len(want), len(got), ok, len(want))
	}
}

func TestFormatScope(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{nil, ""},
		{[]string{"read"}, "read"},
		{[]string{"read", "write"}, "read write"},
	} {
		if got := FormatScope(tc.in); got != tc.want {
			t.Errorf("FormatScope(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzParseScope: a scope that parses is a list of distinct valid tokens,
// and its formatted form parses to the same list.
func FuzzParseScope(f *testing.F) {
	for _, s := range []string{"", "read", "read write read", "  a  b ", "a\tb", `a"b`, "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		scopes, ok := ParseScope(s)
		if !ok {
			return
		}
		seen := map[string]bool{}
		for _, tok := range scopes {
			if !ValidScopeToken(tok) || seen[tok] {
				t.Fatalf("ParseScope(%q) = %q: invalid or repeated token %q", s, scopes, tok)
			}
			seen[tok] = true
		}
		again, ok := ParseScope(FormatScope(scopes))
		if !ok || !slices.Equal(again, scopes) {
			t.Fatalf("ParseScope(FormatScope(%q)) = %q, %v", scopes, again, ok)
		}
	})
}

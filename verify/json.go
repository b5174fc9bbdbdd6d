package verify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// maxMembers bounds the number of members of a token's header or claims
// set.
const maxMembers = 100

// checkUnique checks that the header and the claims set of raw, a token the
// JWT parser has decoded, have no duplicate member names. JSON parsers
// disagree on which of two equal names wins (Go's keeps the last), and
// encoding/json matches names to struct fields ignoring case, so names are
// compared ignoring case.
func checkUnique(raw string) error {
	h, rest, _ := strings.Cut(raw, ".")
	p, _, _ := strings.Cut(rest, ".")
	var buf [1024]byte
	for i, seg := range [2]string{h, p} {
		b := buf[:0]
		if n := b64.DecodedLen(len(seg)); n > len(buf) {
			b = make([]byte, 0, n)
		}
		b, err := b64.AppendDecode(b, []byte(seg))
		if err == nil {
			err = uniqueMembers(b)
		}
		if err != nil {
			return fmt.Errorf("%w: %s: %w", ErrMalformed, [2]string{"header", "claims"}[i], err)
		}
	}
	return nil
}

// uniqueMembers checks that b, valid JSON, is an object with at most
// maxMembers members whose names differ (ignoring case).
func uniqueMembers(b []byte) error {
	var stack [32][]byte
	names := stack[:0]
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return errNotObject
	}
	i++
	for {
		i = skipSpace(b, i)
		if i >= len(b) {
			return errSyntax
		}
		switch b[i] {
		case '}':
			return nil
		case ',':
			i++
			continue
		case '"':
		default:
			return errSyntax
		}
		end, special := skipString(b, i)
		if end < 0 {
			return errSyntax
		}
		name := b[i+1 : end-1]
		if special {
			var s string
			if err := json.Unmarshal(b[i:end], &s); err != nil {
				return errSyntax
			}
			name = []byte(s)
		}
		for _, n := range names {
			if bytes.EqualFold(n, name) {
				return fmt.Errorf("duplicate member %.32q", name)
			}
		}
		if len(names) == maxMembers {
			return fmt.Errorf("more than %d members", maxMembers)
		}
		names = append(names, name)
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return errSyntax
		}
		if i = skipValue(b, i+1); i < 0 {
			return errSyntax
		}
	}
}

type jsonError string

func (e jsonError) Error() string { return string(e) }

const (
	errNotObject = jsonError("not a JSON object")
	errSyntax    = jsonError("invalid JSON")
)

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i] (a
// quote), or -1, and whether the string holds escapes or non-ASCII bytes
// (which encoding/json may rewrite: invalid UTF-8 becomes U+FFFD).
func skipString(b []byte, i int) (int, bool) {
	special := false
	for i++; i < len(b); i++ {
		switch c := b[i]; {
		case c == '\\':
			special = true
			i++
		case c == '"':
			return i + 1, special
		case c >= 0x80:
			special = true
		}
	}
	return -1, false
}

// skipValue returns the index after the value starting at or after b[i],
// or -1.
func skipValue(b []byte, i int) int {
	i = skipSpace(b, i)
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		end, _ := skipString(b, i)
		return end
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				end, _ := skipString(b, i)
				if end < 0 {
					return -1
				}
				i = end
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return -1
	}
	for i < len(b) { // number, true, false or null
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
		i++
	}
	return i
}

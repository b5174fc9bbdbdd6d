// Package jsonenc appends JSON strings and string arrays without
// reflection, byte for byte as encoding/json marshals them. The hot paths
// use it: the claims of every token (internal/keys) and the token response
// (internal/grant).
package jsonenc

import "unicode/utf8"

// AppendStrings appends ss as encoding/json marshals a []string: null for
// nil, else an array without white space.
func AppendStrings(dst []byte, ss []string) []byte {
	if ss == nil {
		return append(dst, "null"...)
	}
	dst = append(dst, '[')
	for i, s := range ss {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendString(dst, s)
	}
	return append(dst, ']')
}

// jsonSafe holds true for the ASCII bytes that encoding/json writes as they
// are (with its default HTML escaping): not the control characters, '"',
// '\\', '<', '>' or '&'.
var jsonSafe = func() (safe [utf8.RuneSelf]bool) {
	for b := range safe {
		safe[b] = b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&'
	}
	return safe
}()

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string, byte for byte as
// encoding/json marshals it: '"' and '\\' escaped with a backslash, the
// control characters as \b, \f, \n, \r, \t or \u00XX, '<', '>' and '&' as
// \u003c, \u003e and \u0026, U+2028 and U+2029 as \u2028 and \u2029, and
// every byte that is not part of valid UTF-8 as \ufffd.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if jsonSafe[b] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// Plain reports whether s is ASCII that encoding/json writes as s between
// quotes: no control characters, no '"', '\\', '<', '>' or '&'. A decoder may then
// take the bytes between the quotes as the string.
func Plain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= utf8.RuneSelf || !jsonSafe[c] {
			return false
		}
	}
	return true
}

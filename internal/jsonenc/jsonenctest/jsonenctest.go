// Package jsonenctest holds edge cases of JSON string encoding for the
// tests that compare hand-written JSON with encoding/json's.
package jsonenctest

import "strings"

// Strings are edge cases of JSON string encoding: escapes, HTML
// characters, line separators, non-ASCII and invalid UTF-8.
var Strings = []string{
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

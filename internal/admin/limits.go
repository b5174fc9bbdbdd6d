package admin

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"unicode"

	"github.com/issuer-oauth/issuer/internal/jsonenc"
	"github.com/issuer-oauth/issuer/internal/oauth"
)

// scopeSyntax says what a scope must look like (RFC 6749 §3.3; the
// length of a token is oauth.ValidScopeToken's bound).
const scopeSyntax = "scope: scope tokens are space-separated printable ASCII without quotes or backslashes, each at most 128 characters"

// Limits of a client's metadata and of a user's scope and claims (docs/admin.md,
// "Admin API and CLI"). A client's scope and audiences travel in every
// access and refresh token, a user's claims in every access token of the
// password grant, and a token must stay within keys.MaxTokenLen (8 KiB),
// the longest that introspection and the refresh grant parse, and the
// verify package's DefaultMaxTokenSize. Sizes in bytes are counted as the
// token's JSON encodes the strings (encodedLen).
//
// The worst case is a DPoP-bound access token of the password grant with
// a status-list claim, for a client with every limit reached, all its
// scopes granted and all its audiences requested with resource= (RFC
// 8707), with 20 user claims beside SimpleJWT's token_type and user id
// claim (a 64-byte name), signed with a 4096-bit RSA key (a 683-character
// signature), an issuer URL of 128 bytes and a 64-byte client id (the
// admin API's are 32):
//
//	header   {"alg":"RS256","kid":<43>,"typ":"at+jwt"}          82 bytes
//	claims   names, punctuation, iss 128, sub 32, exp, iat,
//	         jti 22, client_id 64, token_type                 365
//	         scope 640, aud 512 + 29 (quotes, commas),
//	         user claims 640 + 20 × 6, user id claim 102     2043
//	         cnf {"jkt":<43>} 60, status with its URI
//	         (the issuer URL, /statuslists/, a list id) 230   290
//	                                                           2698 bytes
//	token    110 + 1 + 3598 (base64url) + 1 + 683             4393 bytes
//
// Over 4096 bytes, which is why MaxTokenLen is 8 KiB; under 4.5 KB, which
// an Authorization header carries through the usual proxy buffers (8 KiB
// for a header line in Nginx by default). The refresh token carries the
// scope, the audiences, the issuer twice and the username (150
// characters, up to 900 bytes encoded), the client's generation and the
// family's start (44 bytes at most) but no claims and an HMAC: 3758 bytes
// at most. The signing check (keys.ErrTooLong) refuses whatever still
// does not fit, such as a very long issuer URL.
const (
	maxClientNameLen = 200 // characters; not in tokens
	maxScopeTokens   = 100
	maxScopeBytes    = 640
	maxAudiences     = 10
	maxAudienceLen   = 256 // characters
	maxAudienceBytes = 512 // all the audiences together
	maxClaimsBytes   = 640 // all the names and values together
)

// encodedLen is the length of s as a JSON string in a token, without the
// quotes: '<', '>', '&' and control characters take 6 bytes, '"' and '\\'
// 2, other characters their UTF-8 bytes.
func encodedLen(s string) int {
	var buf [256]byte
	return len(jsonenc.AppendString(buf[:0], s)) - 2
}

// printable reports whether every rune of s is a letter, mark, number,
// punctuation, symbol or the ASCII space (unicode.IsPrint); with spaces
// false, not the space either. That leaves out the control characters and
// the format characters, among them the bidirectional controls U+200E,
// U+200F, U+202A–U+202E and U+2066–U+2069 (Unicode Standard Annex #9),
// which make a name display as another, reordered one.
func printable(s string, spaces bool) bool {
	for _, r := range s {
		if !unicode.IsPrint(r) || !spaces && r == ' ' {
			return false
		}
	}
	return true
}

// checkScope parses a scope (RFC 6749 §3.3) and returns what is wrong
// with it: its syntax, or its size.
func checkScope(scope string) ([]string, []string) {
	scopes, ok := oauth.ParseScope(scope)
	if !ok {
		return scopes, []string{scopeSyntax}
	}
	var problems []string
	if len(scopes) > maxScopeTokens {
		problems = append(problems, fmt.Sprintf("scope: at most %d scope tokens, not %d (every token carries them)", maxScopeTokens, len(scopes)))
	}
	if n := encodedLen(oauth.FormatScope(scopes)); n > maxScopeBytes {
		problems = append(problems, fmt.Sprintf("scope: %d bytes, over %d (every token carries it; '<', '>' and '&' count 6)", n, maxScopeBytes))
	}
	return scopes, problems
}

// checkAudiences returns the allowed audiences without repeats, and what
// is wrong with them: each must fit, and all together (an access token
// may name them all).
func checkAudiences(auds []string) ([]string, []string) {
	var out, problems []string
	total := 0
	for _, a := range auds {
		if msg := checkAudience(a); msg != "" {
			problems = append(problems, fmt.Sprintf("audience: %q %s", a, msg))
			continue
		}
		if !slices.Contains(out, a) {
			out = append(out, a)
			total += encodedLen(a)
		}
	}
	switch {
	case len(out) > maxAudiences:
		problems = append(problems, fmt.Sprintf("audience: at most %d, not %d (an access token may name them all)", maxAudiences, len(out)))
	case total > maxAudienceBytes:
		problems = append(problems, fmt.Sprintf("audience: %d bytes together, over %d (an access token may name them all)", total, maxAudienceBytes))
	}
	return out, problems
}

// checkAudience says what is wrong with one audience, or "": it is a
// resource indicator, an absolute URI (RFC 3986 §4.3) without a fragment
// (RFC 8707 §2).
func checkAudience(a string) string {
	if a == "" || len(a) > maxAudienceLen {
		return fmt.Sprintf("must be 1 to %d characters", maxAudienceLen)
	}
	if strings.ContainsFunc(a, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
		return "must be an absolute URI (RFC 8707 §2), printable ASCII without spaces, such as https://api.example.com"
	}
	u, err := url.Parse(a)
	switch {
	case err != nil || !u.IsAbs():
		return "must be an absolute URI with a scheme (RFC 8707 §2), such as https://api.example.com"
	case strings.Contains(a, "#"):
		return "must not have a fragment (#...) (RFC 8707 §2)"
	}
	return ""
}

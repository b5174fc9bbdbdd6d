package grant

import (
	"net/url"
	"slices"
	"strings"

	"github.com/issuer-oauth/issuer/internal/oauth"
)

// missing returns the first element of want that is not in have.
func missing(want, have []string) (string, bool) {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return w, true
		}
	}
	return "", false
}

// intersect returns the elements of a that are also in b, in a's order.
func intersect(a, b []string) []string {
	var out []string
	for _, x := range a {
		if slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// grantScope decides the scope of a token: the requested scope when every
// requested token is allowed, all allowed scopes when none was requested.
func grantScope(requested string, allowed []string) ([]string, *Error) {
	want, ok := oauth.ParseScope(requested)
	if !ok {
		return nil, errInvalidScope("scope is malformed: scope tokens are printable ASCII without spaces, quotes or backslashes")
	}
	return grantScopes(want, allowed)
}

// grantScopes is grantScope for a scope already parsed.
func grantScopes(want, allowed []string) ([]string, *Error) {
	if len(want) == 0 {
		return allowed, nil
	}
	if s, bad := missing(want, allowed); bad {
		return nil, errInvalidScope("scope " + quote(s) + " is not allowed for this client")
	}
	return want, nil
}

// grantAudience decides the aud of an access token from the RFC 8707
// resource and audience parameters: every requested value must be allowed;
// with none requested the default is the first allowed audience.
func grantAudience(requested, allowed []string) ([]string, *Error) {
	if len(requested) == 0 {
		if len(allowed) == 0 {
			return nil, errInvalidTarget("the client has no allowed audience; an administrator must set one")
		}
		return allowed[:1], nil
	}
	var out []string
	for _, r := range requested {
		if !slices.Contains(allowed, r) {
			return nil, errInvalidTarget("resource " + quote(r) + " is not an allowed audience for this client")
		}
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out, nil
}

// requestedAudience collects the resource and audience parameters.
func requestedAudience(form url.Values) []string {
	return slices.Concat(form["resource"], form["audience"])
}

// quote bounds and quotes a client-supplied value for an error description.
func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return `"` + strings.Map(func(r rune) rune {
		if r < 0x20 || r == '"' || r == '\\' || r > 0x7e {
			return '?'
		}
		return r
	}, s) + `"`
}

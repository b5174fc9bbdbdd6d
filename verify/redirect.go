package verify

import (
	"fmt"
	"net/http"
	"strings"
)

// maxRedirects bounds the redirects of one discovery or JWK Set request.
const maxRedirects = 5

// CheckRedirect is the redirect policy of the HTTP client that fetches the
// issuer's metadata and JWK Set (http.Client.CheckRedirect): it follows a
// redirect only to the host and port of the original request (the host
// compared without regard to case, the port as the URLs write it), never
// from https to http, and at most 5 times. Another host could serve keys
// of its choosing, and plain http lets anyone on the path do so: an open
// redirect on the issuer's site must not become a source of keys. An
// upgrade from http to https on the same host is followed.
//
// The default client uses it, and so does a client given with
// WithHTTPClient whose CheckRedirect is nil; a client with its own
// CheckRedirect can call it from there.
func CheckRedirect(req *http.Request, via []*http.Request) error {
	if len(via) == 0 {
		return nil
	}
	first, prev := via[0].URL, via[len(via)-1].URL
	switch {
	case len(via) > maxRedirects:
		return fmt.Errorf("verify: more than %d redirects from %s", maxRedirects, first.Redacted())
	case prev.Scheme == "https" && req.URL.Scheme != "https":
		return fmt.Errorf("verify: refused redirect from %s to %s: a downgrade from https", prev.Redacted(), req.URL.Redacted())
	case !strings.EqualFold(req.URL.Hostname(), first.Hostname()) || req.URL.Port() != first.Port():
		return fmt.Errorf("verify: refused redirect from %s to %s: another host", first.Redacted(), req.URL.Redacted())
	}
	return nil
}

// withRedirectPolicy returns the client to fetch with: the default client
// when c is nil, c itself when it has a CheckRedirect, else a copy of c
// with CheckRedirect.
func withRedirectPolicy(c *http.Client) *http.Client {
	if c == nil {
		return &http.Client{Timeout: DefaultHTTPTimeout, CheckRedirect: CheckRedirect}
	}
	if c.CheckRedirect != nil {
		return c
	}
	cp := *c
	cp.CheckRedirect = CheckRedirect
	return &cp
}

package verify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

type claimsKey struct{}

// ClaimsFromContext returns the claims Middleware stored in the context of
// the request it let through.
func ClaimsFromContext(ctx context.Context) (*Claims, bool) {
	c, ok := ctx.Value(claimsKey{}).(*Claims)
	return c, ok
}

// NewContext returns a copy of ctx carrying c, as Middleware does; tests of
// handlers can use it to skip the middleware.
func NewContext(ctx context.Context, c *Claims) context.Context {
	return context.WithValue(ctx, claimsKey{}, c)
}

// Middleware returns middleware that lets a request through only with a
// valid access token in its Authorization header (RFC 6750 §2.1) that was
// granted every one of scopes. The handler finds the claims with
// ClaimsFromContext. Refusals follow RFC 6750 §3:
//
//   - no bearer token: 401, WWW-Authenticate: Bearer realm="…" (no error
//     code, as the client may not know it needs one);
//   - a token that does not verify: 401, Bearer error="invalid_token" with
//     an error_description naming the problem;
//   - a token without a required scope: 403, Bearer
//     error="insufficient_scope", scope="<the required scopes>";
//   - two Authorization headers, an empty token, or a token in the
//     access_token query parameter: 400, Bearer error="invalid_request".
//
// The body is a JSON object with the same error and error_description.
// Middleware panics when a scope holds characters RFC 6749 §3.3 forbids.
func (v *Verifier) Middleware(scopes ...string) func(http.Handler) http.Handler {
	for _, s := range scopes {
		if !validScope(s) {
			panic(fmt.Sprintf("verify: invalid scope %q", s))
		}
	}
	scope := strings.Join(scopes, " ")
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			raw, problem := bearerToken(r)
			switch {
			case problem != "":
				v.challenge(w, http.StatusBadRequest, "invalid_request", problem, "")
				return
			case raw == "":
				v.challenge(w, http.StatusUnauthorized, "", "", "")
				return
			}
			c, err := v.Verify(r.Context(), raw)
			if err != nil {
				v.challenge(w, http.StatusUnauthorized, "invalid_token", describe(err), "")
				return
			}
			for _, s := range scopes {
				if !c.HasScope(s) {
					v.challenge(w, http.StatusForbidden, "insufficient_scope",
						"the access token lacks scope "+s, scope)
					return
				}
			}
			next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), c)))
		})
	}
}

// bearerToken returns the token of the Authorization header of r ("" when
// there is none), or a problem that makes the request invalid.
func bearerToken(r *http.Request) (token, problem string) {
	vals := r.Header.Values("Authorization")
	switch {
	case len(vals) > 1:
		return "", "more than one Authorization header"
	case len(vals) == 0:
		if r.URL.Query().Has("access_token") {
			return "", "send the access token in the Authorization header, not in the URL"
		}
		return "", ""
	}
	scheme, token, _ := strings.Cut(vals[0], " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", "" // another scheme: no bearer token
	}
	if token = strings.TrimSpace(token); token == "" {
		return "", "the Bearer token is empty"
	}
	return token, ""
}

// descriptions are the error_description of each token error; they never
// echo the token.
var descriptions = []struct {
	err  error
	desc string
}{
	{ErrTooLarge, "the access token is too large"},
	{ErrMalformed, "the access token is malformed"},
	{ErrHeader, "the access token carries a forbidden header"},
	{ErrType, "the token is not an access token (typ at+jwt)"},
	{ErrAlgorithm, "the access token is signed with an unexpected algorithm"},
	{ErrKeySetStale, "the issuer's keys are out of date: the access token cannot be verified now"},
	{ErrUnknownKey, "the access token is signed with an unknown key"},
	{ErrSignature, "the access token signature is invalid"},
	{ErrMissingClaim, "the access token lacks a required claim"},
	{ErrIssuer, "the access token is from another issuer"},
	{ErrAudience, "the access token is for another audience"},
	{ErrExpired, "the access token expired"},
	{ErrNotYetValid, "the access token is not valid yet"},
	{ErrDPoPBound, "the access token is DPoP-bound: present it with the DPoP scheme and a proof"},
	{ErrRevoked, "the access token has been revoked"},
	{ErrStatusList, "the access token's revocation status cannot be checked"},
}

func describe(err error) string {
	for _, d := range descriptions {
		if errors.Is(err, d.err) {
			return d.desc
		}
	}
	return "the access token is invalid"
}

// challenge writes an RFC 6750 error response.
func (v *Verifier) challenge(w http.ResponseWriter, status int, code, desc, scope string) {
	var b strings.Builder
	b.WriteString("Bearer")
	sep := " "
	param := func(name, val string) {
		b.WriteString(sep)
		b.WriteString(name)
		b.WriteString(`="`)
		b.WriteString(val)
		b.WriteString(`"`)
		sep = ", "
	}
	if v.realm != "" {
		param("realm", v.realm)
	}
	if code != "" {
		param("error", code)
		param("error_description", desc)
	}
	if scope != "" {
		param("scope", scope)
	}
	h := w.Header()
	h.Set("WWW-Authenticate", b.String())
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if code == "" {
		code, desc = "unauthorized", "an access token is required"
	}
	// code, desc and scope hold no '"' or '\' (descriptions are fixed,
	// scopes checked by validScope), so they need no escaping.
	fmt.Fprintf(w, "{\"error\":%q,\"error_description\":%q}\n", code, desc)
}

// validScope reports whether s is a scope-token (RFC 6749 §3.3).
func validScope(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c == '"' || c == '\\' || c > 0x7e {
			return false
		}
	}
	return true
}

// quotable reports whether s can go in a quoted-string as is: printable
// ASCII without '"' or '\'.
func quotable(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c > 0x7e {
			return false
		}
	}
	return true
}

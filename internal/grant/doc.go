// Package grant implements the OAuth 2.0 token endpoint (RFC 6749 §3.2):
// client authentication (client_secret_basic and client_secret_post, §2.3.1),
// the client-credentials grant (§4.4), the resource owner password
// credentials grant (§4.3, off unless configured) and the refresh-token
// grant (§6) with rotation and reuse detection (OAuth 2.0 Security BCP, RFC
// 9700 §4.14), and beside it token introspection (RFC 7662), revocation
// (RFC 7009) and the endpoints of Django REST framework SimpleJWT
// (simplejwt.go).
//
// # What go-oauth2 does, and what this package does
//
// The client-credentials and password grants run through
// github.com/go-oauth2/oauth2/v4 (clientcredentials.go). Once a request is parsed, its client
// authenticated and its scope and audience decided, the library issues the
// tokens: server.Server.GetAccessToken checks that the grant is enabled,
// and manage.Manager.GenerateAccessToken resolves the client (our
// ClientStore hands it the one that authenticated), refuses a public
// client, records the scope and the token lifetimes in a TokenInfo, calls
// our AccessGenerate hook, which signs the RFC 9068 access token and the
// first refresh token of a new family, and hands the result to its
// TokenStore. The response's expires_in and scope are the TokenInfo's.
//
// The rest is this package's, for reasons found in the library's code
// (v4.5.4):
//
//   - Parsing the request. Server.ValidationTokenRequest reads
//     r.FormValue, which also takes parameters from the URL query (where
//     credentials must not travel) and keeps the first of a repeated
//     parameter (RFC 6749 §3.2 forbids repeating one). ParseForm ignores
//     the query and refuses a repeated parameter.
//   - Client authentication. The library takes one method (a
//     ClientInfoHandler) for every client and compares a secret kept in
//     the clear with !=. Authenticate keeps only an HMAC of each secret,
//     compares in constant time, accepts only the method the client
//     registered, answers an unknown client like a wrong secret, no
//     sooner, and applies the abuse limits.
//   - Scope and audience. The library's ClientScopeHandler is given the
//     request but not the client, and it has no notion of RFC 8707
//     resources: both are decided before the library runs.
//   - Responses. Errors are Error values, written by WriteError alone
//     (RFC 6749 §5.2, with WWW-Authenticate on 401 and Retry-After on 429),
//     not the library's fixed descriptions (Server.GetErrorData); a success
//     is written by writeToken.
//   - The refresh-token grant (refresh.go). Manager.RefreshAccessToken
//     neither authenticates the client nor checks that the refresh token
//     was issued to it, takes any requested scope unless a handler narrows
//     it, and rotates in two TokenStore calls (create the new token, then
//     remove the old): two concurrent refreshes of one token both succeed,
//     on one instance or across several, and a retired token presented
//     again is merely unknown, where RFC 9700 §4.14 has its whole family
//     revoked. refresh does every check first and then one atomic store
//     operation, store.Store.RotateRefresh, which retires the old token,
//     or revokes the family when the token was already retired.
//   - The user's authentication in the password grant (password.go). The
//     library's PasswordAuthorizationHandler is given the username and
//     password but neither the client address nor the client, so it can
//     apply no brute-force limit (RFC 6749 §4.3.2), and it knows no lock,
//     no bounded pool of hash computations and no hash upgrade. The user
//     is authenticated first; the library then issues the tokens with the
//     user id in its TokenGenerateRequest.
//   - Introspection and revocation, which the library does not offer.
package grant

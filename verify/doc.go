// Package verify lets a resource API verify the access tokens of an OAuth
// 2.0 authorization server on its own, offline, with the public keys the
// server publishes as a JWK Set (RFC 7517).
//
// New returns a Verifier without any I/O; at the first verification it
// discovers the server's jwks_uri from its RFC 8414 metadata, fetches the
// keys and caches them. Verify checks a token as RFC 9068 §4 ("JSON Web
// Token Profile for OAuth 2.0 Access Tokens") and RFC 8725 ("JWT Best
// Current Practices") ask; Middleware guards net/http handlers and answers
// failures as RFC 6750 §3 says:
//
//	v, err := verify.New("https://auth.example.com", "https://api.example.com")
//	if err != nil {
//		log.Fatal(err) // only a mistake in the configuration
//	}
//	mux := http.NewServeMux()
//	mux.Handle("GET /v1/items", v.Middleware("read")(listItems))
//	mux.Handle("POST /v1/items", v.Middleware("write")(createItem))
//
//	func listItems(w http.ResponseWriter, r *http.Request) {
//		claims, _ := verify.ClaimsFromContext(r.Context())
//		// claims.ClientID, claims.Scopes, …
//	}
//
// # Where the keys come from
//
// At most one option chooses the keys: none (discovery, as above),
// WithJWKSURL (a known JWK Set URL, no discovery), WithKeySet (a
// RemoteKeySet shared by several Verifiers, or any KeySet) or WithKeys
// (fixed keys, never fetched). Discover reads the metadata up front, for
// a program that wants to stop at start-up when it is wrong.
//
// Options are checked together, and a configuration that cannot mean what
// it says is an error of New rather than silently ignored: two sources of
// keys, an option given twice, or an option that would have no effect,
// such as WithHTTPClient beside WithKeys. See Option.
//
// # What is checked
//
// The token's alg header never chooses the algorithm: each key carries the
// one algorithm it verifies (the JWK "alg", or the one its type implies),
// and a token whose alg differs is refused, which rules out "none" and the
// HS256-with-the-public-key confusion. Keys come only from the issuer's key
// set, looked up by kid: jku, x5u, jwk and x5c headers are refused, as is
// any crit header. The typ header must be at+jwt, so refresh tokens and ID
// tokens never pass. iss must equal the issuer, aud must contain the
// audience, exp, nbf and iat are checked with a small leeway
// (DefaultLeeway), and iss, sub, aud, exp, iat, jti and client_id must be
// present. Tokens longer than DefaultMaxTokenSize, and tokens whose JSON
// repeats a member name, are refused. Every failure wraps one of the
// sentinel errors (ErrExpired, ErrSignature, …), for errors.Is.
//
// # HS256
//
// For an issuer that signs access tokens with HS256, the resource API
// needs the shared secret, which no JWK Set carries: build the key with
// NewHMACKey and give it with WithKeys. An HMAC key works only that way, so
// neither a fetched key set nor a public key can ever serve as an HMAC
// secret.
//
// # Key cache
//
// A RemoteKeySet fetches nothing until a key is asked for. The key set is
// then cached for the lifetime its Cache-Control header gives (within
// DefaultMinCacheAge and DefaultMaxCacheAge) and refreshed in the
// background when that has passed; a token naming an unknown kid (after a
// key rotation, or before the first fetch) triggers a fetch that the
// request waits for. At most one fetch runs at a time, shared by all
// callers, and fetches start at most once per DefaultRefreshInterval, so
// tokens with made-up kids cannot flood the issuer. When the issuer is
// unreachable, verification goes on with the cached keys for up to
// DefaultMaxStaleness after the last successful fetch (WithMaxStaleness),
// then fails closed with ErrKeySetStale, so that a key the issuer revoked
// meanwhile does not verify forever; WithFetchHook reports every fetch and
// how old the keys are, for monitoring. Before the first fetch has
// succeeded, Verify fails with ErrUnknownKey, whose message says why.
//
// Discovery and key fetches follow a redirect only to the same host and
// port, never from https to http (CheckRedirect).
//
// # Token cache
//
// A Verifier remembers the tokens it has verified (DefaultTokenCacheSize
// of them; WithTokenCache sets the number, 0 turns the cache off), keyed
// by the exact token, and answers a token presented again without parsing
// it or checking its signature. Every presentation is still checked for
// exp, nbf and iat and for its kid naming the same key in the key set, so
// a key removed from the JWK Set or a key set too stale fails cached
// tokens too; Middleware checks scopes on every request. Failures are not
// cached. CacheStats reports hits, misses and evictions.
//
// # DPoP
//
// Tokens bound to a client's key (RFC 9449, cnf.jkt) are valid only with a
// proof of that key: Verify and Middleware refuse them (ErrDPoPBound).
// NewDPoPVerifier accepts them with "Authorization: DPoP" and a DPoP proof
// (every check of RFC 9449 §7.1, jti replay through a ReplayCache,
// optional Nonces), beside bearer tokens that are not bound; package
// dpopredis shares the replay cache between replicas.
//
// Package verifytest mints tokens, DPoP-bound tokens and proofs, and serves
// a JWK Set, to test resource APIs without a running issuer.
package verify

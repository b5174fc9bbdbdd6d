package verify_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/issuer-oauth/issuer/verify"
)

// Discovery and remote keys: the usual set-up, given the issuer URL alone.
func ExampleNew() {
	issuer := startExampleIssuer() // stands in for https://auth.example.com
	defer issuer.Close()

	// New does no I/O, so it cannot fail because the issuer is not up
	// yet. The first Verify discovers the jwks_uri from the issuer's
	// RFC 8414 metadata and fetches the keys; later ones use the cache.
	v, err := verify.New(issuer.URL, "https://api.example.com")
	if err != nil {
		log.Fatal(err) // a mistake in the configuration
	}
	claims, err := v.Verify(context.Background(), issuer.token("read write"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(claims.ClientID, claims.Scopes)
	// Output: example-client [read write]
}

// A fixed JWK Set URL: no discovery.
func ExampleWithJWKSURL() {
	issuer := startExampleIssuer()
	defer issuer.Close()

	v, err := verify.New(issuer.URL, "https://api.example.com",
		verify.WithJWKSURL(issuer.URL+"/.well-known/jwks.json"))
	if err != nil {
		log.Fatal(err)
	}
	claims, err := v.Verify(context.Background(), issuer.token("read"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(claims.ClientID, claims.Scopes)
	// Output: example-client [read]
}

// Discovery up front, for a program that wants to stop at start-up when
// the issuer's metadata is wrong, and one RemoteKeySet shared by the
// Verifiers of two audiences.
func ExampleDiscover() {
	issuer := startExampleIssuer()
	defer issuer.Close()

	md, err := verify.Discover(context.Background(), issuer.URL)
	if err != nil {
		log.Fatal(err)
	}
	keys, err := verify.NewRemoteKeySet(md.JWKSURI, verify.WithRefreshInterval(30*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	items, err := verify.New(md.Issuer, "https://api.example.com", verify.WithKeySet(keys))
	if err != nil {
		log.Fatal(err)
	}
	billing, err := verify.New(md.Issuer, "https://billing.example.com", verify.WithKeySet(keys))
	if err != nil {
		log.Fatal(err)
	}
	tok := issuer.token("read")
	_, err = items.Verify(context.Background(), tok)
	fmt.Println("items:", err)
	_, err = billing.Verify(context.Background(), tok)
	fmt.Println("billing:", errors.Is(err, verify.ErrAudience))
	// Output:
	// items: <nil>
	// billing: true
}

// Static keys: a JWK Set read from a file, or keys built with NewKey. No
// network at all; rotating keys means restarting with the new set.
func ExampleWithKeys() {
	doc := exampleJWKS() // in a program: os.ReadFile("jwks.json")
	keys, err := verify.ParseJWKS(doc)
	if err != nil {
		log.Fatal(err)
	}
	v, err := verify.New("https://auth.example.com", "https://api.example.com", verify.WithKeys(keys...))
	if err != nil {
		log.Fatal(err)
	}
	claims, err := v.Verify(context.Background(), exampleToken("https://auth.example.com", "read", time.Now()))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(keys[0].Alg(), claims.ClientID, claims.Scopes)
	// Output: EdDSA example-client [read]
}

// HS256: the shared secret, as `issuer keys secret KID` prints it (an
// "oct" JWK), can only be given with WithKeys (docs/keys.md, "Algorithms").
func ExampleNewHMACKey() {
	jwk := []byte(`{"kty":"oct","kid":"hs-1","alg":"HS256","k":"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"}`)
	var oct struct{ Kid, K string }
	if err := json.Unmarshal(jwk, &oct); err != nil {
		log.Fatal(err)
	}
	secret, err := base64.RawURLEncoding.DecodeString(oct.K)
	if err != nil {
		log.Fatal(err)
	}
	key, err := verify.NewHMACKey(oct.Kid, secret)
	if err != nil {
		log.Fatal(err)
	}
	v, err := verify.New("https://auth.example.com", "https://api.example.com", verify.WithKeys(key))
	if err != nil {
		log.Fatal(err)
	}
	claims, err := v.Verify(context.Background(), exampleHS256Token(oct.Kid, secret))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(claims.ClientID, claims.Scopes)
	// Output: example-client [read]
}

// A resource API guarding its routes with scopes (RFC 6750).
func ExampleVerifier_Middleware() {
	issuer := startExampleIssuer()
	defer issuer.Close()

	v, err := verify.New(issuer.URL, "https://api.example.com")
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /v1/items", v.Middleware("read")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		claims, _ := verify.ClaimsFromContext(r.Context())
		fmt.Fprintf(w, "items of %s\n", claims.ClientID)
	})))
	// A program would now run http.ListenAndServe(":8090", mux).

	for _, token := range []string{"", "not-a-jwt", issuer.token("write"), issuer.token("read")} {
		r := httptest.NewRequest("GET", "/v1/items", nil)
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		if w.Code == http.StatusOK {
			fmt.Print(w.Code, " ", w.Body)
			continue
		}
		fmt.Println(w.Code, w.Header().Get("WWW-Authenticate"))
	}
	// Output:
	// 401 Bearer realm="https://api.example.com"
	// 401 Bearer realm="https://api.example.com", error="invalid_token", error_description="the access token is malformed"
	// 403 Bearer realm="https://api.example.com", error="insufficient_scope", error_description="the access token lacks scope read", scope="read"
	// 200 items of example-client
}

// Verifying a token outside net/http, telling failures apart.
func ExampleVerifier_Verify() {
	keys, err := verify.ParseJWKS(exampleJWKS())
	if err != nil {
		log.Fatal(err)
	}
	v, err := verify.New("https://auth.example.com", "https://api.example.com", verify.WithKeys(keys...))
	if err != nil {
		log.Fatal(err)
	}
	expired := exampleToken("https://auth.example.com", "read", time.Now().Add(-time.Hour))
	claims, err := v.Verify(context.Background(), expired)
	switch {
	case errors.Is(err, verify.ErrExpired):
		fmt.Println("get a new token")
	case err != nil:
		fmt.Println("rejected:", err)
	default:
		fmt.Println(claims.ClientID, claims.Scopes)
	}
	// Output: get a new token
}

// What follows stands in for the authorization server in the examples.

// exampleKey is the examples' Ed25519 signing key (a fixed seed, so that
// the examples need no randomness).
var exampleKey = ed25519.NewKeyFromSeed([]byte("an example seed, 32 bytes long!!"))

const exampleKid = "example-key"

// exampleJWKS returns the JWK Set (RFC 7517 §5) of exampleKey.
func exampleJWKS() []byte {
	pub := exampleKey.Public().(ed25519.PublicKey)
	return fmt.Appendf(nil, `{"keys":[{"kty":"OKP","crv":"Ed25519","kid":%q,"use":"sig","alg":"EdDSA","x":%q}]}`,
		exampleKid, base64.RawURLEncoding.EncodeToString(pub))
}

// exampleClaims returns the claims of an access token of iss for
// https://api.example.com, issued at iat for five minutes.
func exampleClaims(iss, scope string, iat time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"iss": iss, "sub": "example-client", "client_id": "example-client",
		"aud": "https://api.example.com", "scope": scope, "jti": "example-jti",
		"iat": iat.Unix(), "exp": iat.Add(5 * time.Minute).Unix(),
	}
}

// exampleToken returns an access token of iss signed with exampleKey.
func exampleToken(iss, scope string, iat time.Time) string {
	return exampleSign(jwt.SigningMethodEdDSA, exampleKid, exampleKey, exampleClaims(iss, scope, iat))
}

// exampleHS256Token returns an access token of https://auth.example.com
// signed with secret.
func exampleHS256Token(kid string, secret []byte) string {
	return exampleSign(jwt.SigningMethodHS256, kid, secret, exampleClaims("https://auth.example.com", "read", time.Now()))
}

func exampleSign(m jwt.SigningMethod, kid string, key any, claims jwt.MapClaims) string {
	t := jwt.NewWithClaims(m, claims)
	t.Header["kid"], t.Header["typ"] = kid, "at+jwt"
	s, err := t.SignedString(key)
	if err != nil {
		panic(err)
	}
	return s
}

// exampleIssuer serves RFC 8414 metadata and the JWK Set of exampleKey.
type exampleIssuer struct{ *httptest.Server }

func startExampleIssuer() *exampleIssuer {
	e := &exampleIssuer{}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/.well-known/oauth-authorization-server":
			fmt.Fprintf(w, `{"issuer":%q,"jwks_uri":%q}`, e.URL, e.URL+"/.well-known/jwks.json")
		case "/.well-known/jwks.json":
			_, _ = w.Write(exampleJWKS())
		default:
			http.NotFound(w, r)
		}
	}))
	return e
}

// token returns an access token of the example issuer.
func (e *exampleIssuer) token(scope string) string { return exampleToken(e.URL, scope, time.Now()) }

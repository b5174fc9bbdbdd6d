package server

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"github.com/golang-jwt/jwt/v5"

	"github.com/issuer-oauth/issuer/internal/config"
	"github.com/issuer-oauth/issuer/internal/redistest"
	"github.com/issuer-oauth/issuer/internal/secret"
)

// clientKey is a private key of a test client with the JWK of its public
// half.
type clientKey struct {
	kid    string
	alg    string
	signer crypto.Signer
}

func newClientKey(t testing.TB, kid, alg string) clientKey {
	t.Helper()
	var (
		s   crypto.Signer
		err error
	)
	switch alg {
	case "ES256":
		s, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "RS256", "PS256":
		s, err = rsa.GenerateKey(rand.Reader, 2048)
	case "EdDSA":
		_, s, err = ed25519.GenerateKey(rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	return clientKey{kid: kid, alg: alg, signer: s}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// jwk is the public JWK of k, written by hand (RFC 7517, RFC 7518 §6,
// RFC 8037): what an administrator registers.
func (k clientKey) jwk() map[string]any {
	m := map[string]any{"kid": k.kid, "alg": k.alg, "use": "sig"}
	switch pub := k.signer.Public().(type) {
	case *ecdsa.PublicKey:
		b, _ := pub.Bytes()
		m["kty"], m["crv"], m["x"], m["y"] = "EC", "P-256", b64(b[1:33]), b64(b[33:])
	case *rsa.PublicKey:
		m["kty"], m["n"], m["e"] = "RSA", b64(pub.N.Bytes()), b64(big.NewInt(int64(pub.E)).Bytes())
	case ed25519.PublicKey:
		m["kty"], m["crv"], m["x"] = "OKP", "Ed25519", b64(pub)
	}
	return m
}

func jwksOf(keys ...clientKey) map[string]any {
	list := make([]any, len(keys))
	for i, k := range keys {
		list[i] = k.jwk()
	}
	return map[string]any{"keys": list}
}

var jwtMethods = map[string]jwt.SigningMethod{
	"ES256": jwt.SigningMethodES256, "RS256": jwt.SigningMethodRS256,
	"PS256": jwt.SigningMethodPS256, "EdDSA": jwt.SigningMethodEdDSA,
}

// assertion signs claims with k (golang-jwt); header members in hdr are
// set (nil deletes).
func (k clientKey) assertion(t testing.TB, claims jwt.MapClaims, hdr map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwtMethods[k.alg], claims)
	tok.Header["kid"] = k.kid
	for h, v := range hdr {
		if v == nil {
			delete(tok.Header, h)
		} else {
			tok.Header[h] = v
		}
	}
	s, err := tok.SignedString(k.signer)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// claimsFor are the claims of a good assertion of client id at now.
func (ti *testIssuer) claimsFor(id string) jwt.MapClaims {
	now := ti.clock.Now()
	return jwt.MapClaims{
		"iss": id, "sub": id, "aud": ti.URL, "jti": secret.Random(16),
		"iat": now.Unix(), "exp": now.Add(time.Minute).Unix(),
	}
}

// registerKeyClient registers a private_key_jwt client with meta and
// returns its id; the answer must have no secret.
func (ti *testIssuer) registerKeyClient(t *testing.T, meta map[string]any) string {
	t.Helper()
	meta["token_endpoint_auth_method"] = "private_key_jwt"
	if meta["audience"] == nil {
		meta["audience"] = []string{"https://api.example.com"}
	}
	resp, m := ti.admin(t, "POST", "/admin/clients", meta)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create client: status %d: %v", resp.StatusCode, m)
	}
	if _, ok := m["client_secret"]; ok {
		t.Errorf("a private_key_jwt client got a client_secret: %v", m)
	}
	return m["client_id"].(string)
}

// withAssertion posts form to path with a client assertion.
func (ti *testIssuer) withAssertion(t *testing.T, path, id, assertion string, form url.Values) (*http.Response, map[string]any) {
	t.Helper()
	f := url.Values{}
	for k, v := range form {
		f[k] = v
	}
	if id != "" {
		f.Set("client_id", id)
	}
	f.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
	f.Set("client_assertion", assertion)
	return ti.send(t, "POST", path, f, nil)
}

func TestPrivateKeyJWT(t *testing.T) {
	ti := startIssuer(t)
	es := newClientKey(t, "es", "ES256")
	rs := newClientKey(t, "rs", "RS256")
	ps := newClientKey(t, "ps", "PS256")
	ed := newClientKey(t, "ed", "EdDSA")
	// One client with one key of each type; the PS256 key's JWK says PS256.
	id := ti.registerKeyClient(t, map[string]any{"client_name": "keys", "jwks": jwksOf(es, rs, ps, ed), "scope": "read"})

	for _, k := range []clientKey{es, rs, ps, ed} {
		t.Run(k.alg, func(t *testing.T) {
			resp, m := ti.withAssertion(t, "/oauth2/token", id, k.assertion(t, ti.claimsFor(id), nil), ccForm)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("token: %d %v", resp.StatusCode, m)
			}
			c := ti.verifyAccess(t, m["access_token"].(string), "https://api.example.com")
			if c.Subject != id || c.ClientID != id {
				t.Errorf("sub, client_id = %q, %q; want %q", c.Subject, c.ClientID, id)
			}
		})
	}
	t.Run("typ client-authentication+jwt, no client_id in the form", func(t *testing.T) {
		a := es.assertion(t, ti.claimsFor(id), map[string]any{"typ": "client-authentication+jwt"})
		if resp, m := ti.withAssertion(t, "/oauth2/token", "", a, ccForm); resp.StatusCode != http.StatusOK {
			t.Fatalf("token: %d %v", resp.StatusCode, m)
		}
	})
	t.Run("signed with go-jose", func(t *testing.T) {
		sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: es.signer},
			(&jose.SignerOptions{}).WithType("client-authentication+jwt").WithHeader("kid", "es"))
		if err != nil {
			t.Fatal(err)
		}
		now := ti.clock.Now()
		a, err := josejwt.Signed(sig).Claims(josejwt.Claims{
			Issuer: id, Subject: id, Audience: josejwt.Audience{ti.URL}, ID: secret.Random(16),
			IssuedAt: josejwt.NewNumericDate(now), Expiry: josejwt.NewNumericDate(now.Add(2 * time.Minute)),
		}).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		if resp, m := ti.withAssertion(t, "/oauth2/token", id, a, ccForm); resp.StatusCode != http.StatusOK {
			t.Fatalf("token: %d %v", resp.StatusCode, m)
		}
	})
	t.Run("introspection and revocation", func(t *testing.T) {
		_, m := ti.withAssertion(t, "/oauth2/token", id, es.assertion(t, ti.claimsFor(id), nil), ccForm)
		at := m["access_token"].(string)
		resp, m := ti.withAssertion(t, "/oauth2/introspect", id, es.assertion(t, ti.claimsFor(id), nil), url.Values{"token": {at}})
		if resp.StatusCode != http.StatusOK || m["active"] != true {
			t.Fatalf("introspect: %d %v", resp.StatusCode, m)
		}
		resp, m = ti.withAssertion(t, "/oauth2/revoke", id, es.assertion(t, ti.claimsFor(id), nil), url.Values{"token": {at}})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("revoke: %d %v", resp.StatusCode, m)
		}
		_, m = ti.withAssertion(t, "/oauth2/introspect", id, es.assertion(t, ti.claimsFor(id), nil), url.Values{"token": {at}})
		if m["active"] != false {
			t.Errorf("introspect after revoke: %v, want inactive", m)
		}
	})
	t.Run("replay", func(t *testing.T) {
		a := es.assertion(t, ti.claimsFor(id), nil)
		if resp, m := ti.withAssertion(t, "/oauth2/token", id, a, ccForm); resp.StatusCode != http.StatusOK {
			t.Fatalf("first use: %d %v", resp.StatusCode, m)
		}
		resp, m := ti.withAssertion(t, "/oauth2/token", id, a, ccForm)
		if resp.StatusCode != http.StatusUnauthorized || m["error"] != "invalid_client" {
			t.Fatalf("replay: %d %v, want 401 invalid_client", resp.StatusCode, m)
		}
		// The jti is the client's: another endpoint does not take it either.
		if resp, _ := ti.withAssertion(t, "/oauth2/introspect", id, a, url.Values{"token": {"x"}}); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("replay at introspection: %d, want 401", resp.StatusCode)
		}
	})
	t.Run("metrics", func(t *testing.T) {
		fams, _ := ti.scrape(t)
		if n := metricSum(fams, "issuer_client_auth_total", map[string]string{"method": "private_key_jwt", "outcome": "success"}); n < 5 {
			t.Errorf("issuer_client_auth_total{method=private_key_jwt,outcome=success} = %v, want at least 5", n)
		}
		if n := metricSum(fams, "issuer_client_auth_total", map[string]string{"method": "private_key_jwt", "outcome": "failure"}); n < 1 {
			t.Errorf("issuer_client_auth_total{method=private_key_jwt,outcome=failure} = %v, want at least 1 (the replay)", n)
		}
	})
	t.Run("no secret in the logs", func(t *testing.T) {
		if strings.Contains(ti.logs.String(), "eyJ") {
			t.Errorf("a JWT reached the log:\n%s", ti.logs)
		}
	})
}

// TestPrivateKeyJWTRefused: every rejection of RFC 7523 §3 and
// draft-ietf-oauth-rfc7523bis is 401 invalid_client.
func TestPrivateKeyJWTRefused(t *testing.T) {
	ti := startIssuer(t, func(c *config.Config) { c.AuthFailuresPerAddress, c.AuthFailuresPerClient = 0, 0 })
	es := newClientKey(t, "es", "ES256")
	rs := newClientKey(t, "rs", "RS256")
	other := newClientKey(t, "es", "ES256") // same kid, another key
	id := ti.registerKeyClient(t, map[string]any{"client_name": "a", "jwks": jwksOf(es)})
	rsID := ti.registerKeyClient(t, map[string]any{"client_name": "r", "jwks": jwksOf(rs)})
	noAlg := rs.jwk()
	delete(noAlg, "alg") // an RSA key without alg verifies RS256 and PS256; the client pins PS256
	pinned := ti.registerKeyClient(t, map[string]any{"client_name": "p", "jwks": map[string]any{"keys": []any{noAlg}}, "token_endpoint_auth_signing_alg": "PS256"})
	otherID := ti.registerKeyClient(t, map[string]any{"client_name": "b", "jwks": jwksOf(other)})
	secretID, _ := ti.createClient(t, map[string]any{"client_name": "secret"})
	now := ti.clock.Now()

	with := func(id string, set jwt.MapClaims) jwt.MapClaims {
		c := ti.claimsFor(id)
		for k, v := range set {
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
		}
		return c
	}
	rsaPub, _ := x509.MarshalPKIXPublicKey(rs.signer.Public())
	rsaPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: rsaPub})
	hs := func(claims jwt.MapClaims, key []byte) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
		tok.Header["kid"] = "rs"
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	jwkJSON, _ := json.Marshal(rs.jwk())
	none := func(claims jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims).SignedString(jwt.UnsafeAllowNoneSignatureType)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	longJTI := strings.Repeat("j", 257)

	tests := []struct {
		name      string
		id        string // client_id in the form
		assertion string
	}{
		{"aud is the token endpoint URL", id, es.assertion(t, with(id, jwt.MapClaims{"aud": ti.URL + "/oauth2/token"}), nil)},
		{"aud is a list with the issuer", id, es.assertion(t, with(id, jwt.MapClaims{"aud": []string{ti.URL, "https://other.example"}}), nil)},
		{"aud is another issuer", id, es.assertion(t, with(id, jwt.MapClaims{"aud": "https://other.example"}), nil)},
		{"aud with a trailing slash", id, es.assertion(t, with(id, jwt.MapClaims{"aud": ti.URL + "/"}), nil)},
		{"no aud", id, es.assertion(t, with(id, jwt.MapClaims{"aud": nil}), nil)},
		{"no jti", id, es.assertion(t, with(id, jwt.MapClaims{"jti": nil}), nil)},
		{"empty jti", id, es.assertion(t, with(id, jwt.MapClaims{"jti": ""}), nil)},
		{"jti of 257 bytes", id, es.assertion(t, with(id, jwt.MapClaims{"jti": longJTI}), nil)},
		{"no exp", id, es.assertion(t, with(id, jwt.MapClaims{"exp": nil}), nil)},
		{"expired", id, es.assertion(t, with(id, jwt.MapClaims{"iat": now.Add(-3 * time.Minute).Unix(), "exp": now.Add(-time.Minute).Unix()}), nil)},
		{"lifetime over 5m", id, es.assertion(t, with(id, jwt.MapClaims{"exp": now.Add(5*time.Minute + 2*time.Second).Unix()}), nil)},
		{"no iat, exp over 5m from now", id, es.assertion(t, with(id, jwt.MapClaims{"iat": nil, "exp": now.Add(6 * time.Minute).Unix()}), nil)},
		{"iat in the future", id, es.assertion(t, with(id, jwt.MapClaims{"iat": now.Add(2 * time.Minute).Unix(), "exp": now.Add(3 * time.Minute).Unix()}), nil)},
		{"nbf in the future", id, es.assertion(t, with(id, jwt.MapClaims{"nbf": now.Add(2 * time.Minute).Unix()}), nil)},
		{"exp not a number", id, es.assertion(t, with(id, jwt.MapClaims{"exp": "soon"}), nil)},
		{"iss is not the client", id, es.assertion(t, with(id, jwt.MapClaims{"iss": otherID}), nil)},
		{"sub is not the client", id, es.assertion(t, with(id, jwt.MapClaims{"sub": otherID}), nil)},
		{"typ at+jwt", id, es.assertion(t, with(id, nil), map[string]any{"typ": "at+jwt"})},
		{"typ dpop+jwt", id, es.assertion(t, with(id, nil), map[string]any{"typ": "dpop+jwt"})},
		{"typ not a string", id, es.assertion(t, with(id, nil), map[string]any{"typ": 1})},
		{"crit header", id, es.assertion(t, with(id, nil), map[string]any{"crit": []string{"exp"}})},
		{"another client's key, same kid", id, other.assertion(t, with(id, nil), nil)},
		{"another client's key, its own identity claimed as ours", otherID, es.assertion(t, with(otherID, nil), nil)},
		{"unknown kid", id, es.assertion(t, with(id, nil), map[string]any{"kid": "nope"})},
		{"HS256 keyed with the RSA public key (PEM)", rsID, hs(with(rsID, nil), rsaPEM)},
		{"HS256 keyed with the JWK", rsID, hs(with(rsID, nil), jwkJSON)},
		{"alg none", id, none(with(id, nil))},
		{"RS256 for a client pinned to PS256", pinned, rs.assertion(t, with(pinned, nil), nil)},
		{"ES256 header on an RSA client", rsID, es.assertion(t, with(rsID, nil), map[string]any{"kid": "rs"})},
		{"unknown client", "nobody", es.assertion(t, with("nobody", nil), nil)},
		{"client registered for client_secret_basic", secretID, es.assertion(t, with(secretID, nil), nil)},
		{"not a JWT", id, "not.a.jwt"},
		{"signature cut off", id, strings.TrimRight(es.assertion(t, with(id, nil), nil), "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")},
		{"longer than 16 KiB", id, es.assertion(t, with(id, jwt.MapClaims{"pad": strings.Repeat("p", 16<<10)}), nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, path := range []string{"/oauth2/token", "/oauth2/introspect"} {
				form := ccForm
				if path != "/oauth2/token" {
					form = url.Values{"token": {"x"}}
				}
				resp, m := ti.withAssertion(t, path, tt.id, tt.assertion, form)
				if resp.StatusCode != http.StatusUnauthorized || m["error"] != "invalid_client" {
					t.Fatalf("%s: %d %v, want 401 invalid_client", path, resp.StatusCode, m)
				}
			}
		})
	}

	t.Run("wrong client_assertion_type", func(t *testing.T) {
		f := url.Values{"grant_type": {"client_credentials"}, "client_id": {id},
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:saml2-bearer"},
			"client_assertion":      {es.assertion(t, ti.claimsFor(id), nil)}}
		if resp, m := ti.send(t, "POST", "/oauth2/token", f, nil); resp.StatusCode != http.StatusUnauthorized || m["error"] != "invalid_client" {
			t.Fatalf("%d %v, want 401 invalid_client", resp.StatusCode, m)
		}
	})
	t.Run("a secret for a private_key_jwt client", func(t *testing.T) {
		if resp, m := ti.token(t, id, "", false, url.Values{"grant_type": {"client_credentials"}, "client_secret": {"x"}}); resp.StatusCode != http.StatusUnauthorized || m["error"] != "invalid_client" {
			t.Fatalf("%d %v, want 401 invalid_client", resp.StatusCode, m)
		}
	})
	t.Run("assertion and secret together", func(t *testing.T) {
		resp, m := ti.withAssertion(t, "/oauth2/token", id, es.assertion(t, ti.claimsFor(id), nil),
			url.Values{"grant_type": {"client_credentials"}, "client_secret": {"x"}})
		if resp.StatusCode != http.StatusBadRequest || m["error"] != "invalid_request" {
			t.Fatalf("%d %v, want 400 invalid_request", resp.StatusCode, m)
		}
	})
	t.Run("good assertions still work", func(t *testing.T) {
		psKey := rs
		psKey.alg = "PS256"
		for _, tt := range []struct {
			id string
			k  clientKey
		}{{id, es}, {rsID, rs}, {pinned, psKey}} {
			if resp, m := ti.withAssertion(t, "/oauth2/token", tt.id, tt.k.assertion(t, ti.claimsFor(tt.id), nil), ccForm); resp.StatusCode != http.StatusOK {
				t.Errorf("%s: %d %v", tt.k.alg, resp.StatusCode, m)
			}
		}
	})
}

// TestPrivateKeyJWTLegacyAudience: client_assertion_legacy_audience lets
// the token endpoint URL and lists through, and nothing else.
func TestPrivateKeyJWTLegacyAudience(t *testing.T) {
	ti := startIssuer(t, func(c *config.Config) { c.ClientAssertionLegacyAudience = true })
	es := newClientKey(t, "es", "ES256")
	id := ti.registerKeyClient(t, map[string]any{"client_name": "legacy", "jwks": jwksOf(es)})
	for _, tt := range []struct {
		aud  any
		want int
	}{
		{ti.URL, 200},
		{ti.URL + "/oauth2/token", 200},
		{[]string{"https://other.example", ti.URL + "/oauth2/token"}, 200},
		{[]string{ti.URL, "https://other.example"}, 200},
		{"https://other.example", 401},
		{ti.URL + "/oauth2/introspect", 401},
	} {
		c := ti.claimsFor(id)
		c["aud"] = tt.aud
		if resp, m := ti.withAssertion(t, "/oauth2/token", id, es.assertion(t, c, nil), ccForm); resp.StatusCode != tt.want {
			t.Errorf("aud %v: %d %v, want %d", tt.aud, resp.StatusCode, m, tt.want)
		}
	}
}

// TestPrivateKeyJWTLimiter: refused assertions count as failed client
// authentications.
func TestPrivateKeyJWTLimiter(t *testing.T) {
	ti := startIssuer(t, func(c *config.Config) { c.AuthFailuresPerAddress = 3 })
	es := newClientKey(t, "es", "ES256")
	wrong := newClientKey(t, "es", "ES256")
	id := ti.registerKeyClient(t, map[string]any{"client_name": "limited", "jwks": jwksOf(es)})
	for i := range 3 {
		if resp, _ := ti.withAssertion(t, "/oauth2/token", id, wrong.assertion(t, ti.claimsFor(id), nil), ccForm); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d, want 401", i+1, resp.StatusCode)
		}
	}
	resp, m := ti.withAssertion(t, "/oauth2/token", id, es.assertion(t, ti.claimsFor(id), nil), ccForm)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("after 3 failures: %d %v, want 429 with Retry-After", resp.StatusCode, m)
	}
}

// TestPrivateKeyJWTReplayAcrossInstances: one assertion sent 50 times at
// once to two instances on one Redis is accepted exactly once.
func TestPrivateKeyJWTReplayAcrossInstances(t *testing.T) {
	srv := redistest.Start(t)
	master := secret.Random(32)
	noLimits := func(c *config.Config) { c.AuthFailuresPerAddress, c.AuthFailuresPerClient = 0, 0 }
	a := startIssuer(t, onRedis(srv.URL(), master), noLimits)
	b := startIssuer(t, onRedis(srv.URL(), master), sameURL(a.URL), noLimits)
	testAssertionReplay(t, a, b, a.clock.Now)
}

// TestPrivateKeyJWTReplayAcrossProcesses is the replay check with two
// issuer processes, built from the command, on one redis-server.
func TestPrivateKeyJWTReplayAcrossProcesses(t *testing.T) {
	a, b := startProcessPair(t, map[string]string{"ISSUER_AUTH_FAILURES_PER_ADDRESS": "0", "ISSUER_AUTH_FAILURES_PER_CLIENT": "0"})
	testAssertionReplay(t, a, b, time.Now)
}

// testAssertionReplay sends one private_key_jwt assertion 50 times at once,
// half to each of two instances a and b of one issuer (ISSUER_URL a.URL)
// whose clock is now, in three rounds: exactly one is accepted each time.
func testAssertionReplay(t *testing.T, a, b *testIssuer, now func() time.Time) {
	es := newClientKey(t, "es", "ES256")
	id := a.registerKeyClient(t, map[string]any{"client_name": "replayed", "jwks": jwksOf(es)})
	for round := range 3 {
		claims := jwt.MapClaims{
			"iss": id, "sub": id, "aud": a.URL, "jti": secret.Random(16),
			"iat": now().Unix(), "exp": now().Add(time.Minute).Unix(),
		}
		assertion := es.assertion(t, claims, nil)
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			codes = map[int]int{}
		)
		for i := range 50 {
			ti := a
			if i%2 == 1 {
				ti = b
			}
			wg.Go(func() {
				resp, _ := ti.withAssertion(t, "/oauth2/token", id, assertion, ccForm)
				mu.Lock()
				codes[resp.StatusCode]++
				mu.Unlock()
			})
		}
		wg.Wait()
		if codes[200] != 1 || codes[401] != 49 {
			t.Fatalf("round %d: status counts %v, want one 200 and 49 401", round, codes)
		}
	}
}

package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/issuer-oauth/issuer/internal/config"
	"github.com/issuer-oauth/issuer/internal/redistest"
	"github.com/issuer-oauth/issuer/internal/secret"
	"github.com/issuer-oauth/issuer/verify/verifytest"
)

// dpopToken posts a token request of client id with the DPoP headers
// proofs (none, one, or several to test that several are refused).
func (ti *testIssuer) dpopToken(t *testing.T, id, sec string, form url.Values, proofs ...string) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", ti.base+PathToken, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(sec))
	for _, p := range proofs {
		req.Header.Add("DPoP", p)
	}
	return ti.do(t, req)
}

var dpopCCForm = url.Values{"grant_type": {"client_credentials"}}

// tokenClaims decodes the claims of a token the test got from the issuer
// (whose signature verifyAccess checks).
func tokenClaims(t *testing.T, raw string) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not a JWS", raw)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// jktOf returns the cnf.jkt of an access token; "" for a bearer token.
func jktOf(t *testing.T, raw string) string {
	t.Helper()
	cnf, _ := tokenClaims(t, raw)["cnf"].(map[string]any)
	jkt, _ := cnf["jkt"].(string)
	return jkt
}

// wantDPoPError checks a refused token request.
func wantDPoPError(t *testing.T, resp *http.Response, m map[string]any, code string) {
	t.Helper()
	if resp.StatusCode != http.StatusBadRequest || m["error"] != code {
		t.Fatalf("status %d %v, want 400 %s", resp.StatusCode, m, code)
	}
}

// TestDPoPProofChecks runs every check of RFC 9449 §4.3 at the token
// endpoint: one valid proof, and one refused proof per check.
func TestDPoPProofChecks(t *testing.T) {
	ti := startIssuer(t)
	id, sec := ti.createClient(t, map[string]any{"scope": "read"})
	key := verifytest.NewDPoPKey(t, "ES256")
	key.Now = ti.clock.Now
	other := verifytest.NewDPoPKey(t, "ES256")
	other.Now = ti.clock.Now
	htu := ti.URL + PathToken
	now := ti.clock.Now().Unix()

	valid := func() map[string]any { return key.Claims("POST", htu, "", "") }
	with := func(name string, v any) map[string]any {
		c := valid()
		if v == nil {
			delete(c, name)
		} else {
			c[name] = v
		}
		return c
	}
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	privBytes, _ := priv.Bytes()
	privJWK := key.JWK()
	privJWK["d"] = base64.RawURLEncoding.EncodeToString(privBytes)
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims(valid()))
	hs.Header["typ"] = "dpop+jwt"
	hs.Header["jwk"] = map[string]string{"kty": "oct", "k": base64.RawURLEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))}
	hsProof, _ := hs.SignedString([]byte("0123456789abcdef0123456789abcdef"))
	none := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims(valid()))
	none.Header["typ"] = "dpop+jwt"
	none.Header["jwk"] = key.JWK()
	noneProof, _ := none.SignedString(jwt.UnsafeAllowNoneSignatureType)
	tampered := key.Proof(t, "POST", htu, "", "")
	p := strings.Split(tampered, ".")
	cb, _ := json.Marshal(with("htm", "POST"))
	tampered = p[0] + "." + base64.RawURLEncoding.EncodeToString(cb) + "." + p[2]

	for _, tc := range []struct {
		name   string
		proofs []string
		ok     bool
	}{
		{"valid", []string{key.Sign(t, nil, valid())}, true},
		{"htu with a query and a fragment", []string{key.Sign(t, nil, with("htu", htu+"?x=1#f"))}, true},
		{"two DPoP headers", []string{key.Sign(t, nil, valid()), key.Sign(t, nil, valid())}, false},
		{"not a JWT", []string{"not-a-jwt"}, false},
		{"typ missing", []string{key.Sign(t, map[string]any{"typ": nil}, valid())}, false},
		{"typ JWT", []string{key.Sign(t, map[string]any{"typ": "JWT"}, valid())}, false},
		{"typ at+jwt", []string{key.Sign(t, map[string]any{"typ": "at+jwt"}, valid())}, false},
		{"alg none", []string{noneProof}, false},
		{"alg HS256 with a symmetric jwk", []string{hsProof}, false},
		{"alg that does not fit the key", []string{key.Sign(t, map[string]any{"alg": "RS256"}, valid())}, false},
		{"no jwk", []string{key.Sign(t, map[string]any{"jwk": nil}, valid())}, false},
		{"private jwk", []string{key.Sign(t, map[string]any{"jwk": privJWK}, valid())}, false},
		{"jwk of another key", []string{key.Sign(t, map[string]any{"jwk": other.JWK()}, valid())}, false},
		{"jwk not an object", []string{key.Sign(t, map[string]any{"jwk": "x"}, valid())}, false},
		{"crit header", []string{key.Sign(t, map[string]any{"crit": []string{"exp"}}, valid())}, false},
		{"x5c header", []string{key.Sign(t, map[string]any{"x5c": []string{"AAAA"}}, valid())}, false},
		{"signature invalid", []string{tampered}, false},
		{"jti missing", []string{key.Sign(t, nil, with("jti", nil))}, false},
		{"jti too long", []string{key.Sign(t, nil, with("jti", strings.Repeat("j", 257)))}, false},
		{"htm missing", []string{key.Sign(t, nil, with("htm", nil))}, false},
		{"htm GET", []string{key.Sign(t, nil, with("htm", "GET"))}, false},
		{"htm lower case", []string{key.Sign(t, nil, with("htm", "post"))}, false},
		{"htu missing", []string{key.Sign(t, nil, with("htu", nil))}, false},
		{"htu another path", []string{key.Sign(t, nil, with("htu", ti.URL+PathIntrospect))}, false},
		{"htu another host", []string{key.Sign(t, nil, with("htu", "https://evil.example.com"+PathToken))}, false},
		{"htu https instead of http", []string{key.Sign(t, nil, with("htu", strings.Replace(htu, "http://", "https://", 1)))}, false},
		{"htu not a URL", []string{key.Sign(t, nil, with("htu", "::"))}, false},
		{"iat missing", []string{key.Sign(t, nil, with("iat", nil))}, false},
		{"iat a string", []string{key.Sign(t, nil, with("iat", "1700000000"))}, false},
		{"iat older than dpop_proof_max_age", []string{key.Sign(t, nil, with("iat", now-301))}, false},
		{"iat in the future, within the clock skew", []string{key.Sign(t, nil, with("iat", now+60))}, true},
		{"iat in the future", []string{key.Sign(t, nil, with("iat", now+61))}, false},
		{"ath at the token endpoint", []string{key.Proof(t, "POST", htu, "some-token", "")}, false},
		{"too large", []string{key.Sign(t, nil, with("pad", strings.Repeat("p", 9000)))}, false},
		{"duplicate claim", []string{dupClaim(t, key, valid())}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, m := ti.dpopToken(t, id, sec, dpopCCForm, tc.proofs...)
			if !tc.ok {
				wantDPoPError(t, resp, m, "invalid_dpop_proof")
				return
			}
			if resp.StatusCode != 200 || m["token_type"] != "DPoP" {
				t.Fatalf("status %d %v, want 200 token_type DPoP", resp.StatusCode, m)
			}
			at := m["access_token"].(string)
			ti.verifyAccess(t, at, "https://api.example.com")
			if got := jktOf(t, at); got != key.Thumbprint() {
				t.Errorf("cnf.jkt = %q, want the key's thumbprint %q", got, key.Thumbprint())
			}
		})
	}

	t.Run("a proof is used once", func(t *testing.T) {
		proof := key.Proof(t, "POST", htu, "", "")
		if resp, m := ti.dpopToken(t, id, sec, dpopCCForm, proof); resp.StatusCode != 200 {
			t.Fatalf("first use: %d %v", resp.StatusCode, m)
		}
		resp, m := ti.dpopToken(t, id, sec, dpopCCForm, proof)
		wantDPoPError(t, resp, m, "invalid_dpop_proof")
	})
	t.Run("the same jti under another key is another proof", func(t *testing.T) {
		c := valid()
		c["jti"] = "shared-jti"
		if resp, m := ti.dpopToken(t, id, sec, dpopCCForm, key.Sign(t, nil, c)); resp.StatusCode != 200 {
			t.Fatalf("key 1: %d %v", resp.StatusCode, m)
		}
		if resp, m := ti.dpopToken(t, id, sec, dpopCCForm, other.Sign(t, nil, c)); resp.StatusCode != 200 {
			t.Fatalf("key 2: %d %v", resp.StatusCode, m)
		}
	})
	t.Run("a refused proof does not use up its jti", func(t *testing.T) {
		c := valid()
		c["htm"] = "GET"
		resp, m := ti.dpopToken(t, id, sec, dpopCCForm, key.Sign(t, nil, c))
		wantDPoPError(t, resp, m, "invalid_dpop_proof")
		c["htm"] = "POST"
		if resp, m := ti.dpopToken(t, id, sec, dpopCCForm, key.Sign(t, nil, c)); resp.StatusCode != 200 {
			t.Fatalf("same jti, valid proof: %d %v", resp.StatusCode, m)
		}
	})
	t.Run("without a proof the token is a bearer token", func(t *testing.T) {
		resp, m := ti.dpopToken(t, id, sec, dpopCCForm)
		if resp.StatusCode != 200 || m["token_type"] != "Bearer" || jktOf(t, m["access_token"].(string)) != "" {
			t.Fatalf("status %d %v, want a Bearer token without cnf", resp.StatusCode, m)
		}
	})
	t.Run("every proof algorithm", func(t *testing.T) {
		for _, alg := range []string{"ES256", "EdDSA", "RS256", "PS256"} {
			k := verifytest.NewDPoPKey(t, alg)
			k.Now = ti.clock.Now
			resp, m := ti.dpopToken(t, id, sec, dpopCCForm, k.Proof(t, "POST", htu, "", ""))
			if resp.StatusCode != 200 || jktOf(t, m["access_token"].(string)) != k.Thumbprint() {
				t.Errorf("%s: %d %v", alg, resp.StatusCode, m)
			}
		}
	})
	t.Run("metadata lists the algorithms", func(t *testing.T) {
		got, _ := json.Marshal(ti.metadata(t)["dpop_signing_alg_values_supported"])
		if string(got) != `["ES256","ES384","EdDSA","RS256","PS256"]` {
			t.Errorf("dpop_signing_alg_values_supported = %s", got)
		}
	})
}

// dupClaim signs claims with htm written twice, "GET" first: a parser
// that keeps the last member (as Go's does) would see a valid proof.
func dupClaim(t *testing.T, key *verifytest.DPoPKey, claims map[string]any) string {
	t.Helper()
	cb, _ := json.Marshal(claims)
	cb = append([]byte(`{"htm":"GET",`), cb[1:]...)
	return key.SignBytes(t, key.Header(), cb)
}

// TestDPoPHTUIsTheIssuerURL: behind a proxy, the token endpoint's public
// URL comes from ISSUER_URL; a proof for the address the instance listens
// on, or for a Host header the client sends, is refused.
func TestDPoPHTUIsTheIssuerURL(t *testing.T) {
	ti := startIssuer(t, func(c *config.Config) { c.URL = "https://auth.example.com" })
	id, sec := ti.createClient(t, map[string]any{"scope": "read"})
	key := verifytest.NewDPoPKey(t, "ES256")
	key.Now = ti.clock.Now

	resp, m := ti.dpopToken(t, id, sec, dpopCCForm, key.Proof(t, "POST", ti.base+PathToken, "", ""))
	wantDPoPError(t, resp, m, "invalid_dpop_proof")

	req, _ := http.NewRequest("POST", ti.base+PathToken, strings.NewReader(dpopCCForm.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, sec)
	req.Host = "evil.example.com"
	req.Header.Set("DPoP", key.Proof(t, "POST", "http://evil.example.com"+PathToken, "", ""))
	resp, m = ti.do(t, req)
	wantDPoPError(t, resp, m, "invalid_dpop_proof")

	resp, m = ti.dpopToken(t, id, sec, dpopCCForm, key.Proof(t, "POST", "https://AUTH.example.com:443"+PathToken, "", ""))
	if resp.StatusCode != 200 || m["token_type"] != "DPoP" {
		t.Fatalf("proof for ISSUER_URL: %d %v", resp.StatusCode, m)
	}
}

// TestDPoPBoundClient: a client registered with dpop_bound_access_tokens
// gets no token without a proof (RFC 9449 §5.2).
func TestDPoPBoundClient(t *testing.T) {
	ti := startIssuer(t)
	id, sec := ti.createClient(t, map[string]any{"scope": "read", "dpop_bound_access_tokens": true})
	key := verifytest.NewDPoPKey(t, "ES256")
	key.Now = ti.clock.Now
	htu := ti.URL + PathToken

	if _, m := ti.admin(t, "GET", "/admin/clients/"+id, nil); m["dpop_bound_access_tokens"] != true {
		t.Fatalf("GET client: dpop_bound_access_tokens = %v, want true", m["dpop_bound_access_tokens"])
	}
	resp, m := ti.dpopToken(t, id, sec, dpopCCForm)
	wantDPoPError(t, resp, m, "invalid_dpop_proof")

	resp, m = ti.dpopToken(t, id, sec, dpopCCForm, key.Proof(t, "POST", htu, "", ""))
	if resp.StatusCode != 200 || m["token_type"] != "DPoP" {
		t.Fatalf("with a proof: %d %v", resp.StatusCode, m)
	}
	rt := m["refresh_token"].(string)
	resp, m = ti.dpopToken(t, id, sec, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
	wantDPoPError(t, resp, m, "invalid_dpop_proof")

	// The refusal did not consume the refresh token.
	resp, m = ti.dpopToken(t, id, sec, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, key.Proof(t, "POST", htu, "", ""))
	if resp.StatusCode != 200 || m["token_type"] != "DPoP" {
		t.Fatalf("refresh with a proof: %d %v", resp.StatusCode, m)
	}

	// Updating the client lifts the requirement.
	resp, m = ti.admin(t, "PUT", "/admin/clients/"+id, map[string]any{"scope": "read", "audience": []string{"https://api.example.com"}, "dpop_bound_access_tokens": false})
	if resp.StatusCode != 200 || m["dpop_bound_access_tokens"] != false {
		t.Fatalf("PUT: %d %v", resp.StatusCode, m)
	}
	if resp, m := ti.dpopToken(t, id, sec, dpopCCForm); resp.StatusCode != 200 || m["token_type"] != "Bearer" {
		t.Fatalf("after the update, without a proof: %d %v", resp.StatusCode, m)
	}
}

// TestDPoPRefresh: refresh tokens of (confidential) clients are not bound;
// a refresh with a proof gets an access token bound to that proof's key,
// and a replayed proof consumes no refresh token.
func TestDPoPRefresh(t *testing.T) {
	ti := startIssuer(t)
	id, sec := ti.createClient(t, map[string]any{"scope": "read"})
	key := verifytest.NewDPoPKey(t, "ES256")
	key.Now = ti.clock.Now
	key2 := verifytest.NewDPoPKey(t, "EdDSA")
	key2.Now = ti.clock.Now
	htu := ti.URL + PathToken
	refresh := func(rt string, proofs ...string) (*http.Response, map[string]any) {
		return ti.dpopToken(t, id, sec, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, proofs...)
	}

	_, m := ti.dpopToken(t, id, sec, dpopCCForm, key.Proof(t, "POST", htu, "", ""))
	rt := m["refresh_token"].(string)
	if c := tokenClaims(t, rt); c["cnf"] != nil {
		t.Errorf("the refresh token is bound: %v", c["cnf"])
	}

	proof := key.Proof(t, "POST", htu, "", "")
	resp, m := refresh(rt, proof)
	if resp.StatusCode != 200 || m["token_type"] != "DPoP" || jktOf(t, m["access_token"].(string)) != key.Thumbprint() {
		t.Fatalf("refresh with a proof: %d %v", resp.StatusCode, m)
	}
	rt = m["refresh_token"].(string)

	resp, m = refresh(rt, proof)
	wantDPoPError(t, resp, m, "invalid_dpop_proof")

	resp, m = refresh(rt, key2.Proof(t, "POST", htu, "", ""))
	if resp.StatusCode != 200 || jktOf(t, m["access_token"].(string)) != key2.Thumbprint() {
		t.Fatalf("refresh after the replay, with another key: %d %v", resp.StatusCode, m)
	}
	rt = m["refresh_token"].(string)

	resp, m = refresh(rt)
	if resp.StatusCode != 200 || m["token_type"] != "Bearer" || jktOf(t, m["access_token"].(string)) != "" {
		t.Fatalf("refresh without a proof: %d %v", resp.StatusCode, m)
	}
}

// TestDPoPIntrospection: introspection reports a bound token's cnf and
// token_type DPoP (RFC 9449 §6.2).
func TestDPoPIntrospection(t *testing.T) {
	ti := startIssuer(t)
	id, sec := ti.createClient(t, map[string]any{"scope": "read"})
	key := verifytest.NewDPoPKey(t, "ES256")
	key.Now = ti.clock.Now
	_, m := ti.dpopToken(t, id, sec, dpopCCForm, key.Proof(t, "POST", ti.URL+PathToken, "", ""))
	got := ti.introspect(t, id, sec, m["access_token"].(string))
	cnf, _ := got["cnf"].(map[string]any)
	if got["active"] != true || got["token_type"] != "DPoP" || cnf["jkt"] != key.Thumbprint() {
		t.Fatalf("introspection = %v, want active, token_type DPoP, cnf.jkt %s", got, key.Thumbprint())
	}
	_, m = ti.dpopToken(t, id, sec, dpopCCForm)
	if got := ti.introspect(t, id, sec, m["access_token"].(string)); got["token_type"] != "Bearer" || got["cnf"] != nil {
		t.Fatalf("introspection of a bearer token = %v", got)
	}
}

// TestDPoPNonce: with dpop_nonce, a proof without the server's nonce, or
// with a stale one, gets use_dpop_nonce and the nonce to use (RFC 9449 §8).
func TestDPoPNonce(t *testing.T) {
	ti := startIssuer(t, func(c *config.Config) { c.DPoPNonce = true })
	id, sec := ti.createClient(t, map[string]any{"scope": "read"})
	key := verifytest.NewDPoPKey(t, "ES256")
	key.Now = ti.clock.Now
	htu := ti.URL + PathToken

	resp, m := ti.dpopToken(t, id, sec, dpopCCForm, key.Proof(t, "POST", htu, "", ""))
	wantDPoPError(t, resp, m, "use_dpop_nonce")
	nonce := resp.Header.Get("DPoP-Nonce")
	if nonce == "" {
		t.Fatal("use_dpop_nonce without a DPoP-Nonce header")
	}
	resp, m = ti.dpopToken(t, id, sec, dpopCCForm, key.Proof(t, "POST", htu, "", nonce))
	if resp.StatusCode != 200 || m["token_type"] != "DPoP" {
		t.Fatalf("with the nonce: %d %v", resp.StatusCode, m)
	}
	if resp.Header.Get("DPoP-Nonce") == "" {
		t.Error("a success without a DPoP-Nonce header")
	}
	resp, m = ti.dpopToken(t, id, sec, dpopCCForm, key.Proof(t, "POST", htu, "", "made-up-nonce"))
	wantDPoPError(t, resp, m, "use_dpop_nonce")
	forged := []byte(nonce)
	forged[len(forged)-2] ^= 1
	resp, m = ti.dpopToken(t, id, sec, dpopCCForm, key.Proof(t, "POST", htu, "", string(forged)))
	wantDPoPError(t, resp, m, "use_dpop_nonce")

	ti.clock.Advance(3 * ti.cfg.DPoPProofMaxAge)
	resp, m = ti.dpopToken(t, id, sec, dpopCCForm, key.Proof(t, "POST", htu, "", nonce))
	wantDPoPError(t, resp, m, "use_dpop_nonce")
	if fresh := resp.Header.Get("DPoP-Nonce"); fresh == nonce || fresh == "" {
		t.Errorf("DPoP-Nonce after the step = %q, want a new nonce", fresh)
	}
}

// TestDPoPAcrossInstances: two issuer instances on one real Redis: a proof
// used at one is refused at the other, of 20 concurrent requests with one
// proof over both exactly one succeeds, and each accepts the other's
// nonces.
func TestDPoPAcrossInstances(t *testing.T) {
	srv := redistest.Start(t)
	master := secret.Random(32)
	nonce := func(c *config.Config) { c.DPoPNonce = true }
	a := startIssuer(t, onRedis(srv.URL(), master), nonce)
	b := startIssuer(t, onRedis(srv.URL(), master), sameURL(a.URL), nonce)
	testDPoPAcross(t, a, b, a.clock.Now)
}

// TestDPoPAcrossProcesses is TestDPoPAcrossInstances with two real
// `issuer serve` processes on one real redis-server.
func TestDPoPAcrossProcesses(t *testing.T) {
	a, b := startProcessPair(t, map[string]string{"ISSUER_DPOP_NONCE": "true"})
	testDPoPAcross(t, a, b, time.Now)
}

// testDPoPAcross runs the DPoP checks that need two instances a and b of
// one issuer (ISSUER_URL a.URL) with dpop_nonce on; now is their clock.
func testDPoPAcross(t *testing.T, a, b *testIssuer, now func() time.Time) {
	id, sec := a.createClient(t, map[string]any{"scope": "read"})
	key := verifytest.NewDPoPKey(t, "ES256")
	key.Now = now
	htu := a.URL + PathToken

	resp, _ := a.dpopToken(t, id, sec, dpopCCForm, key.Proof(t, "POST", htu, "", ""))
	nonceA := resp.Header.Get("DPoP-Nonce")
	proof := key.Proof(t, "POST", htu, "", nonceA)
	resp, m := b.dpopToken(t, id, sec, dpopCCForm, proof)
	if resp.StatusCode != 200 || m["token_type"] != "DPoP" {
		t.Fatalf("A's nonce at B: %d %v", resp.StatusCode, m)
	}
	resp, m = a.dpopToken(t, id, sec, dpopCCForm, proof)
	wantDPoPError(t, resp, m, "invalid_dpop_proof")

	proof = key.Proof(t, "POST", htu, "", nonceA)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		success int
	)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ti := []*testIssuer{a, b}[i%2]
			resp, _ := ti.dpopToken(t, id, sec, dpopCCForm, proof)
			if resp.StatusCode == 200 {
				mu.Lock()
				success++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if success != 1 {
		t.Fatalf("%d of 20 concurrent requests with one proof succeeded, want 1", success)
	}
}

// TestDPoPBoundClientAndSimpleJWT: the SimpleJWT-compatible endpoints take
// no DPoP proof, so a DPoP-bound compat client gets no tokens from them.
func TestDPoPBoundClientAndSimpleJWT(t *testing.T) {
	ti, _ := startCompat(t)
	ti.createUser(t, "alice", "correct horse battery staple")
	ti.sjLogin(t, "alice", "correct horse battery staple")

	resp, m := ti.admin(t, "PUT", "/admin/clients/"+compatClientID, map[string]any{
		"grant_types": []string{"password", "refresh_token"}, "scope": "read", "audience": []string{e2eAudience},
		"dpop_bound_access_tokens": true,
	})
	if resp.StatusCode != 200 {
		t.Fatalf("PUT: %d %v", resp.StatusCode, m)
	}
	r := ti.sjPost(t, "", map[string]any{"username": "alice", "password": "correct horse battery staple"})
	if r.status != http.StatusInternalServerError || strings.Contains(string(r.body), "access") {
		t.Fatalf("login with a DPoP-bound compat client: %d %s", r.status, r.body)
	}
}

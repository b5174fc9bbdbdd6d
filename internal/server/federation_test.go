package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/issuer-oauth/issuer/internal/config"
	"github.com/issuer-oauth/issuer/internal/secret"
)

// standInIssuer is an external OpenID provider over TLS, as a Kubernetes
// API server, SPIRE's OIDC discovery provider or GitHub Actions serve one:
// /.well-known/openid-configuration and a JWK Set, and a signing key to
// mint workload tokens with.
type standInIssuer struct {
	srv       *httptest.Server
	key       clientKey
	discovery atomic.Int64 // requests for the discovery document
	keys      atomic.Int64 // requests for the key set
}

func newStandInIssuer(t *testing.T, alg string) *standInIssuer {
	t.Helper()
	si := &standInIssuer{key: newClientKey(t, "workload-"+alg, alg)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		si.discovery.Add(1)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"issuer": si.srv.URL, "jwks_uri": si.srv.URL + "/openid/v1/jwks",
			"response_types_supported": []string{"id_token"}, "subject_types_supported": []string{"public"},
			"id_token_signing_alg_values_supported": []string{alg},
		})
	})
	mux.HandleFunc("GET /openid/v1/jwks", func(w http.ResponseWriter, r *http.Request) {
		si.keys.Add(1)
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Header().Set("Cache-Control", "max-age=3600")
		json.NewEncoder(w).Encode(jwksOf(si.key))
	})
	si.srv = httptest.NewTLSServer(mux)
	t.Cleanup(si.srv.Close)
	return si
}

// mint signs a workload token of the stand-in issuer.
func (si *standInIssuer) mint(t *testing.T, claims jwt.MapClaims, hdr map[string]any) string {
	t.Helper()
	if _, ok := claims["iss"]; !ok {
		claims["iss"] = si.srv.URL
	}
	return si.key.assertion(t, claims, hdr)
}

// federated posts a client_credentials request of a federated_jwt client.
func (ti *testIssuer) federated(t *testing.T, id, token string) (*http.Response, map[string]any) {
	t.Helper()
	return ti.withAssertion(t, "/oauth2/token", id, token, ccForm)
}

// trustedIssuersJSON is the trusted_issuers setting as the environment
// gives it.
func trustedIssuersJSON(list ...map[string]string) string {
	b, _ := json.Marshal(list)
	return string(b)
}

// TestFederatedKubernetes: a pod's projected service-account token
// (audience set to ISSUER_URL) authenticates the client bound to its
// service account. The stand-in cluster signs RS256 as a Kubernetes API
// server does, and is configured with its jwks_uri (as a cluster whose
// discovery is not reachable would be).
func TestFederatedKubernetes(t *testing.T) {
	cluster := newStandInIssuer(t, "RS256")
	other := newStandInIssuer(t, "RS256") // an issuer nobody configured
	ti := startIssuerOpts(t, trusting(cluster.srv), func(c *config.Config) {
		c.TrustedIssuers = trustedIssuersJSON(map[string]string{"name": "cluster", "issuer": cluster.srv.URL, "jwks_uri": cluster.srv.URL + "/openid/v1/jwks"})
		c.AuthFailuresPerAddress, c.AuthFailuresPerClient = 0, 0
	})
	if got := toStrings(ti.metadata(t)["token_endpoint_auth_methods_supported"]); len(got) != 4 || got[3] != "federated_jwt" {
		t.Errorf("token_endpoint_auth_methods_supported = %v, want federated_jwt last", got)
	}
	const sa = "system:serviceaccount:payments:billing"
	id := ti.registerFederated(t, map[string]any{"issuer": "cluster", "subject": sa})
	now := ti.clock.Now()
	// The shape of a projected token (kubectl create token billing
	// --audience=ISSUER_URL, or a projected volume with that audience).
	k8s := func(set jwt.MapClaims) jwt.MapClaims {
		c := jwt.MapClaims{
			"aud": []string{ti.URL}, "exp": now.Add(time.Hour).Unix(), "iat": now.Unix(), "nbf": now.Unix(),
			"iss": cluster.srv.URL, "sub": sa, "jti": secret.Random(16),
			"kubernetes.io": map[string]any{
				"namespace":      "payments",
				"serviceaccount": map[string]any{"name": "billing", "uid": "2c4a7f0e-5b9e-4d7c-9a53-0d6f5b0f3c11"},
				"pod":            map[string]any{"name": "billing-7d9c", "uid": "f0f0c1a2-1111-2222-3333-444455556666"},
				"node":           map[string]any{"name": "node-1", "uid": "a1b2c3d4-0000-1111-2222-333344445555"},
			},
		}
		for k, v := range set {
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
		}
		return c
	}
	good := cluster.mint(t, k8s(nil), nil)
	for i := range 3 { // not single use: a projected token is presented until kubelet rotates it
		resp, m := ti.federated(t, id, good)
		if resp.StatusCode != 200 {
			t.Fatalf("the right service account, try %d: %d %v", i, resp.StatusCode, m)
		}
		if c := ti.verifyAccess(t, m["access_token"].(string), "https://api.example.com"); c.Subject != id {
			t.Errorf("sub = %q, want the client %q", c.Subject, id)
		}
	}
	if n := cluster.keys.Load(); n != 1 {
		t.Errorf("key set fetched %d times for 3 authentications, want 1 (cached: no round trip)", n)
	}

	for _, tt := range []struct {
		name  string
		token string
	}{
		{"another service account", cluster.mint(t, k8s(jwt.MapClaims{"sub": "system:serviceaccount:payments:reports"}), nil)},
		{"wrong audience", cluster.mint(t, k8s(jwt.MapClaims{"aud": []string{"https://kubernetes.default.svc"}}), nil)},
		{"expired", cluster.mint(t, k8s(jwt.MapClaims{"iat": now.Add(-2 * time.Hour).Unix(), "exp": now.Add(-time.Hour).Unix()}), nil)},
		{"no exp", cluster.mint(t, k8s(jwt.MapClaims{"exp": nil}), nil)},
		{"lifetime over 24h", cluster.mint(t, k8s(jwt.MapClaims{"exp": now.Add(48 * time.Hour).Unix()}), nil)},
		{"unknown issuer", other.mint(t, k8s(jwt.MapClaims{"iss": other.srv.URL}), nil)},
		{"unknown issuer claiming the cluster's iss", other.mint(t, k8s(nil), map[string]any{"kid": cluster.key.kid})},
		{"alg none", func() string {
			s, _ := jwt.NewWithClaims(jwt.SigningMethodNone, k8s(nil)).SignedString(jwt.UnsafeAllowNoneSignatureType)
			return s
		}()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if resp, m := ti.federated(t, id, tt.token); resp.StatusCode != 401 || m["error"] != "invalid_client" {
				t.Errorf("%d %v, want 401 invalid_client", resp.StatusCode, m)
			}
		})
	}
	t.Run("the token of one client does not open another", func(t *testing.T) {
		other := ti.registerFederated(t, map[string]any{"issuer": "cluster", "subject": "system:serviceaccount:payments:reports"})
		if resp, m := ti.federated(t, other, good); resp.StatusCode != 401 {
			t.Errorf("%d %v, want 401", resp.StatusCode, m)
		}
	})
}

// registerFederated registers a federated_jwt client and returns its id.
func (ti *testIssuer) registerFederated(t *testing.T, identity map[string]any) string {
	t.Helper()
	resp, m := ti.admin(t, "POST", "/admin/clients", map[string]any{"client_name": "workload",
		"token_endpoint_auth_method": "federated_jwt", "federated_identity": identity, "audience": []string{"https://api.example.com"}})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("register: %d %v", resp.StatusCode, m)
	}
	if _, ok := m["client_secret"]; ok {
		t.Errorf("a federated_jwt client got a secret")
	}
	return m["client_id"].(string)
}

// TestFederatedSPIRE: a SPIFFE JWT-SVID (ES256, typ JWT, sub the SPIFFE
// ID) from a SPIRE server whose keys are found through OIDC discovery.
func TestFederatedSPIRE(t *testing.T) {
	spire := newStandInIssuer(t, "ES256")
	ti := startIssuerOpts(t, trusting(spire.srv), func(c *config.Config) {
		c.TrustedIssuers = trustedIssuersJSON(map[string]string{"name": "spire", "issuer": spire.srv.URL})
	})
	const spiffeID = "spiffe://example.org/ns/payments/sa/billing"
	id := ti.registerFederated(t, map[string]any{"issuer": "spire", "subject": spiffeID})
	now := ti.clock.Now()
	svid := func(sub string) string {
		return spire.mint(t, jwt.MapClaims{"sub": sub, "aud": []string{ti.URL}, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()},
			map[string]any{"typ": "JWT"})
	}
	if resp, m := ti.federated(t, id, svid(spiffeID)); resp.StatusCode != 200 {
		t.Fatalf("the workload's SVID: %d %v", resp.StatusCode, m)
	}
	if resp, _ := ti.federated(t, id, svid("spiffe://example.org/ns/payments/sa/other")); resp.StatusCode != 401 {
		t.Errorf("another SPIFFE ID: %d, want 401", resp.StatusCode)
	}
	if resp, _ := ti.federated(t, id, svid(spiffeID+"/x")); resp.StatusCode != 401 {
		t.Errorf("a SPIFFE ID with the subject as prefix: %d, want 401", resp.StatusCode)
	}
	if d, k := spire.discovery.Load(), spire.keys.Load(); d != 1 || k != 1 {
		t.Errorf("discovery fetched %d times, keys %d times; want 1 and 1", d, k)
	}
}

// TestFederatedGitHubActions: a GitHub Actions OIDC token with a custom
// audience, bound to a repository's main branch by claim conditions.
func TestFederatedGitHubActions(t *testing.T) {
	gh := newStandInIssuer(t, "RS256")
	const audience = "https://auth.example.com/github"
	ti := startIssuerOpts(t, trusting(gh.srv), func(c *config.Config) {
		c.TrustedIssuers = trustedIssuersJSON(map[string]string{"name": "github", "issuer": gh.srv.URL, "audience": audience})
		c.AuthFailuresPerAddress, c.AuthFailuresPerClient = 0, 0
	})
	id := ti.registerFederated(t, map[string]any{"issuer": "github", "subject": "repo:acme/app:ref:refs/heads/main",
		"claims": map[string]string{"repository": "acme/app", "ref": "refs/heads/main", "repository_owner": "acme"}})
	now := ti.clock.Now()
	action := func(set jwt.MapClaims) string {
		c := jwt.MapClaims{
			"jti": secret.Random(16), "sub": "repo:acme/app:ref:refs/heads/main", "aud": audience,
			"ref": "refs/heads/main", "sha": "a1b2c3", "repository": "acme/app", "repository_owner": "acme",
			"repository_owner_id": "123", "run_id": "42", "run_number": "7", "run_attempt": "1",
			"repository_visibility": "private", "repository_id": "456", "actor_id": "789", "actor": "octocat",
			"workflow": "deploy", "head_ref": "", "base_ref": "", "event_name": "push", "ref_type": "branch",
			"workflow_ref": "acme/app/.github/workflows/deploy.yml@refs/heads/main", "job_workflow_ref": "acme/app/.github/workflows/deploy.yml@refs/heads/main",
			"runner_environment": "github-hosted", "nbf": now.Add(-time.Minute).Unix(), "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		}
		for k, v := range set {
			c[k] = v
		}
		return gh.mint(t, c, map[string]any{"typ": "JWT", "x5t": "abc"})
	}
	if resp, m := ti.federated(t, id, action(nil)); resp.StatusCode != 200 {
		t.Fatalf("main of acme/app: %d %v", resp.StatusCode, m)
	}
	for name, set := range map[string]jwt.MapClaims{
		"another branch (sub and ref)":  {"sub": "repo:acme/app:ref:refs/heads/dev", "ref": "refs/heads/dev"},
		"ref changed, sub kept":         {"ref": "refs/heads/dev"},
		"another repository":            {"repository": "acme/other"},
		"repository claim not a string": {"repository": []string{"acme/app"}},
		"repository claim missing":      {"repository": nil},
		"default audience":              {"aud": ti.URL},
	} {
		if resp, m := ti.federated(t, id, action(set)); resp.StatusCode != 401 || m["error"] != "invalid_client" {
			t.Errorf("%s: %d %v, want 401 invalid_client", name, resp.StatusCode, m)
		}
	}
}

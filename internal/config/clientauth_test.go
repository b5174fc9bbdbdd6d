package config

import (
	"reflect"
	"strings"
	"testing"
)

// TestTrustedIssuersAndHostLists: the list settings come as YAML lists in
// the file and as JSON (trusted_issuers) or comma-separated text
// (jwks_uri_allowed_hosts) in the environment, and mean the same.
func TestTrustedIssuersAndHostLists(t *testing.T) {
	want := []TrustedIssuer{
		{Name: "github", Issuer: "https://token.actions.githubusercontent.com", Audience: "https://auth.example.com"},
		{Name: "cluster", Issuer: "https://kubernetes.default.svc", JWKSURI: "https://10.0.0.1/openid/v1/jwks", Audience: "sts"},
	}
	path := writeFile(t, `
url: https://auth.example.com
jwks_uri_allowed_hosts: [keys.example.com, 10.0.0.7]
trusted_issuers:
  - name: github
    issuer: https://token.actions.githubusercontent.com
  - name: cluster
    issuer: https://kubernetes.default.svc
    jwks_uri: https://10.0.0.1/openid/v1/jwks
    audience: sts
`)
	fromFile, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	fromEnv, err := Load("", env(map[string]string{
		"ISSUER_URL":                    "https://auth.example.com",
		"ISSUER_JWKS_URI_ALLOWED_HOSTS": "keys.example.com, 10.0.0.7",
		"ISSUER_TRUSTED_ISSUERS": `[{"name":"github","issuer":"https://token.actions.githubusercontent.com"},
			{"name":"cluster","issuer":"https://kubernetes.default.svc","jwks_uri":"https://10.0.0.1/openid/v1/jwks","audience":"sts"}]`,
	}))
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]Config{"file": fromFile, "environment": fromEnv} {
		if got := c.TrustedIssuerList(); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: TrustedIssuerList = %+v, want %+v", name, got, want)
		}
		if got := c.JWKSURIAllowedHostList(); !reflect.DeepEqual(got, []string{"keys.example.com", "10.0.0.7"}) {
			t.Errorf("%s: JWKSURIAllowedHostList = %q", name, got)
		}
	}
}

func TestTrustedIssuersRefused(t *testing.T) {
	for _, tt := range []struct{ value, want string }{
		{`{"name":"x"}`, "is not a JSON array"},
		{`[{"name":"x","issuer":"https://a","extra":1}]`, `unknown field "extra"`},
		{`[{"name":"","issuer":"https://a"}]`, "name \"\" must be"},
		{`[{"name":"a b","issuer":"https://a"}]`, `name "a b" must be`},
		{`[{"name":"a","issuer":"https://a"},{"name":"a","issuer":"https://b"}]`, `name "a" is used twice`},
		{`[{"name":"a","issuer":"http://a"}]`, "must be https"},
		{`[{"name":"a","issuer":"https://a?x=1"}]`, "query or fragment"},
		{`[{"name":"a","issuer":"token.example.com"}]`, "not an absolute URL"},
		{`[{"name":"a","issuer":"https://a","jwks_uri":"ftp://a/k"}]`, "jwks_uri"},
	} {
		_, err := Load("", env(map[string]string{"ISSUER_TRUSTED_ISSUERS": tt.value}))
		if err == nil || !strings.Contains(err.Error(), "ISSUER_TRUSTED_ISSUERS (trusted_issuers)") || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error about trusted_issuers saying %q", tt.value, err, tt.want)
		}
	}
	_, err := Load("", env(map[string]string{"ISSUER_TRUSTED_ISSUERS": `[{"name":"a","issuer":"http://a"}]`, "ISSUER_ALLOW_INSECURE_JWKS_URI": "true"}))
	if err != nil {
		t.Errorf("http issuer with allow_insecure_jwks_uri: %v", err)
	}
	_, err = Load("", env(map[string]string{"ISSUER_JWKS_URI_ALLOWED_HOSTS": "https://keys.example.com/jwks"}))
	if err == nil || !strings.Contains(err.Error(), "jwks_uri_allowed_hosts") {
		t.Errorf("a URL as an allowed host: %v, want an error", err)
	}
	path := writeFile(t, "trusted_issuers:\n  - [1, 2]\n")
	if _, err := Load(path, nil); err == nil || !strings.Contains(err.Error(), "trusted_issuers") {
		t.Errorf("a list of lists: %v, want an error about trusted_issuers", err)
	}
	path = writeFile(t, "jwks_uri_allowed_hosts:\n  - {a: b}\n")
	if _, err := Load(path, nil); err == nil || !strings.Contains(err.Error(), "list of single values") {
		t.Errorf("a list of mappings as hosts: %v, want an error", err)
	}
}

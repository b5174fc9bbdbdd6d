package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Limits of the settings of clients without shared secrets, checked by
// Validate.
const (
	minClientAssertionMaxLifetime    = 10 * time.Second
	maxClientAssertionMaxLifetime    = time.Hour
	minFederatedAssertionMaxLifetime = time.Minute
	maxFederatedAssertionMaxLifetime = 168 * time.Hour
	maxTrustedIssuers                = 50
)

// TrustedIssuer is an external issuer of workload-identity tokens (a
// Kubernetes cluster, SPIRE, GitHub Actions, any OpenID provider), one
// element of the trusted_issuers setting.
type TrustedIssuer struct {
	// Name is what a federated_jwt client's federated_identity.issuer
	// names: letters, digits, '-', '_' and '.'.
	Name string `json:"name"`
	// Issuer is the iss of its tokens, an absolute https URL.
	Issuer string `json:"issuer"`
	// JWKSURI is where its keys are; when empty, the jwks_uri of its
	// /.well-known/openid-configuration.
	JWKSURI string `json:"jwks_uri,omitempty"`
	// Audience is the aud its tokens must contain; ISSUER_URL when empty.
	Audience string `json:"audience,omitempty"`
}

// TrustedIssuerList returns the parsed TrustedIssuers, with each Audience
// defaulted to the issuer URL. Entries Validate refuses may be returned.
func (c Config) TrustedIssuerList() []TrustedIssuer {
	list, _ := parseTrustedIssuers(c.TrustedIssuers)
	for i := range list {
		if list[i].Audience == "" {
			list[i].Audience = c.URL
		}
	}
	return list
}

// JWKSURIAllowedHostList returns the hosts of JWKSURIAllowedHosts.
func (c Config) JWKSURIAllowedHostList() []string {
	var hosts []string
	for h := range strings.SplitSeq(c.JWKSURIAllowedHosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			hosts = append(hosts, h)
		}
	}
	return hosts
}

func parseTrustedIssuers(raw string) ([]TrustedIssuer, error) {
	if strings.TrimSpace(raw) == "" {
		return nil, nil
	}
	var list []TrustedIssuer
	dec := json.NewDecoder(bytes.NewReader([]byte(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&list); err != nil {
		return nil, fmt.Errorf("is not a JSON array of {\"name\",\"issuer\",\"jwks_uri\",\"audience\"} objects: %v", err)
	}
	return list, nil
}

// clientAuthProblems checks the settings of clients without shared
// secrets.
func (c Config) clientAuthProblems() []problem {
	var ps []problem
	add := func(key, format string, args ...any) {
		ps = append(ps, problem{key: key, msg: fmt.Sprintf(format, args...)})
	}
	if d := c.ClientAssertionMaxLifetime; d < minClientAssertionMaxLifetime || d > maxClientAssertionMaxLifetime {
		add("client_assertion_max_lifetime", "%s is out of range; use %s to %s, such as 5m",
			formatDuration(d), formatDuration(minClientAssertionMaxLifetime), formatDuration(maxClientAssertionMaxLifetime))
	}
	if d := c.FederatedAssertionMaxLifetime; d < minFederatedAssertionMaxLifetime || d > maxFederatedAssertionMaxLifetime {
		add("federated_assertion_max_lifetime", "%s is out of range; use %s to %s, such as 24h",
			formatDuration(d), formatDuration(minFederatedAssertionMaxLifetime), formatDuration(maxFederatedAssertionMaxLifetime))
	}
	for _, h := range strings.Split(c.JWKSURIAllowedHosts, ",") {
		h = strings.TrimSpace(h)
		if strings.TrimSpace(c.JWKSURIAllowedHosts) != "" && (h == "" || strings.ContainsAny(h, "/:@ ")) {
			add("jwks_uri_allowed_hosts", "%q is not a host name or address; list hosts without scheme, port or path, such as keys.example.com", h)
		}
	}
	list, err := parseTrustedIssuers(c.TrustedIssuers)
	if err != nil {
		add("trusted_issuers", "%v", err)
		return ps
	}
	if len(list) > maxTrustedIssuers {
		add("trusted_issuers", "has %d issuers; at most %d", len(list), maxTrustedIssuers)
	}
	names := map[string]bool{}
	for i, ti := range list {
		at := fmt.Sprintf("entry %d", i+1)
		switch {
		case !validName(ti.Name):
			add("trusted_issuers", "%s: name %q must be 1 to 64 letters, digits, '-', '_' or '.', such as kubernetes", at, ti.Name)
		case names[ti.Name]:
			add("trusted_issuers", "%s: name %q is used twice", at, ti.Name)
		}
		names[ti.Name] = true
		if msg := c.checkIssuerRemote(ti.Issuer, true); msg != "" {
			add("trusted_issuers", "%s (%s): issuer %s", at, ti.Name, msg)
		}
		if ti.JWKSURI != "" {
			if msg := c.checkIssuerRemote(ti.JWKSURI, false); msg != "" {
				add("trusted_issuers", "%s (%s): jwks_uri %s", at, ti.Name, msg)
			}
		}
		if ti.Audience != "" && strings.TrimSpace(ti.Audience) != ti.Audience {
			add("trusted_issuers", "%s (%s): audience %q has surrounding spaces", at, ti.Name, ti.Audience)
		}
	}
	return ps
}

// checkIssuerRemote says what is wrong with a trusted issuer's URL: https
// (http with AllowInsecureJWKSURI), a host, no user info, query or
// fragment (issuers) — or "".
func (c Config) checkIssuerRemote(raw string, issuer bool) string {
	u, err := url.Parse(raw)
	switch {
	case raw == "" || err != nil || u.Host == "" || u.Opaque != "":
		return fmt.Sprintf("%q is not an absolute URL such as https://token.actions.githubusercontent.com", raw)
	case u.Scheme == "http" && !c.AllowInsecureJWKSURI:
		return fmt.Sprintf("%q must be https (http only with allow_insecure_jwks_uri)", raw)
	case u.Scheme != "https" && u.Scheme != "http":
		return fmt.Sprintf("%q must be https", raw)
	case u.User != nil:
		return fmt.Sprintf("%q must not contain user info", raw)
	case issuer && (u.RawQuery != "" || u.Fragment != ""):
		return fmt.Sprintf("%q must not have a query or fragment", raw)
	}
	return ""
}

func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

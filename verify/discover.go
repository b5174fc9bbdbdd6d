package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// maxMetadataBytes bounds a metadata document.
const maxMetadataBytes = 1 << 20

// Metadata is what a Verifier can use of an authorization server's
// metadata (RFC 8414 §2), as Discover reads it.
type Metadata struct {
	// Issuer is the "issuer" member: the issuer identifier, equal,
	// character for character, to the one Discover was given (RFC 8414
	// §3.3). Give it to New.
	Issuer string
	// JWKSURI is the "jwks_uri" member: the URL of the server's JWK Set
	// (RFC 7517 §5). Give it to WithJWKSURL or NewRemoteKeySet.
	JWKSURI string
	// AccessTokenSigningAlgs is the "access_token_signing_alg_values_supported"
	// member, the JWS algorithms the server signs access tokens with: an
	// extension of this issuer (docs/keys.md, "Algorithms"); nil when the
	// server does not publish it.
	AccessTokenSigningAlgs []string
	// SharedSecretRequired is the "access_token_shared_secret_required"
	// member, an extension of this issuer (docs/keys.md, "Algorithms"): true
	// when the server signs access tokens with HS256, whose secret no JWK
	// Set holds. Verify such tokens with NewHMACKey and WithKeys.
	SharedSecretRequired bool

	raw []byte
}

// Decode unmarshals the whole metadata document into v (a struct pointer,
// or a *map[string]any), for the members Metadata has no field for.
func (m *Metadata) Decode(v any) error { return json.Unmarshal(m.raw, v) }

// Discover reads the RFC 8414 metadata of issuer and returns what a
// Verifier needs of it. It looks where RFC 8414 §3.1 says (the well-known
// suffix inserted before the issuer's path), then at the suffix appended
// to the issuer, then at the OpenID Connect discovery document; it checks
// that the metadata names issuer exactly (RFC 8414 §3.3) and that its
// jwks_uri is an http or https URL (https for an https issuer).
//
// New discovers by itself, at the first verification, when given no
// source of keys; Discover is for programs that want the metadata up
// front, to fail at start-up or to share one RemoteKeySet:
//
//	md, err := verify.Discover(ctx, issuer)
//	…
//	v, err := verify.New(md.Issuer, audience, verify.WithJWKSURL(md.JWKSURI))
//
// Discover takes WithHTTPClient only. ctx bounds the requests. Its errors
// wrap ErrDiscovery (and ErrIssuer when the metadata names another
// issuer), or, for a bad option, ErrInvalidConfig, ErrOptionConflict or
// ErrOptionNotApplicable.
func Discover(ctx context.Context, issuer string, opts ...Option) (*Metadata, error) {
	o, errs := collect("Discover", opts, optHTTPClient)
	if len(errs) > 0 {
		return nil, joinConfig(errs)
	}
	return discover(ctx, o.client, issuer)
}

// metadataURLs lists where the metadata of issuer may be, in order: the
// RFC 8414 §3.1 location (the well-known suffix inserted before the path),
// the suffix appended to the issuer (as OpenID Connect does, and as an
// issuer served under a path prefix answers), then OpenID Connect
// discovery.
func metadataURLs(issuer string) ([]string, error) {
	u, err := url.Parse(issuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
		u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("issuer %q is not an http or https URL without query or fragment", issuer)
	}
	const wk = "/.well-known/oauth-authorization-server"
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	base := u.Scheme + "://" + u.Host
	urls := []string{base + wk + path}
	if path != "" {
		urls = append(urls, base+path+wk)
	}
	return append(urls, base+path+"/.well-known/openid-configuration"), nil
}

// discover reads and checks the metadata of issuer.
func discover(ctx context.Context, client *http.Client, issuer string) (*Metadata, error) {
	urls, err := metadataURLs(issuer)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDiscovery, err)
	}
	var errs []error
	for _, u := range urls {
		md, status, err := getMetadata(ctx, client, u)
		if status == http.StatusNotFound {
			errs = append(errs, err)
			continue // try the next location
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrDiscovery, err)
		}
		if md.Issuer != issuer {
			return nil, fmt.Errorf("%w: %w: the metadata at %s names issuer %q, not %q (they must be equal, character for character)",
				ErrDiscovery, ErrIssuer, u, md.Issuer, issuer)
		}
		j, err := url.Parse(md.JWKSURI)
		switch {
		case md.JWKSURI == "":
			return nil, fmt.Errorf("%w: the metadata at %s has no jwks_uri", ErrDiscovery, u)
		case err != nil || j.Host == "" || (j.Scheme != "https" && j.Scheme != "http"):
			return nil, fmt.Errorf("%w: the metadata at %s has an invalid jwks_uri %q", ErrDiscovery, u, md.JWKSURI)
		case j.Scheme == "http" && strings.HasPrefix(issuer, "https:"):
			return nil, fmt.Errorf("%w: the metadata at %s has a plain-http jwks_uri %q for an https issuer", ErrDiscovery, u, md.JWKSURI)
		}
		return md, nil
	}
	return nil, fmt.Errorf("%w: no metadata found for issuer %q: %w", ErrDiscovery, issuer, errors.Join(errs...))
}

// getMetadata gets the metadata document at u. A non-200 response is an
// error with its status.
func getMetadata(ctx context.Context, client *http.Client, u string) (*Metadata, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, resp.StatusCode, fmt.Errorf("GET %s: status %d", u, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxMetadataBytes+1))
	if err != nil {
		return nil, resp.StatusCode, fmt.Errorf("GET %s: %w", u, err)
	}
	if len(body) > maxMetadataBytes {
		return nil, resp.StatusCode, fmt.Errorf("GET %s: metadata larger than %d bytes", u, maxMetadataBytes)
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, resp.StatusCode, fmt.Errorf("GET %s: metadata is not JSON: %w", u, err)
	}
	// The extensions are informative: a member of another type, as
	// another server might publish, is left out rather than an error.
	var ext struct {
		Algs         []string `json:"access_token_signing_alg_values_supported"`
		SharedSecret bool     `json:"access_token_shared_secret_required"`
	}
	_ = json.Unmarshal(body, &ext)
	return &Metadata{
		Issuer:                 doc.Issuer,
		JWKSURI:                doc.JWKSURI,
		AccessTokenSigningAlgs: ext.Algs,
		SharedSecretRequired:   ext.SharedSecret,
		raw:                    body,
	}, resp.StatusCode, nil
}

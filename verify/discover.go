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

// metadataURLs lists where the metadata of issuer may be, in order: the
// RFC 8414 §3.1 location (the well-known suffix inserted before the path),
// the suffix appended to the issuer (as OpenID Connect does, and as an
// issuer served under a path prefix answers), then OpenID Connect
// discovery.
func metadataURLs(issuer string) ([]string, error) {
	u, err := url.Parse(issuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
		u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("%w: issuer %q is not an http or https URL without query or fragment", ErrDiscovery, issuer)
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

// discover returns the jwks_uri of issuer's metadata.
func discover(ctx context.Context, client *http.Client, issuer string) (string, error) {
	urls, err := metadataURLs(issuer)
	if err != nil {
		return "", err
	}
	var errs []error
	for _, u := range urls {
		md, status, err := getMetadata(ctx, client, u)
		if status == http.StatusNotFound {
			errs = append(errs, err)
			continue // try the next location
		}
		if err != nil {
			return "", fmt.Errorf("%w: %w", ErrDiscovery, err)
		}
		if md.Issuer != issuer {
			return "", fmt.Errorf("%w: %w: the metadata at %s names issuer %q, not %q (they must be equal, character for character)",
				ErrDiscovery, ErrIssuer, u, md.Issuer, issuer)
		}
		j, err := url.Parse(md.JWKSURI)
		switch {
		case md.JWKSURI == "":
			return "", fmt.Errorf("%w: the metadata at %s has no jwks_uri", ErrDiscovery, u)
		case err != nil || j.Host == "" || (j.Scheme != "https" && j.Scheme != "http"):
			return "", fmt.Errorf("%w: the metadata at %s has an invalid jwks_uri %q", ErrDiscovery, u, md.JWKSURI)
		case j.Scheme == "http" && strings.HasPrefix(issuer, "https:"):
			return "", fmt.Errorf("%w: the metadata at %s has a plain-http jwks_uri %q for an https issuer", ErrDiscovery, u, md.JWKSURI)
		}
		return md.JWKSURI, nil
	}
	return "", fmt.Errorf("%w: no metadata found for issuer %q: %w", ErrDiscovery, issuer, errors.Join(errs...))
}

type metadata struct {
	Issuer  string `json:"issuer"`
	JWKSURI string `json:"jwks_uri"`
}

func getMetadata(ctx context.Context, client *http.Client, u string) (metadata, int, error) {
	var md metadata
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return md, 0, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return md, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return md, resp.StatusCode, fmt.Errorf("GET %s: status %d", u, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxMetadataBytes+1))
	if err != nil {
		return md, resp.StatusCode, fmt.Errorf("GET %s: %w", u, err)
	}
	if len(body) > maxMetadataBytes {
		return md, resp.StatusCode, fmt.Errorf("GET %s: metadata larger than %d bytes", u, maxMetadataBytes)
	}
	if err := json.Unmarshal(body, &md); err != nil {
		return md, resp.StatusCode, fmt.Errorf("GET %s: metadata is not JSON: %w", u, err)
	}
	return md, resp.StatusCode, nil
}

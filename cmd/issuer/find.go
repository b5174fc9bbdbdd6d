package main

// Where the CLI finds the issuer. Every command that talks to a running
// issuer gets where to go from findServer (the admin commands) or
// localServer (healthcheck), and before its first request checks that the
// server there announces, in its RFC 8414 metadata, the issuer identifier
// that was meant: changing the port of one issuer must not make the CLI
// administer another one that happens to listen on the old port.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/issuer-oauth/issuer/internal/config"
)

// metadataPath is where an issuer serves its RFC 8414 metadata, under its
// base URL.
const metadataPath = "/.well-known/oauth-authorization-server"

// target is an issuer as the CLI finds it.
type target struct {
	base *url.URL // where the requests go
	// issuer is the issuer identifier that the server at base must
	// announce as its metadata's issuer; empty accepts any.
	issuer string
	// source says what named base, for messages: "--url", "ISSUER_URL",
	// "ISSUER_ADDR", "PORT" or "the default address".
	source string
}

// findServer returns the issuer that the admin commands call, the same way
// for every command:
//
//   - --url when given; the issuer meant is then ISSUER_URL when set (so
//     that --url can reach the issuer of ISSUER_URL another way, such as
//     through a port-forward), else whichever issuer answers there;
//   - else the admin listener's URL, ISSUER_ADMIN_URL, else http:// and
//     ISSUER_ADMIN_ADDR (config.ListenURL), when the server serves its
//     admin API on a listener of its own (admin_addr); the issuer meant is
//     again ISSUER_URL when set;
//   - else ISSUER_URL, which must be the issuer there;
//   - else the URL that `issuer serve` takes as its issuer URL when
//     ISSUER_URL is unset, from the listen address (ISSUER_ADDR, else
//     PORT, else :8080; config.ListenURL), which must be the issuer there.
func findServer(flagURL string, getenv func(string) string) (target, error) {
	envURL := strings.TrimSpace(getenv("ISSUER_URL"))
	var t target
	raw := ""
	switch adminURL, adminAddr := getenv("ISSUER_ADMIN_URL"), getenv("ISSUER_ADMIN_ADDR"); {
	case flagURL != "":
		raw, t.source, t.issuer = flagURL, "--url", envURL
	case adminURL != "":
		raw, t.source, t.issuer = adminURL, "ISSUER_ADMIN_URL", envURL
	case adminAddr != "":
		raw, t.source, t.issuer = config.ListenURL(adminAddr), "ISSUER_ADMIN_ADDR", envURL
	case envURL != "":
		raw, t.source = envURL, "ISSUER_URL"
	default:
		addr, source := getenv("ISSUER_ADDR"), "ISSUER_ADDR"
		if addr == "" {
			addr, source = ":"+getenv("PORT"), "PORT"
		}
		if addr == ":" {
			addr, source = config.Default().Addr, "the default address"
		}
		raw, t.source = config.ListenURL(addr), source
	}
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		if t.source == "ISSUER_ADDR" || t.source == "PORT" {
			return target{}, usageErrorf("invalid %s %q: it gives no issuer URL; set ISSUER_URL or pass --url, such as http://localhost:8080", t.source, getenv(t.source))
		}
		return target{}, usageErrorf("invalid %s %q: use the issuer's absolute URL, such as http://localhost:8080", t.source, raw)
	}
	switch t.source {
	case "ISSUER_URL", "ISSUER_ADDR", "PORT", "the default address": // they name the issuer too
		t.issuer = u.String()
	}
	t.issuer = strings.TrimRight(t.issuer, "/")
	t.base = u
	return t, nil
}

// localServer returns the server of cfg as reached from its own host, for
// healthcheck: its listen address (localURL); the issuer meant is cfg's
// issuer URL.
func localServer(cfg config.Config) target {
	return target{
		base:   localURL(cfg.Addr),
		issuer: strings.TrimRight(cfg.URL, "/"),
		source: "the listen address",
	}
}

// localURL returns where a listener on addr is reached from its own host:
// on the loopback address when it listens on every interface.
func localURL(addr string) *url.URL {
	host, port, _ := net.SplitHostPort(addr)
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return &url.URL{Scheme: "http", Host: net.JoinHostPort(host, port)}
}

// wrongServerError says that the server reached is not the issuer meant,
// in a sentence that says what to do.
type wrongServerError struct{ msg string }

func (e *wrongServerError) Error() string { return e.msg }

// where is t's base URL for messages, with what named it.
func (t target) where() string {
	return fmt.Sprintf("%s (%s)", t.base.Redacted(), t.source)
}

// fix says how to point the CLI at the right issuer.
func (t target) fix() string {
	switch t.source {
	case "--url":
		return "check --url"
	case "ISSUER_URL", "ISSUER_ADMIN_URL", "ISSUER_ADMIN_ADDR":
		return "check " + t.source
	}
	return "set ISSUER_URL, or pass --url, to the issuer's URL"
}

// check fetches the metadata of the server at t.base with hc and returns
// a *wrongServerError when it is not the issuer meant, or when admin is
// true and its admin API is off. An error of the exchange itself (nothing
// listens, a timeout) is returned as it is.
func (t target) check(ctx context.Context, hc *http.Client, admin bool) error {
	u := t.base.JoinPath(metadataPath)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var md struct {
		Issuer               string `json:"issuer"`
		RegistrationEndpoint string `json:"registration_endpoint"`
	}
	notIssuer := func(why string) error {
		return &wrongServerError{fmt.Sprintf("the server at %s is not an issuer: GET %s %s; %s",
			t.where(), metadataPath, why, t.fix())}
	}
	switch {
	case resp.StatusCode >= 300 && resp.StatusCode < 400 && resp.Header.Get("Location") != "":
		return notIssuer(fmt.Sprintf("redirects to %q", clean(resp.Header.Get("Location"))))
	case resp.StatusCode != http.StatusOK:
		return notIssuer("answered " + resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&md); err != nil || md.Issuer == "" {
		return notIssuer("answered no RFC 8414 metadata")
	}
	got := strings.TrimRight(md.Issuer, "/")
	if t.issuer != "" && got != t.issuer {
		msg := fmt.Sprintf("the server at %s is the issuer %s, not %s", t.where(), clean(got), t.issuer)
		switch t.source {
		case "--url":
			msg += fmt.Sprintf(" (ISSUER_URL): point --url at the server of %s, or unset ISSUER_URL", t.issuer)
		case "ISSUER_URL":
			msg += ": check ISSUER_URL, and the url (ISSUER_URL) the server runs with"
		case "the listen address":
			msg += " (its configured url): another server listens on its address"
		default:
			msg += fmt.Sprintf(": if it is the one you mean, set ISSUER_URL=%s (with --url %s to reach it here)", clean(got), t.base.Redacted())
		}
		return &wrongServerError{msg}
	}
	if admin && md.RegistrationEndpoint == "" {
		return &wrongServerError{fmt.Sprintf("the admin API of the issuer at %s is off: start the server with "+
			"ISSUER_ADMIN_TOKEN (admin_token) set to at least 32 random characters (such as from openssl rand -base64 32), "+
			"and pass the same token here with --admin-token or ISSUER_ADMIN_TOKEN", t.where())}
	}
	return nil
}

// checkingTransport checks the target with check before the first
// request goes through next, and fails every request when it fails.
type checkingTransport struct {
	next  http.RoundTripper
	check func(ctx context.Context) error

	once sync.Once
	err  error
}

func (c *checkingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.once.Do(func() { c.err = c.check(r.Context()) })
	if c.err != nil {
		if r.Body != nil {
			r.Body.Close()
		}
		return nil, c.err
	}
	return c.next.RoundTrip(r)
}

// checkedClient returns an HTTP client whose first request is preceded by
// t.check (through the same transport), for the admin API client.
func checkedClient(t target) *http.Client {
	return &http.Client{Transport: &checkingTransport{
		next:  http.DefaultTransport,
		check: func(ctx context.Context) error { return t.check(ctx, noRedirects, true) },
	}}
}

// noRedirects is an HTTP client that returns redirects instead of
// following them: a redirect is not where the CLI was told to go.
var noRedirects = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// asWrongServer reports whether err is, or wraps, a *wrongServerError,
// and returns it.
func asWrongServer(err error) (*wrongServerError, bool) {
	var ws *wrongServerError
	ok := errors.As(err, &ws)
	return ws, ok
}

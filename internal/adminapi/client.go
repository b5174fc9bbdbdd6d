package adminapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"
)

// Errors of Client that are not an answer of the server. Callers test them
// with errors.Is; an answer outside 2xx is an *Error.
var (
	// ErrNoToken means the Client has no admin token.
	ErrNoToken = errors.New("no admin token")
	// ErrTokenControl means the admin token contains control characters,
	// which no HTTP header may carry.
	ErrTokenControl = errors.New("the admin token contains control characters")
	// ErrNotJSON means a successful answer had no JSON body: the URL
	// probably points at something other than the issuer.
	ErrNotJSON = errors.New("without a JSON body")
	// ErrUnknownFormat means a successful answer was JSON of another shape:
	// the client and the server are probably of different versions.
	ErrUnknownFormat = errors.New("the answer is JSON of an unknown shape")
	// ErrTooLarge means the answer exceeded MaxResponseBytes.
	ErrTooLarge = errors.New("the answer is too large")
	// ErrShortBackup means a backup ended before the length the server
	// announced: the copy is incomplete.
	ErrShortBackup = errors.New("the backup ended early")
)

// MaxResponseBytes bounds what a Client reads of an answer.
const MaxResponseBytes = 16 << 20

// UserAgent is the User-Agent header of a Client's requests.
const UserAgent = "issuer-cli"

// Error is an answer of the admin API outside 2xx.
type Error struct {
	// Status is the HTTP status code.
	Status int
	// Code and Description are the error body's members; empty when the
	// body was not a JSON error (a proxy's page, another server).
	Code, Description string
	// Location is the redirect target of a 3xx answer, which a Client
	// never follows: following it could turn a POST into a GET or send
	// the token elsewhere.
	Location string
}

// Error formats the answer as "STATUS: CODE: DESCRIPTION", or "STATUS:
// Status Text" without a JSON error. Text from the server is made safe for
// a terminal.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d: ", e.Status)
	switch {
	case e.Location != "":
		fmt.Fprintf(&b, "redirect to %q", Clean(e.Location))
	case e.Code != "":
		b.WriteString(Clean(e.Code))
		if e.Description != "" {
			b.WriteString(": " + Clean(e.Description))
		}
	default:
		b.WriteString(http.StatusText(e.Status))
	}
	return b.String()
}

// Client calls the admin API of one issuer.
type Client struct {
	base  string // no trailing slash, no query
	token string
	http  *http.Client
}

// NewClient returns a client of the issuer at base (its ISSUER_URL) that
// authenticates with the admin token. httpClient may be nil; redirects are
// never followed either way.
func NewClient(base *url.URL, token string, httpClient *http.Client) *Client {
	u := *base
	u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = "", false, "", ""
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	hc := &http.Client{}
	if httpClient != nil {
		c := *httpClient
		hc = &c
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Client{base: u.String(), token: token, http: hc}
}

// CreateClient registers a client (RFC 7591 §3.1); the answer holds its
// secret, which the server never shows again.
func (c *Client) CreateClient(ctx context.Context, m ClientMetadata) (ClientInfo, error) {
	var out ClientInfo
	err := c.do(ctx, http.MethodPost, PathClients, m, &out)
	return out, err
}

// ListClients lists the registered clients.
func (c *Client) ListClients(ctx context.Context) ([]ClientInfo, error) {
	var out ClientList
	err := c.do(ctx, http.MethodGet, PathClients, nil, &out)
	return out.Clients, err
}

// GetClient returns one client.
func (c *Client) GetClient(ctx context.Context, id string) (ClientInfo, error) {
	var out ClientInfo
	h, err := c.send(ctx, http.MethodGet, clientPath(id), "", nil, &out)
	out.ETag = h.Get("ETag")
	return out, err
}

// UpdateClient replaces a client's metadata (RFC 7592 §2.2).
func (c *Client) UpdateClient(ctx context.Context, id string, m ClientMetadata) (ClientInfo, error) {
	return c.UpdateClientIfMatch(ctx, id, "", m)
}

// UpdateClientIfMatch replaces a client's metadata only if the client is
// still as its ETag etag says (from GetClient); a client changed since is
// an *Error with Status 412 and nothing is written. An empty etag is
// UpdateClient.
func (c *Client) UpdateClientIfMatch(ctx context.Context, id, etag string, m ClientMetadata) (ClientInfo, error) {
	var out ClientInfo
	h, err := c.send(ctx, http.MethodPut, clientPath(id), etag, m, &out)
	out.ETag = h.Get("ETag")
	return out, err
}

// RotateSecret gives a client a new secret; the old one stops working.
func (c *Client) RotateSecret(ctx context.Context, id string) (ClientInfo, error) {
	var out ClientInfo
	err := c.do(ctx, http.MethodPost, clientPath(id)+"/secret", nil, &out)
	return out, err
}

// DeleteClient deletes a client and ends its tokens.
func (c *Client) DeleteClient(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, clientPath(id), nil, nil)
}

// ListKeys lists the signing keys.
func (c *Client) ListKeys(ctx context.Context) ([]Key, error) {
	var out KeyList
	err := c.do(ctx, http.MethodGet, PathKeys, nil, &out)
	return out.Keys, err
}

// RotateKey adds a signing key: it signs at once, or from r.NotBefore.
func (c *Client) RotateKey(ctx context.Context, r RotateKeyRequest) (Key, error) {
	var in any
	if r.NotBefore != nil {
		in = r
	}
	var out Key
	err := c.do(ctx, http.MethodPost, PathRotate, in, &out)
	return out, err
}

// RevokeKey removes a signing key at once.
func (c *Client) RevokeKey(ctx context.Context, kid string) (RevokedKey, error) {
	var out RevokedKey
	err := c.do(ctx, http.MethodDelete, keyPath(kid), nil, &out)
	return out, err
}

// KeySecret returns an HS256 key's shared secret.
func (c *Client) KeySecret(ctx context.Context, kid string) (KeySecret, error) {
	var out KeySecret
	err := c.do(ctx, http.MethodGet, keyPath(kid)+"/secret", nil, &out)
	return out, err
}

// CreateUser creates a user. Without r.Password the server generates
// one, which the answer holds and the server never shows again.
func (c *Client) CreateUser(ctx context.Context, r UserRequest) (UserInfo, error) {
	var out UserInfo
	err := c.do(ctx, http.MethodPost, PathUsers, r, &out)
	return out, err
}

// ListUsers lists the users.
func (c *Client) ListUsers(ctx context.Context) ([]UserInfo, error) {
	var out UserList
	err := c.do(ctx, http.MethodGet, PathUsers, nil, &out)
	return out.Users, err
}

// GetUser returns one user.
func (c *Client) GetUser(ctx context.Context, username string) (UserInfo, error) {
	var out UserInfo
	err := c.do(ctx, http.MethodGet, userPath(username), nil, &out)
	return out, err
}

// UpdateUser replaces a user's profile (disabled, scope, claims); it
// cannot change the password (see SetUserPassword).
func (c *Client) UpdateUser(ctx context.Context, username string, r UserRequest) (UserInfo, error) {
	var out UserInfo
	err := c.do(ctx, http.MethodPut, userPath(username), r, &out)
	return out, err
}

// SetUserPassword replaces a user's password, which ends the user's
// refresh tokens. An empty password asks the server to generate one,
// which the answer holds.
func (c *Client) SetUserPassword(ctx context.Context, username, password string) (UserInfo, error) {
	var in any
	if password != "" {
		in = UserRequest{Password: &password}
	}
	var out UserInfo
	err := c.do(ctx, http.MethodPost, userPath(username)+"/password", in, &out)
	return out, err
}

// UnlockUser clears a user's lockout after failed logins.
func (c *Client) UnlockUser(ctx context.Context, username string) (UserInfo, error) {
	var out UserInfo
	err := c.do(ctx, http.MethodPost, userPath(username)+"/unlock", nil, &out)
	return out, err
}

// DeleteUser deletes a user and ends its refresh tokens.
func (c *Client) DeleteUser(ctx context.Context, username string) error {
	return c.do(ctx, http.MethodDelete, userPath(username), nil, nil)
}

// ImportUsers sends dump, the JSON of Django's `manage.py dumpdata
// auth.user`, to be imported; the result counts what changed and lists
// the records that were not imported. model is the label of a custom user
// model (AUTH_USER_MODEL, e.g. "accounts.user"), or "" for auth.user.
func (c *Client) ImportUsers(ctx context.Context, dump io.Reader, model string) (ImportResult, error) {
	path := PathImport
	if model != "" {
		path += "?" + url.Values{"model": {model}}.Encode()
	}
	var out ImportResult
	err := c.do(ctx, http.MethodPost, path, dump, &out)
	return out, err
}

func clientPath(id string) string { return PathClients + "/" + url.PathEscape(id) }

func keyPath(kid string) string { return PathKeys + "/" + url.PathEscape(kid) }

func userPath(username string) string { return PathUsers + "/" + url.PathEscape(username) }

// do sends one request. in, when non-nil, is the body: an io.Reader is
// sent as it is, anything else encoded as JSON. A successful answer's body
// is decoded into out when out is non-nil.
// Transport failures are returned wrapped, for errors.Is and errors.As.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	_, err := c.send(ctx, method, path, "", in, out)
	return err
}

// send is do with an If-Match header when ifMatch is not empty, and
// returns the answer's header (nil when there is no answer; Get on it
// gives "").
func (c *Client) send(ctx context.Context, method, path, ifMatch string, in, out any) (http.Header, error) {
	if c.token == "" {
		return nil, ErrNoToken
	}
	if strings.ContainsFunc(c.token, unicode.IsControl) {
		return nil, ErrTokenControl
	}
	var body io.Reader
	if r, ok := in.(io.Reader); ok {
		body = r
	} else if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("encoding the request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, fmt.Errorf("building the request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	if ifMatch != "" {
		req.Header.Set("If-Match", ifMatch)
	}

	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return resp.Header, err
	}
	if len(raw) > MaxResponseBytes {
		return resp.Header, fmt.Errorf("%s %s: %w (over %d bytes)", method, path, ErrTooLarge, MaxResponseBytes)
	}
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		e := &Error{Status: resp.StatusCode}
		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			e.Location = resp.Header.Get("Location")
		}
		var eb ErrorBody
		if json.Unmarshal(raw, &eb) == nil && eb.Error != "" {
			e.Code, e.Description = eb.Error, eb.ErrorDescription
		}
		return resp.Header, e
	}
	if out == nil {
		return resp.Header, nil
	}
	if !json.Valid(raw) {
		return resp.Header, fmt.Errorf("%s %s answered %d %w", method, path, resp.StatusCode, ErrNotJSON)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return resp.Header, fmt.Errorf("%s %s: %w (%v)", method, path, ErrUnknownFormat, err)
	}
	return resp.Header, nil
}

// Backup copies the issuer's embedded store into w (GET /admin/backup, a
// consistent copy taken while the issuer serves) and returns the number of
// bytes written. An answer outside 2xx is an *Error; a copy shorter than
// announced is ErrShortBackup.
func (c *Client) Backup(ctx context.Context, w io.Writer) (int64, error) {
	if c.token == "" {
		return 0, ErrNoToken
	}
	if strings.ContainsFunc(c.token, unicode.IsControl) {
		return 0, ErrTokenControl
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+PathBackup, nil)
	if err != nil {
		return 0, fmt.Errorf("building the request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/octet-stream")
	req.Header.Set("User-Agent", UserAgent)
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		e := &Error{Status: resp.StatusCode}
		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			e.Location = resp.Header.Get("Location")
		}
		var eb ErrorBody
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if json.Unmarshal(raw, &eb) == nil && eb.Error != "" {
			e.Code, e.Description = eb.Error, eb.ErrorDescription
		}
		return 0, e
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/octet-stream" {
		return 0, fmt.Errorf("GET %s answered %q, not a store file: %w", PathBackup, Clean(ct), ErrUnknownFormat)
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("%w after %d bytes: %w", ErrShortBackup, n, err)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return n, fmt.Errorf("%w: %d of %d bytes", ErrShortBackup, n, resp.ContentLength)
	}
	return n, nil
}

// Clean replaces control characters in text from the server, so that it
// cannot move the cursor or forge lines on a terminal.
func Clean(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '?'
		}
		return r
	}, s)
}

// FormatTime formats a time of the wire format for people: RFC 3339 in
// UTC, or "" for the zero time.
func FormatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

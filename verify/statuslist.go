package verify

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Errors of the status check (WithStatusLists).
var (
	// ErrRevoked: the token's status in its Token Status List is not 0
	// (valid): the issuer revoked it.
	ErrRevoked = errors.New("verify: token revoked")
	// ErrStatusList: the token names a status list that cannot be had
	// (unreachable past its exp, or invalid: wrong typ, signature, sub,
	// size), or an entry outside it. The check fails closed.
	ErrStatusList = errors.New("verify: status list unavailable")
)

// Limits of the status lists.
const (
	// maxStatusListBytes bounds a status list response body.
	maxStatusListBytes = 1 << 20
	// maxStatusListBits bounds the inflated list, so that a small
	// compressed body cannot inflate into gigabytes: 16 MiB, 128 Mi
	// one-bit entries.
	maxStatusListBits = 16 << 20
	// maxStatusLists bounds the lists cached at once.
	maxStatusLists = 1024
	// statusRetryInterval is the least time between two fetches of a list
	// after a failed one.
	statusRetryInterval = time.Second
	// minStatusListTTL is the least time a list is used before it is
	// fetched again, whatever its ttl.
	minStatusListTTL = time.Second
	// DefaultStatusListTTL is how long a list without a ttl claim is used
	// before it is fetched again (never past its exp).
	DefaultStatusListTTL = 5 * time.Minute
)

// StatusListConfig configures WithStatusLists.
type StatusListConfig struct {
	// Required refuses tokens without a status claim (ErrStatusList). By
	// default such a token is accepted: the issuer has status lists off.
	Required bool
	// MaxAge, when positive, bounds how long a fetched list is used even
	// when its ttl is longer.
	MaxAge time.Duration
	// OnCheck, when not nil, is called after every status check that
	// found its list, with the list's URI and its age (the time since it
	// was fetched): a hook for a staleness metric. It must be fast and
	// safe for concurrent use.
	OnCheck func(uri string, age time.Duration)
}

// WithStatusLists makes Verify honour Token Status Lists
// (draft-ietf-oauth-status-list): a token with a status claim
// {"status_list": {"idx", "uri"}} is refused with ErrRevoked unless its
// entry in the list at uri is 0.
//
// The list is fetched with the discipline of the JWK Set: concurrent
// verifications share one fetch in flight; the body is at most 1 MiB and
// inflates to at most 16 MiB; the JWT must have typ statuslist+jwt, be
// signed by a key of the Verifier's key set, and have sub equal to the URI
// it was fetched from, iat and exp; the URI must have the origin (scheme
// and host) of the issuer. A list is used for its ttl (DefaultStatusListTTL
// without one, at least a second; never past its exp), then fetched again;
// while a fetch fails the cached list is used until its exp, after which
// the check fails closed with ErrStatusList.
func WithStatusLists(cfg StatusListConfig) Option {
	return func(o *options) {
		o.set(optStatusLists)
		if cfg.MaxAge < 0 {
			o.invalid("%s: MaxAge must not be negative", optStatusLists)
		}
		o.statusLists = &cfg
	}
}

// statusClaim is the status claim of a token.
type statusClaim struct {
	StatusList *struct {
		Idx *int64 `json:"idx"`
		URI string `json:"uri"`
	} `json:"status_list"`
}

// statusLists fetches, caches and reads the lists of one Verifier.
type statusLists struct {
	cfg    StatusListConfig
	v      *Verifier
	client *http.Client
	origin string // scheme://host of the issuer

	mu    sync.Mutex
	lists map[string]*statusEntry
}

// statusEntry is one cached list.
type statusEntry struct {
	bits     []byte
	size     int // bits per entry: 1, 2, 4 or 8
	fetched  time.Time
	fresh    time.Time // used without a fetch until then
	exp      time.Time // never used after
	lastTry  time.Time
	lastErr  error
	inflight *fetchCall
}

func newStatusLists(cfg StatusListConfig, v *Verifier, client *http.Client) (*statusLists, error) {
	u, err := url.Parse(v.issuer)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("%w: %s needs an issuer URL (%q)", ErrInvalidConfig, optStatusLists, v.issuer)
	}
	return &statusLists{cfg: cfg, v: v, client: client, origin: u.Scheme + "://" + u.Host, lists: map[string]*statusEntry{}}, nil
}

// parseStatus decodes the status claim of a verified token (raw, absent
// when empty); nil when it has none.
func parseStatus(raw []byte) (*statusClaim, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	c := new(statusClaim)
	if err := json.Unmarshal(raw, c); err != nil {
		return nil, fmt.Errorf("%w: malformed status claim: %w", ErrStatusList, err)
	}
	return c, nil
}

// check checks the status of a verified token whose status claim is c.
func (s *statusLists) check(ctx context.Context, c *statusClaim) error {
	if c == nil || c.StatusList == nil {
		if s.cfg.Required {
			return fmt.Errorf("%w: the token has no status claim", ErrStatusList)
		}
		return nil
	}
	ref := c.StatusList
	if ref.Idx == nil || *ref.Idx < 0 || ref.URI == "" {
		return fmt.Errorf("%w: malformed status claim", ErrStatusList)
	}
	if u, err := url.Parse(ref.URI); err != nil || u.Scheme+"://"+u.Host != s.origin || u.User != nil || u.Fragment != "" {
		return fmt.Errorf("%w: status list %.128q is not at the issuer", ErrStatusList, ref.URI)
	}
	e, err := s.list(ctx, ref.URI)
	if err != nil {
		return err
	}
	idx := *ref.Idx
	if idx >= int64(len(e.bits))*8/int64(e.size) {
		return fmt.Errorf("%w: index %d is outside the list %.128q", ErrStatusList, idx, ref.URI)
	}
	bit := idx * int64(e.size)
	status := e.bits[bit/8] >> (bit % 8) & (1<<e.size - 1)
	if s.cfg.OnCheck != nil {
		s.cfg.OnCheck(ref.URI, s.v.now().Sub(e.fetched))
	}
	if status != 0 {
		return fmt.Errorf("%w: status %d in %.128q", ErrRevoked, status, ref.URI)
	}
	return nil
}

// list returns the list at uri, fetching it when the cached one is stale:
// one fetch at a time per list, shared by every caller, whose result each
// waiting caller takes (the list fetched, or the stale one within its exp
// when the fetch failed).
func (s *statusLists) list(ctx context.Context, uri string) (statusEntry, error) {
	now := s.v.now()
	s.mu.Lock()
	e := s.lists[uri]
	if e == nil {
		s.evict(now)
		e = &statusEntry{}
		s.lists[uri] = e
	}
	usable := e.bits != nil && now.Before(e.exp)
	switch {
	case usable && now.Before(e.fresh):
		defer s.mu.Unlock()
		return *e, nil
	case e.inflight == nil && !e.lastTry.IsZero() && now.Sub(e.lastTry) < statusRetryInterval:
		// The last fetch failed a moment ago: no new one yet.
		defer s.mu.Unlock()
		if usable {
			return *e, nil
		}
		return statusEntry{}, fmt.Errorf("%w: %.128q: %w", ErrStatusList, uri, e.lastErr)
	}
	call := e.inflight
	if call == nil {
		call = &fetchCall{done: make(chan struct{})}
		e.inflight, e.lastTry = call, now
		go s.fetch(uri, e, call)
	}
	s.mu.Unlock()
	select {
	case <-call.done:
	case <-ctx.Done():
		return statusEntry{}, fmt.Errorf("%w: %.128q: %w", ErrStatusList, uri, ctx.Err())
	}
	s.mu.Lock()
	cur := *e
	s.mu.Unlock()
	if cur.bits != nil && s.v.now().Before(cur.exp) {
		// The list just fetched, or, when the fetch failed, the
		// stale one within its exp: better than nothing.
		return cur, nil
	}
	if call.err != nil {
		return statusEntry{}, fmt.Errorf("%w: %.128q: %w", ErrStatusList, uri, call.err)
	}
	return statusEntry{}, fmt.Errorf("%w: %.128q expired as it was fetched", ErrStatusList, uri)
}

// evict makes room for one more list, dropping those past exp first.
// s.mu is held.
func (s *statusLists) evict(now time.Time) {
	if len(s.lists) < maxStatusLists {
		return
	}
	for uri, e := range s.lists {
		if e.inflight == nil && (e.bits == nil || !now.Before(e.exp)) {
			delete(s.lists, uri)
		}
	}
	for uri, e := range s.lists {
		if len(s.lists) < maxStatusLists {
			break
		}
		if e.inflight == nil {
			delete(s.lists, uri)
		}
	}
}

// fetch fetches the list at uri into e, not tied to any one caller's
// context.
func (s *statusLists) fetch(uri string, e *statusEntry, call *fetchCall) {
	ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
	defer cancel()
	got, err := s.get(ctx, uri)
	s.mu.Lock()
	if err == nil {
		got.lastTry = time.Time{}
		*e = got
	} else {
		e.lastErr = err
	}
	e.inflight = nil
	s.mu.Unlock()
	call.err = err
	close(call.done)
}

// get fetches and checks the list at uri.
func (s *statusLists) get(ctx context.Context, uri string) (statusEntry, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return statusEntry{}, err
	}
	req.Header.Set("Accept", "application/statuslist+jwt")
	resp, err := s.client.Do(req)
	if err != nil {
		return statusEntry{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return statusEntry{}, fmt.Errorf("status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxStatusListBytes+1))
	if err != nil {
		return statusEntry{}, err
	}
	if len(body) > maxStatusListBytes {
		return statusEntry{}, fmt.Errorf("the list is larger than %d bytes", maxStatusListBytes)
	}
	return s.v.parseStatusList(ctx, string(body), uri, s.cfg.MaxAge)
}

// statusListClaims are the claims of a list JWT (section 5.1 of the
// draft).
type statusListClaims struct {
	Issuer     string      `json:"iss"`
	Subject    string      `json:"sub"`
	IssuedAt   numericDate `json:"iat"`
	ExpiresAt  numericDate `json:"exp"`
	TTL        *int64      `json:"ttl"`
	StatusList *struct {
		Bits int    `json:"bits"`
		Lst  string `json:"lst"`
	} `json:"status_list"`
}

func (c *statusListClaims) GetExpirationTime() (*jwt.NumericDate, error) {
	return c.ExpiresAt.jwt(), nil
}
func (c *statusListClaims) GetIssuedAt() (*jwt.NumericDate, error)  { return c.IssuedAt.jwt(), nil }
func (c *statusListClaims) GetNotBefore() (*jwt.NumericDate, error) { return nil, nil }
func (c *statusListClaims) GetIssuer() (string, error)              { return c.Issuer, nil }
func (c *statusListClaims) GetSubject() (string, error)             { return c.Subject, nil }
func (c *statusListClaims) GetAudience() (jwt.ClaimStrings, error)  { return nil, nil }

// parseStatusList verifies the list JWT raw fetched from uri and returns
// it inflated, with its cache lifetimes.
func (v *Verifier) parseStatusList(ctx context.Context, raw, uri string, maxAge time.Duration) (statusEntry, error) {
	var c statusListClaims
	_, err := v.parser.ParseWithClaims(raw, &c, func(t *jwt.Token) (any, error) {
		if err := checkUnique(raw); err != nil {
			return nil, err
		}
		typ, _ := t.Header["typ"].(string)
		if !strings.EqualFold(typ, "statuslist+jwt") && !strings.EqualFold(typ, "application/statuslist+jwt") {
			return nil, fmt.Errorf("typ %.32q, want statuslist+jwt", typ)
		}
		for _, h := range forbiddenHeaders {
			if _, ok := t.Header[h]; ok {
				return nil, fmt.Errorf("forbidden header %s", h)
			}
		}
		alg := t.Method.Alg()
		kid, _ := t.Header["kid"].(string)
		k, err := v.keys.Key(ctx, kid)
		if err != nil {
			return nil, err
		}
		if k == nil || k.alg != alg || (k.hmac() && !v.hmac) {
			return nil, fmt.Errorf("no key of the issuer verifies alg %.32q kid %.64q", alg, kid)
		}
		return k.verifyKey(), nil
	})
	if err != nil {
		return statusEntry{}, err
	}
	now := v.now()
	switch {
	case c.Subject != uri:
		return statusEntry{}, fmt.Errorf("sub %.128q is not the list's URI", c.Subject)
	case c.Issuer != "" && c.Issuer != v.issuer:
		return statusEntry{}, fmt.Errorf("iss %.128q is not the issuer", c.Issuer)
	case !c.IssuedAt.set || !c.ExpiresAt.set:
		return statusEntry{}, errors.New("the list has no iat or no exp")
	case !now.Before(c.ExpiresAt.Time):
		return statusEntry{}, fmt.Errorf("the list expired at %s", c.ExpiresAt.UTC().Format(time.RFC3339))
	case c.TTL != nil && *c.TTL < 0:
		return statusEntry{}, errors.New("negative ttl")
	case c.StatusList == nil:
		return statusEntry{}, errors.New("no status_list claim")
	}
	bits, err := inflateStatusList(c.StatusList.Bits, c.StatusList.Lst)
	if err != nil {
		return statusEntry{}, err
	}
	ttl := DefaultStatusListTTL
	if c.TTL != nil {
		ttl = time.Duration(min(*c.TTL, int64(365*24*time.Hour/time.Second))) * time.Second
	}
	if maxAge > 0 {
		ttl = min(ttl, maxAge)
	}
	// A ttl of 0 would be a fetch per verification.
	ttl = max(ttl, minStatusListTTL)
	fresh := now.Add(ttl)
	if fresh.After(c.ExpiresAt.Time) {
		fresh = c.ExpiresAt.Time
	}
	return statusEntry{bits: bits, size: c.StatusList.Bits, fetched: now, fresh: fresh, exp: c.ExpiresAt.Time}, nil
}

// inflateStatusList decodes lst (base64url of ZLIB, section 4.1 of the
// draft) of entries of bits bits, refusing more than maxStatusListBits
// bytes inflated.
func inflateStatusList(bits int, lst string) ([]byte, error) {
	switch bits {
	case 1, 2, 4, 8:
	default:
		return nil, fmt.Errorf("bits %d is not 1, 2, 4 or 8", bits)
	}
	z, err := b64.DecodeString(lst)
	if err != nil {
		return nil, fmt.Errorf("lst is not base64url: %w", err)
	}
	zr, err := zlib.NewReader(bytes.NewReader(z))
	if err != nil {
		return nil, fmt.Errorf("lst is not ZLIB: %w", err)
	}
	out, err := io.ReadAll(io.LimitReader(zr, maxStatusListBits+1))
	if err != nil {
		return nil, fmt.Errorf("lst does not inflate: %w", err)
	}
	if len(out) > maxStatusListBits {
		return nil, fmt.Errorf("lst inflates to more than %d bytes", maxStatusListBits)
	}
	return out, nil
}

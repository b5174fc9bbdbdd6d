// Package statuslist publishes the issuer's Token Status Lists
// (draft-ietf-oauth-status-list): one bit per access token, 1 once the
// token is revoked, served as a signed JWT that resource APIs fetch and
// cache, so that a revocation reaches them without a call per token. See
// docs/status-list.md.
//
// Lists are per time window: the tokens issued in one window take their
// indices from its list, which therefore retires once the last of them has
// expired (section 13.1 of the draft: a list must not outlive its use). An
// instance leases its indices from the store in blocks, one block per
// owner (a client, or a user of a client) and window, each lease one
// atomic step: most tokens cost no round trip, and the store knows whose
// every index is, so that deleting a client or disabling a user sets every
// bit of theirs at once.
package statuslist

import (
	"bytes"
	"compress/zlib"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/issuer-oauth/issuer/internal/jsonenc"
	"github.com/issuer-oauth/issuer/internal/keys"
	"github.com/issuer-oauth/issuer/internal/store"
)

// Store is the part of the store that status lists need.
type Store interface {
	LeaseStatus(ctx context.Context, l store.StatusLease) (int64, error)
	SetStatus(ctx context.Context, list string, idx []int64) error
	SetOwnerStatus(ctx context.Context, owner string) (int, error)
	GetStatusList(ctx context.Context, id string) (store.StatusList, error)
	ListStatusLists(ctx context.Context) ([]store.StatusList, error)
}

// Signer signs the list JWTs (keys.Keys).
type Signer interface {
	SignStatusList(claims []byte) (string, error)
}

// Defaults of Config.
const (
	// DefaultTTL is the default status_list_ttl: how long a resource API
	// may use a fetched list before fetching it again.
	DefaultTTL = 30 * time.Second
	// DefaultCapacity is the number of indices of one list: 1 Mi bits,
	// 128 KiB before compression. A window that issues more tokens opens
	// a second list.
	DefaultCapacity = 1 << 20
	// firstBlock and maxBlock bound the size of a lease: an owner's first
	// block of a window is small, so that a client issuing one token
	// wastes few indices, and each next one is twice as large.
	firstBlock = 16
	maxBlock   = 1024
)

// PathPrefix is the path of the lists; a list's URI is the issuer
// identifier, then PathPrefix, then its id.
const PathPrefix = "/statuslists/"

// Config configures the lists.
type Config struct {
	// Issuer is the issuer identifier (ISSUER_URL), the base of every
	// list's URI.
	Issuer string
	// TTL is the ttl claim of the lists and the max-age they are served
	// with; DefaultTTL when zero.
	TTL time.Duration
	// TokenTTL is the longest lifetime of an access token: a list stays
	// live for this long after its window closes.
	TokenTTL time.Duration
	// Window is how long one list takes new indices; TokenTTL, within
	// [1m, 1h], when zero.
	Window time.Duration
	// Capacity is the number of indices of a list, a multiple of 8;
	// DefaultCapacity when zero.
	Capacity int64
	// Now returns the current time; time.Now when nil.
	Now func() time.Time
}

// Lists allocates indices, sets bits and serves the lists. It is safe for
// concurrent use.
type Lists struct {
	cfg  Config
	st   Store
	sign Signer
	log  *slog.Logger
	// validity is how long a signed list is valid (its exp after iat);
	// refresh is the longest that a served list may lag behind the store.
	validity, refresh time.Duration

	mu     sync.Mutex
	blocks map[blockKey]*block
	parts  map[int64]int // window start → the part this instance leases from
	window int64         // the window of the blocks held

	smu    sync.Mutex
	served map[string]*served // list id → what is served
}

// New returns the lists. It does no I/O.
func New(cfg Config, st Store, sign Signer, log *slog.Logger) *Lists {
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.Window <= 0 {
		cfg.Window = min(max(cfg.TokenTTL, time.Minute), time.Hour)
	}
	if cfg.Capacity <= 0 {
		cfg.Capacity = DefaultCapacity
	}
	cfg.Capacity = (cfg.Capacity + 7) &^ 7
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Issuer = strings.TrimSuffix(cfg.Issuer, "/")
	return &Lists{
		cfg: cfg, st: st, sign: sign, log: log,
		validity: max(10*cfg.TTL, 5*time.Minute),
		refresh:  min(cfg.TTL, time.Second),
		blocks:   map[blockKey]*block{},
		parts:    map[int64]int{},
		served:   map[string]*served{},
	}
}

// URI returns the URI of the list id.
func (l *Lists) URI(id string) string { return l.cfg.Issuer + PathPrefix + id }

// AggregationURI is the status_list_aggregation_endpoint.
func (l *Lists) AggregationURI() string { return l.cfg.Issuer + strings.TrimSuffix(PathPrefix, "/") }

// Owner says whose token an index is for. Its versions change when the
// owner's tokens are ended in bulk (a client updated, so disabled; a user
// disabled or given a new password): an index block leased before is not
// used after, since SetOwnerStatus may have set its unused bits too.
type Owner struct {
	ClientID      string
	ClientVersion int64
	UserID        string // empty for the client itself
	UserVersion   int64
}

func (o Owner) owners() []string {
	if o.UserID == "" {
		return []string{ClientOwner(o.ClientID)}
	}
	return []string{ClientOwner(o.ClientID), UserOwner(o.UserID)}
}

// ClientOwner and UserOwner are the owner names of the store.
func ClientOwner(id string) string { return "client:" + id }
func UserOwner(id string) string   { return "user:" + id }

type blockKey struct {
	window int64
	owner  Owner
}

// block is the indices an instance holds for one owner and window.
type block struct {
	mu        sync.Mutex
	list      string
	next, end int64
	size      int64 // of the next lease
}

// Assign returns the status claim of a token of o issued now, and its entry
// (whose Exp the caller sets to the token's expiry). Most calls take an
// index from the block this instance holds; one in every block leases a
// new block from the store.
func (l *Lists) Assign(ctx context.Context, o Owner) (*keys.Status, store.StatusRef, error) {
	now := l.cfg.Now()
	start := now.Truncate(l.cfg.Window)
	b := l.block(blockKey{window: start.Unix(), owner: o})
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.next == b.end {
		if err := l.lease(ctx, b, start, o); err != nil {
			return nil, store.StatusRef{}, err
		}
	}
	ref := store.StatusRef{List: b.list, Idx: b.next}
	b.next++
	return &keys.Status{StatusList: keys.StatusListRef{Idx: ref.Idx, URI: l.URI(ref.List)}}, ref, nil
}

// block returns the block of key, dropping those of past windows.
func (l *Lists) block(key blockKey) *block {
	l.mu.Lock()
	defer l.mu.Unlock()
	if key.window != l.window {
		if key.window < l.window {
			// A clock that went back: a block of its own, never kept.
			return &block{size: firstBlock}
		}
		clear(l.blocks)
		for w := range l.parts {
			if w < key.window {
				delete(l.parts, w)
			}
		}
		l.window = key.window
	}
	b := l.blocks[key]
	if b == nil {
		b = &block{size: firstBlock}
		l.blocks[key] = b
	}
	return b
}

// maxParts bounds the lists of one window this instance tries.
const maxParts = 64

// lease refills b from the window's current list, moving on to the next
// list of the window when one is full (or retired: a clock far behind).
func (l *Lists) lease(ctx context.Context, b *block, start time.Time, o Owner) error {
	until := start.Add(l.cfg.Window + l.cfg.TokenTTL)
	w := start.Unix()
	for range maxParts {
		l.mu.Lock()
		part := l.parts[w]
		l.mu.Unlock()
		id := strconv.FormatInt(w, 10) + "-" + strconv.Itoa(part)
		first, err := l.st.LeaseStatus(ctx, store.StatusLease{
			List: id, N: b.size, Capacity: l.cfg.Capacity, Owners: o.owners(), Until: until,
		})
		if errors.Is(err, store.ErrFull) || errors.Is(err, store.ErrNotFound) {
			l.mu.Lock()
			if l.parts[w] == part {
				l.parts[w] = part + 1
			}
			l.mu.Unlock()
			continue
		}
		if err != nil {
			return err
		}
		b.list, b.next, b.end = id, first, first+b.size
		b.size = min(2*b.size, maxBlock)
		return nil
	}
	return fmt.Errorf("statuslist: no room in %d lists of the window at %v", maxParts, start)
}

// Revoke sets the bits of refs, entries of tokens that may still be
// live. An entry of a retired list is skipped: its token has expired.
func (l *Lists) Revoke(ctx context.Context, refs []store.StatusRef) error {
	byList := map[string][]int64{}
	var order []string
	now := l.cfg.Now()
	for _, r := range refs {
		if !r.Exp.IsZero() && !now.Before(r.Exp) {
			continue
		}
		if byList[r.List] == nil {
			order = append(order, r.List)
		}
		byList[r.List] = append(byList[r.List], r.Idx)
	}
	for _, id := range order {
		if err := l.st.SetStatus(ctx, id, byList[id]); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	return nil
}

// RevokeToken sets the bit of an access token whose status claim is st
// (nothing when it has none, or names a list of another issuer).
func (l *Lists) RevokeToken(ctx context.Context, st *keys.Status) error {
	if st == nil {
		return nil
	}
	id, ok := strings.CutPrefix(st.StatusList.URI, l.cfg.Issuer+PathPrefix)
	if !ok || !validID(id) || st.StatusList.Idx < 0 || st.StatusList.Idx >= l.cfg.Capacity {
		return nil
	}
	return l.Revoke(ctx, []store.StatusRef{{List: id, Idx: st.StatusList.Idx}})
}

// RevokeClient sets the bit of every live token of the client, its users'
// included: for a client deleted or disabled.
func (l *Lists) RevokeClient(ctx context.Context, clientID string) error {
	return l.revokeOwner(ctx, ClientOwner(clientID))
}

// RevokeUser sets the bit of every live token of the user: for a user
// disabled or deleted, or whose password changed.
func (l *Lists) RevokeUser(ctx context.Context, userID string) error {
	return l.revokeOwner(ctx, UserOwner(userID))
}

func (l *Lists) revokeOwner(ctx context.Context, owner string) error {
	n, err := l.st.SetOwnerStatus(ctx, owner)
	if err != nil {
		return err
	}
	l.log.InfoContext(ctx, "status list bits set", "owner", owner, "bits", n)
	return nil
}

// validID reports whether id has the form of a list id: window start,
// '-', part.
func validID(id string) bool {
	w, p, ok := strings.Cut(id, "-")
	return ok && len(id) <= 32 && digits(w) && digits(p)
}

func digits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// served is a list as this instance serves it.
type served struct {
	mu sync.Mutex // held while the list is read and signed: one at a time
	signed
}

// signed is a signed list and what it was made of.
type signed struct {
	jwt     []byte
	etag    string
	version int64
	exp     time.Time
	read    time.Time // when the store was last read
}

// ServeList serves GET /statuslists/{id}: the list as a JWT
// (application/statuslist+jwt), with an ETag and a max-age of the ttl (or
// less, near its exp). The store is read at most once a second per list
// and instance; the JWT is signed again only when a bit changed or its exp
// is half-way.
func (l *Lists) ServeList(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !validID(id) {
		http.NotFound(w, r)
		return
	}
	s, err := l.current(r.Context(), id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		http.NotFound(w, r)
		return
	case err != nil:
		l.log.ErrorContext(r.Context(), "status list unavailable", "list", id, "err", err)
		w.Header().Set("Retry-After", "1")
		http.Error(w, "status list unavailable", http.StatusServiceUnavailable)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/statuslist+jwt")
	h.Set("Etag", s.etag)
	h.Set("Cache-Control", "public, max-age="+strconv.Itoa(maxAge(l.cfg.TTL, s.exp.Sub(l.cfg.Now()))))
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatch(inm, s.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(s.jwt)))
	_, _ = w.Write(s.jwt)
}

// maxAge is the max-age in seconds: the ttl, but never past exp.
func maxAge(ttl, left time.Duration) int {
	return max(0, int(min(ttl, left)/time.Second))
}

// current returns what to serve of list id, reading the store when the
// last read is older than the refresh interval.
func (l *Lists) current(ctx context.Context, id string) (signed, error) {
	l.smu.Lock()
	s := l.served[id]
	if s == nil {
		s = &served{}
		l.served[id] = s
	}
	l.smu.Unlock()
	s.mu.Lock() // concurrent requests share one read
	defer s.mu.Unlock()
	now := l.cfg.Now()
	if s.jwt != nil && now.Sub(s.read) < l.refresh && now.Before(s.exp) {
		return s.signed, nil
	}
	sl, err := l.st.GetStatusList(ctx, id)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			l.smu.Lock()
			delete(l.served, id)
			l.smu.Unlock()
		}
		return signed{}, err
	}
	s.read = now
	if s.jwt != nil && sl.Version == s.version && s.exp.Sub(now) > l.validity/2 {
		return s.signed, nil
	}
	tok, err := l.signList(sl, now)
	if err != nil {
		return signed{}, err
	}
	sum := sha256.Sum256(tok)
	s.jwt, s.version, s.exp = tok, sl.Version, now.Add(l.validity).Truncate(time.Second)
	s.etag = `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`
	l.pruneServed(now)
	return s.signed, nil
}

// pruneServed forgets the lists whose JWT expired long ago: retired lists.
func (l *Lists) pruneServed(now time.Time) {
	l.smu.Lock()
	defer l.smu.Unlock()
	for id, s := range l.served {
		if s.mu.TryLock() {
			if s.jwt != nil && now.Sub(s.exp) > l.validity {
				delete(l.served, id)
			}
			s.mu.Unlock()
		}
	}
}

// signList signs the JWT of sl (section 5.1 of the draft): sub the list's
// URI, iat, exp, ttl and status_list {bits: 1, lst}, lst covering the
// whole capacity (unused indices are 0 and compress to nearly nothing),
// so that the list does not change size as indices are handed out.
func (l *Lists) signList(sl store.StatusList, now time.Time) ([]byte, error) {
	raw := make([]byte, l.cfg.Capacity/8)
	copy(raw, sl.Bits)
	var z bytes.Buffer
	zw, err := zlib.NewWriterLevel(&z, zlib.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(raw); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	iat := now.Unix()
	c := make([]byte, 0, 256+base64.RawURLEncoding.EncodedLen(z.Len()))
	c = append(c, `{"exp":`...)
	c = strconv.AppendInt(c, iat+int64(l.validity/time.Second), 10)
	c = append(c, `,"iat":`...)
	c = strconv.AppendInt(c, iat, 10)
	c = append(c, `,"iss":`...)
	c = jsonenc.AppendString(c, l.cfg.Issuer)
	c = append(c, `,"status_list":{"bits":1,"lst":"`...)
	c = base64.RawURLEncoding.AppendEncode(c, z.Bytes())
	c = append(c, `"},"sub":`...)
	c = jsonenc.AppendString(c, l.URI(sl.ID))
	c = append(c, `,"ttl":`...)
	c = strconv.AppendInt(c, int64(l.cfg.TTL/time.Second), 10)
	c = append(c, '}')
	tok, err := l.sign.SignStatusList(c)
	if err != nil {
		return nil, err
	}
	return []byte(tok), nil
}

// ServeAggregation serves GET /statuslists, the
// status_list_aggregation_endpoint (section 9.3 of the draft): the URIs of
// the live lists, {"status_lists": [...]}.
func (l *Lists) ServeAggregation(w http.ResponseWriter, r *http.Request) {
	lists, err := l.st.ListStatusLists(r.Context())
	if err != nil {
		l.log.ErrorContext(r.Context(), "status lists unavailable", "err", err)
		http.Error(w, "status lists unavailable", http.StatusServiceUnavailable)
		return
	}
	uris := make([]string, 0, len(lists))
	for _, sl := range lists {
		uris = append(uris, l.URI(sl.ID))
	}
	body, err := json.Marshal(struct {
		StatusLists []string `json:"status_lists"`
	}{uris})
	if err != nil {
		http.Error(w, "status lists unavailable", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age="+strconv.Itoa(maxAge(l.cfg.TTL, l.cfg.TTL)))
	_, _ = w.Write(body)
}

// etagMatch implements the weak comparison of If-None-Match (RFC 9110
// §13.1.2).
func etagMatch(header, tag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == tag {
			return true
		}
	}
	return false
}

// Package request carries what the issuer knows about the HTTP request it is
// serving beyond what net/http says: its request id and the address of the
// client behind trusted reverse proxies. The server puts both in the request
// context; handlers read them from there, and the slog.Handler of this package
// adds the request id to every log line written with that context.
//
// The client address comes from X-Forwarded-For only when the direct peer is
// a trusted proxy, and is then the rightmost address of the header that is not
// itself a trusted proxy: the leftmost entries are whatever the client chose
// to send, and only the hops appended by our own proxies can be believed.
package request

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
)

type ctxKey struct{}

// reqContext carries the request id and the client address in one context
// value: one allocation per request instead of one per value.
type reqContext struct {
	context.Context
	id   string
	addr netip.Addr
}

func (c *reqContext) Value(key any) any {
	if key == (ctxKey{}) {
		return c
	}
	return c.Context.Value(key)
}

func fromContext(ctx context.Context) *reqContext {
	c, _ := ctx.Value(ctxKey{}).(*reqContext)
	return c
}

// With returns ctx carrying the request id id and the client address a.
func With(ctx context.Context, id string, a netip.Addr) context.Context {
	return &reqContext{Context: ctx, id: id, addr: a}
}

// WithID returns ctx carrying the request id id (and the client address ctx
// already carries, if any).
func WithID(ctx context.Context, id string) context.Context {
	var a netip.Addr
	if c := fromContext(ctx); c != nil {
		a = c.addr
	}
	return With(ctx, id, a)
}

// ID returns the request id carried by ctx, or "".
func ID(ctx context.Context) string {
	if c := fromContext(ctx); c != nil {
		return c.id
	}
	return ""
}

// WithClientAddr returns ctx carrying the client address a (and the request
// id ctx already carries, if any).
func WithClientAddr(ctx context.Context, a netip.Addr) context.Context {
	return With(ctx, ID(ctx), a)
}

// ClientAddr returns the client address of r: the one the server put in its
// context, or else the address of the direct peer. It is the zero Addr when
// neither is known.
func ClientAddr(r *http.Request) netip.Addr {
	if c := fromContext(r.Context()); c != nil && c.addr.IsValid() {
		return c.addr
	}
	return PeerAddr(r)
}

// PeerAddr returns the address of the direct peer of r (its RemoteAddr), or
// the zero Addr when RemoteAddr is not an IP address.
func PeerAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap().WithZone("")
}

// MaxIDLen is the longest incoming X-Request-Id accepted.
const MaxIDLen = 128

// idPrefix is the first half of every request id of this process: 64
// random bits, so that ids of different processes (instances, restarts) do
// not collide.
var idPrefix = func() [16]byte {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never returns an error
	var h [16]byte
	hex.Encode(h[:], b[:])
	return h
}()

var idCounter atomic.Uint64

// NewID returns a new request id: 32 hexadecimal digits, the process's
// random prefix and a counter. Ids are unique, not secret: a counter costs
// far less per request than 128 bits from crypto/rand.
func NewID() string {
	var b [32]byte
	copy(b[:16], idPrefix[:])
	n := idCounter.Add(1)
	const digits = "0123456789abcdef"
	for i := 31; i >= 16; i-- {
		b[i] = digits[n&0xf]
		n >>= 4
	}
	return string(b[:])
}

// ValidID reports whether id is acceptable as a request id from a proxy:
// 1 to MaxIDLen characters among letters, digits and - _ . : / + = @, so that
// it cannot forge log lines, headers or label values.
func ValidID(id string) bool {
	if id == "" || len(id) > MaxIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("-_.:/+=@", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// Proxies are the networks of the trusted reverse proxies in front of the
// issuer. The zero value trusts nobody.
type Proxies []netip.Prefix

// Trusts reports whether a is in one of the networks.
func (p Proxies) Trusts(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	a = a.Unmap()
	for _, n := range p {
		if n.Contains(a) {
			return true
		}
	}
	return false
}

// ClientAddr returns the address of the client of r: the direct peer, unless
// the peer is a trusted proxy, in which case it is the rightmost address of
// X-Forwarded-For (every such header, in order) that is not a trusted proxy.
// When every address in the header is trusted, it is the leftmost one; when
// an entry does not parse, the walk stops and the last trusted hop before it
// is the client. trusted reports whether the direct peer is a trusted proxy.
func (p Proxies) ClientAddr(r *http.Request) (client netip.Addr, trusted bool) {
	peer := PeerAddr(r)
	if !p.Trusts(peer) {
		return peer, false
	}
	hops := forwardedFor(r.Header.Values("X-Forwarded-For"))
	client = peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseHop(hops[i])
		if !ok {
			break
		}
		client = a
		if !p.Trusts(a) {
			break
		}
	}
	return client, true
}

// Hops is the number of proxies of unknown addresses that every request
// passes through before it reaches the issuer, each appending to
// X-Forwarded-For the address it received the request from (Heroku's
// router: 1). Only where the issuer cannot be reached but through them
// may it be more than 0.
type Hops int

// ClientAddr returns the address of the client of r: the entry of
// X-Forwarded-For (every such header, in order) n places from the right,
// the one the first proxy appended; what the client itself sent is to its
// left and never used. When the header has fewer than n entries, or that
// entry does not parse, the request did not come through the proxies as
// expected and the client is the direct peer, untrusted. trusted reports
// whether the address came from the header.
func (n Hops) ClientAddr(r *http.Request) (client netip.Addr, trusted bool) {
	hops := forwardedFor(r.Header.Values("X-Forwarded-For"))
	if n <= 0 || len(hops) < int(n) {
		return PeerAddr(r), false
	}
	a, ok := parseHop(hops[len(hops)-int(n)])
	if !ok {
		return PeerAddr(r), false
	}
	return a, true
}

// forwardedFor splits X-Forwarded-For header values into their entries.
func forwardedFor(values []string) []string {
	var hops []string
	for _, v := range values {
		for h := range strings.SplitSeq(v, ",") {
			if h = strings.TrimSpace(h); h != "" {
				hops = append(hops, h)
			}
		}
	}
	return hops
}

// parseHop parses one X-Forwarded-For entry: an IPv4 or IPv6 address,
// optionally with a port (1.2.3.4:5, [::1]:5) or in brackets.
func parseHop(h string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(h); err == nil {
		return a.Unmap().WithZone(""), true
	}
	if ap, err := netip.ParseAddrPort(h); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		if a, err := netip.ParseAddr(h[1 : len(h)-1]); err == nil {
			return a.Unmap().WithZone(""), true
		}
	}
	return netip.Addr{}, false
}

package ratelimit

import (
	"context"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"
)

// Limits that refused a request, as reported to Config.OnLimited.
const (
	LimitAddress = "address"
	LimitClient  = "client"
	LimitQuota   = "quota"
)

// Config configures a Limiter. A zero limit turns that limit off.
type Config struct {
	// Window is the length of the windows that count failed
	// authentications.
	Window time.Duration
	// AddressFailures is the number of failed authentications from one source
	// address per Window after which the address is refused.
	AddressFailures int64
	// ClientFailures is the number of failed authentications of one client id
	// per Window after which addresses that failed are refused for it.
	ClientFailures int64
	// QuotaPerMinute is the number of token requests per client per minute.
	QuotaPerMinute int64
	// OnLimited, when not nil, is called with LimitAddress, LimitClient or
	// LimitQuota for every request refused.
	OnLimited func(limit string)
	// Logger receives a warning when a limit trips and when the counters
	// fail; nil discards them.
	Logger *slog.Logger
}

// Limiter applies the limits of its Config to counts kept by a Counter. It
// is safe for concurrent use.
type Limiter struct {
	cfg Config
	c   Counter

	lastErrLog atomic.Int64 // unix nanoseconds of the last logged counter error
}

// New returns a limiter counting with c.
func New(c Counter, cfg Config) *Limiter {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Window <= 0 {
		cfg.Window = time.Minute
	}
	return &Limiter{cfg: cfg, c: c}
}

// Decision is the answer of a limiter: zero to go ahead, or a refusal that
// names the limit and says when to retry.
type Decision struct {
	// Limit is LimitAddress, LimitClient or LimitQuota; empty to go ahead.
	Limit string
	// RetryAfter is the time until the window of the limit ends.
	RetryAfter time.Duration
}

// Refused reports whether the request must be refused.
func (d Decision) Refused() bool { return d.Limit != "" }

// AllowAuth is asked before the credentials that clientID presents from
// addr are checked. clientID may be empty when it is unknown or unusable.
func (l *Limiter) AllowAuth(ctx context.Context, clientID string, addr netip.Addr) Decision {
	if l == nil || l.cfg.AddressFailures <= 0 && l.cfg.ClientFailures <= 0 {
		return Decision{}
	}
	addrFails, addrLeft := l.read(ctx, addressKey(addr))
	if l.cfg.AddressFailures > 0 && addrFails >= l.cfg.AddressFailures {
		return l.refuse(LimitAddress, addrLeft)
	}
	// The client-id limit refuses only addresses that failed: a clean
	// address is checked as usual.
	if l.cfg.ClientFailures <= 0 || clientID == "" || addrFails == 0 {
		return Decision{}
	}
	clientFails, clientLeft := l.read(ctx, clientKey(clientID))
	if clientFails >= l.cfg.ClientFailures {
		return l.refuse(LimitClient, min(clientLeft, addrLeft))
	}
	return Decision{}
}

// AuthFailed records that clientID (possibly empty) failed to authenticate
// from addr.
func (l *Limiter) AuthFailed(ctx context.Context, clientID string, addr netip.Addr) {
	if l == nil {
		return
	}
	// The address counts for the client-id rule too, which refuses only
	// addresses that failed.
	if l.cfg.AddressFailures > 0 || l.cfg.ClientFailures > 0 {
		if n, _, ok := l.add(ctx, addressKey(addr), l.cfg.Window); ok && n == l.cfg.AddressFailures {
			l.cfg.Logger.WarnContext(ctx, "too many failed client authentications from one address; refusing it until its window ends",
				"client_addr", addr.String(), "failures", n, "window", l.cfg.Window.String())
		}
	}
	if l.cfg.ClientFailures > 0 && clientID != "" {
		if n, _, ok := l.add(ctx, clientKey(clientID), l.cfg.Window); ok && n == l.cfg.ClientFailures {
			l.cfg.Logger.WarnContext(ctx, "too many failed authentications of one client id; refusing addresses that failed until its window ends",
				"client_id", clientID, "failures", n, "window", l.cfg.Window.String())
		}
	}
}

// AllowToken counts one token request of the authenticated client clientID
// against its quota.
func (l *Limiter) AllowToken(ctx context.Context, clientID string) Decision {
	if l == nil || l.cfg.QuotaPerMinute <= 0 {
		return Decision{}
	}
	n, left, ok := l.add(ctx, quotaKey(clientID), time.Minute)
	if !ok || n <= l.cfg.QuotaPerMinute {
		return Decision{}
	}
	return l.refuse(LimitQuota, left)
}

func (l *Limiter) refuse(limit string, left time.Duration) Decision {
	if l.cfg.OnLimited != nil {
		l.cfg.OnLimited(limit)
	}
	return Decision{Limit: limit, RetryAfter: max(left, time.Second)}
}

// read returns the count and time left of key; 0 when the counter fails.
func (l *Limiter) read(ctx context.Context, key string) (int64, time.Duration) {
	n, left, err := l.c.Add(ctx, key, 0, l.cfg.Window)
	if err != nil {
		l.logError(ctx, err)
		return 0, 0
	}
	return n, left
}

// add counts one hit of key and returns the count and the time left; ok is
// false when the counter fails.
func (l *Limiter) add(ctx context.Context, key string, window time.Duration) (n int64, left time.Duration, ok bool) {
	n, left, err := l.c.Add(ctx, key, 1, window)
	if err != nil {
		l.logError(ctx, err)
		return 0, 0, false
	}
	return n, left, true
}

// logError logs a counter failure at most once every ten seconds: under an
// outage every request would log one.
func (l *Limiter) logError(ctx context.Context, err error) {
	now := time.Now().UnixNano()
	last := l.lastErrLog.Load()
	if now-last < int64(10*time.Second) || !l.lastErrLog.CompareAndSwap(last, now) {
		return
	}
	l.cfg.Logger.WarnContext(ctx, "rate-limit counters unavailable; requests are not limited", "err", err)
}

// addressKey is the counter of a source address: the address for IPv4, its
// /64 network for IPv6, where one host easily holds a whole /64.
func addressKey(a netip.Addr) string {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return "auth:addr:" + p.String()
	}
	return "auth:addr:" + a.String()
}

func clientKey(id string) string { return "auth:client:" + id }
func quotaKey(id string) string  { return "quota:" + id }

package ratelimit

import (
	"context"
	"log/slog"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"
)

// Limits that refused a request, as reported to Config.OnLimited.
const (
	LimitAddress = "address"
	LimitClient  = "client"
	LimitQuota   = "quota"
	// LimitPasswordAddress refuses password logins from a source address.
	LimitPasswordAddress = "password_address"
	// LimitAdminAddress refuses admin API calls from a source address.
	LimitAdminAddress = "admin_address"
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
	// QuotaPerMinute is the number of token requests per client per
	// minute, for the clients without a quota of their own.
	QuotaPerMinute int64
	// PasswordWindow is the length of the windows that count failed
	// password logins (RFC 6749 §4.3.2).
	PasswordWindow time.Duration
	// UserFailures is the number of failed password logins of one username
	// per PasswordWindow after which the username is locked until the
	// window ends.
	UserFailures int64
	// PasswordAddressFailures is the number of failed password logins from
	// one source address per PasswordWindow after which its logins are
	// refused.
	PasswordAddressFailures int64
	// AdminFailures is the number of failed admin API authentications (a
	// wrong admin token) from one source address per Window after which
	// every admin call from it is refused until the window ends, the right
	// token included. Its counters are apart from those of client
	// authentication.
	AdminFailures int64
	// Now is the clock of LockedUntil; time.Now when nil. The counters
	// keep their own.
	Now func() time.Time
	// OnLimited, when not nil, is called with LimitAddress, LimitClient,
	// LimitQuota, LimitPasswordAddress or LimitAdminAddress for every
	// request refused.
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
	if cfg.PasswordWindow <= 0 {
		cfg.PasswordWindow = 15 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
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
// against its quota: perMinute, the client's own (token_quota_per_minute),
// or QuotaPerMinute when perMinute is 0. The count is the same whatever the
// quota, so a changed quota applies at once to the minute under way.
func (l *Limiter) AllowToken(ctx context.Context, clientID string, perMinute int64) Decision {
	if perMinute <= 0 && l != nil {
		perMinute = l.cfg.QuotaPerMinute
	}
	if l == nil || perMinute <= 0 {
		return Decision{}
	}
	n, left, ok := l.add(ctx, quotaKey(clientID), time.Minute)
	if !ok || n <= perMinute {
		return Decision{}
	}
	return l.refuse(LimitQuota, left)
}

// AllowPassword is asked before a password login from addr is checked:
// once the address has failed PasswordAddressFailures times in its window,
// its logins are refused until the window ends, the right password
// included.
func (l *Limiter) AllowPassword(ctx context.Context, addr netip.Addr) Decision {
	if l == nil || l.cfg.PasswordAddressFailures <= 0 {
		return Decision{}
	}
	n, left := l.readWindow(ctx, passwordAddressKey(addr), l.cfg.PasswordWindow)
	if n >= l.cfg.PasswordAddressFailures {
		return l.refuse(LimitPasswordAddress, left)
	}
	return Decision{}
}

// AllowAdmin is asked before the admin token that addr presents is
// checked: once the address has failed AdminFailures times in its window,
// its admin calls are refused until the window ends, the right token
// included, so that guessing cannot go on from it.
func (l *Limiter) AllowAdmin(ctx context.Context, addr netip.Addr) Decision {
	if l == nil || l.cfg.AdminFailures <= 0 {
		return Decision{}
	}
	n, left := l.read(ctx, adminAddressKey(addr))
	if n >= l.cfg.AdminFailures {
		return l.refuse(LimitAdminAddress, left)
	}
	return Decision{}
}

// AdminFailed records that addr presented a wrong admin token. Calls
// refused by AllowAdmin are not failures: the window ends on time whatever
// an attacker keeps sending.
func (l *Limiter) AdminFailed(ctx context.Context, addr netip.Addr) {
	if l == nil || l.cfg.AdminFailures <= 0 {
		return
	}
	if n, _, ok := l.add(ctx, adminAddressKey(addr), l.cfg.Window); ok && n == l.cfg.AdminFailures {
		l.cfg.Logger.WarnContext(ctx, "too many failed admin authentications from one address; refusing its admin calls until its window ends",
			"client_addr", addr.String(), "failures", n, "window", l.cfg.Window.String())
	}
}

// LockedUntil returns when the lock of username ends: zero when it is not
// locked. A username is locked once it has failed UserFailures times in its
// window, until the window ends. When the counters cannot be reached it
// returns the error, and zero: logins fail open, as client
// authentications do.
func (l *Limiter) LockedUntil(ctx context.Context, username string) (time.Time, error) {
	if l == nil || l.cfg.UserFailures <= 0 {
		return time.Time{}, nil
	}
	n, left, err := l.c.Add(ctx, userKey(username), 0, l.cfg.PasswordWindow)
	if err != nil {
		l.logError(ctx, err)
		return time.Time{}, err
	}
	if n < l.cfg.UserFailures {
		return time.Time{}, nil
	}
	return l.cfg.Now().Add(left), nil
}

// PasswordFailed records a failed password login of username from addr.
// Logins refused by a limit or a lock are not failures: the windows end on
// time whatever an attacker keeps sending.
func (l *Limiter) PasswordFailed(ctx context.Context, username string, addr netip.Addr) {
	if l == nil {
		return
	}
	if l.cfg.PasswordAddressFailures > 0 {
		if n, _, ok := l.add(ctx, passwordAddressKey(addr), l.cfg.PasswordWindow); ok && n == l.cfg.PasswordAddressFailures {
			l.cfg.Logger.WarnContext(ctx, "too many failed password logins from one address; refusing its logins until its window ends",
				"client_addr", addr.String(), "failures", n, "window", l.cfg.PasswordWindow.String())
		}
	}
	if l.cfg.UserFailures > 0 {
		if n, _, ok := l.add(ctx, userKey(username), l.cfg.PasswordWindow); ok && n == l.cfg.UserFailures {
			// The username is user input: logged as a quoted attribute only.
			l.cfg.Logger.WarnContext(ctx, "too many failed password logins of one username; locked until its window ends",
				"username", username, "failures", n, "window", l.cfg.PasswordWindow.String())
		}
	}
}

// Unlock ends the lock of username and forgets its failures.
func (l *Limiter) Unlock(ctx context.Context, username string) error {
	if l == nil {
		return nil
	}
	return l.c.Reset(ctx, userKey(username))
}

func (l *Limiter) refuse(limit string, left time.Duration) Decision {
	if l.cfg.OnLimited != nil {
		l.cfg.OnLimited(limit)
	}
	return Decision{Limit: limit, RetryAfter: max(left, time.Second)}
}

// read returns the count and time left of key; 0 when the counter fails.
func (l *Limiter) read(ctx context.Context, key string) (int64, time.Duration) {
	return l.readWindow(ctx, key, l.cfg.Window)
}

// readWindow is read for a counter of windows of length w.
func (l *Limiter) readWindow(ctx context.Context, key string, w time.Duration) (int64, time.Duration) {
	n, left, err := l.c.Add(ctx, key, 0, w)
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

// passwordAddressKey is the counter of the failed password logins of a
// source address (an IPv4 address, or an IPv6 /64).
func passwordAddressKey(a netip.Addr) string {
	return "pw:" + strings.TrimPrefix(addressKey(a), "auth:")
}

// adminAddressKey is the counter of the failed admin authentications of a
// source address (an IPv4 address, or an IPv6 /64).
func adminAddressKey(a netip.Addr) string {
	return "admin:" + strings.TrimPrefix(addressKey(a), "auth:")
}

// userKey is the counter of the failed password logins of a username.
func userKey(username string) string { return "pw:user:" + username }
func quotaKey(id string) string      { return "quota:" + id }

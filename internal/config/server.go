package config

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"
)

// Limits of the server-behaviour settings, checked by Validate.
const (
	maxShutdownDrainDelay = 5 * time.Minute
	minAuthFailureWindow  = time.Second
	maxAuthFailureWindow  = 24 * time.Hour
	maxLimit              = 1_000_000
	maxTrustedProxyHops   = 10
)

// AdminBaseURL returns the base URL of the admin API: AdminURL when set,
// else the one ListenURL derives from AdminAddr, else URL (the admin
// API then shares the main listener).
func (c Config) AdminBaseURL() string {
	switch {
	case c.AdminURL != "":
		return c.AdminURL
	case c.AdminAddr != "":
		return ListenURL(c.AdminAddr)
	}
	return c.URL
}

// adminListenerProblems checks admin_addr and admin_url.
func (c Config) adminListenerProblems() []problem {
	var ps []problem
	add := func(key, format string, args ...any) {
		ps = append(ps, problem{key: key, msg: fmt.Sprintf(format, args...)})
	}
	if c.AdminAddr != "" {
		if msg := checkAddr(c.AdminAddr); msg != "" {
			add("admin_addr", "%s", strings.Replace(msg, ":8080", ":9090", 2))
		} else if sameListener(c.Addr, c.AdminAddr) {
			add("admin_addr", "%q is the listen address of ISSUER_ADDR (addr) too; give the admin listener its own port, "+
				"such as 127.0.0.1:9090, or leave admin_addr empty to serve the admin API on addr", c.AdminAddr)
		}
	}
	switch {
	case c.AdminURL == "":
	case c.AdminAddr == "":
		add("admin_url", "is set but ISSUER_ADMIN_ADDR (admin_addr) is empty: the admin API is then served at "+
			"ISSUER_URL (url); set admin_addr to give it a listener of its own, or leave admin_url empty")
	default:
		if msg := checkIssuerURL(c.AdminURL); msg != "" {
			add("admin_url", "%s", strings.ReplaceAll(strings.ReplaceAll(msg, "public base URL of the issuer", "URL at which admins reach admin_addr"),
				"https://auth.example.com", "http://issuer-admin.internal:9090"))
		}
	}
	return ps
}

// sameListener reports whether listen addresses a and b (both valid) bind
// the same non-zero port on overlapping hosts.
func sameListener(a, b string) bool {
	ha, pa, _ := net.SplitHostPort(a)
	hb, pb, _ := net.SplitHostPort(b)
	if pa != pb || pa == "0" {
		return false
	}
	wild := func(h string) bool { ip, err := netip.ParseAddr(h); return h == "" || err == nil && ip.IsUnspecified() }
	return ha == hb || wild(ha) || wild(hb)
}

// TrustedProxyNets returns the networks of TrustedProxies; a single address
// is a network of one address. Entries that do not parse (Validate reports
// them) are left out.
func (c Config) TrustedProxyNets() []netip.Prefix {
	nets, _ := parseNets(c.TrustedProxies)
	return nets
}

// parseNets parses a comma-separated list of CIDRs and addresses, and
// returns the messages about the entries that do not parse.
func parseNets(list string) ([]netip.Prefix, []string) {
	var (
		nets []netip.Prefix
		msgs []string
	)
	if strings.TrimSpace(list) == "" {
		return nil, nil
	}
	for e := range strings.SplitSeq(list, ",") {
		e = strings.TrimSpace(e)
		if e == "" {
			msgs = append(msgs, "has an empty entry; separate the networks with single commas")
			continue
		}
		if p, err := netip.ParsePrefix(e); err == nil {
			if p != p.Masked() {
				msgs = append(msgs, fmt.Sprintf("%q has host bits set; write the network as %s", e, p.Masked()))
				continue
			}
			nets = append(nets, p)
			continue
		}
		if a, err := netip.ParseAddr(e); err == nil && a.Zone() == "" {
			a = a.Unmap()
			nets = append(nets, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		msgs = append(msgs, fmt.Sprintf("%q is not a network such as 10.0.0.0/8 or fd00::/8, nor an address such as 192.0.2.10", e))
	}
	return nets, msgs
}

// serverProblems checks the settings of shutdown, proxies and abuse limits.
func (c Config) serverProblems() []problem {
	var ps []problem
	add := func(key, format string, args ...any) {
		ps = append(ps, problem{key: key, msg: fmt.Sprintf(format, args...)})
	}
	if c.ShutdownDrainDelay < 0 || c.ShutdownDrainDelay > maxShutdownDrainDelay {
		add("shutdown_drain_delay", "%s is out of range; use 0 to %s, such as 5s (0 closes the listener at once)",
			formatDuration(c.ShutdownDrainDelay), formatDuration(maxShutdownDrainDelay))
	}
	_, msgs := parseNets(c.TrustedProxies)
	for _, msg := range msgs {
		add("trusted_proxies", "%s", msg)
	}
	switch {
	case c.TrustedProxyHops < 0 || c.TrustedProxyHops > maxTrustedProxyHops:
		add("trusted_proxy_hops", "%d is out of range; use 0 (off) to %d, such as 1 behind Heroku's router", c.TrustedProxyHops, maxTrustedProxyHops)
	case c.TrustedProxyHops > 0 && strings.TrimSpace(c.TrustedProxies) != "":
		add("trusted_proxy_hops", "is %d but ISSUER_TRUSTED_PROXIES (trusted_proxies) is set too; use trusted_proxies when "+
			"you know your proxies' networks, trusted_proxy_hops only when every peer is a proxy of unknown address (Heroku), not both",
			c.TrustedProxyHops)
	}
	if c.AuthFailureWindow < minAuthFailureWindow || c.AuthFailureWindow > maxAuthFailureWindow {
		add("auth_failure_window", "%s is out of range; use %s to %s, such as 1m",
			formatDuration(c.AuthFailureWindow), formatDuration(minAuthFailureWindow), formatDuration(maxAuthFailureWindow))
	}
	for _, l := range []struct {
		key string
		n   int64
	}{
		{"auth_failures_per_address", c.AuthFailuresPerAddress},
		{"auth_failures_per_client", c.AuthFailuresPerClient},
		{"token_quota_per_minute", c.TokenQuotaPerMinute},
		{"admin_failures_per_address", c.AdminFailuresPerAddress},
	} {
		if l.n < 0 || l.n > maxLimit {
			add(l.key, "%d is out of range; use 0 (no limit) to %d", l.n, maxLimit)
		}
	}
	return ps
}

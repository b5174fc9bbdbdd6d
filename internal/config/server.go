package config

import (
	"fmt"
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
)

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
	} {
		if l.n < 0 || l.n > maxLimit {
			add(l.key, "%d is out of range; use 0 (no limit) to %d", l.n, maxLimit)
		}
	}
	return ps
}

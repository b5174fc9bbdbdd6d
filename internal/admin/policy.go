package admin

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/issuer-oauth/issuer/internal/adminapi"
	"github.com/issuer-oauth/issuer/internal/config"
	"github.com/issuer-oauth/issuer/internal/store"
)

// Bounds of a client's policy (docs/client-policy.md): the server settings' for
// the lifetimes, and the SPEC's 60 seconds for the reuse interval.
const (
	minAccessTTL       = time.Second
	maxAccessTTL       = 24 * time.Hour
	maxRefreshTTL      = 8760 * time.Hour
	minReuseInterval   = time.Second
	maxReuseInterval   = 60 * time.Second
	maxQuotaPerMinute  = 1_000_000
	durationUnitsHint  = "a Go duration such as 90s, 10m or 36h"
	emptyMeansDefaults = "or leave it empty for the server's setting"
)

// policy is a client's policy as the store keeps it: zero is the server's
// setting.
type policy struct {
	access, refresh, maxLifetime, reuse time.Duration
	quota                               int64
}

// clientPolicy parses and checks the policy fields of m, and returns what
// is wrong with them. A refresh lifetime is compared with the client's
// access-token lifetime: its own, else the server's.
func (h *Handler) clientPolicy(m adminapi.ClientMetadata) (policy, []string) {
	var (
		p        policy
		problems []string
	)
	parse := func(name, v string) time.Duration {
		if v == "" {
			return 0
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %q is not %s; %s", name, v, durationUnitsHint, emptyMeansDefaults))
			return -1
		}
		if d <= 0 {
			problems = append(problems, fmt.Sprintf("%s: %s must be more than 0; %s", name, v, emptyMeansDefaults))
			return -1
		}
		return d
	}
	p.access = parse("access_token_ttl", m.AccessTokenTTL)
	p.refresh = parse("refresh_token_ttl", m.RefreshTokenTTL)
	p.maxLifetime = parse("refresh_token_max_lifetime", m.RefreshTokenMaxLifetime)
	p.reuse = parse("refresh_token_reuse_interval", m.RefreshTokenReuseInterval)

	access := h.cfg.AccessTTL
	if p.access > 0 {
		access = p.access
	}
	if p.access > 0 && (p.access < minAccessTTL || p.access > maxAccessTTL) {
		problems = append(problems, fmt.Sprintf("access_token_ttl: %s is out of range; use %s to %s", duration(p.access), duration(minAccessTTL), duration(maxAccessTTL)))
	}
	refresh := h.cfg.RefreshTTL
	if p.refresh > 0 {
		refresh = p.refresh
	}
	switch {
	case p.refresh > maxRefreshTTL:
		problems = append(problems, fmt.Sprintf("refresh_token_ttl: %s is too long; use at most %s (one year)", duration(p.refresh), duration(maxRefreshTTL)))
	case (p.refresh > 0 || p.access > 0) && access > 0 && refresh > 0 && refresh <= access:
		problems = append(problems, fmt.Sprintf("refresh_token_ttl: %s must be longer than the client's access_token_ttl, %s", duration(refresh), duration(access)))
	}
	switch {
	case p.maxLifetime > config.MaxRefreshTokenMaxLifetime:
		problems = append(problems, fmt.Sprintf("refresh_token_max_lifetime: %s is too long; use at most %s (ten years)", duration(p.maxLifetime), duration(config.MaxRefreshTokenMaxLifetime)))
	case p.maxLifetime > 0 && access > 0 && p.maxLifetime <= access:
		problems = append(problems, fmt.Sprintf("refresh_token_max_lifetime: %s must be longer than the client's access_token_ttl, %s", duration(p.maxLifetime), duration(access)))
	}
	if p.reuse > 0 && (p.reuse < minReuseInterval || p.reuse > maxReuseInterval) {
		problems = append(problems, fmt.Sprintf("refresh_token_reuse_interval: %s is out of range; use %s to %s, or leave it empty for none", duration(p.reuse), duration(minReuseInterval), duration(maxReuseInterval)))
	}
	switch q := m.TokenQuotaPerMinute; {
	case q < 0:
		problems = append(problems, fmt.Sprintf("token_quota_per_minute: %d is negative; use a number of token requests per minute such as 600, or 0 for the server's setting", q))
	case q > maxQuotaPerMinute:
		problems = append(problems, fmt.Sprintf("token_quota_per_minute: %d is over %d; use a smaller number, or 0 for the server's setting", q, maxQuotaPerMinute))
	default:
		p.quota = q
	}
	return p, problems
}

// apply sets the policy on c.
func (p policy) apply(c *store.Client) {
	c.AccessTokenTTL, c.RefreshTokenTTL = max(p.access, 0), max(p.refresh, 0)
	c.RefreshTokenMaxLifetime, c.RefreshTokenReuseInterval = max(p.maxLifetime, 0), max(p.reuse, 0)
	c.TokenQuotaPerMinute = p.quota
}

// policyMetadata sets the policy fields of m from c; a zero duration is
// empty.
func policyMetadata(c store.Client, m *adminapi.ClientMetadata) {
	m.Disabled = c.Disabled
	m.AccessTokenTTL, m.RefreshTokenTTL = duration(c.AccessTokenTTL), duration(c.RefreshTokenTTL)
	m.RefreshTokenMaxLifetime, m.RefreshTokenReuseInterval = duration(c.RefreshTokenMaxLifetime), duration(c.RefreshTokenReuseInterval)
	m.TokenQuotaPerMinute = c.TokenQuotaPerMinute
}

// duration formats d as a Go duration without trailing zero units ("10m",
// "36h", "1h30m"); "" for 0.
func duration(d time.Duration) string {
	if d == 0 {
		return ""
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// setDisabled disables or enables a client: the one place where that
// happens. The store's operation ends every refresh-token family of the
// client in the same write when it disables it; whatever else must end with
// a disabled client's tokens (a revocation feed, a status list) belongs
// here, beside it.
func (h *Handler) setDisabled(ctx context.Context, id string, disabled bool) (store.Client, error) {
	c, err := h.st.SetClientDisabled(ctx, id, disabled)
	if err != nil || !disabled {
		return c, err
	}
	// Its access tokens end with it, at resource APIs too. Enabling it
	// again changes UpdatedAt, which is what the status lists tie an
	// instance's unused indices to, so its new tokens get fresh bits.
	return c, h.revokeClientStatus(ctx, id)
}

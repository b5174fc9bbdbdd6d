package admin_test

import (
	"strings"
	"testing"
	"time"

	"github.com/issuer-oauth/issuer/internal/admin"
	"github.com/issuer-oauth/issuer/internal/adminapi"
)

func serverLifetimes(c *admin.Config) { c.AccessTTL, c.RefreshTTL = 5*time.Minute, 24*time.Hour }

// TestClientPolicy registers a client with every policy field, reads it
// back from get and list, and empties them again with a PUT.
func TestClientPolicy(t *testing.T) {
	f := newFixture(t, nil, serverLifetimes)
	m := adminapi.ClientMetadata{
		Audience: []string{"https://api.example.com"}, AccessTokenTTL: "600s", RefreshTokenTTL: "36h",
		RefreshTokenMaxLifetime: "720h", RefreshTokenReuseInterval: "30s", TokenQuotaPerMinute: 600, Disabled: true,
	}
	var created adminapi.ClientInfo
	if code := f.call(t, "POST", "/admin/clients", m, &created); code != 201 {
		t.Fatalf("create: %d %+v", code, created)
	}
	want := m
	want.AccessTokenTTL = "10m" // as the server writes durations
	check := func(what string, got adminapi.ClientMetadata) {
		t.Helper()
		if got.Disabled != want.Disabled || got.AccessTokenTTL != want.AccessTokenTTL || got.RefreshTokenTTL != want.RefreshTokenTTL ||
			got.RefreshTokenMaxLifetime != want.RefreshTokenMaxLifetime || got.RefreshTokenReuseInterval != want.RefreshTokenReuseInterval ||
			got.TokenQuotaPerMinute != want.TokenQuotaPerMinute {
			t.Errorf("%s: %+v, want the policy of %+v", what, got, want)
		}
	}
	check("create", created.ClientMetadata)
	var got adminapi.ClientInfo
	f.call(t, "GET", "/admin/clients/"+created.ClientID, nil, &got)
	check("get", got.ClientMetadata)
	var list adminapi.ClientList
	f.call(t, "GET", "/admin/clients", nil, &list)
	if len(list.Clients) != 1 {
		t.Fatalf("list: %+v", list)
	}
	check("list", list.Clients[0].ClientMetadata)

	want = adminapi.ClientMetadata{Audience: m.Audience}
	if code := f.call(t, "PUT", "/admin/clients/"+created.ClientID, want, &got); code != 200 {
		t.Fatalf("update: %d %+v", code, got)
	}
	check("update to the server's settings", got.ClientMetadata)
}

// TestInvalidClientPolicy: every policy field out of bounds is refused with
// an error that names it, the value and the bounds; several at once are
// all reported.
func TestInvalidClientPolicy(t *testing.T) {
	f := newFixture(t, nil, serverLifetimes)
	const aud = `"audience":["https://api.example.com"],`
	for _, tc := range []struct{ body, want string }{
		{`{` + aud + `"access_token_ttl":"10 minutes"}`, `access_token_ttl: "10 minutes" is not a Go duration such as 90s, 10m or 36h`},
		{`{` + aud + `"access_token_ttl":"-5m"}`, `access_token_ttl: -5m must be more than 0`},
		{`{` + aud + `"access_token_ttl":"25h"}`, `access_token_ttl: 25h is out of range; use 1s to 24h`},
		{`{` + aud + `"access_token_ttl":"500ms"}`, `access_token_ttl: 500ms is out of range`},
		{`{` + aud + `"refresh_token_ttl":"8761h"}`, `refresh_token_ttl: 8761h is too long; use at most 8760h`},
		{`{` + aud + `"refresh_token_ttl":"5m"}`, `refresh_token_ttl: 5m must be longer than the client's access_token_ttl, 5m`},
		{`{` + aud + `"access_token_ttl":"48h"}`, `access_token_ttl: 48h is out of range`},
		{`{` + aud + `"access_token_ttl":"2h","refresh_token_ttl":"1h"}`, `refresh_token_ttl: 1h must be longer than the client's access_token_ttl, 2h`},
		{`{` + aud + `"access_token_ttl":"24h"}`, `refresh_token_ttl: 24h must be longer than the client's access_token_ttl, 24h`},
		{`{` + aud + `"refresh_token_max_lifetime":"87601h"}`, `refresh_token_max_lifetime: 87601h is too long; use at most 87600h`},
		{`{` + aud + `"refresh_token_max_lifetime":"1m"}`, `refresh_token_max_lifetime: 1m must be longer than the client's access_token_ttl, 5m`},
		{`{` + aud + `"refresh_token_reuse_interval":"61s"}`, `refresh_token_reuse_interval: 1m1s is out of range; use 1s to 1m`},
		{`{` + aud + `"refresh_token_reuse_interval":"10ms"}`, `refresh_token_reuse_interval: 10ms is out of range`},
		{`{` + aud + `"token_quota_per_minute":-1}`, `token_quota_per_minute: -1 is negative`},
		{`{` + aud + `"token_quota_per_minute":1000001}`, `token_quota_per_minute: 1000001 is over 1000000`},
		{`{` + aud + `"access_token_ttl":"x","refresh_token_reuse_interval":"2m"}`, `access_token_ttl: "x" is not a Go duration such as 90s, 10m or 36h; or leave it empty for the server's setting; refresh_token_reuse_interval: 2m is out of range`},
	} {
		var e adminapi.ErrorBody
		if code := f.call(t, "POST", "/admin/clients", tc.body, &e); code != 400 || e.Error != "invalid_client_metadata" || !strings.Contains(e.ErrorDescription, tc.want) {
			t.Errorf("%s: %d %+v, want 400 invalid_client_metadata saying %q", tc.body, code, e, tc.want)
		}
	}
}

package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// postToken posts a token request with HTTP Basic and decodes the answer.
func postToken(t *testing.T, ts *testServer, id, sec string, form url.Values) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", ts.URL+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, sec)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// TestClientsUpdateDisabled disables a client with the CLI: it cannot get
// tokens, and its refresh token stays dead after the CLI enables it again.
func TestClientsUpdateDisabled(t *testing.T) {
	ts := startServer(t)
	c := ts.createClient(t, billing)
	status, tok := postToken(t, ts, c.ClientID, c.ClientSecret, url.Values{"grant_type": {"client_credentials"}})
	if status != 200 {
		t.Fatalf("token before disabling: %d %v", status, tok)
	}

	res := runCLI(t, runClients, ts.env(), "update", c.ClientID, "--disabled=true")
	if res.code != 0 || !strings.Contains(res.stdout, "\ndisabled: true\n") {
		t.Fatalf("update --disabled=true: exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}
	if status, m := postToken(t, ts, c.ClientID, c.ClientSecret, url.Values{"grant_type": {"client_credentials"}}); status != 401 || m["error"] != "invalid_client" {
		t.Errorf("token while disabled: %d %v, want 401 invalid_client", status, m)
	}

	res = runCLI(t, runClients, ts.env(), "update", c.ClientID, "--disabled=false")
	if res.code != 0 || !strings.Contains(res.stdout, "\ndisabled: false\n") {
		t.Fatalf("update --disabled=false: exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}
	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok["refresh_token"].(string)}}
	if status, m := postToken(t, ts, c.ClientID, c.ClientSecret, refresh); status != 400 || m["error"] != "invalid_grant" {
		t.Errorf("refresh token from before the disabling, once enabled: %d %v, want 400 invalid_grant", status, m)
	}
	if status, m := postToken(t, ts, c.ClientID, c.ClientSecret, url.Values{"grant_type": {"client_credentials"}}); status != 200 {
		t.Errorf("token once enabled: %d %v, want 200", status, m)
	}
}

// TestClientsPolicyErrors: a malformed duration is the CLI's usage error;
// one out of range is the server's refusal, which names the field and the
// bounds.
func TestClientsPolicyErrors(t *testing.T) {
	ts := startServer(t)
	c := ts.createClient(t, billing)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"not a duration", []string{"update", c.ClientID, "--access-token-ttl", "ten minutes"},
			`invalid --access-token-ttl "ten minutes": use a Go duration such as 90s, 10m or 36h`},
		{"negative quota", []string{"update", c.ClientID, "--token-quota-per-minute", "-1"},
			"invalid --token-quota-per-minute -1"},
		{"reuse interval over a minute", []string{"update", c.ClientID, "--refresh-token-reuse-interval", "90s"},
			"refresh_token_reuse_interval: 1m30s is out of range; use 1s to 1m"},
		{"refresh within the access lifetime", []string{"create", "--name", "x", "--audience", "https://a.example", "--access-token-ttl", "2h", "--refresh-token-ttl", "1h"},
			"refresh_token_ttl: 1h must be longer than the client's access_token_ttl, 2h"},
		{"max lifetime too long", []string{"update", c.ClientID, "--refresh-token-max-lifetime", "87601h"},
			"refresh_token_max_lifetime: 87601h is too long; use at most 87600h (ten years)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := runCLI(t, runClients, ts.env(), tt.args...)
			if res.code == 0 || !strings.Contains(res.stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want non-zero and %q", res.code, res.stderr, tt.want)
			}
		})
	}
	got, err := ts.api().GetClient(t.Context(), c.ClientID)
	if err != nil {
		t.Fatal(err)
	}
	if got.AccessTokenTTL != "" || got.RefreshTokenReuseInterval != "" || got.RefreshTokenMaxLifetime != "" {
		t.Errorf("client after refused updates = %+v, want no policy", got.ClientMetadata)
	}
}

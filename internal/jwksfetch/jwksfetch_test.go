package jwksfetch

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestCacheTTL(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		cc, expires string
		want        time.Duration
	}{
		{"", "", DefaultTTL},
		{"max-age=600", "", 10 * time.Minute},
		{"public, max-age=3600", "", time.Hour},
		{"max-age=5", "", MinTTL},
		{"max-age=999999999", "", MaxTTL},
		{"max-age=99999999999999999999", "", DefaultTTL}, // does not parse: as if absent
		{"no-store", "", MinTTL},
		{"no-cache, max-age=600", "", MinTTL},
		{"", now.Add(2 * time.Hour).Format(http.TimeFormat), 2 * time.Hour},
		{"", now.Add(-time.Hour).Format(http.TimeFormat), MinTTL},
		{"max-age=600", now.Add(2 * time.Hour).Format(http.TimeFormat), 10 * time.Minute},
	} {
		h := http.Header{}
		if tt.cc != "" {
			h.Set("Cache-Control", tt.cc)
		}
		if tt.expires != "" {
			h.Set("Expires", tt.expires)
		}
		if got := cacheTTL(h, now); got != tt.want {
			t.Errorf("Cache-Control %q, Expires %q: %v, want %v", tt.cc, tt.expires, got, tt.want)
		}
	}
}

func TestPolicyCheck(t *testing.T) {
	strict := Policy{}
	hosts := Policy{AllowedHosts: []string{"keys.example.com", "10.0.0.7"}, AllowInsecure: true}
	for _, tt := range []struct {
		p    Policy
		uri  string
		want string // "" for accepted
	}{
		{strict, "https://keys.example.com/jwks.json", ""},
		{strict, "https://127.0.0.1:8443/jwks", ""}, // loopback and private addresses are allowed by default
		{strict, "http://keys.example.com/jwks.json", "must be https"},
		{strict, "file:///etc/passwd", "not an absolute URL"},
		{strict, "gopher://keys.example.com/", "is not https"},
		{strict, "https://u:p@keys.example.com/", "user info"},
		{strict, "https://keys.example.com/#k", "fragment"},
		{strict, "/jwks", "not an absolute URL"},
		{strict, "https://k.example/" + strings.Repeat("a", 2048), "longer than"},
		{hosts, "http://keys.example.com/jwks", ""},
		{hosts, "https://10.0.0.7/jwks", ""},
		{hosts, "https://10.0.0.8/jwks", "not in jwks_uri_allowed_hosts"},
		{hosts, "https://keys.example.com.evil.example/jwks", "not in jwks_uri_allowed_hosts"},
	} {
		err := tt.p.Check(tt.uri)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%.60s: %v, want accepted", tt.uri, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%.60s: %v, want an error saying %q", tt.uri, err, tt.want)
		}
	}
}

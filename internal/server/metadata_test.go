package server

import (
	"net/http"
	"strings"
	"testing"
)

// TestRegistrationRefusesUnsafeText registers clients whose name carries
// control characters or Unicode bidirectional controls (which make it
// display as another name in a console or a log viewer), and audiences
// that are not absolute URIs (RFC 8707 §2), through the admin API: each
// is refused with invalid_client_metadata naming the field. A URN is an
// absolute URI and is accepted.
func TestRegistrationRefusesUnsafeText(t *testing.T) {
	ti := startIssuer(t, withPasswordGrant)
	const api = "https://api.example.com"
	for _, tc := range []struct {
		name string
		meta map[string]any
		want string
	}{
		{"right-to-left override in client_name", map[string]any{"client_name": "invoice\u202Efdp.exe", "audience": []string{api}}, "client_name must be printable"},
		{"isolate in client_name", map[string]any{"client_name": "billing\u2067admin\u2069", "audience": []string{api}}, "client_name must be printable"},
		{"right-to-left mark in client_name", map[string]any{"client_name": "billing\u200F", "audience": []string{api}}, "client_name must be printable"},
		{"escape sequence in client_name", map[string]any{"client_name": "billing\x1b[2J", "audience": []string{api}}, "client_name must be printable"},
		{"newline in client_name", map[string]any{"client_name": "billing\nclient_id=admin", "audience": []string{api}}, "client_name must be printable"},
		{"bare word audience", map[string]any{"audience": []string{"api"}}, `audience: "api" must be an absolute URI`},
		{"relative audience", map[string]any{"audience": []string{"/v1/orders"}}, `audience: "/v1/orders" must be an absolute URI`},
		{"audience with a fragment", map[string]any{"audience": []string{api + "/#orders"}}, "must not have a fragment"},
		{"audience with a bidi control", map[string]any{"audience": []string{api + "/\u202E"}}, "must be an absolute URI"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, m := ti.admin(t, "POST", "/admin/clients", tc.meta)
			desc, _ := m["error_description"].(string)
			if resp.StatusCode != http.StatusBadRequest || m["error"] != "invalid_client_metadata" || !strings.Contains(desc, tc.want) {
				t.Errorf("status %d, error %v %q; want 400 invalid_client_metadata saying %q", resp.StatusCode, m["error"], desc, tc.want)
			}
		})
	}

	id, _ := ti.createClient(t, map[string]any{"client_name": "Reports (nightly) — ünïcödé", "audience": []string{api, "urn:example:orders"}})
	resp, m := ti.admin(t, "PUT", "/admin/clients/"+id, map[string]any{"client_name": "reports\u202E", "audience": []string{api}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(m["error_description"].(string), "client_name must be printable") {
		t.Errorf("PUT with a bidi control in client_name: %d %v, want 400 naming client_name", resp.StatusCode, m)
	}
	// The username has the same rule, without spaces.
	resp, m = ti.admin(t, "POST", "/admin/users", map[string]any{"username": "alice\u202Eeci"})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(m["error_description"].(string), "username must be printable") {
		t.Errorf("a bidi control in a username: %d %v, want 400 naming username", resp.StatusCode, m)
	}
}

package server

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/issuer-oauth/issuer/internal/keys"
)

// TestOversizedTokenRefused stores a client whose scope the admin API
// would refuse (as an older release, or a direct store write, may have
// left it): its token would be longer than keys.MaxTokenLen, which
// introspection and the refresh grant refuse to parse. The token endpoint
// must answer server_error and log why, not hand out a token the issuer
// itself then calls inactive.
func TestOversizedTokenRefused(t *testing.T) {
	ti := startIssuer(t)
	id, sec := ti.createClient(t, map[string]any{"scope": "read"})
	c, err := ti.app.store.GetClient(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	c.Scopes = nil
	for i := range 250 {
		c.Scopes = append(c.Scopes, fmt.Sprintf("orders.line-items.read.%03d", i))
	}
	if err := ti.app.store.UpdateClient(context.Background(), c); err != nil {
		t.Fatal(err)
	}

	resp, m := ti.token(t, id, sec, true, url.Values{"grant_type": {"client_credentials"}})
	if resp.StatusCode != http.StatusInternalServerError || m["error"] != "server_error" {
		if tok, _ := m["access_token"].(string); tok != "" {
			t.Errorf("a token of %d bytes was issued (introspection says active=%v)", len(tok), ti.introspect(t, id, sec, tok)["active"])
		}
		t.Fatalf("token: status %d, error %v, want 500 server_error", resp.StatusCode, m["error"])
	}
	logs := ti.logs.String()
	for _, want := range []string{"token request failed", id, fmt.Sprintf("over the %d that introspection and refresh parse", keys.MaxTokenLen)} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log does not say %q:\n%s", want, logs)
		}
	}
}

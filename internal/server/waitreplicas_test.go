package server

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/issuer-oauth/issuer/internal/config"
	"github.com/issuer-oauth/issuer/internal/redistest"
	"github.com/issuer-oauth/issuer/internal/secret"
	"github.com/issuer-oauth/issuer/internal/testutil"
)

// startReplicated starts a redis-server and a replica of it, and waits
// until the replica is in sync.
func startReplicated(t *testing.T) (master, replica *redistest.Server) {
	t.Helper()
	// No delay before the replica's first (diskless) synchronisation.
	master = redistest.Start(t, redistest.WithArgs("--repl-diskless-sync-delay", "0"))
	_, port, _ := strings.Cut(master.Addr(), ":")
	replica = redistest.Start(t, redistest.WithArgs("--replicaof", "127.0.0.1", port))
	waitInSync(t, replica)
	return master, replica
}

// waitInSync waits until replica's link to its master is up.
func waitInSync(t *testing.T, replica *redistest.Server) {
	t.Helper()
	testutil.Eventually(t, 20*time.Second, func() bool {
		info, err := replica.Do("INFO", "replication")
		return err == nil && strings.Contains(info, "master_link_status:up")
	})
}

// metric returns the line of ti's /metrics that starts with prefix, or "".
func (ti *testIssuer) metric(t *testing.T, prefix string) string {
	t.Helper()
	resp, err := http.Get(ti.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for line := range strings.SplitSeq(string(body), "\n") {
		if strings.HasPrefix(line, prefix) {
			return line
		}
	}
	return ""
}

// TestWaitReplicas: with redis_wait_replicas 1 and a real replica, the
// changes that must survive a failover succeed once the replica holds them;
// with the replica stopped they fail with 503 temporarily_unavailable, and
// the failure is counted (issuer_store_errors_total, kind not_replicated)
// and logged. Issuing a new token, whose loss fails closed, does not wait.
func TestWaitReplicas(t *testing.T) {
	master, replica := startReplicated(t)
	ti := startIssuer(t, onRedis(master.URL(), secret.Random(32)), func(c *config.Config) {
		c.RedisWaitReplicas, c.RedisWaitTimeout = 1, 2*time.Second // long enough for a loaded test machine
	})
	id, sec := ti.createClient(t, map[string]any{"scope": "read"})
	onBoth := func(what string, args ...string) {
		t.Helper()
		want, err := master.Do(args...)
		if err != nil {
			t.Fatal(err)
		}
		got, err := replica.Do(args...)
		if err != nil || got != want || want == "" {
			t.Errorf("%s: the replica answers %q (%v) to %v, the master %q", what, got, err, args, want)
		}
	}
	onBoth("the created client", "HGET", "issuer:{clients}", id)

	t.Run("replica up", func(t *testing.T) {
		rt := ti.issue(t, id, sec)["refresh_token"].(string)
		status, m := ti.refresh(t, id, sec, rt)
		if status != http.StatusOK {
			t.Fatalf("refresh: %d %v", status, m)
		}
		_, claims := decodeJWT(t, m["refresh_token"].(string))
		onBoth("the rotated family", "HGET", "issuer:fam:{"+claims["fid"].(string)+"}", "current")
		if status, m := ti.revoke(t, id, sec, m["refresh_token"].(string)); status != http.StatusOK {
			t.Fatalf("revoke: %d %v", status, m)
		}
		onBoth("the revoked family", "HGET", "issuer:fam:{"+claims["fid"].(string)+"}", "revoked")
		resp, m := ti.admin(t, "POST", "/admin/clients/"+id+"/secret", nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("rotate-secret: %d %v", resp.StatusCode, m)
		}
		sec = m["client_secret"].(string)
		onBoth("the client with its new secret", "HGET", "issuer:{clients}", id)
	})

	t.Run("replica down", func(t *testing.T) {
		rt := ti.issue(t, id, sec)["refresh_token"].(string) // issuing does not wait
		access := ti.issue(t, id, sec)["access_token"].(string)
		replica.Stop()

		unavailable := func(what string, status int, m map[string]any) {
			t.Helper()
			if status != http.StatusServiceUnavailable || m["error"] != "temporarily_unavailable" {
				t.Errorf("%s without the replica: %d %v, want 503 temporarily_unavailable", what, status, m)
			}
		}
		status, m := ti.refresh(t, id, sec, rt)
		unavailable("refresh", status, m)
		status, m = ti.revoke(t, id, sec, access)
		unavailable("revoke", status, m)
		if got := ti.issue(t, id, sec); got["access_token"] == nil {
			t.Errorf("client_credentials without the replica: %v, want a token", got)
		}
		resp, m := ti.admin(t, "PUT", "/admin/clients/"+id, map[string]any{"scope": "read", "audience": []string{"https://api.example.com"}})
		unavailable("update", resp.StatusCode, m)
		resp, m = ti.admin(t, "POST", "/admin/clients/"+id+"/secret", nil)
		unavailable("rotate-secret", resp.StatusCode, m)
		if desc, _ := m["error_description"].(string); !strings.Contains(desc, "rotate again") {
			t.Errorf("rotate-secret without the replica: %q does not say to rotate again", desc)
		}
		// The new secret stands on the master, unseen: the old one fails
		// closed until the admin retries.
		if got := ti.tokenStatus(t, id, sec); got != http.StatusUnauthorized {
			t.Errorf("the old secret after a rotation answered 503: %d, want 401", got)
		}

		for _, op := range []string{"rotate_refresh", "revoke_token", "set_client_secret", "update_client"} {
			line := ti.metric(t, `issuer_store_errors_total{kind="not_replicated",operation="`+op+`"}`)
			if !regexp.MustCompile(` 1$`).MatchString(line) {
				t.Errorf("metric of %s: %q, want a count of 1", op, line)
			}
		}
		if logs := ti.logs.String(); !strings.Contains(logs, "too few replicas acknowledged") {
			t.Errorf("no log line about the unacknowledged changes:\n%s", logs)
		}
	})

	t.Run("replica back", func(t *testing.T) {
		replica.Restart()
		waitInSync(t, replica)
		resp, m := ti.admin(t, "POST", "/admin/clients/"+id+"/secret", nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("rotate-secret retried with the replica back: %d %v", resp.StatusCode, m)
		}
		sec = m["client_secret"].(string)
		rt := ti.issue(t, id, sec)["refresh_token"].(string)
		if status, m := ti.refresh(t, id, sec, rt); status != http.StatusOK {
			t.Fatalf("refresh with the replica back: %d %v", status, m)
		}
	})
}

package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/issuer-oauth/issuer/internal/redistest"
	"github.com/issuer-oauth/issuer/internal/secret"
	"github.com/issuer-oauth/issuer/internal/store"
	"github.com/issuer-oauth/issuer/internal/testutil"
)

// hgetCalls returns how many HGET commands the redis-server has served
// (INFO commandstats): the command a client lookup sends.
func hgetCalls(t *testing.T, srv *redistest.Server) int {
	t.Helper()
	info, err := srv.Do("INFO", "commandstats")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`cmdstat_hget:calls=(\d+),`).FindStringSubmatch(info)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// TestUnknownClientCostsNoRoundTrip: on Redis, a failed authentication
// with an unknown client id costs what one with a known id and a wrong
// secret costs: after the first, neither sends Redis a lookup (HGET), so
// their times do not tell whether the id exists. Creating the client at
// another instance makes it work at once.
func TestUnknownClientCostsNoRoundTrip(t *testing.T) {
	srv := redistest.Start(t)
	master := secret.Random(32)
	a := startIssuer(t, onRedis(srv.URL(), master), noAuthLimits)
	b := startIssuer(t, onRedis(srv.URL(), master), sameURL(a.URL), noAuthLimits)
	known, _ := a.createClient(t, map[string]any{"grant_types": []string{"client_credentials"}})
	unknown := newClientID(t)

	for _, tt := range []struct{ name, id string }{{"known id, wrong secret", known}, {"unknown id", unknown}} {
		// The first lookup fills A's cache; the invalidation that creating
		// the client published may reach A after it and empty the cache
		// once more, so warm up until a failure costs no lookup.
		testutil.Eventually(t, 5*time.Second, func() bool {
			before := hgetCalls(t, srv)
			if got := a.tokenStatus(t, tt.id, "wrong"); got != http.StatusUnauthorized {
				t.Fatalf("%s: %d, want 401", tt.name, got)
			}
			return hgetCalls(t, srv) == before
		})
		before := hgetCalls(t, srv)
		for range 3 {
			if got := a.tokenStatus(t, tt.id, "wrong"); got != http.StatusUnauthorized {
				t.Fatalf("%s: %d, want 401", tt.name, got)
			}
		}
		if n := hgetCalls(t, srv) - before; n != 0 {
			t.Errorf("%s: 3 more failed authentications sent %d HGETs to Redis, want 0", tt.name, n)
		}
	}

	// The client appears at B (through its store, since the admin API
	// chooses ids itself): A, which remembers the id as unknown, takes it
	// at once, well before its cache entry would expire.
	sec := secret.NewClientSecret()
	hasher := secret.NewHasher(secret.Derive([]byte(master), secret.PurposeClientSecrets))
	now := b.clock.Now()
	c := store.Client{ID: unknown, SecretHash: hasher.Hash(unknown, sec), GrantTypes: []string{"client_credentials"},
		Audiences: []string{"https://api.example.com"}, AuthMethod: "client_secret_basic", CreatedAt: now, UpdatedAt: now}
	if err := b.app.store.CreateClient(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, time.Second, func() bool { return a.tokenStatus(t, unknown, sec) == http.StatusOK })
}

// newClientID returns an id shaped as the admin API makes them.
func newClientID(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

package ratelimit_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/issuer-oauth/issuer/internal/ratelimit"
)

// TestClientQuota: a client's own quota replaces the server's, higher or
// lower, and applies when the server has none.
func TestClientQuota(t *testing.T) {
	for _, tc := range []struct {
		server, client int64
		want           int // requests allowed in the minute
	}{
		{server: 5, client: 0, want: 5},
		{server: 5, client: 2, want: 2},
		{server: 2, client: 4, want: 4},
		{server: 0, client: 3, want: 3},
	} {
		t.Run(fmt.Sprintf("server %d client %d", tc.server, tc.client), func(t *testing.T) {
			ctx := context.Background()
			l := ratelimit.New(ratelimit.NewMemory(newClock().Now, 0), ratelimit.Config{QuotaPerMinute: tc.server})
			for i := range tc.want {
				if d := l.AllowToken(ctx, "c", tc.client); d.Refused() {
					t.Fatalf("request %d: %+v, want allowed", i+1, d)
				}
			}
			if d := l.AllowToken(ctx, "c", tc.client); d.Limit != ratelimit.LimitQuota {
				t.Errorf("request %d: %+v, want refused by the quota", tc.want+1, d)
			}
		})
	}
}

package server

import (
	"bytes"
	"sync"
	"testing"
)

// TestTwoProcessesRefreshRetry runs two real `issuer serve` processes on one
// real redis-server with a client whose refresh_token_reuse_interval is 60s
// (real time: nothing here waits for it): a lost response retried at the
// other process gets the identical body, concurrent duplicates over both
// processes get one identical body, and the grandparent ends the family.
func TestTwoProcessesRefreshRetry(t *testing.T) {
	a, b := startProcessPair(t, nil)
	id, sec := a.createClient(t, map[string]any{"scope": "read", "refresh_token_reuse_interval": "60s"})

	// The response of a refresh at A is lost; the client retries at B.
	rt1 := a.issue(t, id, sec)["refresh_token"].(string)
	status, first := a.rawRefresh(t, id, sec, rt1)
	if status != 200 {
		t.Fatalf("refresh at A: %d %s", status, first)
	}
	if status, again := b.rawRefresh(t, id, sec, rt1); status != 200 || !bytes.Equal(again, first) {
		t.Fatalf("retry at B: %d\n%s\nwant 200 and, byte for byte,\n%s", status, again, first)
	}

	// Concurrent duplicates of the next refresh, over both processes.
	rt2 := decode(t, first)["refresh_token"].(string)
	const n = 16
	var (
		wg     sync.WaitGroup
		codes  [n]int
		bodies [n][]byte
	)
	start := make(chan struct{})
	for i := range n {
		ti := []*testIssuer{a, b}[i%2]
		wg.Go(func() {
			<-start
			codes[i], bodies[i] = ti.rawRefresh(t, id, sec, rt2)
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		if codes[i] != 200 || !bytes.Equal(bodies[i], bodies[0]) {
			t.Errorf("duplicate %d: %d %s, want 200 and duplicate 0's body %s", i, codes[i], bodies[i], bodies[0])
		}
	}

	// rt1 is now the grandparent: reuse, which ends the family.
	if status, m := b.refresh(t, id, sec, rt1); status != 400 || m["error"] != "invalid_grant" {
		t.Errorf("grandparent at B: %d %v, want 400 invalid_grant", status, m)
	}
	rt3 := decode(t, bodies[0])["refresh_token"].(string)
	if status, m := a.refresh(t, id, sec, rt3); status != 400 || m["error"] != "invalid_grant" {
		t.Errorf("newest token after the grandparent's reuse: %d %v, want 400 invalid_grant", status, m)
	}
}

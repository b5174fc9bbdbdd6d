package testutil

import (
	"testing"
	"time"
)

// maxPoll is the longest Eventually waits between two calls of its
// condition.
const maxPoll = 10 * time.Millisecond

// Eventually calls cond until it returns true, and fails the test with
// t.Fatalf if it has not within timeout. It polls at once, then after 1 ms,
// 2 ms, and so on up to every 10 ms. Like t.Fatalf, it must be called from
// the goroutine running the test.
//
// It waits for other goroutines or processes to reach a state, not for
// time to pass: a test that needs time to pass moves a Clock.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for wait := time.Millisecond; !cond(); wait = min(2*wait, maxPoll) {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", timeout)
			return
		}
		time.Sleep(wait)
	}
}

// Package testutil holds the helpers that the tests of every package share,
// written once: a fake clock (Clock), polling until a condition holds
// (Eventually), free loopback ports (FreePort, FreeAddr), a buffer safe for
// concurrent writers (Buffer), and a runner for the programs that
// end-to-end tests start, such as the issuer, redis-server or Nginx
// (Process).
//
// It is for tests only: _test.go files, the packages that exist to support
// tests (redistest, storetest) and the load harness in bench/load. The
// issuer itself never imports it. Neither do the tests of verify and
// verify/dpopredis: they are modules of their own, which cannot import the
// issuer's internal packages, and keep small copies of what they need.
//
// Tests inject Clock.Now wherever a package takes a now func() time.Time,
// and move time with Advance or Set instead of sleeping. Eventually is for
// what other goroutines or processes do in their own time (a subscription
// being established, a log line being written), never for time to pass.
package testutil

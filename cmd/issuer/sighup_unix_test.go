//go:build unix

package main

import (
	"os"
	"syscall"
	"testing"
)

// sighup sends SIGHUP to this process, as an operator would to the issuer;
// ti's app listens for it.
func sighup(t *testing.T, _ *testIssuer) {
	t.Helper()
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
}

//go:build unix

package main

import (
	"os"
	"syscall"
	"testing"
	"time"
)

// TestSIGHUPReloads: SIGHUP to the process reaches the server's reload
// trigger (Options.Reload), which rereads the signing keys.
func TestSIGHUPReloads(t *testing.T) {
	reload := onSignal(t.Context(), syscall.SIGHUP)
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	select {
	case <-reload:
	case <-time.After(5 * time.Second):
		t.Fatal("no reload 5 s after SIGHUP")
	}
}

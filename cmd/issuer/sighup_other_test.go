//go:build !unix

package main

import (
	"context"
	"testing"
)

// sighup does what SIGHUP does on Unix: reread the keys.
func sighup(t *testing.T, ti *testIssuer) {
	t.Helper()
	if err := ti.app.keys.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
}

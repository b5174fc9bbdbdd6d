//go:build !linux

package testutil

import "syscall"

// sysProcAttr returns nil: outside Linux a process is stopped by its caller
// only.
func sysProcAttr() *syscall.SysProcAttr { return nil }

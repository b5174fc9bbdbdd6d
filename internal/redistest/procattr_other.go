//go:build !linux

package redistest

import "syscall"

// sysProcAttr returns nil: outside Linux the server is stopped by t.Cleanup
// only.
func sysProcAttr() *syscall.SysProcAttr { return nil }

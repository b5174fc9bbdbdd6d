package testutil

import "syscall"

// sysProcAttr has the kernel kill the process when the test binary dies,
// even without running its cleanups (a panic, a timeout, SIGKILL).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

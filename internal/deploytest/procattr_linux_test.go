package deploytest

import "syscall"

// sysProcAttr makes a child get SIGTERM when the test process dies, so no
// server outlives a killed test run.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}

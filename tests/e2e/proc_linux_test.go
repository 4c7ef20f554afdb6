package e2e

import "syscall"

// terminateSignal asks a member to stop cleanly.
var terminateSignal = syscall.SIGTERM

// childProcAttr makes the kernel SIGKILL a child when the test binary dies
// (for example on a -timeout panic), so no member outlives the suite.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

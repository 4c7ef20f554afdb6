//go:build !linux

package e2e

import "syscall"

// terminateSignal asks a member to stop cleanly.
var terminateSignal = syscall.SIGTERM

// childProcAttr: only Linux can tie a child's life to the parent's; elsewhere
// the harness relies on its t.Cleanup kills.
func childProcAttr() *syscall.SysProcAttr { return nil }

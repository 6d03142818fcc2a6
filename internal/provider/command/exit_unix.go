//go:build unix

package command

import (
	"fmt"
	"os/exec"
	"syscall"
)

// exitDescription says how a command that did not succeed ended.
func exitDescription(e *exec.ExitError) string {
	if ws, ok := e.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return fmt.Sprintf("was killed by signal %d (%s)", int(ws.Signal()), ws.Signal())
	}
	return fmt.Sprintf("exited with status %d", e.ExitCode())
}

//go:build unix && !linux

package command

import (
	"context"
	"os/exec"
	"syscall"
)

// setProcessGroup makes the command the leader of a new process group, so
// everything it starts can be killed with it.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// run waits for a started command and kills its process group when ctx
// ends first. Without Linux's waitid(WNOWAIT), what a command that exited
// normally left behind is not killed: the group id may already belong to
// another process by the time the exit is known.
func run(ctx context.Context, cmd *exec.Cmd) (stopped bool, err error) {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return false, err
	case <-ctx.Done():
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		return true, <-done
	}
}

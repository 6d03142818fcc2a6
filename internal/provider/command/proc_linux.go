package command

import (
	"context"
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"
)

// setProcessGroup makes the command the leader of a new process group, so
// everything it starts can be killed with it.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// run waits for a started command. When ctx ends first it kills the
// command's process group and reports stopped. Either way the group is
// killed once the command has exited and before it is reaped: while the
// leader is an unreaped zombie its pid, and so the group id, cannot be
// given to another process, so the signal can only reach what the command
// left behind.
func run(ctx context.Context, cmd *exec.Cmd) (stopped bool, err error) {
	pid := cmd.Process.Pid
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		var info unix.Siginfo
		for {
			// WNOWAIT: learn that it exited without reaping it.
			if err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil); err != unix.EINTR {
				return
			}
		}
	}()
	select {
	case <-exited:
	case <-ctx.Done():
		stopped = true
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	<-exited
	return stopped, cmd.Wait()
}

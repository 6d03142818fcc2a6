//go:build !unix

package command

import (
	"context"
	"fmt"
	"os/exec"
)

// setProcessGroup does nothing here: only the command itself is killed.
func setProcessGroup(*exec.Cmd) {}

// run waits for a started command and kills it when ctx ends first.
func run(ctx context.Context, cmd *exec.Cmd) (stopped bool, err error) {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return false, err
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		return true, <-done
	}
}

func exitDescription(e *exec.ExitError) string {
	return fmt.Sprintf("exited with status %d", e.ExitCode())
}

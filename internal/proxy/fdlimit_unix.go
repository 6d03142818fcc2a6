//go:build unix

package proxy

import "syscall"

// fdLimit returns the process's soft limit on open descriptors (the Go
// runtime raises it to the hard limit at start), or 0 when unknown.
func fdLimit() int64 {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil || l.Cur > 1<<40 {
		return 0
	}
	return int64(l.Cur)
}

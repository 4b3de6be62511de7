//go:build unix

package main

import "syscall"

// openFileLimit is the process's soft limit on open files.
func openFileLimit() (int, bool) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, false
	}
	return int(min(lim.Cur, 1<<31-1)), true
}

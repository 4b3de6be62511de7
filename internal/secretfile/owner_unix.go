//go:build unix

package secretfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

const (
	noFollow = syscall.O_NOFOLLOW
	nonBlock = syscall.O_NONBLOCK // a FIFO put in a key file's place does not hang the start
)

// isLoop reports the error of opening a symbolic link with O_NOFOLLOW.
func isLoop(err error) bool { return errors.Is(err, syscall.ELOOP) }

// checkOwner refuses a file or directory that belongs to a user other than
// the one jwtd runs as, or root: that user could change it whatever its
// mode.
func checkOwner(path string, info fs.FileInfo, what string) error {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	uid := os.Geteuid()
	if int(st.Uid) == uid || st.Uid == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s %s belongs to uid %d, who could change it; jwtd runs as uid %d: run: chown %d %s",
		ErrUnsafeMode, what, path, st.Uid, uid, uid, path)
}

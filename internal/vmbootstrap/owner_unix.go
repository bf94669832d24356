//go:build unix

package vmbootstrap

import (
	"io/fs"
	"syscall"
)

// owner is the user who owns a file.
func owner(st fs.FileInfo) (uid int, ok bool) {
	s, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(s.Uid), true
}

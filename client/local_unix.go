//go:build unix

package client

import (
	"io/fs"
	"syscall"
)

// openNoFollow opens a part file without following a symbolic link, and
// without waiting on a FIFO swapped in after the check.
const openNoFollow = syscall.O_NOFOLLOW | syscall.O_NONBLOCK

// links returns fi's number of names (hard links).
func links(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Nlink)
	}
	return 1
}

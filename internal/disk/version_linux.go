package disk

import (
	"fmt"
	"io/fs"
	"syscall"
	"time"
)

// VersionOf returns what identifies the content of the file fi describes:
// its device, inode, size, and modification and change times to the
// nanosecond, and when that content last changed (the later of the two
// times). The change time cannot be set by a user, so a rewrite that keeps
// the size and puts the modification time back (cp -p) still changes the
// version.
func VersionOf(fi fs.FileInfo) (version string, changed time.Time) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return "", time.Time{}
	}
	m, c := st.Mtim.Nano(), st.Ctim.Nano()
	return fmt.Sprintf("%d:%d:%d:%d:%d", uint64(st.Dev), st.Ino, st.Size, m, c), time.Unix(0, max(m, c))
}

package disk

import "syscall"

// fsID tells file systems apart: the device of a folder (statfs's f_fsid
// is zero on some, tmpfs among them).
type fsID uint64

// statFS returns the free space (to unprivileged users) and the size of
// the file system of path.
func statFS(path string) (fsStat, bool) {
	var st syscall.Statfs_t
	var fi syscall.Stat_t
	if syscall.Statfs(path, &st) != nil || syscall.Stat(path, &fi) != nil {
		return fsStat{}, false
	}
	return fsStat{
		id:    fsID(fi.Dev),
		avail: int64(st.Bavail) * st.Bsize,
		total: int64(st.Blocks) * st.Bsize,
	}, true
}

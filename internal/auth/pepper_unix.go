//go:build unix

package auth

import (
	"os"
	"syscall"
)

// keepOwner gives f the owner and group of old where they differ, so that a
// pepper file rewritten by root for a server running as another user stays
// readable by that user.
func keepOwner(f *os.File, old os.FileInfo) error {
	want, ok := old.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if got, ok := fi.Sys().(*syscall.Stat_t); ok && got.Uid == want.Uid && got.Gid == want.Gid {
		return nil
	}
	return f.Chown(int(want.Uid), int(want.Gid))
}

package salt

import (
	"os"

	"golang.org/x/sys/windows"
)

// lockFile takes an exclusive lock on the first byte of f, waiting as long
// as it takes.
func lockFile(f *os.File) error {
	var ol windows.Overlapped
	return windows.LockFileEx(windows.Handle(f.Fd()), windows.LOCKFILE_EXCLUSIVE_LOCK, 0, 1, 0, &ol)
}

// syncDir does nothing: Windows cannot open a folder for syncing, and
// MoveFileEx, behind os.Rename, is as durable as it gets there.
func syncDir(string) error { return nil }

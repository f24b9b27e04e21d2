// Package flock locks files between processes, and makes changes to a
// folder durable: the few system calls that the audit spool, the client's
// configuration files and the upload folders share.
package flock

import (
	"errors"
	"os"

	"golang.org/x/sys/windows"
)

// Lock takes an exclusive lock on the first byte of f, waiting as long as
// it takes.
func Lock(f *os.File) error {
	var ol windows.Overlapped
	return windows.LockFileEx(windows.Handle(f.Fd()), windows.LOCKFILE_EXCLUSIVE_LOCK, 0, 1, 0, &ol)
}

// TryLock takes an exclusive lock on the first byte of f if no one holds
// it, and reports whether it did.
func TryLock(f *os.File) (bool, error) {
	var ol windows.Overlapped
	err := windows.LockFileEx(windows.Handle(f.Fd()), windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, &ol)
	if errors.Is(err, windows.ERROR_LOCK_VIOLATION) {
		return false, nil
	}
	return err == nil, err
}

// SyncDir does nothing: Windows cannot open a folder for syncing, and
// MoveFileEx, behind os.Rename, is as durable as it gets there.
func SyncDir(string) error { return nil }

//go:build unix

// Package flock locks files between processes, and makes changes to a
// folder durable: the few system calls that the audit spool, the client's
// configuration files and the upload folders share.
package flock

import (
	"errors"
	"os"
	"syscall"
)

// Lock takes an exclusive flock on f, waiting as long as it takes. The
// lock belongs to f's open file description, so two opens in one process
// exclude each other as two processes do, and the kernel drops it when
// the process dies, however it dies.
func Lock(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// TryLock takes an exclusive flock on f if no one holds it, and reports
// whether it did.
func TryLock(f *os.File) (bool, error) {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, syscall.EWOULDBLOCK):
			return false, nil
		case !errors.Is(err, syscall.EINTR):
			return false, &os.PathError{Op: "flock", Path: f.Name(), Err: err}
		}
	}
}

// SyncDir makes the creations, renames and removals in dir durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

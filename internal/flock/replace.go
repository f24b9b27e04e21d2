package flock

import (
	"os"
	"path/filepath"
)

// LockPath creates the folder of path if need be (mode 0700), opens the
// file at path (mode 0600), creating it, and takes its exclusive lock,
// waiting for another holder to release it. Calling unlock releases it.
// The lock file is meant never to be removed: removing it would let a
// process that opened the old file and one that creates a new one both
// hold "the" lock.
func LockPath(path string) (unlock func(), err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := Lock(f); err != nil {
		f.Close()
		return nil, err
	}
	// Closing the file releases the lock.
	return func() { f.Close() }, nil
}

// ReplaceFile replaces the file at path with data, whole or not at all:
// it writes a temporary file beside it (mode 0600), syncs it, renames it
// over path and syncs the folder, so that a reader sees the old content
// or the new, and the new survives a crash once ReplaceFile returns.
func ReplaceFile(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp") // mode 0600
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.Remove(tmp.Name())
		}
	}()
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return SyncDir(dir)
}

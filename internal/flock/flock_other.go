//go:build !unix && !windows

// Package flock locks files between processes, and makes changes to a
// folder durable: the few system calls that the audit spool, the client's
// configuration files and the upload folders share.
package flock

import "os"

// Lock does nothing on systems without file locks (Plan 9, js/wasm).
func Lock(*os.File) error { return nil }

// TryLock always succeeds on systems without file locks: there, only one
// process may use a folder at a time.
func TryLock(*os.File) (bool, error) { return true, nil }

// SyncDir does nothing on these systems.
func SyncDir(string) error { return nil }

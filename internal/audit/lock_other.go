//go:build !unix && !windows

package audit

import "os"

// tryLock always succeeds on systems without file locks (Plan 9,
// js/wasm): there, only one process may use a spool folder at a time.
func tryLock(*os.File) (bool, error) { return true, nil }

// syncDir does nothing on these systems.
func syncDir(string) error { return nil }

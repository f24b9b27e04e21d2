//go:build !unix && !windows

package salt

import "os"

// lockFile does nothing on systems without file locks (Plan 9, js/wasm):
// there, two processes that store a salt at the same instant can lose one.
func lockFile(*os.File) error { return nil }

// syncDir does nothing on these systems.
func syncDir(string) error { return nil }

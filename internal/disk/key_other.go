//go:build !linux

package disk

import "io/fs"

// keyOf returns the zero key where the change time is not at hand: such a
// file's digest is computed afresh for every request, never cached.
func keyOf(fs.FileInfo) fileKey { return fileKey{} }

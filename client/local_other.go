//go:build !unix

package client

import "io/fs"

// openNoFollow is 0 where the system has no O_NOFOLLOW: the file opened is
// checked against the one found (os.SameFile) instead.
const openNoFollow = 0

// links returns 1: the number of a file's names is not known here.
func links(fs.FileInfo) uint64 { return 1 }

//go:build !unix

package sqlite

import "os"

// mapStamps does not map the stamp file where there is no mmap: the stamp
// is read with a system call each time instead.
func mapStamps(*os.File) ([]byte, error) { return nil, nil }

func unmapStamps([]byte) error { return nil }

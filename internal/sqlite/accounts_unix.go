//go:build unix

package sqlite

import (
	"os"

	"golang.org/x/sys/unix"
)

// mapStamps maps the first eight bytes of the stamp file f into memory,
// shared with every process that maps or writes it, growing the file to
// eight bytes first if it is shorter (never shrinking it: a stamp once
// written must not turn back into zeros).
func mapStamps(f *os.File) ([]byte, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() < stampSize {
		if err := f.Truncate(stampSize); err != nil {
			return nil, err
		}
	}
	return unix.Mmap(int(f.Fd()), 0, stampSize, unix.PROT_READ, unix.MAP_SHARED)
}

func unmapStamps(b []byte) error { return unix.Munmap(b) }

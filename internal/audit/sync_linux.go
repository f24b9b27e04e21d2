package audit

import (
	"os"

	"golang.org/x/sys/unix"
)

// datasync makes f's data durable, and its size: fdatasync skips only the
// metadata that reading the data back does not need (times), which saves a
// journal commit per batch.
func datasync(f *os.File) error {
	for {
		err := unix.Fdatasync(int(f.Fd()))
		if err != unix.EINTR {
			if err != nil {
				return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
			}
			return nil
		}
	}
}

//go:build unix

package salt

import (
	"errors"
	"os"
	"syscall"
)

// lockFile takes an exclusive flock on f, waiting as long as it takes. The
// lock belongs to f's open file description, so two opens in one process
// exclude each other as two processes do.
func lockFile(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

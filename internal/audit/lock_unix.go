//go:build unix

package audit

import (
	"errors"
	"os"
	"syscall"
)

// tryLock takes an exclusive flock on f if no one holds it, and reports
// whether it did. The lock belongs to f's open file description, so two
// Logs in one process exclude each other as two processes do, and the
// kernel drops it when the process dies, however it dies.
func tryLock(f *os.File) (bool, error) {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, syscall.EWOULDBLOCK):
			return false, nil
		case !errors.Is(err, syscall.EINTR):
			return false, &os.PathError{Op: "flock", Path: f.Name(), Err: err}
		}
	}
}

// syncDir makes the creations, renames and removals in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

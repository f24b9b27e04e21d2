package clientconf

import (
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/larderfs/larder/internal/flock"
)

const (
	enrolledName     = "lnp_enrolled"
	enrolledLockName = "lnp_enrolled.lock"
)

// Enrolled is the list of the accounts this client has logged in to with
// LNP/1's channel-bound login (lnp_enrolled): one "SERVER\tUSER" line
// each, a tab being what no address and no username can hold. For those
// the client never falls back to the course signature, so that a wrong
// password costs one failed attempt at the server's throttle, not two,
// and the signature is not sent again.
type Enrolled struct {
	dir string
}

// Path returns the file's path.
func (e *Enrolled) Path() string { return filepath.Join(e.dir, enrolledName) }

// Lookup reports whether user on server is in the list. A missing file
// is an empty list.
func (e *Enrolled) Lookup(server, user string) (ok bool, err error) {
	lines, err := e.read()
	if err != nil {
		return false, err
	}
	return enrolledIn(lines, server, user), nil
}

// enrolledIn reports whether lines hold user on server, under any
// spelling of the server (see ServerKey).
func enrolledIn(lines []string, server, user string) bool {
	key := ServerKey(server)
	for _, l := range lines {
		if srv, u, ok := strings.Cut(l, "\t"); ok && u == user && ServerKey(srv) == key {
			return true
		}
	}
	return false
}

// Record adds user on server to the list.
func (e *Enrolled) Record(server, user string) error {
	if strings.ContainsAny(server+user, "\t\n") {
		return fmt.Errorf("enrolled: %q on %q cannot be recorded: tab or newline", user, server)
	}
	path := filepath.Join(e.dir, enrolledLockName)
	unlock, err := flock.LockPath(path)
	if err != nil {
		return fmt.Errorf("enrolled: locking %s: %w", path, err)
	}
	defer unlock()
	lines, err := e.read()
	if err != nil {
		return err
	}
	line := fileKey(server) + "\t" + user
	if enrolledIn(lines, server, user) {
		return nil
	}
	lines = append(lines, line, "")
	b := []byte(strings.Join(lines, "\n"))
	if err := replace(e.Path(), b); err != nil {
		return fmt.Errorf("enrolled: writing %s: %w", e.Path(), err)
	}
	return nil
}

// read returns the lines of the file that are not empty, in order.
func (e *Enrolled) read() ([]string, error) {
	h, err := openPrivate(e.Path(), "enrolled: ", 0o022, func(perm fs.FileMode) error {
		return fmt.Errorf("enrolled: %s may be changed by other users (mode %04o): chmod 600 %s", e.Path(), perm, e.Path())
	})
	if err != nil || h == nil {
		return nil, err
	}
	defer h.Close()
	b, err := io.ReadAll(h)
	if err != nil {
		return nil, fmt.Errorf("enrolled: reading %s: %w", e.Path(), err)
	}
	var lines []string
	for l := range strings.SplitSeq(string(b), "\n") {
		if l != "" {
			lines = append(lines, l)
		}
	}
	return lines, nil
}

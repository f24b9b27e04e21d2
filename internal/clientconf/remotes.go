package clientconf

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path/filepath"
	"slices"

	"github.com/larderfs/larder/internal/flock"
)

// Names of the remotes file and its lock, in the folder.
const (
	remotesName     = "remotes.json"
	remotesLockName = "remotes.lock"
)

// remotesVersion is the version of the remotes file's format.
const remotesVersion = 1

// MaxRemoteName is the longest name a remote may have.
const MaxRemoteName = 64

// A Remote is a server the user gave a short name, as rclone's remotes
// and ssh's Host blocks do: where its two protocols listen, the account,
// and how its certificate is trusted. Like the profile, it never holds a
// password or a salt: those stay in their stores, under the server's
// identity (ServerKey), so that a remote and the same server typed out
// share them.
type Remote struct {
	// Server is the address of the native protocol (LNP/1), HOST:PORT.
	Server string `json:"server"`
	// CourseServer is the address of the course protocol; "" means the
	// host of Server on the course protocol's usual port.
	CourseServer string `json:"course_server,omitempty"`
	// User is the account; "" means the one the command would use
	// without the remote.
	User string `json:"user,omitempty"`
	Trust
}

// remotesFile is the remotes file: the remotes by name, after the
// format's version.
type remotesFile struct {
	Version int               `json:"version"`
	Remotes map[string]Remote `json:"remotes"`
}

// Remotes is the store of the named remotes, remotes.json.
type Remotes struct {
	dir string
}

// Remotes returns the store of the named remotes in the folder.
func (d *Dir) Remotes() *Remotes { return &Remotes{dir: d.path} }

// Path returns the path of the remotes file.
func (r *Remotes) Path() string { return filepath.Join(r.dir, remotesName) }

// ErrNoRemote is the error of a Remove of a name that is not a remote.
var ErrNoRemote = errors.New("no such remote")

// ValidRemoteName reports why name cannot name a remote, or nil: a
// letter, then letters, digits, '.', '_' and '-', at most MaxRemoteName
// bytes. No ':', '/' or '@', which the addresses NAME:PATH and
// USER@HOST:PORT:PATH are cut at.
func ValidRemoteName(name string) error {
	if name == "" || len(name) > MaxRemoteName {
		return fmt.Errorf("a remote's name has 1 to %d characters", MaxRemoteName)
	}
	for i, c := range name {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'):
		default:
			return fmt.Errorf("a remote's name starts with a letter and holds only letters, digits, '.', '_' and '-'")
		}
	}
	return nil
}

// All returns every remote, by name. A missing file is no remote.
//
// The file is refused if its group or others may change it: whoever can
// change it can point a name at their own server, or switch it to
// plaintext.
func (r *Remotes) All() (map[string]Remote, error) {
	f, err := r.read()
	if err != nil {
		return nil, err
	}
	return f.Remotes, nil
}

// Names returns the names of the remotes, sorted.
func (r *Remotes) Names() ([]string, error) {
	all, err := r.All()
	if err != nil {
		return nil, err
	}
	return slices.Sorted(maps.Keys(all)), nil
}

// Lookup returns the remote called name, and whether there is one.
func (r *Remotes) Lookup(name string) (Remote, bool, error) {
	all, err := r.All()
	if err != nil {
		return Remote{}, false, err
	}
	rem, ok := all[name]
	return rem, ok, nil
}

// Record adds the remote name, or replaces it.
func (r *Remotes) Record(name string, rem Remote) error {
	if err := ValidRemoteName(name); err != nil {
		return fmt.Errorf("remote %q: %w", name, err)
	}
	if rem.Server == "" {
		return fmt.Errorf("remote %q: no server", name)
	}
	return r.change(func(m map[string]Remote) error {
		m[name] = rem
		return nil
	})
}

// Remove removes the remote name; ErrNoRemote if there is none.
func (r *Remotes) Remove(name string) error {
	return r.change(func(m map[string]Remote) error {
		if _, ok := m[name]; !ok {
			return fmt.Errorf("%w %q in %s", ErrNoRemote, name, r.Path())
		}
		delete(m, name)
		return nil
	})
}

// change reads the file, applies fn and writes it back, under the lock,
// so that two clients at once cannot lose each other's remotes.
func (r *Remotes) change(fn func(map[string]Remote) error) error {
	lock := filepath.Join(r.dir, remotesLockName)
	unlock, err := flock.LockPath(lock)
	if err != nil {
		return fmt.Errorf("remotes: locking %s: %w", lock, err)
	}
	defer unlock()
	f, err := r.read()
	if err != nil {
		return err
	}
	if err := fn(f.Remotes); err != nil {
		return err
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("remotes: %w", err)
	}
	if err := replace(r.Path(), append(b, '\n')); err != nil {
		return fmt.Errorf("remotes: writing %s: %w", r.Path(), err)
	}
	return nil
}

// read loads the file; a missing file holds no remote.
func (r *Remotes) read() (*remotesFile, error) {
	f := &remotesFile{Version: remotesVersion, Remotes: make(map[string]Remote)}
	h, err := openPrivate(r.Path(), "remotes: ", 0o022, func(perm fs.FileMode) error {
		return fmt.Errorf("%s has mode %04o: other users can change which server a remote's name leads to; make it private: chmod 600 %s",
			r.Path(), perm, r.Path())
	})
	if err != nil || h == nil {
		return f, err
	}
	defer h.Close()
	if err := json.NewDecoder(h).Decode(f); err != nil {
		return nil, fmt.Errorf("remotes: %s is damaged: %w", r.Path(), err)
	}
	if f.Version != remotesVersion {
		return nil, fmt.Errorf("remotes: %s has format version %d; this program reads version %d", r.Path(), f.Version, remotesVersion)
	}
	if f.Remotes == nil {
		f.Remotes = make(map[string]Remote)
	}
	for name, rem := range f.Remotes {
		if ValidRemoteName(name) != nil || rem.Server == "" ||
			(rem.Mode != TrustPin && rem.Mode != TrustCA && rem.Mode != TrustPlaintext) {
			return nil, fmt.Errorf("remotes: %s is damaged: remote %q has a bad name, no server or no trust mode: correct or remove it in that file", r.Path(), name)
		}
	}
	return f, nil
}

package clientconf

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/larderfs/larder/internal/flock"
)

// Names of the salts file and its lock, in the folder.
const (
	saltsName     = "salts.json"
	saltsLockName = "salts.lock"
)

// saltsVersion is the version of the salts file's format.
const saltsVersion = 1

// saltsFile is the salts file: a JSON object mapping server to user to
// salt.
type saltsFile struct {
	Version int                          `json:"version"`
	Salts   map[string]map[string]string `json:"salts"`
}

// Salts is the store of the salts that the client signs with, by server
// and user, in salts.json. The course protocol's signature is
// SHA-256(password ‖ salt), computed by the client; a salt of its own per
// server and user makes a signature seen by one server useless on any
// other, and it must outlive the process. A salt is a secret: the file is
// refused if its group or others may even read it.
//
// Servers are filed under the address as typed (fileKey) and found by
// any spelling of it (ServerKey, pick); recording a salt removes the
// user's salt under other spellings of the server.
type Salts struct {
	dir string
}

// Path returns the path of the salts file.
func (s *Salts) Path() string { return filepath.Join(s.dir, saltsName) }

// Lookup returns the salt of user on server, and whether there is one.
// Usernames are case-sensitive.
//
// Lookup refuses a salts file that its group or others may read or write
// (on systems with Unix permissions), the way ssh refuses such a private
// key: a warning would be printed on every run and ignored, while the
// refusal names the one command that fixes it. Record, which replaces the
// file with mode 0600, repairs it too.
func (s *Salts) Lookup(server, user string) (salt string, ok bool, err error) {
	f, err := s.read(true)
	if err != nil {
		return "", false, err
	}
	salt, ok, conflict := pick(f.forUser(user), server)
	if conflict != nil {
		return "", false, fmt.Errorf("salt: %s holds different salts for %q under %s, which name one server: remove the wrong one, or pass --salt",
			s.Path(), user, strings.Join(conflict, " and "))
	}
	return salt, ok, nil
}

// forUser returns the salts of user, by server key.
func (f *saltsFile) forUser(user string) map[string]string {
	m := make(map[string]string)
	for k, users := range f.Salts {
		if s, ok := users[user]; ok {
			m[k] = s
		}
	}
	return m
}

// Record records salt as the salt of user on server, replacing any
// earlier one. It refuses to replace a file it cannot read, which may
// hold salts that a newer version wrote.
func (s *Salts) Record(server, user, salt string) error {
	if salt == "" {
		return errors.New("salt: refusing to store an empty salt")
	}
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()

	f, err := s.read(false)
	if err != nil {
		return err
	}
	key := fileKey(server)
	// A salt under another spelling of the server is replaced, not left
	// to be found by that spelling.
	for k, users := range f.Salts {
		if k != key && ServerKey(k) == ServerKey(server) {
			delete(users, user)
			if len(users) == 0 {
				delete(f.Salts, k)
			}
		}
	}
	if f.Salts[key] == nil {
		f.Salts[key] = make(map[string]string)
	}
	f.Salts[key][user] = salt
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("salt: %w", err)
	}
	if err := replace(s.Path(), append(b, '\n')); err != nil {
		return fmt.Errorf("salt: writing %s: %w", s.Path(), err)
	}
	return nil
}

// Prepare creates the folder if need be and takes and releases the lock,
// so that a caller can find out that Record would fail before it does
// something that cannot be undone, such as registering on a server.
func (s *Salts) Prepare() error {
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	unlock()
	return nil
}

// read loads the salts file; a missing file is an empty one. With
// checkMode, a file that others may read or write is refused.
func (s *Salts) read(checkMode bool) (*saltsFile, error) {
	f := &saltsFile{Version: saltsVersion, Salts: make(map[string]map[string]string)}
	var forbid fs.FileMode
	if checkMode {
		forbid = 0o077
	}
	h, err := openPrivate(s.Path(), "salt: ", forbid, func(perm fs.FileMode) error {
		return fmt.Errorf("salt: %s is accessible to other users (mode %04o); it holds secrets, so it must be private: chmod 600 %s",
			s.Path(), perm, s.Path())
	})
	if err != nil {
		return nil, err
	}
	if h == nil {
		return f, nil
	}
	defer h.Close()
	if err := json.NewDecoder(h).Decode(f); err != nil {
		return nil, fmt.Errorf("salt: %s is damaged: %w", s.Path(), err)
	}
	if f.Version != saltsVersion {
		return nil, fmt.Errorf("salt: %s has format version %d; this program reads version %d", s.Path(), f.Version, saltsVersion)
	}
	if f.Salts == nil {
		f.Salts = make(map[string]map[string]string)
	}
	return f, nil
}

// lock creates the folder if need be and takes the exclusive lock on
// salts.lock, waiting for another holder to release it.
func (s *Salts) lock() (unlock func(), err error) {
	path := filepath.Join(s.dir, saltsLockName)
	unlock, err = flock.LockPath(path)
	if err != nil {
		return nil, fmt.Errorf("salt: locking %s: %w", path, err)
	}
	return unlock, nil
}

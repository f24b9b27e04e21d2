package salt

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/flock"
)

// Names of the files in a Store's folder.
const (
	fileName = "salts.json"
	lockName = "salts.lock"
)

// fileVersion is the version of the salts file's format.
const fileVersion = 1

// file is the salts file: a JSON object mapping server to user to salt.
type file struct {
	Version int                          `json:"version"`
	Salts   map[string]map[string]string `json:"salts"`
}

// A Store keeps salts by server and user in one JSON file, salts.json, in
// its folder. The folder is created with mode 0700 and the file written
// with mode 0600. Reads need no lock, since the file is only ever replaced
// whole by a rename; a Put holds an exclusive lock on salts.lock across its
// read-modify-write, so that two processes registering at once cannot lose
// each other's salts.
//
// Servers are keyed by the address the user typed, with the host's case
// folded: "Example.org:23456" and "example.org:23456" are one key, but
// "localhost:23456" and "127.0.0.1:23456" are two, as are a name and its
// IP address. A Store cannot know that two addresses reach one server, and
// guessing wrong would sign with a salt the server never saw.
type Store struct {
	dir string
}

// Open returns the Store kept in dir. It touches nothing on disk until it
// is used.
func Open(dir string) *Store {
	return &Store{dir: dir}
}

// DefaultDir returns the folder in which the larder client keeps its
// salts: the folder "larder" in os.UserConfigDir (~/.config/larder on
// Linux).
func DefaultDir() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("salt: %w", err)
	}
	return filepath.Join(dir, "larder"), nil
}

// Dir returns the Store's folder.
func (s *Store) Dir() string { return s.dir }

// Path returns the path of the salts file.
func (s *Store) Path() string { return filepath.Join(s.dir, fileName) }

// ServerKey returns the key under which a Store files the salts of server:
// the address with the host part in lower case.
func ServerKey(server string) string {
	host, port, err := net.SplitHostPort(server)
	if err != nil {
		return strings.ToLower(server)
	}
	return net.JoinHostPort(strings.ToLower(host), port)
}

// Get returns the salt of user on server. If there is none, the error has
// code larder.ENOTFOUND and tells the user how to get one.
//
// Get refuses a salts file that its group or others may read or write
// (on systems with Unix permissions), the way ssh refuses such a private
// key: a warning would be printed on every run and ignored, while the
// refusal names the one command that fixes it. Put, which replaces the file
// with mode 0600, repairs it too.
func (s *Store) Get(server, user string) (string, error) {
	f, err := s.read(true)
	if err != nil {
		return "", err
	}
	if salt, ok := f.Salts[ServerKey(server)][user]; ok {
		return salt, nil
	}
	return "", larder.Errorf(larder.ENOTFOUND,
		"no salt for user %q on server %s in %s: register from this machine, or pass the salt the account was registered with (--salt)",
		user, server, s.Path())
}

// Put records salt as the salt of user on server, replacing any earlier
// one. It writes a new file next to the old, syncs it, renames it over the
// old and syncs the folder, so that a crash leaves either the old file or
// the new one, never a mix.
func (s *Store) Put(server, user, salt string) error {
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
	key := ServerKey(server)
	if f.Salts[key] == nil {
		f.Salts[key] = make(map[string]string)
	}
	f.Salts[key][user] = salt
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("salt: %w", err)
	}
	return s.writeFile(append(b, '\n'))
}

// Prepare creates the Store's folder if need be and takes and releases the
// lock, so that a caller can find out that Put would fail before it does
// something that cannot be undone, such as registering on a server.
func (s *Store) Prepare() error {
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	unlock()
	return nil
}

// read loads the salts file; a missing file is an empty one.
func (s *Store) read(checkMode bool) (*file, error) {
	f := &file{Version: fileVersion, Salts: make(map[string]map[string]string)}
	h, err := os.Open(s.Path())
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return nil, fmt.Errorf("salt: %w", err)
	}
	defer h.Close()
	if checkMode && runtime.GOOS != "windows" {
		fi, err := h.Stat()
		if err != nil {
			return nil, fmt.Errorf("salt: %w", err)
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			return nil, fmt.Errorf("salt: %s is accessible to other users (mode %04o); it holds secrets, so it must be private: chmod 600 %s",
				s.Path(), perm, s.Path())
		}
	}
	if err := json.NewDecoder(h).Decode(f); err != nil {
		return nil, fmt.Errorf("salt: %s is damaged: %w", s.Path(), err)
	}
	if f.Version != fileVersion {
		return nil, fmt.Errorf("salt: %s has format version %d; this program reads version %d", s.Path(), f.Version, fileVersion)
	}
	if f.Salts == nil {
		f.Salts = make(map[string]map[string]string)
	}
	return f, nil
}

// writeFile replaces the salts file with b, atomically and durably.
func (s *Store) writeFile(b []byte) error {
	if err := flock.ReplaceFile(s.Path(), b); err != nil {
		return fmt.Errorf("salt: writing %s: %w", s.Path(), err)
	}
	return nil
}

// lock creates the folder if need be and takes the exclusive lock on
// salts.lock, waiting for another holder to release it. The lock file is
// never removed: removing it would let a process that opened the old file
// and one that creates a new one both hold "the" lock.
func (s *Store) lock() (unlock func(), err error) {
	path := filepath.Join(s.dir, lockName)
	unlock, err = flock.LockPath(path)
	if err != nil {
		return nil, fmt.Errorf("salt: locking %s: %w", path, err)
	}
	return unlock, nil
}

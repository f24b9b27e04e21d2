package disk

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/larderfs/larder"
)

// The names of the folders below Spaces' folder.
const (
	spacePrefix  = "id-"    // an account's space: id- and the account's id in decimal
	legacyPrefix = "u-"     // a space of an older version: u- and the hex of the user's name
	trashPrefix  = "trash-" // a space being removed
)

// spaceDir returns the folder of the space of account id.
func spaceDir(id int64) string { return spacePrefix + strconv.FormatInt(id, 10) }

// legacyDir returns the folder that older versions gave the space of the
// user called name.
func legacyDir(name string) string { return legacyPrefix + hex.EncodeToString([]byte(name)) }

// Has reports whether the account id has a space: Space makes one on
// first use, which a command that only looks must not.
func (s *Spaces) Has(id int64) (bool, error) {
	_, err := s.root.Stat(spaceDir(id))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, fmt.Errorf("disk: %w", err)
}

// Delete removes the space of the account id, called name, and reports
// whether there was one. The folder is first renamed out of the way, in
// one step, and then removed, so that a crash leaves either the whole
// space or a folder that Adopt finishes removing. A folder that an older
// version gave the name, and that Adopt would give the account, goes too.
// A session still open on the space writes into removed files.
func (s *Spaces) Delete(id int64, name string) (bool, error) {
	found := false
	for _, dir := range []string{spaceDir(id), legacyDir(name)} {
		trash := fmt.Sprintf("%s%s-%d", trashPrefix, dir, time.Now().UnixNano())
		err := s.root.Rename(dir, trash)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return found, fmt.Errorf("disk: remove the space of %q: %w", name, err)
		}
		found = true
		if err := syncDir(s.dir); err != nil {
			return found, err
		}
		if err := os.RemoveAll(filepath.Join(s.dir, trash)); err != nil {
			return found, fmt.Errorf("disk: remove the space of %q: %w", name, err)
		}
	}
	return found, nil
}

// Export moves the space of the account id, called name, to the folder
// dst, which must not exist and must be on the same file system (its
// parent is made if need be), and reports whether there was one. Its
// files are then in dst/files, its interrupted uploads in dst/uploads. A
// folder that an older version gave the name goes to dst-old.
func (s *Spaces) Export(id int64, name, dst string) (bool, error) {
	found := false
	for i, dir := range []string{spaceDir(id), legacyDir(name)} {
		to := dst
		if i == 1 {
			to += "-old"
		}
		if _, err := s.root.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := moveAside(filepath.Join(s.dir, dir), to); err != nil {
			return found, fmt.Errorf("disk: keep the space of %q: %w", name, err)
		}
		found = true
	}
	return found, nil
}

// moveAside renames the folder from to to, which must not exist, making
// to's parent if need be, and makes both folders' entries durable.
func moveAside(from, to string) error {
	if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
		return err
	}
	if _, err := os.Lstat(to); err == nil {
		return fmt.Errorf("%s exists", to)
	}
	if err := os.Rename(from, to); err != nil {
		return err
	}
	if err := syncDir(filepath.Dir(from)); err != nil {
		return err
	}
	return syncDir(filepath.Dir(to))
}

// syncDir makes the entries of the folder dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("disk: sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("disk: sync %s: %w", dir, err)
	}
	return nil
}

// AsideName returns the name of the folder where the space of the account
// id, called name, is kept at t when it is set aside: name with every
// character but letters, digits, '-', '_' and '.' replaced by '_', then
// the id and the time in UTC, as in "bob-7-20261207T043000Z".
func AsideName(name string, id int64, t time.Time) string {
	safe := []rune(name)
	for i, r := range safe {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && !strings.ContainsRune("-_.", r) || i == 0 && r == '.' {
			safe[i] = '_'
		}
	}
	return fmt.Sprintf("%s-%d-%s", string(safe), id, t.UTC().Format("20060102T150405Z"))
}

// Adopted says what Adopt did with the folder of an older version's
// space: moved it to the space of the account it belongs to (ID), or,
// with no such account, set it aside in Aside.
type Adopted struct {
	Name  string // the user's name
	ID    int64  // the account's id; 0 if it has none
	Aside string // where it was set aside, or ""
}

// Adopt moves the spaces of older versions, named after the user's name,
// to the spaces of the accounts of that name now, as the account ids that
// lookup returns say, and finishes removing the spaces a crash left half
// removed. Run it at start, before the spaces are served; it is
// idempotent, and a crash in the middle loses nothing: each folder moves
// with one rename. A folder whose name has no account (it was deleted)
// is set aside below the folder aside, named by AsideName with id 0, as
// is one whose account already has a space; nothing is removed. lookup
// returns an error with code ENOTFOUND for a name without an account;
// any other error stops Adopt.
func (s *Spaces) Adopt(lookup func(name string) (int64, error), aside string) ([]Adopted, error) {
	dirs, err := fs.ReadDir(s.root.FS(), ".")
	if err != nil {
		return nil, fmt.Errorf("disk: %w", err)
	}
	var done []Adopted
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		if strings.HasPrefix(d.Name(), trashPrefix) {
			if err := os.RemoveAll(filepath.Join(s.dir, d.Name())); err != nil {
				return done, fmt.Errorf("disk: %w", err)
			}
			continue
		}
		raw, ok := strings.CutPrefix(d.Name(), legacyPrefix)
		if !ok {
			continue
		}
		b, err := hex.DecodeString(raw)
		if err != nil {
			continue // not a space of larder's
		}
		a := Adopted{Name: string(b)}
		id, err := lookup(a.Name)
		switch {
		case larder.ErrorCode(err) == larder.ENOTFOUND:
		case err != nil:
			return done, err
		default:
			a.ID = id
			if _, err := s.root.Lstat(spaceDir(id)); errors.Is(err, fs.ErrNotExist) {
				if err := s.root.Rename(d.Name(), spaceDir(id)); err != nil {
					return done, fmt.Errorf("disk: adopt the space of %q: %w", a.Name, err)
				}
				if err := syncDir(s.dir); err != nil {
					return done, err
				}
				done = append(done, a)
				continue
			}
		}
		a.Aside = filepath.Join(aside, AsideName(a.Name, 0, time.Now())+"-"+raw)
		if err := moveAside(filepath.Join(s.dir, d.Name()), a.Aside); err != nil {
			return done, fmt.Errorf("disk: set aside the space of %q: %w", a.Name, err)
		}
		done = append(done, a)
	}
	return done, nil
}

// ID returns the name of this folder of spaces: "disk:" and its absolute
// path with symbolic links resolved. The journal of changes to files says
// with it which storage a change was made on, so that servers sharing a
// database each replay their own; a folder moved after a crash and before
// the next start leaves its intents unreplayed.
func (s *Spaces) ID() (string, error) {
	abs, err := filepath.Abs(s.dir)
	if err == nil {
		abs, err = filepath.EvalSymlinks(abs)
	}
	if err != nil {
		return "", fmt.Errorf("disk: %w", err)
	}
	return "disk:" + abs, nil
}

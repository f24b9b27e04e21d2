// Package disk serves files from a folder on the local disk. Nothing outside
// the folder is reachable: paths are resolved with os.Root, which refuses
// "..", absolute paths and symbolic links that lead out, and the package
// refuses NUL bytes and special files on top.
package disk

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/larderfs/larder"
)

// Store is a read-only view of one folder.
type Store struct {
	root *os.Root

	// escapes is the error os.Root returns for a path that leads out of
	// the root. The os package does not export it, so Open captures it
	// from a probe, which is sturdier than matching its text.
	escapes error
}

// Open opens the folder dir.
func Open(dir string) (*Store, error) {
	root, escapes, err := openRoot(dir)
	if err != nil {
		return nil, err
	}
	return &Store{root: root, escapes: escapes}, nil
}

// openRoot opens dir as an os.Root, with the error it returns for a path
// that leads out. The os package does not export that error, so a probe
// captures it, which is sturdier than matching its text.
func openRoot(dir string) (root *os.Root, escapes, err error) {
	root, err = os.OpenRoot(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("disk: %w", err)
	}
	_, probe := root.Stat("..")
	var pe *fs.PathError
	if !errors.As(probe, &pe) {
		root.Close()
		return nil, nil, fmt.Errorf("disk: os.Root did not refuse \"..\" (got %v)", probe)
	}
	return root, pe.Err, nil
}

// Dir returns the folder's name as given to Open.
func (s *Store) Dir() string { return s.root.Name() }

// Close closes the folder.
func (s *Store) Close() error { return s.root.Close() }

// File is a regular file opened for reading, with the version of its
// content (see VersionOf) when it was opened.
type File struct {
	*os.File
	Name    string
	Size    int64
	ModTime time.Time
	Version string
	Changed time.Time
}

// Open opens the regular file at name, a slash-separated path relative to
// the folder. Errors are *larder.Error values whose messages are safe to
// show a client: ENOTFOUND for a missing file, EINVALID for a path that is
// refused or names something other than a regular file.
func (s *Store) Open(name string) (*File, error) {
	if err := checkPath(name); err != nil {
		return nil, err
	}
	return openRegular(s.root, name, name, s.openError)
}

// openRegular opens the regular file name of root for reading; shown is
// its name for messages.
func openRegular(root *os.Root, name, shown string, pathError func(string, error) error) (*File, error) {
	// O_NONBLOCK so that opening a FIFO someone left in the folder returns
	// at once instead of blocking until a writer appears; it changes
	// nothing for a regular file.
	f, err := root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, pathError(shown, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, &larder.Error{Code: larder.EINTERNAL, Message: "cannot read " + quote(shown), Err: err}
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		what := "not a regular file"
		if fi.IsDir() {
			what = "a directory"
		}
		return nil, larder.Errorf(larder.EINVALID, "%s is %s", quote(shown), what)
	}
	v, changed := VersionOf(fi)
	return &File{File: f, Name: shown, Size: fi.Size(), ModTime: fi.ModTime(), Version: v, Changed: changed}, nil
}

// checkPath refuses, before touching the disk, what can never name a file
// inside the folder. os.Root would refuse most of it too; saying why here
// gives the client a clear message.
func checkPath(name string) error {
	switch {
	case name == "" || name == ".":
		return larder.Errorf(larder.EINVALID, "the path names the served folder itself, which is a directory")
	case strings.IndexByte(name, 0) >= 0:
		return larder.Errorf(larder.EINVALID, "the path contains a NUL byte")
	case strings.HasPrefix(name, "/"):
		return larder.Errorf(larder.EINVALID, "absolute path %s refused: paths are relative to the served folder", quote(name))
	}
	for elem := range strings.SplitSeq(name, "/") {
		if elem == ".." {
			return larder.Errorf(larder.EINVALID, "path %s refused: it may not contain \"..\"", quote(name))
		}
	}
	return nil
}

func (s *Store) openError(name string, err error) error {
	switch {
	case errors.Is(err, s.escapes):
		return &larder.Error{Code: larder.EINVALID, Message: "path " + quote(name) + " leads outside the served folder", Err: err}
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		return &larder.Error{Code: larder.ENOTFOUND, Message: "requested content " + quote(name) + " does not exist", Err: err}
	case errors.Is(err, fs.ErrPermission):
		return &larder.Error{Code: larder.EFORBIDDEN, Message: "permission denied reading " + quote(name), Err: err}
	case errors.Is(err, syscall.ELOOP):
		return &larder.Error{Code: larder.EINVALID, Message: "too many symbolic links in " + quote(name), Err: err}
	case errors.Is(err, syscall.ENAMETOOLONG):
		return &larder.Error{Code: larder.EINVALID, Message: "path " + quote(name) + " is too long", Err: err}
	default:
		return &larder.Error{Code: larder.EINTERNAL, Message: "cannot open " + quote(name), Err: err}
	}
}

// quote quotes a client-supplied path for a message, escaping anything
// unprintable so that a path cannot forge text in a reply or a log.
func quote(name string) string {
	if len(name) > 200 {
		name = name[:200] + "..."
	}
	return fmt.Sprintf("%q", name)
}

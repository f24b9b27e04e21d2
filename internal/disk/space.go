package disk

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/xfer"
)

// Limits of a path in a space, as LNP/1 states them.
const (
	MaxPathLen = 4096
	MaxNameLen = 255
)

// CleanPath checks a client's slash-separated path and returns it without
// its leading slash ("" for the top of the space). It refuses, with code
// EINVALID and a message that says why, NUL bytes, empty elements, "." and
// "..", and names or paths that are too long.
func CleanPath(p string) (string, error) {
	if len(p) > MaxPathLen {
		return "", larder.Errorf(larder.EINVALID, "path is %d bytes long; the most is %d", len(p), MaxPathLen)
	}
	if strings.IndexByte(p, 0) >= 0 {
		return "", larder.Errorf(larder.EINVALID, "the path contains a NUL byte")
	}
	p = strings.TrimPrefix(p, "/")
	if p == "" {
		return "", nil
	}
	for elem := range strings.SplitSeq(p, "/") {
		switch {
		case elem == "":
			return "", larder.Errorf(larder.EINVALID, "path %s has an empty element", quote(p))
		case elem == "." || elem == "..":
			return "", larder.Errorf(larder.EINVALID, "path %s may not contain %q", quote(p), elem)
		case len(elem) > MaxNameLen:
			return "", larder.Errorf(larder.EINVALID, "a name in path %s is longer than %d bytes", quote(p), MaxNameLen)
		}
	}
	return p, nil
}

// Spaces keeps every user's private space below one folder. An account's
// space is a folder named after its id (spaceDir), never its name, so
// that an account registered again under a deleted one's name starts
// empty; it holds files/, the user's tree, and uploads/, the uploads in
// progress: on one file system, so that an upload moves into the tree
// with one rename. See spaces.go for deleting a space and for adopting
// the folders of older versions, which were named after the user's name.
type Spaces struct {
	dir     string
	root    *os.Root
	escapes error
	active  activeParts // the part files being written, by this process
}

// OpenSpaces opens (creating it if need be) the folder of the spaces.
func OpenSpaces(dir string) (*Spaces, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("disk: %w", err)
	}
	root, escapes, err := openRoot(dir)
	if err != nil {
		return nil, err
	}
	return &Spaces{dir: dir, root: root, escapes: escapes}, nil
}

// Close closes the folder.
func (s *Spaces) Close() error { return s.root.Close() }

// Space opens the space of the account with the given id, creating it on
// first use. Close it after use.
func (s *Spaces) Space(id int64) (*Space, error) {
	dir := spaceDir(id)
	for _, sub := range []string{"files", "uploads"} {
		if err := s.root.MkdirAll(dir+"/"+sub, 0o700); err != nil {
			return nil, &larder.Error{Code: larder.EINTERNAL, Message: "cannot open your space", Err: err}
		}
	}
	root, err := s.root.OpenRoot(dir)
	if err != nil {
		return nil, &larder.Error{Code: larder.EINTERNAL, Message: "cannot open your space", Err: err}
	}
	return &Space{root: root, escapes: s.escapes, spaces: s, dir: dir}, nil
}

// Space is one user's private space. Paths are cleaned by CleanPath;
// errors are *larder.Error values whose messages are safe to show.
type Space struct {
	root    *os.Root
	escapes error
	spaces  *Spaces
	dir     string // in spaces
}

// Close closes the space.
func (sp *Space) Close() error { return sp.root.Close() }

func tree(p string) string {
	if p == "" {
		return "files"
	}
	return "files/" + p
}

// Stat returns what is at p: a regular file or a folder.
func (sp *Space) Stat(p string) (fs.FileInfo, error) {
	fi, err := sp.root.Lstat(tree(p))
	if err != nil {
		return nil, sp.pathError(p, err)
	}
	if !fi.Mode().IsRegular() && !fi.IsDir() {
		return nil, larder.Errorf(larder.ENOTFOUND, "%s does not exist", quote(p))
	}
	return fi, nil
}

// OpenList opens folder p for listing.
func (sp *Space) OpenList(p string) (*Lister, error) {
	return openLister(sp.root, tree(p), p, sp.pathError)
}

// Lister reads a folder's regular files and folders a few at a time, in
// the order the file system keeps them (not sorted), so that each read
// costs the same whatever the folder's size. As with readdir(3), an entry
// there throughout is read exactly once; one added or removed meanwhile
// may or may not be. It holds the folder open until Close.
type Lister struct {
	d     *os.File
	shown string
	err   func(string, error) error
}

// openLister opens folder name of root, shown to users as shown.
func openLister(root *os.Root, name, shown string, pathError func(string, error) error) (*Lister, error) {
	d, err := root.Open(name)
	if err != nil {
		return nil, pathError(shown, err)
	}
	fi, err := d.Stat()
	if err != nil {
		d.Close()
		return nil, pathError(shown, err)
	}
	if !fi.IsDir() {
		d.Close()
		return nil, larder.Errorf(larder.EINVALID, "%s is not a folder", quote(shown))
	}
	return &Lister{d: d, shown: shown, err: pathError}, nil
}

// Next reads up to n more entries and returns the regular files and
// folders among them (symbolic links, special files and names that are
// not UTF-8, which no request can name, are left out, so it may return
// fewer, even none). At the end of the folder it returns io.EOF.
func (l *Lister) Next(n int) ([]fs.FileInfo, error) {
	entries, err := l.d.ReadDir(n)
	if err == io.EOF {
		return nil, io.EOF
	}
	if err != nil && len(entries) == 0 {
		return nil, l.err(l.shown, err)
	}
	infos := make([]fs.FileInfo, 0, len(entries))
	for _, e := range entries {
		if t := e.Type(); t != 0 && !t.IsDir() || !utf8.ValidString(e.Name()) {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		infos = append(infos, info)
	}
	return infos, nil
}

// Close lets go of the folder.
func (l *Lister) Close() error { return l.d.Close() }

// Mkdir makes folder p; its parent must exist.
func (sp *Space) Mkdir(p string) error {
	if p == "" {
		return larder.Errorf(larder.ECONFLICT, "the top of your space exists")
	}
	if err := sp.checkNewName(p); err != nil {
		return err
	}
	if err := sp.root.Mkdir(tree(p), 0o700); err != nil {
		return sp.pathError(p, err)
	}
	return syncParent(sp.root, tree(p))
}

// Remove removes the file or empty folder p.
func (sp *Space) Remove(p string) error {
	if p == "" {
		return larder.Errorf(larder.EINVALID, "the top of your space cannot be removed")
	}
	if err := sp.root.Remove(tree(p)); err != nil {
		return sp.pathError(p, err)
	}
	return syncParent(sp.root, tree(p))
}

// Removed is what RemoveTree removed: regular files and their bytes,
// and folders, the top one among them.
type Removed struct{ Files, Folders, Bytes int64 }

// RemoveTree removes p, a file or a folder with everything below it, or,
// if that is more than max entries, max of them (the deepest first), and
// reports whether p is gone: call it again for the rest. What it removed
// is made durable with one sync of p's parent once p is gone; what a
// crash keeps of the folders below is removed by RemoveTree called
// again. Nothing at p is no error, and gone.
func (sp *Space) RemoveTree(p string, max int) (Removed, bool, error) {
	var r Removed
	if p == "" {
		return r, false, larder.Errorf(larder.EINVALID, "the top of your space cannot be removed")
	}
	fi, err := sp.root.Lstat(tree(p))
	if errors.Is(err, fs.ErrNotExist) {
		return r, true, nil
	}
	gone := false
	if err == nil {
		var parent *os.Root
		if parent, err = sp.root.OpenRoot(path.Dir(tree(p))); err == nil {
			gone, err = removeSome(parent, path.Base(tree(p)), fi, &r, &max)
			parent.Close()
		}
	}
	if err != nil {
		return r, false, sp.pathError(p, err)
	}
	if !gone {
		return r, false, nil
	}
	return r, true, syncParent(sp.root, tree(p))
}

// removeSome removes name of parent, whose Lstat is fi, and everything
// below it, counting in r, up to *budget entries, and reports whether
// name is gone. Each folder is worked on through a Root of its own, so
// that each step is one system call whatever the depth (a path from the
// top would be resolved anew, a component at a time, at every step); a
// symbolic link is removed, never followed.
func removeSome(parent *os.Root, name string, fi fs.FileInfo, r *Removed, budget *int) (bool, error) {
	if fi.IsDir() {
		dir, err := parent.OpenRoot(name)
		if err != nil {
			return false, err
		}
		gone, err := emptyFolder(dir, r, budget)
		dir.Close()
		if !gone || err != nil {
			return false, err
		}
	}
	if *budget <= 0 {
		return false, nil
	}
	if err := parent.Remove(name); errors.Is(err, syscall.ENOTEMPTY) {
		return false, nil // written to meanwhile: the next call goes on
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	*budget--
	switch {
	case fi.IsDir():
		r.Folders++
	case fi.Mode().IsRegular():
		r.Files++
		r.Bytes += fi.Size()
	}
	return true, nil
}

// emptyFolder removes what dir holds, up to *budget entries, and reports
// whether it is empty. It reads a batch of names at a time, closing the
// folder before it removes them, and reads again from the names still
// there.
func emptyFolder(dir *os.Root, r *Removed, budget *int) (bool, error) {
	for {
		d, err := dir.Open(".")
		if err != nil {
			return false, err
		}
		entries, err := d.ReadDir(256)
		d.Close()
		if err == io.EOF || err == nil && len(entries) == 0 {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		for _, e := range entries {
			info, err := e.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return false, err
			}
			if gone, err := removeSome(dir, e.Name(), info, r, budget); !gone || err != nil {
				return false, err
			}
		}
	}
}

// Rename moves from to to. Without overwrite an existing to is a conflict.
func (sp *Space) Rename(from, to string, overwrite bool) error {
	if from == "" || to == "" {
		return larder.Errorf(larder.EINVALID, "the top of your space cannot be moved or replaced")
	}
	if from == to || strings.HasPrefix(to, from+"/") {
		return larder.Errorf(larder.EINVALID, "%s cannot move into itself", quote(from))
	}
	if err := sp.checkNewName(to); err != nil {
		return err
	}
	if _, err := sp.Stat(from); err != nil {
		return err
	}
	if !overwrite {
		if _, err := sp.root.Lstat(tree(to)); err == nil {
			return larder.Errorf(larder.ECONFLICT, "%s exists", quote(to))
		}
	}
	if err := sp.root.Rename(tree(from), tree(to)); err != nil {
		// os.Root reports a folder that is not empty as EEXIST, which
		// would read "exists" to a caller who asked to replace it.
		if fi, lerr := sp.root.Lstat(tree(to)); errors.Is(err, fs.ErrExist) && lerr == nil && fi.IsDir() {
			return &larder.Error{Code: larder.ECONFLICT, Message: quote(to) + " is a folder that is not empty", Err: err}
		}
		return sp.pathError(to, err)
	}
	if err := syncParent(sp.root, tree(from)); err != nil {
		return err
	}
	return syncParent(sp.root, tree(to))
}

// Open opens the regular file p for reading.
func (sp *Space) Open(p string) (*File, error) {
	return openRegular(sp.root, tree(p), p, sp.pathError)
}

func (sp *Space) pathError(p string, err error) error {
	switch {
	case errors.Is(err, fs.ErrExist), errors.Is(err, syscall.ENOTEMPTY):
		what := "exists"
		if errors.Is(err, syscall.ENOTEMPTY) {
			what = "is a folder that is not empty"
		}
		return &larder.Error{Code: larder.ECONFLICT, Message: quote(p) + " " + what, Err: err}
	case errors.Is(err, syscall.ENOTDIR):
		return &larder.Error{Code: larder.ENOTFOUND, Message: "a parent of " + quote(p) + " is not a folder", Err: err}
	case errors.Is(err, syscall.EISDIR):
		return &larder.Error{Code: larder.ECONFLICT, Message: quote(p) + " is a folder", Err: err}
	}
	return (&Store{escapes: sp.escapes}).openError(p, err)
}

// syncParent makes a change to the folder that holds name durable.
func syncParent(root *os.Root, name string) error {
	d, err := root.Open(path.Dir(name))
	if err != nil {
		return &larder.Error{Code: larder.EINTERNAL, Message: "cannot sync a folder", Err: err}
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return &larder.Error{Code: larder.EINTERNAL, Message: "cannot sync a folder", Err: err}
	}
	return nil
}

// Upload is an upload in progress: a part file in the space's uploads/,
// locked while one session writes it, named after the target's path and
// size so that an interrupted upload of the same file can be resumed.
type Upload struct {
	sp     *Space
	f      *os.File
	w      *xfer.File // f, written with early writeback
	name   string     // of the part file, in the space's root
	ID     string     // the part file's name in uploads/
	Target string     // the path the file goes to
	Size   int64      // the file's final size
	Offset int64      // the bytes written and verified so far
}

// StartUpload opens the upload of a file of size bytes to p. With resume,
// an earlier part file of the same path and size is continued from its
// end; otherwise any is discarded. An upload of p being written by another
// session is a conflict.
func (sp *Space) StartUpload(p string, size int64, resume bool) (*Upload, error) {
	if err := sp.checkNewName(p); err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(p))
	id := hex.EncodeToString(sum[:16]) + "-" + strconv.FormatInt(size, 10) + partSuffix
	name := "uploads/" + id
	f, err := sp.openPart(name, p)
	if err != nil {
		return nil, err
	}
	u := &Upload{sp: sp, f: f, name: name, ID: id, Target: p, Size: size}
	if err := sp.startPart(u); err != nil {
		// A part with nothing in it (made just now) would count in the
		// quota at the file's size until swept; one with bytes stays for
		// a resume. It is still locked: no one else writes it.
		if fi, serr := f.Stat(); serr == nil && fi.Size() == 0 {
			sp.root.Remove(name)
			if fi, perr := sp.root.Lstat(pathName(name)); perr == nil && fi.Mode().IsRegular() {
				sp.root.Remove(pathName(name))
			}
		}
		f.Close()
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil && resume && fi.Size() <= size {
		u.Offset = fi.Size()
	} else if err == nil {
		err = f.Truncate(0)
	}
	if err == nil {
		_, err = f.Seek(u.Offset, io.SeekStart)
	}
	if err != nil {
		u.Close()
		return nil, &larder.Error{Code: larder.EINTERNAL, Message: "cannot start the upload", Err: err}
	}
	u.w = xfer.NewFile(f, u.Offset)
	return u, nil
}

// Write appends verified bytes.
func (u *Upload) Write(p []byte) (int, error) {
	n, err := u.w.Write(p)
	u.Offset += int64(n)
	if err != nil {
		return n, noSpace(&larder.Error{Code: larder.EINTERNAL, Message: "cannot write the upload", Err: err})
	}
	return n, nil
}

// HashPrefix returns a SHA-256 state over the first n bytes written: what
// a resumed upload had before this session.
func (u *Upload) HashPrefix(h io.Writer, n int64) error {
	if _, err := io.Copy(h, io.NewSectionReader(u.f, 0, n)); err != nil {
		return &larder.Error{Code: larder.EINTERNAL, Message: "cannot read the upload", Err: err}
	}
	return nil
}

// Sync makes the written bytes durable, and returns the part file's
// modification time: the file's, once it is in place.
func (u *Upload) Sync() (fs.FileInfo, error) {
	if err := u.f.Sync(); err != nil {
		return nil, noSpace(&larder.Error{Code: larder.EINTERNAL, Message: "cannot write the upload", Err: err})
	}
	fi, err := u.f.Stat()
	if err != nil {
		return nil, &larder.Error{Code: larder.EINTERNAL, Message: "cannot write the upload", Err: err}
	}
	return fi, nil
}

// SetModTime sets the part file's modification time to t (its access
// time stays): the file's, once placed, as the client had it.
func (u *Upload) SetModTime(t time.Time) error {
	if err := u.sp.root.Chtimes(u.name, time.Time{}, t); err != nil {
		return &larder.Error{Code: larder.EINTERNAL, Message: "cannot set the upload's modification time", Err: err}
	}
	return nil
}

// Place moves the synced upload to its target in one rename, replacing
// any file there, and syncs the target's folder. Without overwrite an
// existing target is a conflict.
func (u *Upload) Place(overwrite bool) error {
	dst := tree(u.Target)
	if fi, err := u.sp.root.Lstat(dst); err == nil && (!overwrite || fi.IsDir()) {
		if fi.IsDir() {
			return larder.Errorf(larder.ECONFLICT, "%s is a folder", quote(u.Target))
		}
		return larder.Errorf(larder.ECONFLICT, "%s exists", quote(u.Target))
	}
	if err := u.sp.root.Rename(u.name, dst); err != nil {
		// The target never existed: what is gone is its folder, moved or
		// removed while the upload was sent.
		parent := path.Dir(u.Target)
		if _, perr := u.sp.root.Lstat(tree(parent)); parent != "." && errors.Is(err, fs.ErrNotExist) && errors.Is(perr, fs.ErrNotExist) {
			return &larder.Error{Code: larder.ENOTFOUND, Err: err, Message: "the folder " + quote(parent) +
				" does not exist any more (moved or removed during the upload); the upload is kept: make the folder and put again to resume"}
		}
		return u.sp.pathError(u.Target, err)
	}
	u.sp.root.Remove(pathName(u.name))
	return syncParent(u.sp.root, dst)
}

// Close lets go of the upload; a part file not placed stays for a resume.
func (u *Upload) Close() error {
	u.sp.spaces.active.remove(u.sp.dir + "/" + u.name)
	return u.f.Close()
}

// Discard removes the part file and lets go of the upload.
func (u *Upload) Discard() error {
	u.sp.root.Remove(u.name)
	u.sp.root.Remove(pathName(u.name))
	return u.Close()
}

// Stat returns what is at name in the served folder, "" being the folder
// itself: a regular file or a folder.
func (s *Store) Stat(name string) (fs.FileInfo, error) {
	if name == "" {
		name = "."
	} else if err := checkPath(name); err != nil {
		return nil, err
	}
	fi, err := s.root.Stat(name)
	if err != nil {
		return nil, s.openError(name, err)
	}
	if !fi.Mode().IsRegular() && !fi.IsDir() {
		return nil, larder.Errorf(larder.ENOTFOUND, "%s does not exist", quote(name))
	}
	return fi, nil
}

// OpenList opens folder name of the served folder ("" for the folder
// itself) for listing.
func (s *Store) OpenList(name string) (*Lister, error) {
	dir := name
	if dir == "" {
		dir = "."
	} else if err := checkPath(dir); err != nil {
		return nil, err
	}
	return openLister(s.root, dir, name, s.openError)
}

// RemoveStaleUploads removes the part files of interrupted uploads last
// written before before, in every space, except those a session is
// writing now. It returns how many it removed.
func (s *Spaces) RemoveStaleUploads(before time.Time) (int, error) {
	dirs, err := fs.ReadDir(s.root.FS(), ".")
	if err != nil {
		return 0, err
	}
	removed := 0
	for _, d := range dirs {
		if !d.IsDir() || !strings.HasPrefix(d.Name(), spacePrefix) {
			continue
		}
		up := d.Name() + "/uploads"
		parts, err := fs.ReadDir(s.root.FS(), up)
		if err != nil {
			continue
		}
		for _, p := range parts {
			name := up + "/" + p.Name()
			if fi, err := p.Info(); err != nil || !fi.ModTime().Before(before) {
				continue
			}
			switch {
			case strings.HasSuffix(name, pathSuffix):
				// The target of a part file that is gone.
				if _, err := s.root.Lstat(strings.TrimSuffix(name, pathSuffix) + partSuffix); errors.Is(err, fs.ErrNotExist) {
					s.root.Remove(name)
				}
			case strings.HasSuffix(name, partSuffix) && removePart(s.root, name):
				removed++
			}
		}
	}
	return removed, nil
}

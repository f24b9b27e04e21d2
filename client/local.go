package client

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/larderfs/larder/internal/flock"
)

// PartSuffix ends the name of the part file in which a resumable download
// into LOCAL is built: LOCAL.larder-part, beside LOCAL. It stays after a
// failed or interrupted download, for the next one to go on from, and is
// renamed over LOCAL once the download is complete and verified.
const PartSuffix = ".larder-part"

// ErrLocalDiffers matches every *LocalDiffersError with errors.Is.
var ErrLocalDiffers = errors.New("client: the local file is not a copy of the remote one")

// LocalDiffersError refuses to replace an existing local file that is
// not an earlier, partial copy of the file downloaded: its bytes are not
// all the first bytes of the download. The file is left as it was.
type LocalDiffersError struct {
	Path   string // the local file
	Reason string // e.g. "its block 3 differs"
}

func (e *LocalDiffersError) Error() string {
	return fmt.Sprintf("client: %s exists and is not an earlier, partial copy of the file downloaded (%s); it was left as it was", e.Path, e.Reason)
}

func (e *LocalDiffersError) Is(target error) bool { return target == ErrLocalDiffers }

// LocalFile is where a download into a local regular file goes: a part
// file beside the destination, which replaces it, whole, only once the
// download is complete and verified (Commit), so that a failed,
// interrupted or refused download never changes the destination. Anything
// that is not a regular file (a device, a FIFO) cannot be replaced that
// way, and is to be written into instead: OpenLocal refuses it.
type LocalFile struct {
	// Path is the file that Commit replaces: the destination, with its
	// symbolic links resolved, so that a link keeps pointing at it.
	Path string
	// Part is the part file, open for reading and writing.
	Part *os.File
	// Existing describes the file at Path as OpenLocal found it, or is nil
	// if there was none.
	Existing fs.FileInfo

	resumable bool
	created   bool // the part file is this download's: made by OpenLocal
	done      bool
	// fs is where Path and the part file are: the file system, or a
	// folder (an *os.Root) out of which nothing is followed.
	fs    localFS
	inDir bool   // fs is a folder: a link at Path is refused, not followed
	dir   string // the folder's name, for messages
	part  string // the part file's name in fs
}

// localFS is what a download does to local files: the os package's
// functions, or an *os.Root's, which stay inside its folder however
// its subfolders are changed meanwhile.
type localFS interface {
	Lstat(name string) (fs.FileInfo, error)
	Stat(name string) (fs.FileInfo, error)
	Open(name string) (*os.File, error)
	OpenFile(name string, flag int, perm fs.FileMode) (*os.File, error)
	Rename(oldname, newname string) error
	Remove(name string) error
}

// osFS is the file system, through the os package.
type osFS struct{}

func (osFS) Lstat(name string) (fs.FileInfo, error) { return os.Lstat(name) }
func (osFS) Stat(name string) (fs.FileInfo, error)  { return os.Stat(name) }
func (osFS) Open(name string) (*os.File, error)     { return os.Open(name) }
func (osFS) OpenFile(name string, flag int, perm fs.FileMode) (*os.File, error) {
	return os.OpenFile(name, flag, perm)
}
func (osFS) Rename(oldname, newname string) error { return os.Rename(oldname, newname) }
func (osFS) Remove(name string) error             { return os.Remove(name) }

// OpenLocal opens the part file of a download into dst. A resumable part
// file is dst's name with PartSuffix, kept after a failure and locked
// against a second download into dst meanwhile; otherwise it has a random
// name and is removed by Abort. dst may not be a folder, nor anything else
// that is not a regular file (errors.Is(err, ErrNotRegular)).
func OpenLocal(dst string, resumable bool) (*LocalFile, error) {
	return openLocal(osFS{}, "", dst, resumable)
}

// OpenLocalIn is OpenLocal of dst inside the folder root: nothing outside
// it is read or written, even if a subfolder is replaced meanwhile by a
// symbolic link, and dst may not be a symbolic link (ErrNotRegular).
func OpenLocalIn(root *os.Root, dst string, resumable bool) (*LocalFile, error) {
	return openLocal(root, root.Name(), dst, resumable)
}

// openLocal is OpenLocal in fsys, the folder dir unless dir is "".
func openLocal(fsys localFS, dir string, dst string, resumable bool) (*LocalFile, error) {
	inDir := dir != ""
	path := dst
	if fi, err := fsys.Lstat(dst); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		if inDir {
			return nil, fmt.Errorf("client: %s is a symbolic link, which is neither followed nor replaced here: %w", filepath.Join(dir, dst), ErrNotRegular)
		}
		if path, err = filepath.EvalSymlinks(dst); err != nil {
			return nil, fmt.Errorf("client: %s is a symbolic link that leads nowhere: %w", dst, err)
		}
	}
	l := &LocalFile{Path: path, resumable: resumable, fs: fsys, inDir: inDir, dir: dir}
	switch fi, err := l.statDest(); {
	case err == nil && fi.IsDir():
		return nil, fmt.Errorf("client: %s is a folder; name a file", l.Shown())
	case err == nil && !fi.Mode().IsRegular():
		return nil, fmt.Errorf("client: %s: %w", l.Shown(), ErrNotRegular)
	case err == nil:
		l.Existing = fi
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	// Leftovers of a course get of this target that was killed.
	if dir, base := filepath.Split(path); base != "" {
		removeStaleTemps(fsys, cmp.Or(dir, "."), base)
	}
	var err error
	if resumable {
		err = l.openPart()
	} else {
		err = l.openTemp()
	}
	if err != nil {
		return nil, err
	}
	return l, nil
}

// ErrDownloadRunning is a destination that another download, of this
// process or another, is writing.
var ErrDownloadRunning = errors.New("another download is running")

// ErrNotRegular is a destination that is not a regular file, and cannot
// be replaced: a device, a FIFO, a socket. Write into it instead.
var ErrNotRegular = errors.New("not a regular file: it is written into, never replaced")

// ErrForeignPart matches every *PartError with errors.Is.
var ErrForeignPart = errors.New("client: the part file is not larder's own")

// PartError refuses a part file (LOCAL.larder-part) that larder cannot
// tell for its own: one that is not a regular file of one name (it is
// never followed, written nor removed), or one whose bytes are not the
// first bytes of the file downloaded (it is left as it was, unless the
// caller asked to start over).
type PartError struct {
	Path       string // the part file
	Reason     string // e.g. "is a symbolic link", "its block 3 is not the server's"
	NotRegular bool   // not a regular file of one name: nothing undoes that
}

func (e *PartError) Error() string {
	if e.NotRegular {
		return fmt.Sprintf("client: %s, where the download would go first, %s: larder neither follows, writes nor removes it", e.Path, e.Reason)
	}
	return fmt.Sprintf("client: %s is not part of an earlier download of this file (%s); it was left as it was", e.Path, e.Reason)
}

func (e *PartError) Is(target error) bool { return target == ErrForeignPart }

// KindOf names the kind of a file that is not a regular file: "a FIFO",
// "a device", and so on, as messages about it say.
func KindOf(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a folder"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	}
	return "a special file"
}

// partKind refuses a part file that is not a regular file of one name.
func partKind(name string, fi fs.FileInfo) error {
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return &PartError{Path: name, Reason: "is a symbolic link", NotRegular: true}
	case !fi.Mode().IsRegular():
		return &PartError{Path: name, Reason: "is " + KindOf(fi.Mode()) + ", not a regular file", NotRegular: true}
	case links(fi) > 1:
		return &PartError{Path: name, Reason: fmt.Sprintf("has other names (%d hard links), which a download would change", links(fi)), NotRegular: true}
	}
	return nil
}

// openPart opens (creating it) and locks the resumable part file. An
// existing one must be a regular file of one name, opened without
// following a link; whether its bytes are the download's is Download's
// to check.
func (l *LocalFile) openPart() error {
	name := l.Path + PartSuffix
	fi, err := l.fs.Lstat(name)
	if err == nil {
		if err := partKind(l.shown(name), fi); err != nil {
			return err
		}
	}
	// A new file is private: it may be a copy of a private file, and its
	// mode becomes the destination's only if that existed.
	f, err := l.fs.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL|openNoFollow, 0o600)
	if err == nil {
		l.created = true
	} else if errors.Is(err, fs.ErrExist) {
		f, err = l.fs.OpenFile(name, os.O_RDWR|openNoFollow, 0)
	}
	if errors.Is(err, syscall.ELOOP) {
		return &PartError{Path: l.shown(name), Reason: "is a symbolic link", NotRegular: true}
	}
	if err != nil {
		return fmt.Errorf("client: cannot write beside %s: %w", l.Shown(), err)
	}
	// What was opened, not what was looked at: the name may have changed.
	ofi, err := f.Stat()
	if err == nil {
		if err = partKind(l.shown(name), ofi); err == nil && fi != nil && !l.created && !os.SameFile(fi, ofi) {
			err = &PartError{Path: l.shown(name), Reason: "changed while it was opened", NotRegular: true}
		}
	}
	if err != nil {
		f.Close()
		return err
	}
	if ok, err := flock.TryLock(f); !ok {
		f.Close()
		if err == nil {
			return fmt.Errorf("client: %w into %s (it holds %s)", ErrDownloadRunning, l.Shown(), l.shown(name))
		}
		return fmt.Errorf("client: %w", err)
	}
	l.Part, l.part = f, name
	return nil
}

// tempRandom is how many random characters a temporary file's name
// holds, from rand.Text's alphabet (A to Z, 2 to 7).
const tempRandom = 10

// tempName returns the name of a temporary file beside the destination
// base, of random part r: .BASE.larder-R.tmp.
func tempName(dir, base, r string) string {
	return filepath.Join(dir, "."+base+".larder-"+r+".tmp")
}

// openTemp creates a temporary file of a random name beside the
// destination, with the usual mode 0666 less the umask, which only the
// kernel knows (os.CreateTemp would make it 0600), and locks it for as
// long as the download runs, so that removeStaleTemps can tell it from
// the leftover of a get that was killed.
func (l *LocalFile) openTemp() error {
	dir, base := filepath.Split(l.Path)
	if dir == "" {
		dir = "."
	}
	for range 10 {
		name := tempName(dir, base, rand.Text()[:tempRandom])
		f, err := l.fs.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o666)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("client: cannot write beside %s: %w", l.Shown(), err)
		}
		// Another get's removeStaleTemps may have found it before the
		// lock: then it is locked by that get, or gone, and another name
		// is tried.
		ok, _ := flock.TryLock(f)
		fi, ferr := f.Stat()
		now, nerr := l.fs.Lstat(name)
		if !ok || ferr != nil || nerr != nil || !os.SameFile(fi, now) {
			f.Close()
			continue
		}
		l.Part, l.part = f, name
		return nil
	}
	return fmt.Errorf("client: cannot create a temporary file beside %s", l.Shown())
}

// removeStaleTemps removes the temporary files of earlier course gets
// into dir/base that were killed before they could (kill -9, a crash):
// only names of larder's exact pattern (.BASE.larder-XXXXXXXXXX.tmp, ten
// characters of A to Z and 2 to 7), only regular files of one name, and
// only those no running get holds locked. Best effort: what cannot be
// checked is left.
func removeStaleTemps(fsys localFS, dir, base string) {
	d, err := fsys.Open(dir)
	if err != nil {
		return
	}
	entries, err := d.ReadDir(-1)
	d.Close()
	if err != nil {
		return
	}
	prefix, suffix := "."+base+".larder-", ".tmp"
	for _, e := range entries {
		n := e.Name()
		if len(n) != len(prefix)+tempRandom+len(suffix) || !strings.HasPrefix(n, prefix) || !strings.HasSuffix(n, suffix) ||
			!isRandText(n[len(prefix):len(prefix)+tempRandom]) || !e.Type().IsRegular() {
			continue
		}
		removeIfStale(fsys, filepath.Join(dir, n))
	}
}

// removeIfStale removes the temporary file name if it is a regular file
// of one name that no one holds locked.
func removeIfStale(fsys localFS, name string) {
	fi, err := fsys.Lstat(name)
	if err != nil || !fi.Mode().IsRegular() || links(fi) > 1 {
		return
	}
	f, err := fsys.OpenFile(name, os.O_RDWR|openNoFollow, 0)
	if err != nil {
		return
	}
	defer f.Close()
	ofi, err := f.Stat()
	if err != nil || !os.SameFile(fi, ofi) {
		return
	}
	if ok, _ := flock.TryLock(f); ok {
		fsys.Remove(name)
	}
}

// isRandText reports whether s is made of rand.Text's characters.
func isRandText(s string) bool {
	for _, c := range []byte(s) {
		if !('A' <= c && c <= 'Z' || '2' <= c && c <= '7') {
			return false
		}
	}
	return true
}

// Commit replaces the destination with the part file, which holds the
// complete and verified download: it syncs the part, renames it over the
// destination and syncs the folder. An existing destination is replaced
// only if overwrite is set or its bytes are the first bytes of the part,
// an earlier, partial copy; its first verified bytes are known to be (the
// caller checked them by their hashes) and are not compared again.
// Otherwise Commit returns a *LocalDiffersError and the destination stays
// as it was. The destination's mode is kept.
func (l *LocalFile) Commit(overwrite bool, verified int64) error {
	if err := l.Part.Sync(); err != nil {
		return fmt.Errorf("client: writing %s: %w", l.Part.Name(), err)
	}
	if l.Existing != nil {
		now, err := l.statDest()
		switch {
		case errors.Is(err, fs.ErrNotExist):
			// Removed meanwhile: nothing to lose.
		case err != nil:
			return err
		case now.Mode()&fs.ModeSymlink != 0 || !now.Mode().IsRegular():
			return &LocalDiffersError{Path: l.Shown(), Reason: "it was replaced during the download by " + KindOf(now.Mode())}
		case !overwrite && (!os.SameFile(now, l.Existing) || now.Size() != l.Existing.Size() || !now.ModTime().Equal(l.Existing.ModTime())):
			return &LocalDiffersError{Path: l.Shown(), Reason: "it changed during the download"}
		case !overwrite:
			if err := l.comparePrefix(verified); err != nil {
				return err
			}
			fallthrough
		default:
			if err := l.Part.Chmod(now.Mode().Perm()); err != nil {
				return err
			}
		}
	}
	if err := l.Part.Close(); err != nil {
		return fmt.Errorf("client: writing %s: %w", l.Part.Name(), err)
	}
	if err := l.fs.Rename(l.part, l.Path); err != nil {
		return err
	}
	l.done = true
	// The rename survives a crash once the folder is synced. Best effort:
	// some systems cannot sync a folder, and the data is safe already.
	if d, err := l.fs.Open(filepath.Dir(l.Path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// comparePrefix checks that the destination's bytes from verified on are
// the part's.
func (l *LocalFile) comparePrefix(verified int64) error {
	size := l.Existing.Size()
	fi, err := l.Part.Stat()
	if err != nil {
		return err
	}
	if size > fi.Size() {
		return &LocalDiffersError{Path: l.Shown(), Reason: fmt.Sprintf("it is %d bytes long, the download %d", size, fi.Size())}
	}
	f, err := l.fs.Open(l.Path)
	if err != nil {
		return err
	}
	defer f.Close()
	a, b := make([]byte, 64<<10), make([]byte, 64<<10)
	for off := min(verified, size); off < size; {
		n := int(min(int64(len(a)), size-off))
		if _, err := f.ReadAt(a[:n], off); err != nil {
			return fmt.Errorf("client: reading %s: %w", l.Shown(), err)
		}
		if _, err := l.Part.ReadAt(b[:n], off); err != nil {
			return fmt.Errorf("client: reading %s: %w", l.Part.Name(), err)
		}
		if !bytes.Equal(a[:n], b[:n]) {
			return &LocalDiffersError{Path: l.Shown(), Reason: fmt.Sprintf("its bytes from %d on differ", off)}
		}
		off += int64(n)
	}
	return nil
}

// Abort lets go of the part file unless Commit placed it: a resumable
// one stays for the next download to go on from, unless it is empty and
// this download made it; a temporary one is removed. The destination is
// not touched.
func (l *LocalFile) Abort() {
	if l.done {
		return
	}
	l.done = true
	fi, err := l.Part.Stat()
	l.Part.Close()
	if !l.resumable || l.created && err == nil && fi.Size() == 0 {
		l.fs.Remove(l.part)
	}
}

// partSize returns the part file's size.
func (l *LocalFile) partSize() (int64, error) {
	fi, err := l.Part.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// copyPrefix makes the part file the first n bytes of the destination.
func (l *LocalFile) copyPrefix(n int64) error {
	src, err := l.fs.Open(l.Path)
	if err != nil {
		return err
	}
	defer src.Close()
	if err := l.Part.Truncate(0); err != nil {
		return err
	}
	if _, err := l.Part.Seek(0, io.SeekStart); err != nil {
		return err
	}
	// io.Copy between files uses copy_file_range on Linux, which may share
	// the blocks rather than copy them.
	if _, err := io.CopyN(l.Part, src, n); err != nil {
		return fmt.Errorf("client: copying the first %d bytes of %s to %s: %w", n, l.Shown(), l.Part.Name(), err)
	}
	return nil
}

// prefixChecker passes writes of the part file, from offset off, to w, and
// compares on the way the bytes below end with the destination's: the
// first that differ fail the write with a *LocalDiffersError, so that a
// download that could not replace the destination stops early.
type prefixChecker struct {
	w        io.Writer
	local    *os.File
	path     string
	off, end int64
	buf      []byte
}

func (c *prefixChecker) Write(p []byte) (int, error) {
	if c.off < c.end {
		n := int(min(int64(len(p)), c.end-c.off))
		if cap(c.buf) < n {
			c.buf = make([]byte, n)
		}
		b := c.buf[:n]
		if _, err := c.local.ReadAt(b, c.off); err != nil {
			return 0, fmt.Errorf("client: reading %s: %w", c.path, err)
		}
		if !bytes.Equal(b, p[:n]) {
			return 0, &LocalDiffersError{Path: c.path, Reason: fmt.Sprintf("its bytes from %d on are not the server's", c.off)}
		}
	}
	n, err := c.w.Write(p)
	c.off += int64(n)
	return n, err
}

// checkedWriter returns w, which writes the part from offset off, as a
// prefixChecker against the destination if it exists and its bytes from
// off on are not known to be the server's; close releases it.
func (l *LocalFile) checkedWriter(w io.Writer, off int64) (io.Writer, func(), error) {
	if l.Existing == nil || off >= l.Existing.Size() {
		return w, func() {}, nil
	}
	f, err := l.fs.Open(l.Path)
	if err != nil {
		return nil, nil, err
	}
	c := &prefixChecker{w: w, local: f, path: l.Shown(), off: off, end: l.Existing.Size()}
	return c, func() { f.Close() }, nil
}

// tailChecker passes writes of the part file to w, and compares on the
// way the first bytes with want, the part's last bytes, short of a block,
// which the server's block hashes could not check: the first that differ
// fail the write, before anything is written over them.
type tailChecker struct {
	w    io.Writer
	want []byte // the bytes not compared yet
	path string
	at   int64 // the offset of want in the part file
}

func (c *tailChecker) Write(p []byte) (int, error) {
	if len(c.want) > 0 {
		n := min(len(p), len(c.want))
		if !bytes.Equal(p[:n], c.want[:n]) {
			reason := fmt.Sprintf("its bytes from %d on are not the server's", c.at)
			if c.at == 0 {
				reason = "its bytes are not the first bytes of the server's file"
			}
			return 0, &PartError{Path: c.path, Reason: reason}
		}
		c.want = c.want[n:]
	}
	return c.w.Write(p)
}

// statDest describes the destination: in a folder (OpenLocalIn) the name
// itself, a link included, which is never followed there.
func (l *LocalFile) statDest() (fs.FileInfo, error) {
	if l.inDir {
		return l.fs.Lstat(l.Path)
	}
	return l.fs.Stat(l.Path)
}

// Open opens the destination for reading, where OpenLocal or OpenLocalIn
// found it.
func (l *LocalFile) Open() (*os.File, error) { return l.fs.Open(l.Path) }

// Shown is the destination's name as the user knows it: Path, or Path in
// the folder of OpenLocalIn.
func (l *LocalFile) Shown() string { return l.shown(l.Path) }

func (l *LocalFile) shown(name string) string {
	if l.inDir {
		return filepath.Join(l.dir, name)
	}
	return name
}

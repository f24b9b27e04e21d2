package disk

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/flock"
)

// A part file is named after its target's hash and its size, and ends in
// partSuffix; beside it, a file ending in pathSuffix holds the target's
// path, so that its owner can be shown what it is.
const (
	partSuffix = ".part"
	pathSuffix = ".path"
)

// pathName returns the name of the file that holds the target of the part
// file name.
func pathName(name string) string { return strings.TrimSuffix(name, partSuffix) + pathSuffix }

// activeParts is the set of part files this process writes now, by their
// names in the spaces' folder.
type activeParts struct {
	mu    sync.Mutex
	names map[string]struct{}
}

// add adds name, and reports whether it was absent.
func (a *activeParts) add(name string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.names[name]; ok {
		return false
	}
	if a.names == nil {
		a.names = make(map[string]struct{})
	}
	a.names[name] = struct{}{}
	return true
}

func (a *activeParts) remove(name string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.names, name)
}

func (a *activeParts) has(name string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.names[name]
	return ok
}

// startPart marks u's part file as written now, and records its target
// beside it.
func (sp *Space) startPart(u *Upload) error {
	sp.spaces.active.add(sp.dir + "/" + u.name)
	err := sp.root.WriteFile(pathName(u.name), []byte(u.Target), 0o600)
	if err != nil {
		sp.spaces.active.remove(sp.dir + "/" + u.name)
		return noSpace(&larder.Error{Code: larder.EINTERNAL, Message: "cannot start the upload", Err: err})
	}
	return nil
}

// openPart opens and locks the part file name of an upload to target,
// creating it if need be. A part file removed between its opening and its
// locking (cancelled, or swept) is opened again, so that an upload never
// writes a file that has no name any more.
func (sp *Space) openPart(name, target string) (*os.File, error) {
	for range 3 {
		f, err := sp.root.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, noSpace(&larder.Error{Code: larder.EINTERNAL, Message: "cannot start the upload", Err: err})
		}
		if ok, err := flock.TryLock(f); !ok {
			f.Close()
			if err != nil {
				return nil, &larder.Error{Code: larder.EINTERNAL, Message: "cannot start the upload", Err: err}
			}
			return nil, larder.Errorf(larder.ECONFLICT, "an upload of %s is in progress", quote(target))
		}
		fi, err := f.Stat()
		named, nerr := sp.root.Lstat(name)
		if err == nil && nerr == nil && os.SameFile(fi, named) {
			return f, nil
		}
		f.Close()
	}
	return nil, larder.Errorf(larder.ECONFLICT, "the upload of %s was cancelled meanwhile; retry", quote(target))
}

// noSpace gives err the code ENOSPACE if the file system ran out of space
// or of the user's disk quota.
func noSpace(err *larder.Error) error {
	if errors.Is(err.Err, syscall.ENOSPC) || errors.Is(err.Err, syscall.EDQUOT) {
		err.Code, err.Message = larder.ENOSPACE, "the server is out of disk space; retry later"
	}
	return err
}

// Part is an unfinished upload: a part file in the space's uploads/.
type Part struct {
	ID       string // the part file's name
	Target   string // the path it goes to; "" if not known
	Size     int64  // the file's announced size
	Received int64  // the bytes written and verified so far
	Modified time.Time
	Active   bool // being written now
}

// Parts returns the space's unfinished uploads, by their IDs.
func (sp *Space) Parts() ([]Part, error) { return sp.parts(true) }

// parts returns the space's unfinished uploads, with their targets if
// targets is set (which takes a read of a file for each).
func (sp *Space) parts(targets bool) ([]Part, error) {
	entries, err := fs.ReadDir(sp.root.FS(), "uploads")
	if err != nil {
		return nil, &larder.Error{Code: larder.EINTERNAL, Message: "cannot list your unfinished uploads", Err: err}
	}
	var parts []Part
	for _, e := range entries {
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), partSuffix) {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		name := "uploads/" + e.Name()
		p := Part{ID: e.Name(), Received: fi.Size(), Modified: fi.ModTime(), Active: sp.spaces.active.has(sp.dir + "/" + name)}
		p.Size = declaredSize(e.Name(), fi.Size())
		if targets {
			p.Target, _ = sp.readTarget(pathName(name))
		}
		parts = append(parts, p)
	}
	slices.SortFunc(parts, func(a, b Part) int { return strings.Compare(a.ID, b.ID) })
	return parts, nil
}

// declaredSize returns the size in a part file's name, or have if the name
// has none.
func declaredSize(id string, have int64) int64 {
	s := strings.TrimSuffix(id, partSuffix)
	if i := strings.LastIndexByte(s, '-'); i >= 0 {
		if n, err := strconv.ParseInt(s[i+1:], 10, 64); err == nil && n >= have {
			return n
		}
	}
	return have
}

// readTarget reads the target recorded in the file name.
func (sp *Space) readTarget(name string) (string, error) {
	f, err := sp.root.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxPathLen+1))
	if err != nil || len(b) > MaxPathLen {
		return "", errors.New("disk: a bad target file")
	}
	return string(b), nil
}

// PartUsage returns what the space's unfinished uploads hold against its
// quota, but for the one whose ID is except: each counts as one file of
// its announced size, which it will take once complete, from its start
// until it commits, is cancelled or expires.
func (sp *Space) PartUsage(except string) (larder.Usage, error) {
	parts, err := sp.parts(false)
	var u larder.Usage
	for _, p := range parts {
		if p.ID != except {
			u.Bytes += p.Size
			u.Files++
		}
	}
	return u, err
}

// CancelUploads removes the unfinished uploads of target (a path cleaned
// by CleanPath), or every one if target is "", but those being written
// now. It returns how many it removed and the bytes they held. An upload
// of target that is being written is a conflict, and none at all is not
// found.
func (sp *Space) CancelUploads(target string) (n int, bytes int64, err error) {
	parts, err := sp.Parts()
	if err != nil {
		return 0, 0, err
	}
	busy := 0
	for _, p := range parts {
		if target != "" && p.Target != target {
			continue
		}
		if !p.Active && removePart(sp.root, "uploads/"+p.ID) {
			n++
			bytes += p.Received
		} else {
			busy++
		}
	}
	switch {
	case target == "" || n > 0:
		return n, bytes, nil
	case busy > 0:
		return 0, 0, larder.Errorf(larder.ECONFLICT, "the upload of %s is being written now", quote(target))
	}
	return 0, 0, larder.Errorf(larder.ENOTFOUND, "no unfinished upload of %s", quote(target))
}

// removePart removes the part file name of root and its target, unless
// an upload holds it, and reports whether it did.
func removePart(root *os.Root, name string) bool {
	f, err := root.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	if ok, _ := flock.TryLock(f); !ok {
		return false
	}
	root.Remove(pathName(name))
	if root.Remove(name) != nil {
		return false
	}
	syncParent(root, name)
	return true
}

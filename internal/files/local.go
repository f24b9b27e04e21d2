package files

import (
	"hash"
	"io"
	"io/fs"
	"strconv"
	"strings"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/disk"
)

// Local is the Backend on the local disk: the shared area is a served
// folder (disk.Store), the private spaces are below disk.Spaces.
type Local struct {
	shared *disk.Store  // nil: no shared area
	spaces *disk.Spaces // nil: no private spaces
}

// NewLocal returns the Backend of shared and spaces; either may be nil.
func NewLocal(shared *disk.Store, spaces *disk.Spaces) *Local {
	return &Local{shared: shared, spaces: spaces}
}

var _ Backend = (*Local)(nil)

// ID returns the spaces folder's ID (see disk.Spaces.ID).
func (l *Local) ID() (string, error) {
	if l.spaces == nil {
		return "", larder.Errorf(larder.EINTERNAL, "files: no private spaces")
	}
	return l.spaces.ID()
}

// RemoveStaleUploads removes the part files last written before before.
func (l *Local) RemoveStaleUploads(before time.Time) (int, error) {
	if l.spaces == nil {
		return 0, nil
	}
	return l.spaces.RemoveStaleUploads(before)
}

// KeepsModTimes says that a file's modification time is the one its
// upload set (see timeSetter).
func (l *Local) KeepsModTimes() {}

// Area opens the shared area for "", and a private space for "#id".
func (l *Local) Area(space string) (Area, error) {
	if space == "" {
		if l.shared == nil {
			return nil, larder.Errorf(larder.ENOTFOUND, "this server has no shared area")
		}
		return sharedArea{l.shared}, nil
	}
	id, err := strconv.ParseInt(strings.TrimPrefix(space, "#"), 10, 64)
	if err != nil || !strings.HasPrefix(space, "#") || l.spaces == nil {
		return nil, &larder.Error{Code: larder.EINTERNAL, Message: "cannot open your space", Err: err}
	}
	sp, err := l.spaces.Space(id)
	if err != nil {
		return nil, err
	}
	return spaceArea{sp}, nil
}

// infoOf makes the Info of fi.
func infoOf(fi fs.FileInfo) Info {
	v, changed := disk.VersionOf(fi)
	in := Info{Name: fi.Name(), Dir: fi.IsDir(), ModTime: fi.ModTime(), Version: v, Changed: changed}
	if !in.Dir {
		in.Size = fi.Size()
	}
	return in
}

// spaceArea is a private space.
type spaceArea struct{ sp *disk.Space }

func (a spaceArea) Stat(p string) (Info, error) {
	fi, err := a.sp.Stat(p)
	if err != nil {
		return Info{}, err
	}
	return infoOf(fi), nil
}

func (a spaceArea) Open(p string) (Object, error) {
	f, err := a.sp.Open(p)
	if err != nil {
		return nil, err
	}
	return localObject{f}, nil
}

func (a spaceArea) List(p string) (Lister, error) {
	l, err := a.sp.OpenList(p)
	if err != nil {
		return nil, err
	}
	return localLister{l}, nil
}

func (a spaceArea) Mkdir(p string) error  { return a.sp.Mkdir(p) }
func (a spaceArea) Remove(p string) error { return a.sp.Remove(p) }
func (a spaceArea) RemoveTree(p string, max int) (Removed, bool, error) {
	r, gone, err := a.sp.RemoveTree(p, max)
	return Removed(r), gone, err
}
func (spaceArea) renameKeepsVersions() {}

func (a spaceArea) Rename(from, to string, overwrite bool) error {
	return a.sp.Rename(from, to, overwrite)
}
func (a spaceArea) Close() error { return a.sp.Close() }

// FinishRename has nothing to finish: a rename on a disk is one step.
func (spaceArea) FinishRename(string, string) error { return nil }

func (a spaceArea) StartUpload(p string, size int64, resume bool) (Part, error) {
	u, err := a.sp.StartUpload(p, size, resume)
	if err != nil {
		return nil, err
	}
	return &localPart{u: u, sp: a.sp}, nil
}

func (a spaceArea) Parts() ([]PartInfo, error) {
	parts, err := a.sp.Parts()
	out := make([]PartInfo, len(parts))
	for i, p := range parts {
		out[i] = PartInfo{ID: p.ID, Target: p.Target, Size: p.Size, Received: p.Received, Modified: p.Modified, Active: p.Active}
	}
	return out, err
}

func (a spaceArea) PartUsage(except string) (larder.Usage, error) { return a.sp.PartUsage(except) }

func (a spaceArea) CancelUploads(target string) (int, int64, error) {
	return a.sp.CancelUploads(target)
}

// sharedArea is the served folder, read-only.
type sharedArea struct{ s *disk.Store }

var errReadOnly = larder.Errorf(larder.EFORBIDDEN, "the shared area is read-only")

func (a sharedArea) Stat(p string) (Info, error) {
	fi, err := a.s.Stat(p)
	if err != nil {
		return Info{}, err
	}
	return infoOf(fi), nil
}

func (a sharedArea) Open(p string) (Object, error) {
	f, err := a.s.Open(p)
	if err != nil {
		return nil, err
	}
	return localObject{f}, nil
}

func (a sharedArea) List(p string) (Lister, error) {
	l, err := a.s.OpenList(p)
	if err != nil {
		return nil, err
	}
	return localLister{l}, nil
}

func (sharedArea) Mkdir(string) error  { return errReadOnly }
func (sharedArea) Remove(string) error { return errReadOnly }
func (sharedArea) RemoveTree(string, int) (Removed, bool, error) {
	return Removed{}, false, errReadOnly
}
func (sharedArea) Rename(string, string, bool) error { return errReadOnly }
func (sharedArea) FinishRename(string, string) error { return nil }
func (sharedArea) StartUpload(string, int64, bool) (Part, error) {
	return nil, errReadOnly
}
func (sharedArea) Parts() ([]PartInfo, error)               { return nil, nil }
func (sharedArea) PartUsage(string) (larder.Usage, error)   { return larder.Usage{}, nil }
func (sharedArea) CancelUploads(string) (int, int64, error) { return 0, 0, errReadOnly }
func (sharedArea) Close() error                             { return nil }

// localObject is a file open on the disk.
type localObject struct{ f *disk.File }

func (o localObject) ReadAt(p []byte, off int64) (int, error) { return o.f.ReadAt(p, off) }
func (o localObject) Close() error                            { return o.f.Close() }

func (o localObject) Info() Info {
	return Info{Name: o.f.Name, Size: o.f.Size, ModTime: o.f.ModTime, Version: o.f.Version, Changed: o.f.Changed}
}

// WriteRangeTo copies through the descriptor itself, so that a socket
// takes it with sendfile(2) and the bytes never enter the process.
func (o localObject) WriteRangeTo(w io.Writer, off, n int64) (int64, error) {
	if _, err := o.f.Seek(off, io.SeekStart); err != nil {
		return 0, err
	}
	return io.Copy(w, &io.LimitedReader{R: o.f.File, N: n})
}

// localLister lists a folder on the disk.
type localLister struct{ l *disk.Lister }

func (l localLister) Close() error { return l.l.Close() }

func (l localLister) Next(n int) ([]Info, error) {
	fis, err := l.l.Next(n)
	out := make([]Info, len(fis))
	for i, fi := range fis {
		out[i] = infoOf(fi)
	}
	return out, err
}

// localPart is an upload's part file.
type localPart struct {
	u  *disk.Upload
	sp *disk.Space
}

func (p *localPart) Write(b []byte) (int, error)  { return p.u.Write(b) }
func (p *localPart) ID() string                   { return p.u.ID }
func (p *localPart) Offset() int64                { return p.u.Offset }
func (p *localPart) Discard() error               { return p.u.Discard() }
func (p *localPart) Close() error                 { return p.u.Close() }
func (p *localPart) HashPrefix(h hash.Hash) error { return p.u.HashPrefix(h, p.u.Offset) }

func (p *localPart) Sync() (Info, error) {
	fi, err := p.u.Sync()
	if err != nil {
		return Info{}, err
	}
	return infoOf(fi), nil
}

// SetModTime sets the part file's modification time, which its rename
// into place keeps.
func (p *localPart) SetModTime(t time.Time) error { return p.u.SetModTime(t) }

func (p *localPart) Place(overwrite bool) (Info, error) {
	if err := p.u.Place(overwrite); err != nil {
		return Info{}, err
	}
	fi, err := p.sp.Stat(p.u.Target)
	if err != nil {
		return Info{}, err
	}
	return infoOf(fi), nil
}

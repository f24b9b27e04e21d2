package files

import (
	"context"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/disk"
)

// File is a stored file open for reading, with the SHA-256 of its content
// as the service trusts it, and, if asked for, the hashes of its blocks.
type File struct {
	Object
	Name    string
	Size    int64
	ModTime time.Time
	SHA256  [32]byte
	// Blocks are the SHA-256 of each block of the size Hash was given,
	// for a file of at least MinBlockSumsSize bytes whose hashes are
	// remembered; nil otherwise. They must not be modified.
	Blocks [][32]byte

	info        Info
	area        Area
	space, path string // in the records
	record      bool   // a hash computed is recorded, not only remembered
}

// Stat returns what is at l.
func (sp *Space) Stat(l Loc) (Info, error) {
	a, _, err := sp.at(l)
	if err != nil {
		return Info{}, err
	}
	return a.Stat(l.Path)
}

// Known returns the SHA-256 of the file at l, whose Info is in, if it is
// known without reading the file: remembered, or recorded, for in's
// version.
func (sp *Space) Known(ctx context.Context, l Loc, in Info) ([32]byte, bool) {
	if in.Dir || in.Version == "" {
		return [32]byte{}, false
	}
	if d, ok := sp.s.digests.get(in.Version); ok {
		return d.sum, true
	}
	_, key, err := sp.at(l)
	if err != nil {
		return [32]byte{}, false
	}
	return sp.s.recorded(ctx, key, l.Path, in, false)
}

// ModTime returns the modification time of the file at l, whose Info is
// in: its backend's, or, on a backend that cannot set a file's time (a
// bucket), the one its record keeps from the upload, if the record is of
// in's content.
func (sp *Space) ModTime(ctx context.Context, l Loc, in Info) time.Time {
	_, key, err := sp.at(l)
	if err != nil {
		return in.ModTime
	}
	return sp.s.modTime(ctx, key, l.Path, in)
}

func (s *Service) modTime(ctx context.Context, space, path string, in Info) time.Time {
	if in.Dir || s.keepsTimes || s.records == nil || path == "" {
		return in.ModTime
	}
	rec, err := s.records.FileByPath(ctx, space, path)
	if err != nil || rec.Modified.IsZero() || !matches(rec, in, false) {
		return in.ModTime
	}
	return rec.Modified
}

// recorded returns the recorded SHA-256 of path in space if its record
// matches in (see matches).
func (s *Service) recorded(ctx context.Context, space, path string, in Info, strict bool) ([32]byte, bool) {
	if s.records == nil || path == "" {
		return [32]byte{}, false
	}
	rec, err := s.records.FileByPath(ctx, space, path)
	if err != nil || !matches(rec, in, strict) {
		return [32]byte{}, false
	}
	return rec.SHA256, true
}

// List opens the folder at l for listing.
func (sp *Space) List(l Loc) (Lister, error) {
	a, _, err := sp.at(l)
	if err != nil {
		return nil, err
	}
	return a.List(l.Path)
}

// Open opens the regular file at l with the SHA-256 of its content: the
// one known for its version, or one computed now and recorded.
func (sp *Space) Open(ctx context.Context, l Loc) (*File, error) {
	a, key, err := sp.at(l)
	if err != nil {
		return nil, err
	}
	return sp.s.open(ctx, a, key, l.Path, 0)
}

// OpenKnown opens the regular file at l without reading it: its SHA-256
// is set, and known true, only if it is known for the file's version.
func (sp *Space) OpenKnown(ctx context.Context, l Loc) (f *File, known bool, err error) {
	a, key, err := sp.at(l)
	if err != nil {
		return nil, false, err
	}
	o, err := a.Open(l.Path)
	if err != nil {
		return nil, false, err
	}
	f = newFile(o, a, key, l.Path)
	f.SHA256, known = sp.Known(ctx, l, f.info)
	f.ModTime = sp.s.modTime(ctx, key, l.Path, f.info)
	return f, known, nil
}

// OpenShared opens the regular file at p in the shared area, named as
// the course protocol names it, without reading it: Hash it before use.
// A hash computed for it is remembered in memory, not recorded: the
// course protocol serves many small files in turn, for which a database
// write would cost more than the hashing.
func (s *Service) OpenShared(p string) (*File, error) {
	if s.shared == nil {
		return nil, larder.Errorf(larder.ENOTFOUND, "this server has no shared area")
	}
	o, err := s.shared.Open(p)
	if err != nil {
		return nil, err
	}
	return newFile(o, s.shared, "", p), nil
}

// open opens p of area a, whose records are in space, and hashes it.
func (s *Service) open(ctx context.Context, a Area, space, p string, blockSize int) (*File, error) {
	o, err := a.Open(p)
	if err != nil {
		return nil, err
	}
	f := newFile(o, a, space, p)
	f.record = true
	if err := s.Hash(ctx, f, blockSize); err != nil {
		f.Close()
		return nil, err
	}
	f.ModTime = s.modTime(ctx, space, p, f.info)
	return f, nil
}

func newFile(o Object, a Area, space, p string) *File {
	in := o.Info()
	return &File{Object: o, Name: in.Name, Size: in.Size, ModTime: in.ModTime, info: in, area: a, space: space, path: p}
}

// Hash sets f's SHA-256 and, if blockSize is not 0, the hashes of its
// blocks of that size (see File.Blocks): those known for its version, or
// computed now, remembered and (but for OpenShared's) recorded.
func (s *Service) Hash(ctx context.Context, f *File, blockSize int) error {
	in, space, p := f.info, f.space, f.path
	d, err := s.digest(f.Object, in, blockSize, func() ([32]byte, bool) { return s.recorded(ctx, space, p, in, true) })
	if err != nil {
		return &larder.Error{Code: larder.EINTERNAL, Message: "cannot read " + p, Err: err}
	}
	if d.hashed {
		if err := s.step("hash:hashed"); err != nil {
			return err
		}
	}
	if d.hashed && f.record && s.records != nil && recordable(space, p) {
		s.recordHash(ctx, f, d)
	}
	f.SHA256, f.Blocks = d.sum, d.blocks
	return nil
}

// recordHash records the hash d of f, best effort: a record that cannot
// be written is computed again next time. One taken too soon after a
// change is marked so (see matches). It is written only if the file is still at its path, with the
// version it was hashed at: a delete, rename or upload of the path while
// it was hashed would otherwise be followed by a record of a file that is
// not there. Holding the space's lock, no such change can come between
// the check and the write.
func (s *Service) recordHash(ctx context.Context, f *File, d digestEntry) {
	in := f.info
	defer s.lock(f.space)()
	now, err := f.area.Stat(f.path)
	if err != nil || now.Dir || now.Version != in.Version || now.Size != in.Size || !now.ModTime.Equal(in.ModTime) {
		return
	}
	rec := &larder.File{Space: f.space, Path: f.path, Size: in.Size, Modified: in.ModTime, SHA256: d.sum, Version: recordedVersion(in, d.settled)}
	if err := s.records.PutFile(ctx, rec); err != nil {
		s.log.Warn("cannot record a file's hash", "path", f.path, "error", err)
	}
}

// recordable reports whether p names a file in the records: the course
// protocol names shared files more loosely than CleanPath allows ("a//b"),
// and such a name would be a second record of one file.
func recordable(space, p string) bool {
	clean, err := disk.CleanPath(p)
	return err == nil && clean == p && p != "" && larder.IsText(space)
}

// BlockSums returns the block sums recorded for the content of f in
// blocks of blockSize bytes, or nil.
func (s *Service) BlockSums(ctx context.Context, f *File, blockSize int) *larder.BlockSums {
	if s.records == nil {
		return nil
	}
	b, err := s.records.BlockSums(ctx, f.SHA256, f.Size, blockSize)
	if err != nil {
		if larder.ErrorCode(err) != larder.ENOTFOUND {
			s.log.Warn("cannot read block sums", "error", err)
		}
		return nil
	}
	return b
}

// PutBlockSums records b, best effort: sums not recorded are computed
// again. The caller vouches for them (see larder.FileStore).
func (s *Service) PutBlockSums(ctx context.Context, b *larder.BlockSums) {
	if s.records == nil {
		return
	}
	if err := s.records.PutBlockSums(ctx, b); err != nil {
		s.log.Warn("cannot record block sums", "error", err)
	}
}

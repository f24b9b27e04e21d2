package larder

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// File is what larder knows of a stored file without reading it: its size,
// modification time and SHA-256, recorded when an upload commits (or, for a
// file placed in the shared area by other means, when it is first read).
// Version names the content the SHA-256 was taken of, as the storage
// identifies it (internal/files): the record is trusted only while the
// stored file still has that version. An empty Version is never trusted;
// the record still counts in its space's usage.
type File struct {
	Space    string // SpaceOf the owner's account id, or "" for the shared area
	Path     string // slash-separated, relative to the space, no leading slash
	Size     int64
	Modified time.Time // the file's modification time on disk, as recorded
	SHA256   [32]byte
	Version  string
}

// FileIntent is a change to stored files that is announced before it is
// made, so that a crash in the middle of it (the storage changed, its
// records not yet) is finished at the next start: internal/files
// journals its puts, deletes and renames this way.
type FileIntent struct {
	ID      int64  // given by AddIntent
	Backend string // the storage the change is made on
	Op      string // what the change is, to its journal
	Space   string
	Path    string
	To      string // a rename's destination
}

// BlockSums are the SHA-256 of each BlockSize-byte block of a file's
// content, the last block maybe shorter: what a download sends with each
// block, kept so that the server need not hash a file again each time it
// sends it. They are a function of the content alone, so they are keyed
// by the content's SHA-256 and size, not by a path: a rename, a copy or a
// second upload of the same bytes finds them too.
type BlockSums struct {
	SHA256    [32]byte // of the whole content
	Size      int64
	BlockSize int
	Sums      []byte // 32 bytes per block, in order
}

// Blocks returns how many blocks of BlockSize bytes Size bytes make.
// Written so that no size or block size overflows it.
func (b *BlockSums) Blocks() int64 {
	if b.Size <= 0 || b.BlockSize <= 0 {
		return 0
	}
	return (b.Size-1)/int64(b.BlockSize) + 1
}

// Sum returns the SHA-256 of block i.
func (b *BlockSums) Sum(i int64) [32]byte {
	return [32]byte(b.Sums[32*i : 32*i+32])
}

// MaxBlockSums is the most blocks whose sums are kept for one content:
// 8 MiB of sums, 256 GiB of content in blocks of 1 MiB. Larger files are
// hashed as they are sent.
const MaxBlockSums = 1 << 18

// CheckBlockSumsKey refuses, with code EINVALID, a lookup of block sums
// that no record can match: a block size that is not positive, or a
// negative size. CheckBlockSums checks those too.
func CheckBlockSumsKey(size int64, blockSize int) error {
	switch {
	case blockSize <= 0:
		return Errorf(EINVALID, "block sums: block size %d", blockSize)
	case size < 0:
		return Errorf(EINVALID, "block sums: negative size %d", size)
	}
	return nil
}

// CheckBlockSums refuses, with code EINVALID, block sums that do not fit
// their content: a block size that is not positive, a negative size, more
// than MaxBlockSums blocks, or a number of sums that is not one per block.
func CheckBlockSums(b *BlockSums) error {
	if err := CheckBlockSumsKey(b.Size, b.BlockSize); err != nil {
		return err
	}
	switch {
	case b.Blocks() > MaxBlockSums:
		return Errorf(EINVALID, "block sums: %d blocks; the most kept is %d", b.Blocks(), MaxBlockSums)
	case int64(len(b.Sums)) != 32*b.Blocks():
		return Errorf(EINVALID, "block sums: %d bytes of sums for %d blocks", len(b.Sums), b.Blocks())
	}
	return nil
}

// Usage is what a space holds, and Quota what it may hold; a limit of 0
// is none.
type Usage struct{ Bytes, Files int64 }

// Quota bounds a space.
type Quota struct{ Bytes, Files int64 }

// Exceeds reports whether u is beyond q.
func (q Quota) Exceeds(u Usage) bool {
	return q.Bytes > 0 && u.Bytes > q.Bytes || q.Files > 0 && u.Files > q.Files
}

// FileStore keeps the records of stored files. internal/sqlite and
// internal/postgres implement it; internal/storetest holds the conformance
// suite both pass. Paths are compared byte for byte.
type FileStore interface {
	// FileByPath returns the record of path in space, or an error with
	// code ENOTFOUND.
	FileByPath(ctx context.Context, space, path string) (*File, error)

	// PutFile records f, replacing any record of its path. It is for
	// records that need no quota check (the shared area's).
	PutFile(ctx context.Context, f *File) error

	// CommitFile records f in its space under quota, atomically with
	// place, which puts the file itself in place (a rename on disk): with
	// the space's usage locked against every other CommitFile of that
	// space (in this process and in others sharing the database), it
	// computes the usage the space would have with f (replacing any
	// record at f's path), fails with code EQUOTA if that exceeds quota,
	// else calls place and, if place succeeds, records f. If place fails,
	// nothing is recorded and its error is returned. place may set
	// f.Version (what identifies the content is known once it is in
	// place): the record has the version f has when place returns. A
	// Version that is not text (IsText) is then an error, and nothing is
	// recorded.
	CommitFile(ctx context.Context, f *File, quota Quota, place func() error) error

	// DeleteFiles removes the record of path in space, and the records of
	// every file below path if it is a folder. It is not an error if there
	// is none.
	DeleteFiles(ctx context.Context, space, path string) error

	// RenameFiles moves the record of from (and, if from is a folder, of
	// every file below it) to to, replacing the records at the new paths.
	RenameFiles(ctx context.Context, space, from, to string) error

	// ListFiles returns up to n records of space whose paths come after
	// after in byte order, in that order: a space's records a page at a
	// time ("" starts at the first). n must be positive (EINVALID).
	ListFiles(ctx context.Context, space, after string, n int) ([]*File, error)

	// SpaceUsage returns the bytes and files recorded in space.
	SpaceUsage(ctx context.Context, space string) (Usage, error)

	// CountFiles returns the bytes and files recorded at path in space
	// and below it. An empty path is an error with code EINVALID.
	CountFiles(ctx context.Context, space, path string) (Usage, error)

	// DeleteSpace removes every record of space, and returns what they
	// held. It is for a deleted account; the shared area ("") cannot be
	// deleted (EINVALID).
	DeleteSpace(ctx context.Context, space string) (Usage, error)

	// BlockSums returns the block sums recorded for the content of size
	// bytes with SHA-256 sum, in blocks of blockSize bytes, or an error
	// with code ENOTFOUND.
	BlockSums(ctx context.Context, sum [32]byte, size int64, blockSize int) (*BlockSums, error)

	// PutBlockSums records b (see CheckBlockSums), replacing any record
	// of the same content and block size. The caller vouches for them:
	// they were verified against the content's SHA-256.
	PutBlockSums(ctx context.Context, b *BlockSums) error

	// PruneBlockSums removes the block sums of every content that no file
	// record has (same SHA-256 and size), and returns how many it removed.
	PruneBlockSums(ctx context.Context) (int64, error)

	// AddIntent records in, durably, before the change it announces is
	// made, and sets its ID. Space, Path and To are checked as
	// CheckFilePaths checks them (To may be empty).
	AddIntent(ctx context.Context, in *FileIntent) error

	// Intents returns the intents not yet done of backend and of each
	// journal below it (a Backend of backend, "/" and a name: the
	// journal of one server of several sharing a storage), oldest first.
	Intents(ctx context.Context, backend string) ([]FileIntent, error)

	// DoneIntent removes the intent with the given id. It is not an error
	// if there is none.
	DoneIntent(ctx context.Context, id int64) error
}

// SpaceOf returns the FileStore space of the account with the given id:
// "#" and the id in decimal. A space is keyed by the account's id, never
// by its name, and stores never give an id twice, so that an account
// deleted and registered again under its name starts with nothing of the
// old one's.
func SpaceOf(id int64) string { return "#" + strconv.FormatInt(id, 10) }

// The checks and errors that every FileStore shares, so that the stores
// refuse the same records with the same messages.

// FileNotFound is a FileStore's error when there is no record of path.
func FileNotFound(space, path string) error {
	return Errorf(ENOTFOUND, "no record of file %q in space %q", path, space)
}

// CheckFileLookup checks the arguments of a FileStore's FileByPath: an
// empty path is an error with code EINVALID, and a space or path that no
// store can hold (see IsText) is not found.
func CheckFileLookup(space, path string) error {
	if path == "" {
		return Errorf(EINVALID, "file record: empty path")
	}
	if !IsText(space) || !IsText(path) {
		return FileNotFound(space, path) // none can be recorded
	}
	return nil
}

// FileRecord makes the File of a stored record: modified in nanoseconds
// since 1970, read back in UTC, and sum the stored SHA-256, which must
// have 32 bytes.
func FileRecord(space, path string, size, modified int64, sum []byte, version string) (*File, error) {
	f := &File{Space: space, Path: path, Size: size, Modified: time.Unix(0, modified).UTC(), Version: version}
	if len(sum) != len(f.SHA256) {
		return nil, fmt.Errorf("file %q in space %q: stored sha256 has %d bytes", path, space, len(sum))
	}
	copy(f.SHA256[:], sum)
	return f, nil
}

// CheckListFiles refuses, with code EINVALID, a page of ListFiles that
// no store can give: n not positive, or after not text (see IsText).
func CheckListFiles(after string, n int) error {
	switch {
	case n <= 0:
		return Errorf(EINVALID, "list files: page of %d records; ask for at least one", n)
	case !IsText(after):
		return Errorf(EINVALID, "list files: the path to start after, %q, is not UTF-8 text without NUL bytes", after)
	}
	return nil
}

// BlockSumsNotFound is a FileStore's error when no block sums of
// blockSize-byte blocks are recorded for the content of size bytes with
// SHA-256 sum.
func BlockSumsNotFound(sum [32]byte, size int64, blockSize int) error {
	return Errorf(ENOTFOUND, "no block sums of %d-byte blocks recorded for content %x of %d bytes", blockSize, sum, size)
}

// QuotaExceeded is FileStore.CommitFile's error when the space would hold u, beyond
// q: it names the limit that u exceeds, the bytes one if both.
func QuotaExceeded(q Quota, u Usage) error {
	if q.Bytes > 0 && u.Bytes > q.Bytes {
		return Errorf(EQUOTA, "quota exceeded: with this file the space would hold %d bytes, over its quota of %d", u.Bytes, q.Bytes)
	}
	return Errorf(EQUOTA, "quota exceeded: with this file the space would hold %d files, over its quota of %d", u.Files, q.Files)
}

// IsText reports whether s is text that a PostgreSQL text value can hold:
// UTF-8 without NUL bytes.
func IsText(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

// CheckFilePaths refuses, with code EINVALID, an empty path and a space or path
// that is not text (see IsText). Path syntax is otherwise the caller's.
func CheckFilePaths(op, space string, paths ...string) error {
	if !IsText(space) {
		return Errorf(EINVALID, "%s: space %q is not UTF-8 text without NUL bytes", op, space)
	}
	for _, p := range paths {
		switch {
		case p == "":
			return Errorf(EINVALID, "%s: empty path", op)
		case !IsText(p):
			return Errorf(EINVALID, "%s: path %q is not UTF-8 text without NUL bytes", op, p)
		}
	}
	return nil
}

// CheckFile refuses, with code EINVALID, a record that CheckFilePaths refuses,
// a negative size, and a modification time that nanoseconds since 1970 in
// an int64 cannot hold (before 1678 or after 2262).
func CheckFile(op string, f *File) error {
	if err := CheckFilePaths(op, f.Space, f.Path); err != nil {
		return err
	}
	if f.Size < 0 {
		return Errorf(EINVALID, "%s %q: negative size %d", op, f.Path, f.Size)
	}
	if !IsText(f.Version) {
		return Errorf(EINVALID, "%s %q: version %q is not UTF-8 text without NUL bytes", op, f.Path, f.Version)
	}
	if !time.Unix(0, f.Modified.UnixNano()).Equal(f.Modified) {
		return Errorf(EINVALID, "%s %q: modification time %v is out of range", op, f.Path, f.Modified)
	}
	return nil
}

// CheckIntent refuses, with code EINVALID, an intent whose op, backend or
// path is empty, or whose texts CheckFilePaths would refuse.
func CheckIntent(in *FileIntent) error {
	if in.Op == "" || in.Backend == "" || !IsText(in.Op) || !IsText(in.Backend) {
		return Errorf(EINVALID, "file intent: op %q on backend %q", in.Op, in.Backend)
	}
	paths := []string{in.Path}
	if in.To != "" {
		paths = append(paths, in.To)
	}
	return CheckFilePaths("file intent", in.Space, paths...)
}

// CheckRename refuses what CheckFilePaths refuses, and a move of a folder into
// itself or over a folder that holds it: the records at to and below
// would be those moved, and no file system allows either.
func CheckRename(space, from, to string) error {
	if err := CheckFilePaths("rename files", space, from, to); err != nil {
		return err
	}
	if strings.HasPrefix(to, from+"/") || strings.HasPrefix(from, to+"/") {
		return Errorf(EINVALID, "rename files: %q and %q are one inside the other", from, to)
	}
	return nil
}

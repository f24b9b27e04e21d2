package files

import (
	"hash"
	"io"
	"time"

	"github.com/larderfs/larder"
)

// The seam between the service and where content lives. Everything below
// is object-like (stat, open for ranged reads, list, put through an
// upload that appears whole, rename, remove) so that a bucket of an
// S3-compatible store can implement it beside the local disk: no file
// descriptors cross it, and a version is whatever the backend has that
// changes whenever the content does (an inode's times on a disk, an ETag
// or version id in a bucket).

// Backend is where the shared area and the private spaces are stored.
type Backend interface {
	// ID names this storage for good: the journal keeps it with each
	// intent, so that only the storage an intent was made on replays it.
	ID() (string, error)

	// Area opens the area of space: "" is the shared area, read-only;
	// any other is the private space larder.SpaceOf gives, made on first
	// use. Close it after use.
	Area(space string) (Area, error)

	// RemoveStaleUploads removes the parts of every space last written
	// before before, but those being written, and returns how many.
	RemoveStaleUploads(before time.Time) (int, error)
}

// Area is one space, or the shared area. Paths are slash-separated,
// relative to the area, and already checked (the shared area checks its
// own, as the course protocol names them); "" is the top. Errors are
// *larder.Error values whose messages are safe to show a client.
type Area interface {
	Stat(p string) (Info, error)
	Open(p string) (Object, error)
	List(p string) (Lister, error)
	Mkdir(p string) error
	// Remove removes the file or empty folder p.
	Remove(p string) error
	// RemoveTree removes p, a file or a folder with everything below
	// it, or about max entries of it (a backend may remove a few more,
	// or fewer, but never none while it reports p there), says what it
	// removed, and reports whether p is gone: call it again for the
	// rest. Nothing at p is no error, and gone.
	RemoveTree(p string, max int) (r Removed, gone bool, err error)
	// Rename moves from, a file or a folder, to to; without overwrite
	// an existing to is a conflict. On a disk it is one step; a store
	// that moves object by object refuses what it would refuse before it
	// changes anything, and can finish a move cut in the middle (see
	// FinishRename).
	Rename(from, to string, overwrite bool) error
	// FinishRename finishes a Rename of from to to that stopped in the
	// middle (a crash, a store that stopped answering), if one did: the
	// replay of a rename's intent calls it before it looks at from and
	// to. A backend whose renames are one step has nothing to finish.
	FinishRename(from, to string) error

	// StartUpload opens the part of an upload of size bytes to p,
	// resuming an earlier one of the same path and size if resume.
	StartUpload(p string, size int64, resume bool) (Part, error)
	// Parts returns the area's unfinished uploads.
	Parts() ([]PartInfo, error)
	// PartUsage returns what the unfinished uploads but except hold,
	// each at its announced size.
	PartUsage(except string) (larder.Usage, error)
	// CancelUploads removes the unfinished uploads of target, or all if
	// target is "", but those being written now.
	CancelUploads(target string) (n int, bytes int64, err error)

	Close() error
}

// Info is what an Area says of a file or a folder.
type Info struct {
	Name    string
	Dir     bool
	Size    int64
	ModTime time.Time
	// Version identifies this content on its backend ("" if it cannot
	// be identified: then no hash of it is ever trusted), and Changed
	// is when the backend saw the content last change.
	Version string
	Changed time.Time
}

// Removed is what a removal of a tree took away: files and their bytes,
// and folders, the top one among them.
type Removed struct{ Files, Folders, Bytes int64 }

// Object is a stored file open for reading.
type Object interface {
	io.ReaderAt
	Info() Info
	// WriteRangeTo copies n bytes from off to w; a backend may do it
	// without copying through the process (sendfile on a disk).
	WriteRangeTo(w io.Writer, off, n int64) (int64, error)
	Close() error
}

// Lister reads a folder a few entries at a time; Next returns io.EOF at
// its end.
type Lister interface {
	Next(n int) ([]Info, error)
	Close() error
}

// Part is an upload being written. The content appears at its target
// only when Place succeeds, whole.
type Part interface {
	io.Writer
	ID() string
	// Offset is the bytes written so far (where a resume starts).
	Offset() int64
	// HashPrefix brings h, a new SHA-256, to the state of having hashed
	// the bytes a resumed part holds (Offset before any Write): by
	// reading them back from a disk, or, from a store that cannot read
	// back the parts of an unfinished upload, from the state it kept
	// with them.
	HashPrefix(h hash.Hash) error
	// Sync makes what was written durable, and returns the part's Info
	// (its modification time is the file's once placed).
	Sync() (Info, error)
	// Place moves the synced part to its target in one step and returns
	// what is there now; without overwrite an existing target is a
	// conflict.
	Place(overwrite bool) (Info, error)
	// Discard removes the part; Close keeps it for a resume.
	Discard() error
	Close() error
}

// PartHasher is a Part that hashes what it holds itself, as a store's
// part does to keep, at the end of each of its parts, the state a resume
// on another server takes up: the upload takes the content's SHA-256 from
// it rather than hash every byte a second time. A disk's part is read
// back for a resume (HashPrefix), so the upload hashes the bytes as they
// come, beside the writes.
type PartHasher interface {
	Part
	// SHA256 returns the SHA-256 of the content, the bytes a resumed
	// part held included. It is known once Sync has succeeded.
	SHA256() ([32]byte, error)
}

// PartInfo is an unfinished upload.
type PartInfo struct {
	ID       string
	Target   string // "" if not known
	Size     int64  // announced
	Received int64
	Modified time.Time
	Active   bool // being written now
}

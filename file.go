package larder

import (
	"context"
	"time"
)

// File is what larder knows of a stored file without reading it: its size,
// modification time and SHA-256, recorded when an upload commits (or, for a
// file placed in the shared area by other means, when it is first read,
// and trusted while its size and modification time are unchanged).
type File struct {
	Space    string // the owner's name, or "" for the shared area
	Path     string // slash-separated, relative to the space, no leading slash
	Size     int64
	Modified time.Time // the file's modification time on disk, as recorded
	SHA256   [32]byte
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
	// nothing is recorded and its error is returned.
	CommitFile(ctx context.Context, f *File, quota Quota, place func() error) error

	// DeleteFiles removes the record of path in space, and the records of
	// every file below path if it is a folder. It is not an error if there
	// is none.
	DeleteFiles(ctx context.Context, space, path string) error

	// RenameFiles moves the record of from (and, if from is a folder, of
	// every file below it) to to, replacing the records at the new paths.
	RenameFiles(ctx context.Context, space, from, to string) error

	// SpaceUsage returns the bytes and files recorded in space.
	SpaceUsage(ctx context.Context, space string) (Usage, error)
}

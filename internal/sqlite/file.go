package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/larderfs/larder"
)

// FileStore keeps the records of stored files in the files table of a DB,
// the same file as the accounts. It is safe for concurrent use, also by
// several processes on one database file.
//
// Modified is stored to the nanosecond and reads back in UTC. Spaces and
// paths are text that a PostgreSQL database can hold too (UTF-8 without NUL
// bytes), so that both stores accept the same records: a lookup of any
// other is not found, and recording one is an error with code EINVALID.
type FileStore struct {
	db *DB
}

var _ larder.FileStore = (*FileStore)(nil)

// NewFileStore returns a FileStore over db.
func NewFileStore(db *DB) *FileStore {
	return &FileStore{db: db}
}

// The paths below folder p are those in [p+"/", p+"0"): '0' is the byte
// after '/', and BINARY comparison is byte order. A range on the primary
// key rather than LIKE, whose wildcards (and ASCII case folding) would
// need escaping in every path.
const (
	fileByPathSQL = `SELECT size, modified, sha256, version FROM files WHERE space = ? AND path = ?`
	upsertFileSQL = `INSERT INTO files (space, path, size, modified, sha256, version) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (space, path) DO UPDATE SET size = excluded.size, modified = excluded.modified, sha256 = excluded.sha256, version = excluded.version`
	spaceUsageSQL = `SELECT COALESCE(SUM(size), 0), COUNT(*) FROM files WHERE space = ?`
	// The usage of a space without the record at one path, which the
	// file being committed replaces.
	usageWithoutSQL = `SELECT COALESCE(SUM(size), 0), COUNT(*) FROM files WHERE space = ? AND path <> ?`
	deleteFilesSQL  = `DELETE FROM files WHERE space = ? AND (path = ? OR (path >= ? AND path < ?))`
	deleteSpaceSQL  = `DELETE FROM files WHERE space = ? RETURNING size`
	// length() and substr() count characters, alike for path and for the
	// folder it starts with, which is UTF-8 (see checkPaths).
	renameFilesSQL = `UPDATE files SET path = ? || substr(path, length(?) + 1)
		WHERE space = ? AND (path = ? OR (path >= ? AND path < ?))`
)

// FileByPath returns the record of path in space. If there is none, the
// error has code ENOTFOUND; an empty path is an error with code EINVALID.
func (s *FileStore) FileByPath(ctx context.Context, space, path string) (*larder.File, error) {
	if err := larder.CheckFileLookup(space, path); err != nil {
		return nil, err
	}
	stmt, err := s.db.stmt(ctx, true, fileByPathSQL)
	if err != nil {
		return nil, fmt.Errorf("sqlite: file %q in space %q: %w", path, space, err)
	}
	var (
		size, modified int64
		sum            []byte
		version        string
	)
	err = stmt.QueryRowContext(ctx, space, path).Scan(&size, &modified, &sum, &version)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, larder.FileNotFound(space, path)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: file %q in space %q: %w", path, space, err)
	}
	f, err := larder.FileRecord(space, path, size, modified, sum, version)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	return f, nil
}

// PutFile records f, replacing any record of its path, with no quota
// check. An empty path, a space or path that is not UTF-8 text without NUL
// bytes, a negative size, or a Modified before 1678 or after 2262 (beyond
// an int64 of nanoseconds) is an error with code EINVALID; so it is for
// CommitFile.
func (s *FileStore) PutFile(ctx context.Context, f *larder.File) error {
	if err := larder.CheckFile("put file", f); err != nil {
		return err
	}
	stmt, err := s.db.stmt(ctx, false, upsertFileSQL)
	if err != nil {
		return noSpace(fmt.Errorf("sqlite: put file %q in space %q: %w", f.Path, f.Space, err))
	}
	if _, err := stmt.ExecContext(ctx, fileArgs(f)...); err != nil {
		return noSpace(fmt.Errorf("sqlite: put file %q in space %q: %w", f.Path, f.Space, err))
	}
	return nil
}

// CommitFile records f under quota, atomically with place, in one
// IMMEDIATE transaction: the database's write lock keeps every other
// CommitFile (of any space, in this process or another) out until it ends.
// In it, CommitFile computes the usage the space would have with f in
// place of any record at f.Path; if that exceeds quota, it fails with code
// EQUOTA without calling place. Otherwise it writes f's record, then calls
// place, and commits if place succeeds; if place fails, the transaction
// rolls back, so nothing changes, and place's error is returned as it is.
// Writing first means that a record the database refuses fails CommitFile
// before the file is placed, never after.
//
// place runs holding the database's only write connection: it must be
// quick (a rename), and must not write through this DB, or it waits
// forever.
//
// If the commit fails after place succeeded, the error says so: the file
// is in place but has no record (or, if it replaced one, the old record
// stays, and its size and time no longer match the file), so FileByPath
// finds nothing that matches, and the caller recomputes the hash.
func (s *FileStore) CommitFile(ctx context.Context, f *larder.File, quota larder.Quota, place func() error) error {
	if err := larder.CheckFile("commit file", f); err != nil {
		return err
	}
	// Prepared before the transaction takes the write pool's only
	// connection: preparing inside it would wait for that connection.
	usage, err := s.db.stmt(ctx, false, usageWithoutSQL)
	if err != nil {
		return noSpace(fmt.Errorf("sqlite: commit file %q in space %q: %w", f.Path, f.Space, err))
	}
	upsert, err := s.db.stmt(ctx, false, upsertFileSQL)
	if err != nil {
		return noSpace(fmt.Errorf("sqlite: commit file %q in space %q: %w", f.Path, f.Space, err))
	}
	setVersion, err := s.db.stmt(ctx, false, setVersionSQL)
	if err != nil {
		return noSpace(fmt.Errorf("sqlite: commit file %q in space %q: %w", f.Path, f.Space, err))
	}
	var placed, placeFailed bool
	err = s.db.inTx(ctx, func(tx *sql.Tx) error {
		var u larder.Usage
		if err := tx.StmtContext(ctx, usage).QueryRowContext(ctx, f.Space, f.Path).Scan(&u.Bytes, &u.Files); err != nil {
			return err
		}
		u.Bytes, u.Files = u.Bytes+f.Size, u.Files+1
		if quota.Exceeds(u) {
			return larder.QuotaExceeded(quota, u)
		}
		// The record first: if the database refuses it, the file is not
		// placed. place's failure undoes it.
		if _, err := tx.StmtContext(ctx, upsert).ExecContext(ctx, fileArgs(f)...); err != nil {
			return err
		}
		version := f.Version
		if err := place(); err != nil {
			placeFailed = true
			return err
		}
		placed = true
		if f.Version != version {
			if !larder.IsText(f.Version) {
				return larder.Errorf(larder.EINVALID, "commit file %q: version %q is not UTF-8 text without NUL bytes", f.Path, f.Version)
			}
			_, err := tx.StmtContext(ctx, setVersion).ExecContext(ctx, f.Version, f.Space, f.Path)
			return err
		}
		return nil
	})
	switch {
	case err == nil, placeFailed, larder.ErrorCode(err) == larder.EQUOTA:
		return err
	case placed:
		return noSpace(fmt.Errorf("sqlite: commit file %q in space %q: the file is in place but not recorded: %w", f.Path, f.Space, err))
	default:
		return noSpace(fmt.Errorf("sqlite: commit file %q in space %q: %w", f.Path, f.Space, err))
	}
}

// DeleteFiles removes the record of path in space and those of every path
// below it (path + "/" ...). It is not an error if there is none. An empty
// path is an error with code EINVALID.
func (s *FileStore) DeleteFiles(ctx context.Context, space, path string) error {
	if err := larder.CheckFilePaths("delete files", space, path); err != nil {
		return err
	}
	stmt, err := s.db.stmt(ctx, false, deleteFilesSQL)
	if err != nil {
		return noSpace(fmt.Errorf("sqlite: delete files %q in space %q: %w", path, space, err))
	}
	if _, err := stmt.ExecContext(ctx, space, path, path+"/", path+"0"); err != nil {
		return noSpace(fmt.Errorf("sqlite: delete files %q in space %q: %w", path, space, err))
	}
	return nil
}

// RenameFiles moves the record of from, and those of every path below it,
// to to and below, in one transaction, after removing every record at to
// and below it: the caller has already renamed from to to on disk, which
// replaced whatever was there. Renaming a path to itself changes nothing;
// to a path below itself, or to one above it, is an error with code
// EINVALID, as is an empty path.
func (s *FileStore) RenameFiles(ctx context.Context, space, from, to string) error {
	if err := larder.CheckRename(space, from, to); err != nil || from == to {
		return err
	}
	del, err := s.db.stmt(ctx, false, deleteFilesSQL)
	if err != nil {
		return noSpace(fmt.Errorf("sqlite: rename files %q to %q in space %q: %w", from, to, space, err))
	}
	move, err := s.db.stmt(ctx, false, renameFilesSQL)
	if err != nil {
		return noSpace(fmt.Errorf("sqlite: rename files %q to %q in space %q: %w", from, to, space, err))
	}
	err = s.db.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.StmtContext(ctx, del).ExecContext(ctx, space, to, to+"/", to+"0"); err != nil {
			return err
		}
		_, err := tx.StmtContext(ctx, move).ExecContext(ctx, to, from, space, from, from+"/", from+"0")
		return err
	})
	if err != nil {
		return noSpace(fmt.Errorf("sqlite: rename files %q to %q in space %q: %w", from, to, space, err))
	}
	return nil
}

// listFilesSQL pages through a space's records in the primary key's
// order, which is byte order.
const listFilesSQL = `SELECT path, size, modified, sha256, version FROM files WHERE space = ? AND path > ? ORDER BY path LIMIT ?`

// ListFiles returns up to n records of space whose paths come after after,
// in byte order. A space that no record can have holds none; an n that is
// not positive, or an after that is not text, is an error with code
// EINVALID.
func (s *FileStore) ListFiles(ctx context.Context, space, after string, n int) ([]*larder.File, error) {
	if err := larder.CheckListFiles(after, n); err != nil {
		return nil, err
	}
	if !larder.IsText(space) {
		return nil, nil // none can be recorded
	}
	stmt, err := s.db.stmt(ctx, true, listFilesSQL)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list files of space %q: %w", space, err)
	}
	rows, err := stmt.QueryContext(ctx, space, after, n)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list files of space %q: %w", space, err)
	}
	defer rows.Close()
	var fs []*larder.File
	for rows.Next() {
		var (
			path           string
			size, modified int64
			sum            []byte
			version        string
		)
		if err := rows.Scan(&path, &size, &modified, &sum, &version); err != nil {
			return nil, fmt.Errorf("sqlite: list files of space %q: %w", space, err)
		}
		f, err := larder.FileRecord(space, path, size, modified, sum, version)
		if err != nil {
			return nil, fmt.Errorf("sqlite: %w", err)
		}
		fs = append(fs, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list files of space %q: %w", space, err)
	}
	return fs, nil
}

// SpaceUsage returns the bytes and files recorded in space.
func (s *FileStore) SpaceUsage(ctx context.Context, space string) (larder.Usage, error) {
	var u larder.Usage
	if !larder.IsText(space) {
		return u, nil // none can be recorded
	}
	stmt, err := s.db.stmt(ctx, true, spaceUsageSQL)
	if err != nil {
		return u, fmt.Errorf("sqlite: usage of space %q: %w", space, err)
	}
	if err := stmt.QueryRowContext(ctx, space).Scan(&u.Bytes, &u.Files); err != nil {
		return u, fmt.Errorf("sqlite: usage of space %q: %w", space, err)
	}
	return u, nil
}

// DeleteSpace removes every record of space and returns what they held.
// The shared area's space "" is an error with code EINVALID.
func (s *FileStore) DeleteSpace(ctx context.Context, space string) (larder.Usage, error) {
	var u larder.Usage
	if space == "" {
		return u, larder.Errorf(larder.EINVALID, "delete space: the shared area cannot be deleted")
	}
	if !larder.IsText(space) {
		return u, nil // none can be recorded
	}
	stmt, err := s.db.stmt(ctx, false, deleteSpaceSQL)
	if err != nil {
		return u, fmt.Errorf("sqlite: delete space %q: %w", space, err)
	}
	rows, err := stmt.QueryContext(ctx, space)
	if err != nil {
		return u, fmt.Errorf("sqlite: delete space %q: %w", space, err)
	}
	defer rows.Close()
	for rows.Next() {
		var size int64
		if err := rows.Scan(&size); err != nil {
			return larder.Usage{}, fmt.Errorf("sqlite: delete space %q: %w", space, err)
		}
		u.Bytes, u.Files = u.Bytes+size, u.Files+1
	}
	if err := rows.Err(); err != nil {
		return larder.Usage{}, fmt.Errorf("sqlite: delete space %q: %w", space, err)
	}
	return u, nil
}

// A content's block sums are keyed by its SHA-256, its size and the block
// size; see migration 5.
const (
	blockSumsSQL       = `SELECT sums FROM block_sums WHERE sha256 = ? AND size = ? AND block_size = ?`
	upsertBlockSumsSQL = `INSERT INTO block_sums (sha256, size, block_size, sums) VALUES (?, ?, ?, ?)
		ON CONFLICT (sha256, size, block_size) DO UPDATE SET sums = excluded.sums`
	// A NOT IN whose subquery names no column of the outer query runs
	// that subquery once, into a temporary index that each row of
	// block_sums probes: one scan of files, where a correlated NOT EXISTS
	// would scan it for each row, as no index of files leads with the
	// content.
	pruneBlockSumsSQL = `DELETE FROM block_sums WHERE (sha256, size) NOT IN (SELECT sha256, size FROM files)`
)

// BlockSums returns the block sums recorded for the content of size bytes
// with SHA-256 sum, in blocks of blockSize bytes. If there are none, the
// error has code ENOTFOUND; a block size that is not positive, or a
// negative size, is an error with code EINVALID. Sums read back that are
// not one per block are an error.
func (s *FileStore) BlockSums(ctx context.Context, sum [32]byte, size int64, blockSize int) (*larder.BlockSums, error) {
	if err := larder.CheckBlockSumsKey(size, blockSize); err != nil {
		return nil, err
	}
	stmt, err := s.db.stmt(ctx, true, blockSumsSQL)
	if err != nil {
		return nil, fmt.Errorf("sqlite: block sums of %d-byte blocks of %x: %w", blockSize, sum, err)
	}
	b := &larder.BlockSums{SHA256: sum, Size: size, BlockSize: blockSize}
	err = stmt.QueryRowContext(ctx, sum[:], size, blockSize).Scan(&b.Sums)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, larder.BlockSumsNotFound(sum, size, blockSize)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: block sums of %d-byte blocks of %x: %w", blockSize, sum, err)
	}
	if err := larder.CheckBlockSums(b); err != nil {
		return nil, fmt.Errorf("sqlite: stored block sums of %x: %v", sum, larder.ErrorMessage(err))
	}
	return b, nil
}

// PutBlockSums records b, replacing any record of the same content and
// block size. Sums that larder.CheckBlockSums refuses are an error with
// code EINVALID, and change nothing.
func (s *FileStore) PutBlockSums(ctx context.Context, b *larder.BlockSums) error {
	if err := larder.CheckBlockSums(b); err != nil {
		return err
	}
	stmt, err := s.db.stmt(ctx, false, upsertBlockSumsSQL)
	if err != nil {
		return fmt.Errorf("sqlite: put block sums of %d-byte blocks of %x: %w", b.BlockSize, b.SHA256, err)
	}
	// The driver binds a nil slice, an empty content's sums, as NULL.
	sums := b.Sums
	if sums == nil {
		sums = []byte{}
	}
	if _, err := stmt.ExecContext(ctx, b.SHA256[:], b.Size, b.BlockSize, sums); err != nil {
		return fmt.Errorf("sqlite: put block sums of %d-byte blocks of %x: %w", b.BlockSize, b.SHA256, err)
	}
	return nil
}

// PruneBlockSums removes the block sums of every content that no file
// record has (same SHA-256 and size, in any space), and returns how many
// it removed. It holds the write lock while it reads every file record.
// Sums put for a file before its record is committed may go with the
// rest: they are a cache, and the next download of it hashes it again.
func (s *FileStore) PruneBlockSums(ctx context.Context) (int64, error) {
	stmt, err := s.db.stmt(ctx, false, pruneBlockSumsSQL)
	if err != nil {
		return 0, fmt.Errorf("sqlite: prune block sums: %w", err)
	}
	res, err := stmt.ExecContext(ctx)
	if err != nil {
		return 0, fmt.Errorf("sqlite: prune block sums: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sqlite: prune block sums: %w", err)
	}
	return n, nil
}

// fileArgs returns the values of f's columns, in the order of
// upsertFileSQL.
func fileArgs(f *larder.File) []any {
	return []any{f.Space, f.Path, f.Size, f.Modified.UnixNano(), f.SHA256[:], f.Version}
}

const (
	setVersionSQL = `UPDATE files SET version = ? WHERE space = ? AND path = ?`
	countFilesSQL = `SELECT COALESCE(SUM(size), 0), COUNT(*) FROM files WHERE space = ? AND (path = ? OR (path >= ? AND path < ?))`
	addIntentSQL  = `INSERT INTO file_intents (backend, op, space, path, dest) VALUES (?, ?, ?, ?, ?) RETURNING id`
	intentsSQL    = `SELECT id, backend, op, space, path, dest FROM file_intents WHERE backend = ?1 OR substr(backend, 1, length(?1) + 1) = ?1 || '/' ORDER BY id`
	doneIntentSQL = `DELETE FROM file_intents WHERE id = ?`
)

// CountFiles returns the bytes and files recorded at path in space and
// below it. An empty path is an error with code EINVALID; a space or path
// that no record can have counts nothing.
func (s *FileStore) CountFiles(ctx context.Context, space, path string) (larder.Usage, error) {
	var u larder.Usage
	if path == "" {
		return u, larder.Errorf(larder.EINVALID, "count files: empty path")
	}
	if !larder.IsText(space) || !larder.IsText(path) {
		return u, nil // none can be recorded
	}
	stmt, err := s.db.stmt(ctx, true, countFilesSQL)
	if err != nil {
		return u, fmt.Errorf("sqlite: count files %q in space %q: %w", path, space, err)
	}
	if err := stmt.QueryRowContext(ctx, space, path, path+"/", path+"0").Scan(&u.Bytes, &u.Files); err != nil {
		return u, fmt.Errorf("sqlite: count files %q in space %q: %w", path, space, err)
	}
	return u, nil
}

// AddIntent records in, committed before it returns, and sets its ID.
// An intent larder.CheckIntent refuses is an error with code EINVALID.
func (s *FileStore) AddIntent(ctx context.Context, in *larder.FileIntent) error {
	if err := larder.CheckIntent(in); err != nil {
		return err
	}
	stmt, err := s.db.stmt(ctx, false, addIntentSQL)
	if err != nil {
		return noSpace(fmt.Errorf("sqlite: add intent to %s %q: %w", in.Op, in.Path, err))
	}
	if err := stmt.QueryRowContext(ctx, in.Backend, in.Op, in.Space, in.Path, in.To).Scan(&in.ID); err != nil {
		return noSpace(fmt.Errorf("sqlite: add intent to %s %q: %w", in.Op, in.Path, err))
	}
	return nil
}

// Intents returns the intents not yet done of backend and of the journals
// below it, oldest first.
func (s *FileStore) Intents(ctx context.Context, backend string) ([]larder.FileIntent, error) {
	stmt, err := s.db.stmt(ctx, true, intentsSQL)
	if err != nil {
		return nil, fmt.Errorf("sqlite: intents: %w", err)
	}
	rows, err := stmt.QueryContext(ctx, backend)
	if err != nil {
		return nil, fmt.Errorf("sqlite: intents: %w", err)
	}
	ins, err := collect(rows, func(row scanner) (larder.FileIntent, error) {
		var in larder.FileIntent
		err := row.Scan(&in.ID, &in.Backend, &in.Op, &in.Space, &in.Path, &in.To)
		return in, err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: intents: %w", err)
	}
	return ins, nil
}

// DoneIntent removes the intent with the given id, if there is one.
func (s *FileStore) DoneIntent(ctx context.Context, id int64) error {
	stmt, err := s.db.stmt(ctx, false, doneIntentSQL)
	if err != nil {
		return noSpace(fmt.Errorf("sqlite: intent %d done: %w", id, err))
	}
	if _, err := stmt.ExecContext(ctx, id); err != nil {
		return noSpace(fmt.Errorf("sqlite: intent %d done: %w", id, err))
	}
	return nil
}

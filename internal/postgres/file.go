package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"

	"github.com/jackc/pgx/v5"
	"github.com/larderfs/larder"
)

// FileStore keeps the records of stored files in the files table of a DB,
// the same database as the accounts. It is safe for concurrent use, also
// by several processes on one database.
//
// Modified is stored to the nanosecond and reads back in UTC. Spaces and
// paths are text, which cannot hold bytes that are not UTF-8 or NUL bytes:
// a lookup of such a path is not found, and recording one is an error with
// code EINVALID, as in internal/sqlite.
type FileStore struct {
	db *DB
}

var _ larder.FileStore = (*FileStore)(nil)

// NewFileStore returns a FileStore over db.
func NewFileStore(db *DB) *FileStore {
	return &FileStore{db: db}
}

// spaceLockClass is the first key of the advisory locks that serialize the
// CommitFiles of a space; the second is spaceLockKey of its name. Locks
// with two int4 keys never meet those with one bigint key, such as
// migrationLock and eventsLock. "lard" in ASCII.
const spaceLockClass int32 = 0x6c61_7264

// spaceLockKey returns the second key of space's lock: its 32-bit FNV-1a
// hash. Two spaces with one hash share a lock, which costs them waits but
// no correctness.
func spaceLockKey(space string) int32 {
	h := fnv.New32a()
	h.Write([]byte(space))
	return int32(h.Sum32())
}

// The paths below folder p are those in [p+"/", p+"0"): '0' is the byte
// after '/', and the columns' "C" collation compares bytes. A range on the
// primary key rather than LIKE, whose wildcards would need escaping in
// every path.
const (
	fileByPathSQL = `SELECT size, modified, sha256, version FROM files WHERE space = $1 AND path = $2`
	upsertFileSQL = `INSERT INTO files (space, path, size, modified, sha256, version) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (space, path) DO UPDATE SET size = EXCLUDED.size, modified = EXCLUDED.modified, sha256 = EXCLUDED.sha256, version = EXCLUDED.version`
	spaceUsageSQL = `SELECT COALESCE(SUM(size), 0)::bigint, COUNT(*) FROM files WHERE space = $1`
	lockSpaceSQL  = `SELECT pg_advisory_xact_lock($1::integer, $2::integer)`
	// The usage of a space without the record at one path, which the
	// file being committed replaces.
	usageWithoutSQL = `SELECT COALESCE(SUM(size), 0)::bigint, COUNT(*) FROM files WHERE space = $1 AND path <> $2`
	deleteFilesSQL  = `DELETE FROM files WHERE space = $1 AND (path = $2 OR (path >= $3 AND path < $4))`
	deleteSpaceSQL  = `WITH gone AS (DELETE FROM files WHERE space = $1 RETURNING size)
		SELECT COALESCE(SUM(size), 0)::bigint, COUNT(*) FROM gone`
	// char_length() and substr() count characters, alike for path and
	// for the folder it starts with.
	renameFilesSQL = `UPDATE files SET path = $1 || substr(path, char_length($2) + 1)
		WHERE space = $3 AND (path = $2 OR (path >= $4 AND path < $5))`
)

// FileByPath returns the record of path in space. If there is none, the
// error has code ENOTFOUND; an empty path is an error with code EINVALID.
func (s *FileStore) FileByPath(ctx context.Context, space, path string) (*larder.File, error) {
	if err := larder.CheckFileLookup(space, path); err != nil {
		return nil, err
	}
	var (
		size, modified int64
		sum            []byte
		version        string
	)
	err := s.db.pool.QueryRow(ctx, fileByPathSQL, space, path).Scan(&size, &modified, &sum, &version)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, larder.FileNotFound(space, path)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: file %q in space %q: %w", path, space, err)
	}
	f, err := larder.FileRecord(space, path, size, modified, sum, version)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
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
	if _, err := s.db.pool.Exec(ctx, upsertFileSQL, fileArgs(f)...); err != nil {
		if err := pathTooLong("put file", f.Path, err); err != nil {
			return err
		}
		return fmt.Errorf("postgres: put file %q in space %q: %w", f.Path, f.Space, err)
	}
	return nil
}

// CommitFile records f under quota, atomically with place, in one
// transaction that first takes the advisory lock of f.Space: every other
// CommitFile of that space, through this DB or any other on the database,
// waits until it ends, while those of other spaces go on. In it,
// CommitFile computes the usage the space would have with f in place of
// any record at f.Path; if that exceeds quota, it fails with code EQUOTA
// without calling place. Otherwise it writes f's record, then calls place,
// and commits if place succeeds; if place fails, the transaction rolls
// back, so nothing changes, and place's error is returned as it is.
// Writing first means that a record the database refuses fails CommitFile
// before the file is placed, never after: a path too long for the primary
// key's index (see pathTooLong) fails with code EINVALID.
//
// place runs holding a connection of the pool and the space's lock: it
// must be quick (a rename), and must not commit to the same space.
//
// If the commit fails after place succeeded, the error says so: the file
// is in place but has no record (or, if it replaced one, the old record
// stays, and its size and time no longer match the file), so FileByPath
// finds nothing that matches, and the caller recomputes the hash.
func (s *FileStore) CommitFile(ctx context.Context, f *larder.File, quota larder.Quota, place func() error) error {
	if err := larder.CheckFile("commit file", f); err != nil {
		return err
	}
	var placed, placeFailed bool
	err := pgx.BeginFunc(ctx, s.db.pool, func(tx pgx.Tx) error {
		// The lock and the sums in one round trip. Under READ COMMITTED
		// each statement takes its snapshot when it starts, so the sums
		// see every commit made before the lock was granted.
		var (
			b pgx.Batch
			u larder.Usage
		)
		b.Queue(lockSpaceSQL, spaceLockClass, spaceLockKey(f.Space))
		b.Queue(usageWithoutSQL, f.Space, f.Path).QueryRow(func(row pgx.Row) error {
			return row.Scan(&u.Bytes, &u.Files)
		})
		if err := tx.SendBatch(ctx, &b).Close(); err != nil {
			return err
		}
		u.Bytes, u.Files = u.Bytes+f.Size, u.Files+1
		if quota.Exceeds(u) {
			return larder.QuotaExceeded(quota, u)
		}
		// The record first: if the database refuses it (a path too long
		// for the index, say), the file is not placed. place's failure
		// undoes it.
		if _, err := tx.Exec(ctx, upsertFileSQL, fileArgs(f)...); err != nil {
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
			_, err := tx.Exec(ctx, setVersionSQL, f.Version, f.Space, f.Path)
			return err
		}
		return nil
	})
	switch {
	case err == nil, placeFailed, larder.ErrorCode(err) == larder.EQUOTA:
		return err
	case placed:
		return fmt.Errorf("postgres: commit file %q in space %q: the file is in place but not recorded: %w", f.Path, f.Space, err)
	}
	if err := pathTooLong("commit file", f.Path, err); err != nil {
		return err
	}
	return fmt.Errorf("postgres: commit file %q in space %q: %w", f.Path, f.Space, err)
}

// DeleteFiles removes the record of path in space and those of every path
// below it (path + "/" ...). It is not an error if there is none. An empty
// path is an error with code EINVALID.
func (s *FileStore) DeleteFiles(ctx context.Context, space, path string) error {
	if err := larder.CheckFilePaths("delete files", space, path); err != nil {
		return err
	}
	if _, err := s.db.pool.Exec(ctx, deleteFilesSQL, space, path, path+"/", path+"0"); err != nil {
		return fmt.Errorf("postgres: delete files %q in space %q: %w", path, space, err)
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
	// One pipeline ending in one Sync is one implicit transaction, in one
	// round trip.
	var b pgx.Batch
	b.Queue(deleteFilesSQL, space, to, to+"/", to+"0")
	b.Queue(renameFilesSQL, to, from, space, from+"/", from+"0")
	if err := s.db.pool.SendBatch(ctx, &b).Close(); err != nil {
		if err := pathTooLong("rename files", to, err); err != nil {
			return err
		}
		return fmt.Errorf("postgres: rename files %q to %q in space %q: %w", from, to, space, err)
	}
	return nil
}

// listFilesSQL pages through a space's records in the primary key's
// order, which is byte order.
const listFilesSQL = `SELECT path, size, modified, sha256, version FROM files WHERE space = $1 AND path > $2 ORDER BY path LIMIT $3`

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
	rows, err := s.db.pool.Query(ctx, listFilesSQL, space, after, n)
	if err != nil {
		return nil, fmt.Errorf("postgres: list files of space %q: %w", space, err)
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
			return nil, fmt.Errorf("postgres: list files of space %q: %w", space, err)
		}
		f, err := larder.FileRecord(space, path, size, modified, sum, version)
		if err != nil {
			return nil, fmt.Errorf("postgres: %w", err)
		}
		fs = append(fs, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: list files of space %q: %w", space, err)
	}
	return fs, nil
}

// SpaceUsage returns the bytes and files recorded in space.
func (s *FileStore) SpaceUsage(ctx context.Context, space string) (larder.Usage, error) {
	var u larder.Usage
	if !larder.IsText(space) {
		return u, nil // none can be recorded
	}
	if err := s.db.pool.QueryRow(ctx, spaceUsageSQL, space).Scan(&u.Bytes, &u.Files); err != nil {
		return u, fmt.Errorf("postgres: usage of space %q: %w", space, err)
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
	if err := s.db.pool.QueryRow(ctx, deleteSpaceSQL, space).Scan(&u.Bytes, &u.Files); err != nil {
		return larder.Usage{}, fmt.Errorf("postgres: delete space %q: %w", space, err)
	}
	return u, nil
}

// A content's block sums are keyed by its SHA-256, its size and the block
// size; see migration 4.
const (
	blockSumsSQL       = `SELECT sums FROM block_sums WHERE sha256 = $1 AND size = $2 AND block_size = $3`
	upsertBlockSumsSQL = `INSERT INTO block_sums (sha256, size, block_size, sums) VALUES ($1, $2, $3, $4)
		ON CONFLICT (sha256, size, block_size) DO UPDATE SET sums = EXCLUDED.sums`
	// NOT EXISTS, which the planner makes an anti-join (by hash or by
	// merge) that reads files once. NOT IN would do so only while the
	// subquery's rows fit in work_mem, and past that scan files for each
	// row of block_sums.
	pruneBlockSumsSQL = `DELETE FROM block_sums b
		WHERE NOT EXISTS (SELECT FROM files f WHERE f.sha256 = b.sha256 AND f.size = b.size)`
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
	b := &larder.BlockSums{SHA256: sum, Size: size, BlockSize: blockSize}
	err := s.db.pool.QueryRow(ctx, blockSumsSQL, sum[:], size, blockSize).Scan(&b.Sums)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, larder.BlockSumsNotFound(sum, size, blockSize)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: block sums of %d-byte blocks of %x: %w", blockSize, sum, err)
	}
	if err := larder.CheckBlockSums(b); err != nil {
		return nil, fmt.Errorf("postgres: stored block sums of %x: %v", sum, larder.ErrorMessage(err))
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
	// pgx sends a nil slice, an empty content's sums, as NULL.
	sums := b.Sums
	if sums == nil {
		sums = []byte{}
	}
	if _, err := s.db.pool.Exec(ctx, upsertBlockSumsSQL, b.SHA256[:], b.Size, b.BlockSize, sums); err != nil {
		return fmt.Errorf("postgres: put block sums of %d-byte blocks of %x: %w", b.BlockSize, b.SHA256, err)
	}
	return nil
}

// PruneBlockSums removes the block sums of every content that no file
// record has (same SHA-256 and size, in any space), and returns how many
// it removed. It sees the file records committed when it starts: sums put
// for a file whose record is committed after that may go with the rest.
// They are a cache, and the next download of it hashes it again.
func (s *FileStore) PruneBlockSums(ctx context.Context) (int64, error) {
	tag, err := s.db.pool.Exec(ctx, pruneBlockSumsSQL)
	if err != nil {
		return 0, fmt.Errorf("postgres: prune block sums: %w", err)
	}
	return tag.RowsAffected(), nil
}

// programLimitExceeded is PostgreSQL's SQLSTATE for a value too large for
// where it goes: for the files table, an entry of the primary key's index
// beyond btree's limit of 2704 bytes, which a path over about 2700 bytes
// that does not compress makes.
const programLimitExceeded = "54000"

// pathTooLong returns, if err is PostgreSQL's refusal of a path too long
// for the primary key's index, an error with code EINVALID that says so,
// and otherwise nil. Internal/sqlite has no such limit.
func pathTooLong(op, path string, err error) error {
	if pgCode(err) != programLimitExceeded {
		return nil
	}
	return &larder.Error{
		Code:    larder.EINVALID,
		Message: fmt.Sprintf("%s: a path of %d bytes is too long to record", op, len(path)),
		Err:     err,
	}
}

// fileArgs returns the values of f's columns, in the order of
// upsertFileSQL.
func fileArgs(f *larder.File) []any {
	return []any{f.Space, f.Path, f.Size, f.Modified.UnixNano(), f.SHA256[:], f.Version}
}

const (
	setVersionSQL = `UPDATE files SET version = $1 WHERE space = $2 AND path = $3`
	countFilesSQL = `SELECT COALESCE(SUM(size), 0)::bigint, COUNT(*) FROM files WHERE space = $1 AND (path = $2 OR (path >= $3 AND path < $4))`
	addIntentSQL  = `INSERT INTO file_intents (backend, op, space, path, dest) VALUES ($1, $2, $3, $4, $5) RETURNING id`
	intentsSQL    = `SELECT id, backend, op, space, path, dest FROM file_intents WHERE backend = $1 OR starts_with(backend, $1 || '/') ORDER BY id`
	doneIntentSQL = `DELETE FROM file_intents WHERE id = $1`
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
	if err := s.db.pool.QueryRow(ctx, countFilesSQL, space, path, path+"/", path+"0").Scan(&u.Bytes, &u.Files); err != nil {
		return u, fmt.Errorf("postgres: count files %q in space %q: %w", path, space, err)
	}
	return u, nil
}

// AddIntent records in, committed before it returns, and sets its ID.
// An intent larder.CheckIntent refuses is an error with code EINVALID.
func (s *FileStore) AddIntent(ctx context.Context, in *larder.FileIntent) error {
	if err := larder.CheckIntent(in); err != nil {
		return err
	}
	if err := s.db.pool.QueryRow(ctx, addIntentSQL, in.Backend, in.Op, in.Space, in.Path, in.To).Scan(&in.ID); err != nil {
		return fmt.Errorf("postgres: add intent to %s %q: %w", in.Op, in.Path, err)
	}
	return nil
}

// Intents returns the intents not yet done of backend and of the journals
// below it, oldest first.
func (s *FileStore) Intents(ctx context.Context, backend string) ([]larder.FileIntent, error) {
	rows, err := s.db.pool.Query(ctx, intentsSQL, backend)
	if err != nil {
		return nil, fmt.Errorf("postgres: intents: %w", err)
	}
	defer rows.Close()
	var ins []larder.FileIntent
	for rows.Next() {
		var in larder.FileIntent
		if err := rows.Scan(&in.ID, &in.Backend, &in.Op, &in.Space, &in.Path, &in.To); err != nil {
			return nil, fmt.Errorf("postgres: intents: %w", err)
		}
		ins = append(ins, in)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: intents: %w", err)
	}
	return ins, nil
}

// DoneIntent removes the intent with the given id, if there is one.
func (s *FileStore) DoneIntent(ctx context.Context, id int64) error {
	if _, err := s.db.pool.Exec(ctx, doneIntentSQL, id); err != nil {
		return fmt.Errorf("postgres: intent %d done: %w", id, err)
	}
	return nil
}

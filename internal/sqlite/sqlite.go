// Package sqlite stores larder's accounts in an embedded SQLite database,
// through the pure-Go driver modernc.org/sqlite (no cgo), so that accounts
// survive a restart of the server.
//
// A DB is one database file in WAL mode with synchronous=FULL: a committed
// write survives a power loss, and readers never wait for the writer. Open
// brings the schema up to date by applying numbered migrations.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/larderfs/larder"
	msqlite "modernc.org/sqlite" // also registers the "sqlite" database/sql driver
	sqlite3 "modernc.org/sqlite/lib"
)

// busyTimeout is how long a connection waits for a lock held by another
// process (an admin command, another server on the same file) before it
// gives up with SQLITE_BUSY. Inside one process writers never meet, see DB.
const busyTimeout = 5 * time.Second

// DB is an open larder database. It is safe for concurrent use.
//
// Writes go through a pool of exactly one connection whose transactions
// begin IMMEDIATE. SQLite admits one writer at a time anyway; queueing the
// writers of this process in database/sql, rather than letting several
// connections race for the write lock, means they never see SQLITE_BUSY
// (and never hit the deadlock of two DEFERRED transactions both upgrading
// from read to write). BEGIN IMMEDIATE plus the busy timeout cover writers
// in other processes. Reads use a separate pool of several read-only
// connections, which WAL lets run beside the writer, so the per-request
// account lookup never queues behind a registration's fsync.
type DB struct {
	path  string
	write *sql.DB
	read  *sql.DB

	// stmts caches prepared statements by query text and pool; see stmt.
	stmts sync.Map // stmtKey -> *sql.Stmt

	// accounts caches UserByName's reads; its stamp file is the
	// database's path with "-accounts" added.
	accounts *accountCache
}

type stmtKey struct {
	read  bool
	query string
}

// Open opens the database at path, creating the file (mode 0600, as it holds
// password hashes) if it does not exist; the directory must exist. It then
// applies any migrations the file has not seen yet.
func Open(ctx context.Context, path string) (*DB, error) {
	return open(ctx, path, migrations)
}

// open is Open with the given migrations.
func open(ctx context.Context, path string, migrations []string) (*DB, error) {
	if path == "" {
		return nil, errors.New("sqlite: empty database path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	// SQLite would create the file with mode 0644; create it first so the
	// hashes are not world-readable. SQLite gives the -wal and -shm files
	// the mode of the database file.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}

	db := &DB{path: abs}
	if db.accounts, err = openAccountCache(abs + "-accounts"); err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	// The write pool comes first: the first connection turns the file into
	// WAL mode and the migrations create the tables before any reader runs.
	if db.write, err = sql.Open("sqlite", dsn(abs, false)); err != nil {
		db.accounts.close()
		return nil, fmt.Errorf("sqlite: open %s: %w", abs, err)
	}
	db.write.SetMaxOpenConns(1)
	db.write.SetMaxIdleConns(1)
	db.write.SetConnMaxIdleTime(0)
	if err := db.migrate(ctx, migrations); err != nil {
		db.write.Close()
		db.accounts.close()
		return nil, fmt.Errorf("sqlite: migrate %s: %w", abs, err)
	}

	if db.read, err = sql.Open("sqlite", dsn(abs, true)); err != nil {
		db.write.Close()
		db.accounts.close()
		return nil, fmt.Errorf("sqlite: open %s: %w", abs, err)
	}
	// Keep every reader open: database/sql closes connections above
	// MaxIdleConns (2 by default), and reopening one re-runs every pragma.
	n := max(4, 2*runtime.NumCPU())
	db.read.SetMaxOpenConns(n)
	db.read.SetMaxIdleConns(n)
	db.read.SetConnMaxIdleTime(0)
	if err := db.read.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", abs, err)
	}
	return db, nil
}

// dsn returns the data source name for path. The settings travel in the DSN
// rather than in one-off PRAGMA statements because the driver applies them
// to every connection it opens, and database/sql opens connections at will.
func dsn(path string, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	// FULL: in WAL mode NORMAL may lose the last commits on power loss, and
	// an account that the client was told is registered must stay so.
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(1)")
	if readOnly {
		// A reader that tries to write fails instead of taking the write
		// lock behind the write pool's back.
		q.Set("_query_only", "1")
	} else {
		q.Set("_txlock", "immediate")
	}
	// A file: URI with an escaped path, so that a '?' or '#' in the path
	// cannot be mistaken for the start of the parameters.
	u := url.URL{Scheme: "file", Path: path, RawQuery: q.Encode()}
	return u.String()
}

// Close closes the database. Work in flight fails.
func (db *DB) Close() error {
	var errs []error
	db.stmts.Range(func(k, v any) bool {
		errs = append(errs, v.(*sql.Stmt).Close())
		db.stmts.Delete(k)
		return true
	})
	if db.read != nil {
		errs = append(errs, db.read.Close())
	}
	errs = append(errs, db.write.Close(), db.accounts.close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sqlite: close %s: %w", db.path, err)
	}
	return nil
}

// stmt returns query prepared on the read or the write pool, preparing it
// on first use. Preparing once saves parsing and planning the SQL on every
// call, which matters for the account lookup on every request; database/sql
// then prepares it once per pooled connection.
func (db *DB) stmt(ctx context.Context, read bool, query string) (*sql.Stmt, error) {
	k := stmtKey{read: read, query: query}
	if s, ok := db.stmts.Load(k); ok {
		return s.(*sql.Stmt), nil
	}
	pool := db.write
	if read {
		pool = db.read
	}
	s, err := pool.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if prev, loaded := db.stmts.LoadOrStore(k, s); loaded {
		s.Close() // another goroutine prepared it first
		return prev.(*sql.Stmt), nil
	}
	return s, nil
}

// timeLayout stores times as fixed-width UTC text: readable in the sqlite3
// shell, exact to the nanosecond, and ordered when compared as strings.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(timeLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("sqlite: bad stored time %q: %w", s, err)
	}
	return t, nil
}

// inTx runs f in a transaction on the write pool, which begins IMMEDIATE,
// and commits if f returns nil.
func (db *DB) inTx(ctx context.Context, f func(*sql.Tx) error) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() // a no-op after Commit
	if err := f(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// noSpace gives err, from a write, the code ENOSPACE if the database's file
// system is full: a change refused for it is retried later (or once space
// is freed), and the client is told so instead of "internal error".
func noSpace(err error) error {
	var e *msqlite.Error
	if errors.As(err, &e) && e.Code()&0xff == sqlite3.SQLITE_FULL {
		return &larder.Error{Code: larder.ENOSPACE, Message: "the server is out of disk space; retry later", Err: err}
	}
	return err
}

// scanner is what a row offers to be read: *sql.Row and *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// collect reads every row of rows with scan, in order, and closes rows.
func collect[T any](rows *sql.Rows, scan func(scanner) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

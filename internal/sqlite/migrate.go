package sqlite

import (
	"context"
	"fmt"
	"time"
)

// migrations is the schema's history: migration i+1 is migrations[i]. Each
// runs once, in its own transaction, and is recorded in schema_migrations.
// Never edit or reorder an entry that has shipped; append a new one.
var migrations = []string{
	// 1: accounts. AUTOINCREMENT so that an id is never reused after a
	// deletion: rows elsewhere (files, audit) that name an old id must not
	// come to name a new user. name uses the default BINARY collation, so
	// names compare byte for byte ("Bob" and "bob" are two users), and its
	// UNIQUE index serves the lookup by name.
	`CREATE TABLE users (
		id         INTEGER PRIMARY KEY AUTOINCREMENT,
		name       TEXT NOT NULL UNIQUE,
		verifier   TEXT NOT NULL,
		created_at TEXT NOT NULL,
		updated_at TEXT NOT NULL
	) STRICT`,

	// 2: disabled accounts. Rows from before read as enabled. A CHECK on an
	// added column holds for the rows already there, as they all take the
	// default.
	`ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1))`,

	// 3: the audit trail (see EventStore). seq orders events by arrival
	// and AUTOINCREMENT never hands one out twice, so that a reader
	// following the trail by seq never misses or repeats an event. id is
	// the event's UUID as 16 bytes; its UNIQUE index makes a redelivered
	// event a no-op. time is formatTime's fixed-width UTC text, exact to
	// the nanosecond and ordered as text. Absent text and numbers are ''
	// and 0; an absent sha256 is NULL. The user column is "username", as
	// in internal/postgres, where "user" is a reserved word. The indexes
	// serve the filters of Events: a user's events and a time range, each
	// by time. Kinds have none: each index costs the insert of every event
	// (measured: a kind index adds a quarter to it), on the server's
	// cores, while a query by kind is an operator's, rare, and served by
	// the time index with a filter.
	`CREATE TABLE events (
		seq         INTEGER PRIMARY KEY AUTOINCREMENT,
		id          BLOB NOT NULL UNIQUE CHECK (length(id) = 16),
		time        TEXT NOT NULL,
		kind        TEXT NOT NULL,
		server      TEXT NOT NULL,
		username    TEXT NOT NULL,
		remote      TEXT NOT NULL,
		path        TEXT NOT NULL,
		bytes       INTEGER NOT NULL,
		sha256      BLOB CHECK (length(sha256) = 32),
		status      INTEGER NOT NULL,
		duration_ns INTEGER NOT NULL,
		reason      TEXT NOT NULL
	) STRICT;
	CREATE INDEX events_username_time ON events (username, time);
	CREATE INDEX events_time ON events (time)`,

	// 4: the records of stored files (see FileStore), keyed by space (the
	// owner's name, '' for the shared area) and path. The primary key's
	// BINARY order is byte order, so its index serves a lookup, a space's
	// sums, and the range of paths below a folder. modified is the file's
	// modification time in nanoseconds since 1970 UTC: exact, where text
	// or a float would need care, as callers compare it with the file's
	// time on disk. WITHOUT ROWID: the table is its key's index, and rows
	// are small.
	`CREATE TABLE files (
		space    TEXT NOT NULL,
		path     TEXT NOT NULL CHECK (path <> ''),
		size     INTEGER NOT NULL CHECK (size >= 0),
		modified INTEGER NOT NULL,
		sha256   BLOB NOT NULL CHECK (length(sha256) = 32),
		PRIMARY KEY (space, path)
	) STRICT, WITHOUT ROWID`,

	// 5: the block sums of contents (see FileStore.BlockSums), keyed by
	// the content's SHA-256 and size and the block size, not by a file:
	// every file with those bytes shares them. sums holds 32 bytes per
	// block, up to 8 MiB (larder.MaxBlockSums), so this is a rowid table:
	// WITHOUT ROWID suits small rows, and a large one would spill its
	// overflow pages from the key's b-tree itself.
	`CREATE TABLE block_sums (
		sha256     BLOB NOT NULL CHECK (length(sha256) = 32),
		size       INTEGER NOT NULL CHECK (size >= 0),
		block_size INTEGER NOT NULL CHECK (block_size > 0),
		sums       BLOB NOT NULL,
		PRIMARY KEY (sha256, size, block_size)
	) STRICT`,

	// 6: settings that every program on the database must agree on (see
	// SettingStore): the servers' password-hash policy, which the
	// administrator's commands read. A handful of rows, keyed by name.
	`CREATE TABLE settings (
		key        TEXT PRIMARY KEY,
		value      TEXT NOT NULL,
		updated_at TEXT NOT NULL
	) STRICT, WITHOUT ROWID`,

	// 7: file records keyed by the owner's account id (larder.SpaceOf:
	// '#' and the id), not its name, so that an account registered
	// again under a deleted one's name starts empty. The records of names
	// no account has any more are a deleted account's: they go. The
	// others move in two steps, through a name behind a control
	// character, which no name and no id key can be, so that no row
	// takes a key another still has.
	`DELETE FROM files WHERE space <> '' AND space NOT IN (SELECT name FROM users);
	UPDATE files SET space = char(1) || space WHERE space <> '';
	UPDATE files SET space = '#' || (SELECT id FROM users WHERE char(1) || users.name = files.space)
		WHERE space <> ''`,

	// 8: the credential generation (larder.User.CredentialGen), which a
	// password change raises and a rehash keeps. Rows from before start
	// at 0.
	`ALTER TABLE users ADD COLUMN credential_gen INTEGER NOT NULL DEFAULT 0`,

	// 9: what identifies the content a file record's SHA-256 was taken
	// of (larder.File.Version), and the journal of changes to stored
	// files (larder.FileIntent) that internal/files replays at start.
	// Records from before have no version: each is hashed again once, at
	// its next read. AUTOINCREMENT: an id is never given twice, so that
	// a DoneIntent late for a removed intent cannot remove a newer one.
	`ALTER TABLE files ADD COLUMN version TEXT NOT NULL DEFAULT '';
	CREATE TABLE file_intents (
		id      INTEGER PRIMARY KEY AUTOINCREMENT,
		backend TEXT NOT NULL,
		op      TEXT NOT NULL,
		space   TEXT NOT NULL,
		path    TEXT NOT NULL,
		dest    TEXT NOT NULL
	) STRICT`,

	// 10: the credential of LNP/1's channel-bound login
	// (larder.User.LNPCredential). Rows from before have none: they are
	// enrolled at their next LNP/1 login.
	`ALTER TABLE users ADD COLUMN lnp_credential TEXT NOT NULL DEFAULT ''`,

	// 11: device credentials (larder.Device), which log in to LNP/1
	// without the password. They go with their account. The index on
	// user_id serves a listing of an account's devices, and the cascade.
	`CREATE TABLE devices (
		id         BLOB PRIMARY KEY CHECK (length(id) = 16),
		user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
		label      TEXT NOT NULL,
		credential TEXT NOT NULL,
		created_at TEXT NOT NULL,
		expires_at TEXT NOT NULL,
		last_used  TEXT NOT NULL
	) STRICT;
	CREATE INDEX devices_user_id ON devices (user_id)`,

	// 12: an account's own quota (larder.User.Quota), each bound NULL for
	// the server's default and 0 for none, and its last login
	// (larder.User.LastLogin), NULL for none recorded. Rows from before
	// keep the default and have none.
	`ALTER TABLE users ADD COLUMN quota_bytes INTEGER CHECK (quota_bytes >= 0);
	ALTER TABLE users ADD COLUMN quota_files INTEGER CHECK (quota_files >= 0);
	ALTER TABLE users ADD COLUMN last_login TEXT`,

	// 13: an event's time as an integer, nanoseconds since 1970 UTC
	// (see EventStore), rather than text: its two indexes' keys shrink
	// from 30 bytes to 8, and each insert binds and compares a number
	// (measured: a fifth less CPU per event stored). SQLite changes a
	// column's type only by copying the table. The copy keeps every seq,
	// and the table's AUTOINCREMENT counter, so that no seq handed out
	// before (to an event since pruned) is handed out again. A time that
	// is not formatTime's text becomes NULL, which fails the copy: it is
	// not guessed at (migrationHints says what to do). A time beyond what
	// int64 nanoseconds hold (before 1677-09-21 or after 2262-04-11)
	// becomes the nearest bound, as eventTime stores it; computed without
	// overflow, which SQLite would turn into a REAL the table refuses.
	`CREATE TABLE events_v13 (
		seq         INTEGER PRIMARY KEY AUTOINCREMENT,
		id          BLOB NOT NULL UNIQUE CHECK (length(id) = 16),
		time        INTEGER NOT NULL,
		kind        TEXT NOT NULL,
		server      TEXT NOT NULL,
		username    TEXT NOT NULL,
		remote      TEXT NOT NULL,
		path        TEXT NOT NULL,
		bytes       INTEGER NOT NULL,
		sha256      BLOB CHECK (length(sha256) = 32),
		status      INTEGER NOT NULL,
		duration_ns INTEGER NOT NULL,
		reason      TEXT NOT NULL
	) STRICT;
	INSERT INTO events_v13 (seq, id, time, kind, server, username, remote, path, bytes, sha256, status, duration_ns, reason)
		SELECT seq, id, CASE WHEN s IS NULL THEN NULL
				WHEN s > 9223372036 OR s = 9223372036 AND ns > 854775807 THEN 9223372036854775807
				WHEN s < -9223372037 OR s = -9223372037 AND ns < 145224192 THEN -9223372036854775808
				WHEN s >= 0 THEN s * 1000000000 + ns
				ELSE (s + 1) * 1000000000 + (ns - 1000000000) END,
			kind, server, username, remote, path, bytes, sha256, status, duration_ns, reason
		FROM (SELECT *, CASE WHEN length(time) = 30 AND substr(time, 20, 1) = '.' AND substr(time, 30, 1) = 'Z'
				THEN unixepoch(substr(time, 1, 19)) END AS s, CAST(substr(time, 21, 9) AS INTEGER) AS ns FROM events)
		ORDER BY seq;
	DELETE FROM sqlite_sequence WHERE name = 'events_v13';
	INSERT INTO sqlite_sequence (name, seq) SELECT 'events_v13', seq FROM sqlite_sequence WHERE name = 'events';
	DROP TABLE events;
	ALTER TABLE events_v13 RENAME TO events;
	CREATE INDEX events_username_time ON events (username, time);
	CREATE INDEX events_time ON events (time)`,
}

// migrationHints say what to do when a migration fails on the data it
// finds, by version.
var migrationHints = map[int]string{
	13: "an event's time is not the text larder writes (2006-01-02T15:04:05.000000000Z); nothing was changed. " +
		"List such events with: sqlite3 DATABASE \"SELECT seq, time FROM events WHERE unixepoch(substr(time, 1, 19)) IS NULL " +
		"OR length(time) <> 30\", correct or delete them, and start again",
}

// migrate applies those of migrations that the database has not seen yet.
// Each transaction begins IMMEDIATE (see DB), so two processes opening a new
// file at once apply each migration exactly once. Open passes the package's
// migrations; tests pass a prefix of them to build an older database.
func (db *DB) migrate(ctx context.Context, migrations []string) error {
	if _, err := db.write.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		applied_at TEXT NOT NULL
	) STRICT`); err != nil {
		return err
	}

	var newest int
	if err := db.write.QueryRowContext(ctx,
		`SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&newest); err != nil {
		return err
	}
	// A newer binary has migrated this file; running old code on a schema
	// it does not know could corrupt data.
	if newest > len(migrations) {
		return fmt.Errorf("database schema version %d is newer than this program's %d", newest, len(migrations))
	}

	// Migrations apply in order, so every version up to newest is done.
	for v := newest + 1; v <= len(migrations); v++ {
		if err := db.applyMigration(ctx, v, migrations[v-1]); err != nil {
			if hint := migrationHints[v]; hint != "" {
				return fmt.Errorf("migration %d: %w; %s", v, err, hint)
			}
			return fmt.Errorf("migration %d: %w", v, err)
		}
	}
	return nil
}

func (db *DB) applyMigration(ctx context.Context, version int, query string) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() // a no-op after Commit

	// Checked inside the transaction: another process may have applied it
	// since migrate read the newest version.
	var n int
	if err := tx.QueryRowContext(ctx,
		`SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, version).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, query); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`,
		version, formatTime(time.Now())); err != nil {
		return err
	}
	return tx.Commit()
}

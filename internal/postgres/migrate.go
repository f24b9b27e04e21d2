package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// migrations is the schema's history: migration i+1 is migrations[i]. They
// run in one transaction and are recorded in schema_migrations. Never edit
// or reorder an entry that has shipped; append a new one.
var migrations = []string{
	// 1: accounts. An identity column never hands out an id twice, so
	// that rows elsewhere (files, audit) that name an old id never come to
	// name a new user. name is COLLATE "C", so that names compare and sort
	// byte for byte whatever the database's locale ("Bob" and "bob" are two
	// users, as in SQLite's BINARY collation); its UNIQUE index serves the
	// lookup by name and ListUsers' keyset paging. PostgreSQL keeps times
	// to the microsecond.
	`CREATE TABLE users (
		id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
		name       text COLLATE "C" NOT NULL UNIQUE,
		verifier   text NOT NULL,
		disabled   boolean NOT NULL DEFAULT false,
		created_at timestamptz NOT NULL,
		updated_at timestamptz NOT NULL
	)`,

	// 2: the audit trail (see EventStore). seq orders events by arrival;
	// id is the event's UUID, and its UNIQUE index makes a redelivered
	// event a no-op. time is a timestamptz, which keeps microseconds: the
	// spool and the JSON form keep nanoseconds, this table their first six
	// digits. Absent text and numbers are '' and 0; an absent sha256 is
	// NULL. The user column is "username", "user" being a reserved word.
	// Text that is compared is COLLATE "C": byte for byte, as in SQLite,
	// and cheaper to index. The indexes serve the filters of Events: a
	// user's events, kinds of events, and a time range, each by time.
	`CREATE TABLE events (
		seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
		id          uuid NOT NULL UNIQUE,
		time        timestamptz NOT NULL,
		kind        text COLLATE "C" NOT NULL,
		server      text NOT NULL,
		username    text COLLATE "C" NOT NULL,
		remote      text NOT NULL,
		path        text NOT NULL,
		bytes       bigint NOT NULL,
		sha256      bytea CHECK (octet_length(sha256) = 32),
		status      integer NOT NULL,
		duration_ns bigint NOT NULL,
		reason      text NOT NULL
	);
	CREATE INDEX events_username_time ON events (username, time);
	CREATE INDEX events_kind_time ON events (kind, time);
	CREATE INDEX events_time ON events (time)`,

	// 3: the records of stored files (see FileStore), keyed by space (the
	// owner's name, '' for the shared area) and path. Both are COLLATE
	// "C", so that the primary key's order is byte order, as in SQLite:
	// its index serves a lookup, a space's sums, and the range of paths
	// below a folder. modified is the file's modification time in
	// nanoseconds since 1970 UTC, not a timestamptz, which keeps only
	// microseconds: callers compare it with the file's time on disk.
	`CREATE TABLE files (
		space    text COLLATE "C" NOT NULL,
		path     text COLLATE "C" NOT NULL CHECK (path <> ''),
		size     bigint NOT NULL CHECK (size >= 0),
		modified bigint NOT NULL,
		sha256   bytea NOT NULL CHECK (octet_length(sha256) = 32),
		PRIMARY KEY (space, path)
	)`,

	// 4: the block sums of contents (see FileStore.BlockSums), keyed by
	// the content's SHA-256 and size and the block size, not by a file:
	// every file with those bytes shares them. block_size is a bigint, as
	// in SQLite, so that both stores accept every block size a Go int
	// holds. sums holds 32 bytes per block, up to 8 MiB
	// (larder.MaxBlockSums), kept out of line by TOAST; EXTERNAL stores
	// it uncompressed, as SHA-256 sums do not compress and trying costs
	// every write.
	`CREATE TABLE block_sums (
		sha256     bytea NOT NULL CHECK (octet_length(sha256) = 32),
		size       bigint NOT NULL CHECK (size >= 0),
		block_size bigint NOT NULL CHECK (block_size > 0),
		sums       bytea NOT NULL,
		PRIMARY KEY (sha256, size, block_size)
	);
	ALTER TABLE block_sums ALTER COLUMN sums SET STORAGE EXTERNAL`,

	// 5: settings that every server on the database must agree on (see
	// SettingStore): the servers' password-hash policy, which the
	// administrator's commands read. A handful of rows, keyed by name.
	`CREATE TABLE settings (
		key        text COLLATE "C" PRIMARY KEY,
		value      text NOT NULL,
		updated_at timestamptz NOT NULL
	)`,

	// 6: file records keyed by the owner's account id (larder.SpaceOf:
	// '#' and the id), not its name, so that an account registered
	// again under a deleted one's name starts empty. The records of names
	// no account has any more are a deleted account's: they go. The
	// others move in two steps, through a name behind a control
	// character, which no name and no id key can be, so that no row
	// takes a key another still has (a unique index is checked row by
	// row).
	`DELETE FROM files f WHERE f.space <> '' AND NOT EXISTS (SELECT FROM users u WHERE u.name = f.space);
	UPDATE files SET space = chr(1) || space WHERE space <> '';
	UPDATE files f SET space = '#' || u.id FROM users u WHERE chr(1) || u.name = f.space`,

	// 7: the credential generation (larder.User.CredentialGen), which a
	// password change raises and a rehash keeps. Rows from before start
	// at 0.
	`ALTER TABLE users ADD COLUMN credential_gen bigint NOT NULL DEFAULT 0`,

	// 8: what identifies the content a file record's SHA-256 was taken
	// of (larder.File.Version), and the journal of changes to stored
	// files (larder.FileIntent) that internal/files replays at start.
	// Records from before have no version: each is hashed again once, at
	// its next read.
	`ALTER TABLE files ADD COLUMN version text COLLATE "C" NOT NULL DEFAULT '';
	CREATE TABLE file_intents (
		id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
		backend text COLLATE "C" NOT NULL,
		op      text COLLATE "C" NOT NULL,
		space   text COLLATE "C" NOT NULL,
		path    text COLLATE "C" NOT NULL,
		dest    text COLLATE "C" NOT NULL
	)`,

	// 9: the credential of LNP/1's channel-bound login
	// (larder.User.LNPCredential). Rows from before have none: they are
	// enrolled at their next LNP/1 login.
	`ALTER TABLE users ADD COLUMN lnp_credential text NOT NULL DEFAULT ''`,

	// 10: device credentials (larder.Device), which log in to LNP/1
	// without the password. They go with their account. The index on
	// user_id serves a listing of an account's devices, and the cascade.
	// last_used is NULL for a device not used yet.
	`CREATE TABLE devices (
		id         bytea PRIMARY KEY CHECK (length(id) = 16),
		user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
		label      text NOT NULL,
		credential text NOT NULL,
		created_at timestamptz NOT NULL,
		expires_at timestamptz NOT NULL,
		last_used  timestamptz
	);
	CREATE INDEX devices_user_id ON devices (user_id)`,

	// 11: indexes for "larder audit query --path" and "--remote", whose
	// filters select a value and what begins with it as a range of the
	// column in byte order: the columns become COLLATE "C" (a change of
	// collation rewrites no row, as the bytes stay the same), so that
	// the range is the same as in SQLite whatever the database's
	// locale, and its index serves it. Statuses have no index: a few
	// values cover most events.
	`ALTER TABLE events ALTER COLUMN path TYPE text COLLATE "C", ALTER COLUMN remote TYPE text COLLATE "C";
	CREATE INDEX events_path ON events (path);
	CREATE INDEX events_remote ON events (remote)`,

	// 12: an account's own quota (larder.User.Quota), each bound NULL for
	// the server's default and 0 for none, and its last login
	// (larder.User.LastLogin), NULL for none recorded. Rows from before
	// keep the default and have none.
	`ALTER TABLE users ADD COLUMN quota_bytes bigint CHECK (quota_bytes >= 0),
		ADD COLUMN quota_files bigint CHECK (quota_files >= 0),
		ADD COLUMN last_login timestamptz`,
}

// migrationLock is the key of the advisory lock that serializes migrations
// between servers starting at once: "larder" in ASCII, then 1. Advisory
// locks are per database, so servers on different databases never wait for
// each other.
const migrationLock int64 = 0x6c61_7264_6572_0001

// migrate applies the migrations that the database has not seen yet, all
// in one transaction that first takes migrationLock: a second server that
// starts meanwhile waits, then finds the work done. PostgreSQL's DDL is
// transactional, so a failed migration leaves nothing half done.
func (db *DB) migrate(ctx context.Context) error {
	return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
			return err
		}
		// Names travel as UTF-8; in a database of another encoding the
		// server would convert them, refuse some, and sort them by other
		// bytes than the client's.
		var encoding string
		if err := tx.QueryRow(ctx, `SELECT current_setting('server_encoding')`).Scan(&encoding); err != nil {
			return err
		}
		if encoding != "UTF8" {
			return fmt.Errorf("the database's encoding is %s; larder needs UTF8", encoding)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    integer PRIMARY KEY,
			applied_at timestamptz NOT NULL DEFAULT now()
		)`); err != nil {
			return err
		}
		var newest int
		if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&newest); err != nil {
			return err
		}
		// A newer binary has migrated this database; running old code on
		// a schema it does not know could corrupt data.
		if newest > len(migrations) {
			return fmt.Errorf("database schema version %d is newer than this program's %d", newest, len(migrations))
		}
		for v := newest + 1; v <= len(migrations); v++ {
			if _, err := tx.Exec(ctx, migrations[v-1]); err != nil {
				return fmt.Errorf("migration %d: %w", v, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, v); err != nil {
				return fmt.Errorf("migration %d: %w", v, err)
			}
		}
		return nil
	})
}

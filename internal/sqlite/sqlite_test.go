package sqlite

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/larderfs/larder"
)

func openTest(t testing.TB, path string) *DB {
	t.Helper()
	db, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open(%q): %v", path, err)
	}
	return db
}

// TestOpenPragmas checks the settings on several pooled connections of each
// pool at once, held open together so that they are distinct connections:
// the settings must hold on every connection database/sql opens, not only
// on the first.
func TestOpenPragmas(t *testing.T) {
	db := openTest(t, filepath.Join(t.TempDir(), "larder.db"))
	defer db.Close()
	ctx := context.Background()

	for name, pool := range map[string]*sql.DB{"read": db.read, "write": db.write} {
		n := pool.Stats().MaxOpenConnections
		var conns []*sql.Conn
		for range min(n, 3) {
			c, err := pool.Conn(ctx)
			if err != nil {
				t.Fatalf("%s pool: Conn: %v", name, err)
			}
			defer c.Close()
			conns = append(conns, c)
		}
		for i, c := range conns {
			for _, tc := range []struct{ pragma, want string }{
				{"journal_mode", "wal"},
				{"synchronous", "2"}, // FULL
				{"foreign_keys", "1"},
				{"busy_timeout", "5000"},
			} {
				var got string
				if err := c.QueryRowContext(ctx, "PRAGMA "+tc.pragma).Scan(&got); err != nil {
					t.Fatalf("%s pool, conn %d: PRAGMA %s: %v", name, i, tc.pragma, err)
				}
				if got != tc.want {
					t.Errorf("%s pool, conn %d: PRAGMA %s = %q, want %q", name, i, tc.pragma, got, tc.want)
				}
			}
		}
	}
}

func TestOpenFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "larder.db")
	db := openTest(t, path)
	defer db.Close()
	for _, p := range []string{path, path + "-wal"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != 0o600 {
			t.Errorf("mode of %s = %v, want 0600", filepath.Base(p), got)
		}
	}
}

func TestOpenMissingDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no", "such", "dir", "larder.db")
	if db, err := Open(context.Background(), path); err == nil {
		db.Close()
		t.Fatalf("Open(%q) succeeded, want an error", path)
	}
}

// TestOpenOddPath checks that a path holding URI syntax is taken literally.
func TestOpenOddPath(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "odd?name#x%20 y.db")
	db := openTest(t, path)
	db.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database not at the given path: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "odd?name#x%20 y.db") {
			t.Errorf("unexpected file %q in the directory", e.Name())
		}
	}
}

func TestReadPoolIsReadOnly(t *testing.T) {
	db := openTest(t, filepath.Join(t.TempDir(), "larder.db"))
	defer db.Close()
	_, err := db.read.ExecContext(context.Background(),
		`INSERT INTO users (name, verifier, created_at, updated_at) VALUES ('x', 'y', 'z', 'z')`)
	if err == nil {
		t.Fatal("insert through the read pool succeeded, want an error")
	}
}

func schemaVersions(t *testing.T, db *DB) []int {
	t.Helper()
	rows, err := db.read.QueryContext(context.Background(), `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var vs []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return vs
}

func TestMigrationsIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "larder.db")
	for i := range 3 {
		db := openTest(t, path)
		vs := schemaVersions(t, db)
		if len(vs) != len(migrations) {
			t.Errorf("open %d: %d migrations recorded, want %d", i+1, len(vs), len(migrations))
		}
		for j, v := range vs {
			if v != j+1 {
				t.Errorf("open %d: recorded versions %v, want 1..%d", i+1, vs, len(migrations))
				break
			}
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestMigrationsRefuseNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "larder.db")
	db := openTest(t, path)
	if _, err := db.write.ExecContext(context.Background(),
		`INSERT INTO schema_migrations (version, applied_at) VALUES (?, 'later')`, len(migrations)+1); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if db, err := Open(context.Background(), path); err == nil {
		db.Close()
		t.Fatal("Open of a database from a newer program succeeded, want an error")
	}
}

// TestUpgradeFromFirstSchema opens a database that only the first migration
// built, as the previous release left it, and checks that it upgrades in
// place: the disabled column appears, and the old accounts read as enabled
// and can be disabled.
func TestUpgradeFromFirstSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "larder.db")
	ctx := context.Background()
	old, err := open(ctx, path, migrations[:1])
	if err != nil {
		t.Fatalf("open with the first migration only: %v", err)
	}
	// The previous release's insert, which knows no disabled column.
	if _, err := old.write.ExecContext(ctx,
		`INSERT INTO users (name, verifier, created_at, updated_at) VALUES (?, ?, ?, ?)`,
		"olduser", "old-verifier", formatTime(time.Now()), formatTime(time.Now())); err != nil {
		t.Fatal(err)
	}
	if got := schemaVersions(t, old); !slices.Equal(got, []int{1}) {
		t.Fatalf("versions of the old database: got %v, want [1]", got)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	db := openTest(t, path)
	defer db.Close()
	var all []int
	for v := range len(migrations) {
		all = append(all, v+1)
	}
	if got, want := schemaVersions(t, db), all; !slices.Equal(got, want) {
		t.Errorf("versions after the upgrade: got %v, want %v", got, want)
	}
	var (
		typ, dflt string
		notNull   bool
	)
	if err := db.read.QueryRowContext(ctx,
		`SELECT type, "notnull", dflt_value FROM pragma_table_info('users') WHERE name = 'disabled'`).Scan(&typ, &notNull, &dflt); err != nil {
		t.Fatalf("column disabled after the upgrade: %v", err)
	}
	if typ != "INTEGER" || !notNull || dflt != "0" {
		t.Errorf("column disabled: got type %q, not null %v, default %q; want INTEGER, true, 0", typ, notNull, dflt)
	}

	s := NewUserStore(db)
	u, err := s.UserByName(ctx, "olduser")
	if err != nil {
		t.Fatalf("UserByName(olduser) after the upgrade: %v", err)
	}
	if u.Disabled || u.Verifier != "old-verifier" {
		t.Errorf("olduser after the upgrade: got Disabled %v, Verifier %q; want false, %q", u.Disabled, u.Verifier, "old-verifier")
	}
	if err := s.SetDisabled(ctx, "olduser", true); err != nil {
		t.Fatalf("SetDisabled(olduser): %v", err)
	}
	if u, err := s.UserByName(ctx, "olduser"); err != nil || !u.Disabled {
		t.Errorf("olduser after SetDisabled: got %+v, %v; want Disabled", u, err)
	}
	// The column holds booleans only.
	if _, err := db.write.ExecContext(ctx, `UPDATE users SET disabled = 2`); err == nil {
		t.Error("storing disabled = 2: got nil, want a CHECK failure")
	}
}

// TestAccountCacheUsedAndBounded: a lookup is served from the cache while
// the stamp is unchanged, even when the row changed behind every store's
// back (as if the process that changed it had died before its stamp), and
// then for no longer than the TTL.
func TestAccountCacheUsedAndBounded(t *testing.T) {
	db := openTest(t, filepath.Join(t.TempDir(), "larder.db"))
	defer db.Close()
	db.accounts.ttl = 200 * time.Millisecond
	ctx := context.Background()
	s := NewUserStore(db)
	if err := s.CreateUser(ctx, &larder.User{Name: "alice", Verifier: "v1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UserByName(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.write.ExecContext(ctx, `UPDATE users SET disabled = 1 WHERE name = 'alice'`); err != nil {
		t.Fatal(err)
	}
	if u, err := s.UserByName(ctx, "alice"); err != nil || u.Disabled {
		t.Fatalf("right after an unstamped change: %+v, %v; want the cached, enabled account", u, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		u, err := s.UserByName(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		if u.Disabled {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("an unstamped change still unseen 10s after, with a TTL of 200ms")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAccountStampFileCut: a stamp file cut short behind larder's back
// makes the mapped read fault; the lookup must then go to the database,
// not crash the server, and the next change's stamp restores the file.
func TestAccountStampFileCut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "larder.db")
	db := openTest(t, path)
	defer db.Close()
	if db.accounts.mapped == nil {
		t.Skip("the stamp file is not mapped on this system")
	}
	ctx := context.Background()
	s := NewUserStore(db)
	if err := s.CreateUser(ctx, &larder.User{Name: "alice", Verifier: "v1"}); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path+"-accounts", 0); err != nil {
		t.Fatal(err)
	}
	if _, ok := db.accounts.stamp(); ok {
		t.Fatal("a stamp read from a file cut to nothing")
	}
	if u, err := s.UserByName(ctx, "alice"); err != nil || u.Verifier != "v1" {
		t.Fatalf("lookup with the stamp file cut: %+v, %v", u, err)
	}
	if err := s.SetDisabled(ctx, "alice", true); err != nil {
		t.Fatal(err)
	}
	if _, ok := db.accounts.stamp(); !ok {
		t.Fatal("no stamp after a change rewrote the file")
	}
	if u, err := s.UserByName(ctx, "alice"); err != nil || !u.Disabled {
		t.Fatalf("lookup after the change: %+v, %v", u, err)
	}
}

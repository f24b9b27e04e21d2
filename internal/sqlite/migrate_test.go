package sqlite

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/larderfs/larder"
)

// TestUpgradeKeysSpacesByID opens a database whose file records are keyed
// by the owner's name, as before the spaces were keyed by account id, and
// checks that the upgrade keys each by its account's id, drops those of
// names no account has (a deleted account's), and leaves the shared
// area's alone, even where a name looks like an id key.
func TestUpgradeKeysSpacesByID(t *testing.T) {
	path := filepath.Join(t.TempDir(), "larder.db")
	ctx := context.Background()
	old, err := open(ctx, path, migrations[:5])
	if err != nil {
		t.Fatal(err)
	}
	now := formatTime(time.Now())
	ids := map[string]int64{}
	for _, name := range []string{"alice", "#1", "gone", "bob"} {
		res, err := old.write.ExecContext(ctx, `INSERT INTO users (name, verifier, created_at, updated_at) VALUES (?, 'v', ?, ?)`, name, now, now)
		if err != nil {
			t.Fatal(err)
		}
		ids[name], _ = res.LastInsertId()
	}
	// gone was deleted, as "admin user delete" did: only its row went.
	if _, err := old.write.ExecContext(ctx, `DELETE FROM users WHERE name = 'gone'`); err != nil {
		t.Fatal(err)
	}
	for _, space := range []string{"", "alice", "#1", "gone"} {
		for _, p := range []string{"f", "d/g"} {
			if _, err := old.write.ExecContext(ctx, `INSERT INTO files (space, path, size, modified, sha256) VALUES (?, ?, 10, 0, zeroblob(32))`, space, p); err != nil {
				t.Fatal(err)
			}
		}
	}
	must(t, old.Close())

	db := openTest(t, path)
	defer db.Close()
	fs := NewFileStore(db)
	want := map[string]larder.Usage{
		"":                           {Bytes: 20, Files: 2},
		larder.SpaceOf(ids["alice"]): {Bytes: 20, Files: 2},
		larder.SpaceOf(ids["#1"]):    {Bytes: 20, Files: 2},
		larder.SpaceOf(ids["gone"]):  {},
		larder.SpaceOf(ids["bob"]):   {},
		"alice":                      {}, "#1x": {}, "gone": {},
	}
	for space, w := range want {
		if u, err := fs.SpaceUsage(ctx, space); err != nil || u != w {
			t.Errorf("SpaceUsage(%q) after the upgrade: got %+v, %v; want %+v", space, u, err, w)
		}
	}
	var n int
	if err := db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM files`).Scan(&n); err != nil || n != 6 {
		t.Errorf("records after the upgrade: got %d, %v; want 6", n, err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

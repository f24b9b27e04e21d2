package postgres

import (
	"context"
	"strings"
	"testing"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/postgres/pgtest"
)

// TestMigrationKeysSpacesByID runs the migration that keys file records by
// the owner's account id over records keyed by name, as an older version
// left them: each is keyed by its account's id, those of names no account
// has (a deleted account's) go, and the shared area's stay, even where a
// name looks like an id key.
func TestMigrationKeysSpacesByID(t *testing.T) {
	db := openTest(t, pgtest.URL(t))
	ctx := context.Background()
	var migration string
	for _, m := range migrations {
		if strings.Contains(m, "chr(1)") {
			migration = m
		}
	}
	if migration == "" {
		t.Fatal("no migration keys the spaces by id")
	}
	ids := map[string]int64{}
	for _, name := range []string{"alice", "#1", "gone", "bob"} {
		var id int64
		if err := db.pool.QueryRow(ctx, `INSERT INTO users (name, verifier, created_at, updated_at) VALUES ($1, 'v', now(), now()) RETURNING id`, name).Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids[name] = id
	}
	if _, err := db.pool.Exec(ctx, `DELETE FROM users WHERE name = 'gone'`); err != nil {
		t.Fatal(err)
	}
	// On a new database alice is 1: her records take the key "#1" while
	// those of the user called "#1" still have it, unless they move out
	// of the way first.
	for _, space := range []string{"", "alice", "#1", "gone"} {
		for _, p := range []string{"f", "d/g"} {
			if _, err := db.pool.Exec(ctx, `INSERT INTO files (space, path, size, modified, sha256) VALUES ($1, $2, 10, 0, $3)`, space, p, make([]byte, 32)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := db.pool.Exec(ctx, migration); err != nil {
		t.Fatalf("the migration: %v", err)
	}
	fs := NewFileStore(db)
	want := map[string]larder.Usage{
		"":                           {Bytes: 20, Files: 2},
		larder.SpaceOf(ids["alice"]): {Bytes: 20, Files: 2},
		larder.SpaceOf(ids["#1"]):    {Bytes: 20, Files: 2},
		larder.SpaceOf(ids["gone"]):  {},
		larder.SpaceOf(ids["bob"]):   {},
		"alice":                      {}, "gone": {},
	}
	for space, w := range want {
		if u, err := fs.SpaceUsage(ctx, space); err != nil || u != w {
			t.Errorf("SpaceUsage(%q) after the migration: got %+v, %v; want %+v", space, u, err, w)
		}
	}
}

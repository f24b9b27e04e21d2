package postgres

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/larderfs/larder/internal/postgres/pgtest"
)

func openTest(t *testing.T, connString string) *DB {
	t.Helper()
	db, err := Open(context.Background(), connString)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(db.Close)
	return db
}

func schemaVersions(t *testing.T, db *DB) []int {
	t.Helper()
	rows, _ := db.pool.Query(context.Background(), `SELECT version FROM schema_migrations ORDER BY version`)
	vs, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

func allVersions() []int {
	var vs []int
	for v := range len(migrations) {
		vs = append(vs, v+1)
	}
	return vs
}

func TestMigrationsIdempotent(t *testing.T) {
	u := pgtest.URL(t)
	for i := range 3 {
		db := openTest(t, u)
		if got, want := schemaVersions(t, db), allVersions(); !slices.Equal(got, want) {
			t.Errorf("open %d: recorded versions: got %v, want %v", i+1, got, want)
		}
		db.Close()
	}
}

// TestConcurrentOpen starts several servers on a new database at once: the
// advisory lock lets one migrate while the others wait, then find the work
// done, rather than fail on the tables the first one created.
func TestConcurrentOpen(t *testing.T) {
	u := pgtest.URL(t)
	const n = 6
	dbs := make([]*DB, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			dbs[i], errs[i] = Open(context.Background(), u)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open %d: got %v, want nil", i, err)
			continue
		}
		defer dbs[i].Close()
	}
	if t.Failed() {
		return
	}
	if got, want := schemaVersions(t, dbs[0]), allVersions(); !slices.Equal(got, want) {
		t.Errorf("recorded versions: got %v, want %v", got, want)
	}
}

func TestMigrationsRefuseNewerSchema(t *testing.T) {
	u := pgtest.URL(t)
	db := openTest(t, u)
	if _, err := db.pool.Exec(context.Background(),
		`INSERT INTO schema_migrations (version) VALUES ($1)`, len(migrations)+1); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err := Open(context.Background(), u)
	if err == nil {
		db.Close()
		t.Fatal("Open of a database from a newer program: got nil, want an error")
	}
	if !strings.Contains(err.Error(), "newer") {
		t.Errorf("Open of a database from a newer program: got %q, want it to say the schema is newer", err)
	}
}

// TestNameCollation checks that the column, not the database's locale,
// makes names compare as bytes.
func TestNameCollation(t *testing.T) {
	db := openTest(t, pgtest.URL(t))
	var collation string
	if err := db.pool.QueryRow(context.Background(),
		`SELECT collation_name FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'name'`).Scan(&collation); err != nil {
		t.Fatal(err)
	}
	if collation != "C" {
		t.Errorf("collation of users.name: got %q, want %q", collation, "C")
	}
}

// TestOpenRefusesOtherEncodings: in a database that is not UTF8, the
// server would convert names and compare other bytes than the clients'.
func TestOpenRefusesOtherEncodings(t *testing.T) {
	base := pgtest.URL(t)
	u, err := url.Parse(base)
	if err != nil || !strings.HasPrefix(u.Scheme, "postgres") {
		t.Skipf("%s is not a postgres:// URL", pgtest.EnvVar)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/") + "_ascii"
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+name+` TEMPLATE template0 ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C'`); err != nil {
		conn.Close(ctx)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP DATABASE `+name+` WITH (FORCE)`); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	db, err := Open(ctx, u.String())
	if err == nil {
		db.Close()
		t.Fatal("Open of a SQL_ASCII database: got nil, want an error")
	}
	if !strings.Contains(err.Error(), "encoding is SQL_ASCII; larder needs UTF8") {
		t.Errorf("Open of a SQL_ASCII database: got %q, want it to name the encodings", err)
	}
}

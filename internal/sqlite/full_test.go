package sqlite

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/larderfs/larder"
)

// TestFullDatabaseIsNoSpace: when the database cannot grow (its disk is
// full; here SQLite's page limit, which fails the same way), a change to
// the file records is ENOSPACE, which a client is told as "out of disk
// space; retry later", not an internal error.
func TestFullDatabaseIsNoSpace(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "larder.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var pages int
	if err := db.write.QueryRowContext(ctx, "PRAGMA page_count").Scan(&pages); err != nil {
		t.Fatal(err)
	}
	// The write pool's one connection keeps the limit.
	if _, err := db.write.ExecContext(ctx, "PRAGMA max_page_count = "+strconv.Itoa(pages+2)); err != nil {
		t.Fatal(err)
	}
	fs := NewFileStore(db)
	long := strings.Repeat("x", 1000)
	for i := range 1000 {
		in := &larder.FileIntent{Backend: "b", Op: "delete", Space: "#1", Path: long + strconv.Itoa(i)}
		err := fs.AddIntent(ctx, in)
		if err == nil {
			continue
		}
		if larder.ErrorCode(err) != larder.ENOSPACE {
			t.Fatalf("a full database: %v (code %s), want ENOSPACE", err, larder.ErrorCode(err))
		}
		f := &larder.File{Space: "#1", Path: long, Size: 1, Modified: time.Now()}
		if err := fs.PutFile(ctx, f); larder.ErrorCode(err) != larder.ENOSPACE {
			t.Fatalf("PutFile on a full database: %v (code %s), want ENOSPACE", err, larder.ErrorCode(err))
		}
		return
	}
	t.Fatal("the database never filled up")
}

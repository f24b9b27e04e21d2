package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/sqlite"
	"github.com/larderfs/larder/internal/storetest"
)

// TestFileConformance runs the file-store suite, on a new database file
// for each test.
func TestFileConformance(t *testing.T) {
	storetest.RunFiles(t, func(t *testing.T) larder.FileStore {
		return sqlite.NewFileStore(openShared(t))
	})
}

// openShared opens a new database file, closed in t.Cleanup.
func openShared(t *testing.T) *sqlite.DB {
	t.Helper()
	db := open(t, filepath.Join(t.TempDir(), "larder.db"))
	t.Cleanup(func() { db.Close() })
	return db
}

// TestCommitRaceTwoHandles races CommitFiles through two DBs on one file,
// as two server processes would: BEGIN IMMEDIATE must keep their quota
// checks apart.
func TestCommitRaceTwoHandles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "larder.db")
	a, b := open(t, path), open(t, path)
	defer a.Close()
	defer b.Close()
	storetest.CommitRace(t, sqlite.NewFileStore(a), sqlite.NewFileStore(b))
}

// TestCommitFileKeepsOtherWriters: CommitFile holds the write connection
// only for its transaction, and a slow place delays other writers without
// failing them.
func TestCommitFileKeepsOtherWriters(t *testing.T) {
	db := openShared(t)
	files, users := sqlite.NewFileStore(db), sqlite.NewUserStore(db)
	ctx := context.Background()
	placing := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		f := &larder.File{Space: "alice", Path: "f", Size: 1, Modified: time.Now()}
		done <- files.CommitFile(ctx, f, larder.Quota{}, func() error {
			close(placing)
			time.Sleep(50 * time.Millisecond)
			return nil
		})
	}()
	select {
	case <-placing:
	case err := <-done:
		t.Fatalf("CommitFile returned %v without calling place", err)
	}
	if err := users.CreateUser(ctx, &larder.User{Name: "alice", Verifier: "v"}); err != nil {
		t.Errorf("CreateUser while a CommitFile places its file: got %v, want nil", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("CommitFile: got %v, want nil", err)
	}
	if _, err := files.FileByPath(ctx, "alice", "f"); err != nil {
		t.Errorf("FileByPath after CommitFile: got %v, want nil", err)
	}
}

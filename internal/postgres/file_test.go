package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"testing"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/postgres"
	"github.com/larderfs/larder/internal/postgres/pgtest"
	"github.com/larderfs/larder/internal/storetest"
)

// TestFileConformance runs the file-store suite, on a new database for
// each test.
func TestFileConformance(t *testing.T) {
	storetest.RunFiles(t, func(t *testing.T) larder.FileStore {
		return postgres.NewFileStore(open(t, pgtest.URL(t)))
	})
}

// TestCommitRaceTwoServers races CommitFiles through two pools on one
// database, as two larder servers do: the advisory lock, not anything in
// the process, must keep their quota checks apart.
func TestCommitRaceTwoServers(t *testing.T) {
	url := pgtest.URL(t)
	storetest.CommitRace(t, postgres.NewFileStore(open(t, url)), postgres.NewFileStore(open(t, url)))
}

// TestCommitFileLocksOnlyItsSpace: while a CommitFile of alice's holds her
// space's lock (its place has not returned), a CommitFile of bob's goes
// through, and another of alice's waits.
func TestCommitFileLocksOnlyItsSpace(t *testing.T) {
	s := postgres.NewFileStore(open(t, pgtest.URL(t)))
	ctx := context.Background()
	file := func(space, path string) *larder.File {
		return &larder.File{Space: space, Path: path, Size: 1, Modified: time.Now()}
	}
	placing, release := make(chan struct{}), make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	defer unblock() // before the pool closes, which waits for the first's connection
	first := make(chan error, 1)
	go func() {
		first <- s.CommitFile(ctx, file("alice", "slow"), larder.Quota{}, func() error {
			close(placing)
			<-release
			return nil
		})
	}()
	select {
	case <-placing:
	case err := <-first:
		t.Fatalf("CommitFile of alice's returned %v without calling place", err)
	}

	bob := make(chan error, 1)
	go func() { bob <- s.CommitFile(ctx, file("bob", "f"), larder.Quota{}, func() error { return nil }) }()
	select {
	case err := <-bob:
		if err != nil {
			t.Errorf("CommitFile of bob's while alice's places: got %v, want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("CommitFile of bob's still waiting 30s for alice's lock")
	}

	second := make(chan error, 1)
	go func() {
		second <- s.CommitFile(ctx, file("alice", "next"), larder.Quota{}, func() error { return nil })
	}()
	select {
	case err := <-second:
		t.Fatalf("second CommitFile of alice's returned %v while the first held her lock, want it to wait", err)
	case <-time.After(200 * time.Millisecond):
	}
	unblock()
	for what, c := range map[string]chan error{"first": first, "second": second} {
		select {
		case err := <-c:
			if err != nil {
				t.Errorf("%s CommitFile of alice's: got %v, want nil", what, err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%s CommitFile of alice's still waiting 30s after the first placed", what)
		}
	}
}

// TestCommitFileLongPath: a path too long for the primary key's index is
// refused before place is called, so that no file lands on disk without a
// record to count it against the quota.
func TestCommitFileLongPath(t *testing.T) {
	s := postgres.NewFileStore(open(t, pgtest.URL(t)))
	ctx := context.Background()
	// Random, so that the index cannot compress it below its limit.
	b := make([]byte, 2000)
	rand.Read(b)
	path := hex.EncodeToString(b)
	f := &larder.File{Space: "alice", Path: path, Size: 1, Modified: time.Now()}
	placed := false
	err := s.CommitFile(ctx, f, larder.Quota{}, func() error { placed = true; return nil })
	if got := larder.ErrorCode(err); got != larder.EINVALID {
		t.Errorf("CommitFile of a %d-byte path: got %v (code %q), want code %q", len(path), err, got, larder.EINVALID)
	}
	if placed {
		t.Errorf("CommitFile of a %d-byte path called place, want it refused first", len(path))
	}
	if got := larder.ErrorCode(s.PutFile(ctx, f)); got != larder.EINVALID {
		t.Errorf("PutFile of a %d-byte path: got code %q, want %q", len(path), got, larder.EINVALID)
	}
	// A rename that would make a path too long leaves the records where
	// they were, still counted.
	f.Path = "short/f"
	if err := s.PutFile(ctx, f); err != nil {
		t.Fatal(err)
	}
	err = s.RenameFiles(ctx, "alice", "short", path)
	if got := larder.ErrorCode(err); got != larder.EINVALID {
		t.Errorf("RenameFiles to a %d-byte path: got %v (code %q), want code %q", len(path), err, got, larder.EINVALID)
	}
	if _, err := s.FileByPath(ctx, "alice", "short/f"); err != nil {
		t.Errorf("FileByPath(alice, short/f) after the refused rename: got %v, want nil", err)
	}
}

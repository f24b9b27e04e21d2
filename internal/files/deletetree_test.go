//go:build linux

package files

import (
	"context"
	"crypto/sha256"
	"errors"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/larderfs/larder"
)

// TestDeleteTreeInParts: a tree that takes more than one call's budget is
// removed a part at a time, each call answering more; between calls
// nothing can be written into the tree, moved out of it or removed in it
// (a conflict that says to finish), the records still count what is not
// yet all gone, and a crash between calls is finished by the next start.
// The same call again finishes it, the records and usage with it.
func TestDeleteTreeInParts(t *testing.T) {
	for backend, world := range sqliteWorlds() {
		t.Run(backend, func(t *testing.T) {
			ctx := context.Background()
			w := world(t)
			s, sp := w.service("")
			s.treeBudget, s.treeBatch = 1, 2 // one batch of 2 a call
			must(t, put(ctx, sp, "keep.txt", []byte("stays"), false))
			makeTree(ctx, t, sp)
			r, more, err := sp.DeleteTree(ctx, "dir")
			if err != nil || !more || r.Files+r.Folders == 0 {
				t.Fatalf("first call: %+v, more %v, %v; want a part removed and more", r, more, err)
			}
			for what, err := range map[string]error{
				"put into it":       put(ctx, sp, "dir/new.txt", []byte("new"), false),
				"mkdir in it":       sp.Mkdir("dir/new"),
				"delete in it":      sp.Delete(ctx, "dir/b.txt"),
				"rename out of it":  sp.Rename(ctx, "dir/b.txt", "b.txt", false),
				"rename into it":    sp.Rename(ctx, "keep.txt", "dir/keep.txt", false),
				"rename it":         sp.Rename(ctx, "dir", "other", false),
				"delete tree in it": deleteTreeErr(sp.DeleteTree(ctx, "dir/sub")),
			} {
				if larder.ErrorCode(err) != larder.ECONFLICT {
					t.Errorf("%s while it is being removed: %v, want a conflict", what, err)
				}
			}
			if u, err := s.records.SpaceUsage(ctx, "#1"); err != nil || u.Files != 5 {
				t.Errorf("usage between calls: %+v, %v; want the 5 records still", u, err)
			}
			total := r
			for more {
				r, more, err = sp.DeleteTree(ctx, "dir")
				must(t, err)
				total.add(r)
			}
			if total != (Removed{Files: 4, Folders: 2, Bytes: int64(2*len("file dir/a.txt") + 2*len("file dir/sub/c.txt"))}) {
				t.Errorf("removed in all: %+v", total)
			}
			if d := w.disagreement(s.records); d != "" {
				t.Errorf("after: %s", d)
			}
			if ins, err := s.records.Intents(ctx, s.id); err != nil || len(ins) != 0 {
				t.Errorf("intents after: %v, %v", ins, err)
			}
			must(t, sp.Mkdir("dir")) // no longer being removed
			must(t, put(ctx, sp, "dir/again.txt", []byte("again"), false))

			// Stopped between two calls, and started again.
			must(t, put(ctx, sp, "dir/x.txt", []byte("x"), false))
			must(t, put(ctx, sp, "dir/y.txt", []byte("y"), false))
			if _, more, err := sp.DeleteTree(ctx, "dir"); err != nil || !more {
				t.Fatalf("a call of the second removal: more %v, %v", more, err)
			}
			s2, sp2 := w.service("")
			if n, err := s2.Recover(ctx); err != nil || n != 1 {
				t.Fatalf("Recover: %d, %v; want 1", n, err)
			}
			if _, err := sp2.Stat(Loc{Path: "dir"}); larder.ErrorCode(err) != larder.ENOTFOUND {
				t.Errorf("dir after Recover: %v, want it gone", err)
			}
			if d := w.disagreement(s2.records); d != "" {
				t.Errorf("after Recover: %s", d)
			}
		})
	}
}

func deleteTreeErr(_ Removed, _ bool, err error) error { return err }

// TestDeleteTreeUploadInFlight: an upload into the tree that started
// before the removal and commits after it finds its folder gone and
// records nothing (its part is kept, for a resume once the folder is made
// again); one that committed before went with the tree, record and all.
func TestDeleteTreeUploadInFlight(t *testing.T) {
	for backend, world := range sqliteWorlds() {
		t.Run(backend, func(t *testing.T) {
			ctx := context.Background()
			w := world(t)
			s, sp := w.service("")
			must(t, sp.Mkdir("dir"))
			must(t, put(ctx, sp, "dir/before.txt", []byte("committed before"), false))
			data := []byte("committed after the removal")
			u, err := sp.StartUpload(ctx, "dir/late.txt", int64(len(data)), false, false)
			must(t, err)
			defer u.Close()
			must(t, write(u, data))
			if r, more, err := sp.DeleteTree(ctx, "dir"); err != nil || more || r.Files != 1 {
				t.Fatalf("DeleteTree: %+v, %v, %v; want the one file committed", r, more, err)
			}
			if _, err := u.Commit(ctx, sha256.Sum256(data), nil, 0, nil); larder.ErrorCode(err) != larder.ENOTFOUND {
				t.Errorf("commit into the removed folder: %v, want not found", err)
			}
			if d := w.disagreement(s.records); d != "" {
				t.Errorf("after: %s", d)
			}
			if parts, err := sp.Parts(); err != nil || len(parts) != 1 {
				t.Errorf("parts after: %+v, %v; want the late upload's, kept", parts, err)
			}
		})
	}
}

// sqliteWorlds are the crashWorlds of each backend, on a new SQLite
// database each.
func sqliteWorlds() map[string]func(t *testing.T) *crashWorld {
	return worlds(func(t *testing.T) func() (larder.FileStore, func()) {
		return sqliteWorld(t, filepath.Join(t.TempDir(), "larder.db"))
	})
}

// makeTree makes the folder dir of sp, with two files and a subfolder
// sub of two files: dir/a.txt, dir/b.txt, dir/sub/c.txt, dir/sub/d.txt,
// each holding "file " and its path.
func makeTree(ctx context.Context, t *testing.T, sp *Space) {
	t.Helper()
	must(t, sp.Mkdir("dir"))
	must(t, sp.Mkdir("dir/sub"))
	for _, p := range []string{"dir/a.txt", "dir/b.txt", "dir/sub/c.txt", "dir/sub/d.txt"} {
		must(t, put(ctx, sp, p, []byte("file "+p), false))
	}
}

// failingRemovals is a Backend whose removals of trees fail, while
// failing is set, after one entry: a store that gives an I/O error in the
// middle of a removal. It is backendtest.FailingRemovals, which this
// package's own tests cannot import (backendtest imports the package).
type failingRemovals struct {
	Backend
	failing *atomic.Bool
}

type failingRemovalsArea struct {
	Area
	failing *atomic.Bool
}

func (b failingRemovals) Area(space string) (Area, error) {
	a, err := b.Backend.Area(space)
	if err != nil {
		return nil, err
	}
	return failingRemovalsArea{a, b.failing}, nil
}

func (a failingRemovalsArea) RemoveTree(p string, max int) (Removed, bool, error) {
	if !a.failing.Load() {
		return a.Area.RemoveTree(p, max)
	}
	r, _, err := a.Area.RemoveTree(p, 1)
	if err == nil {
		err = &larder.Error{Code: larder.EINTERNAL, Message: "internal error", Err: syscall.EIO}
	}
	return r, false, err
}

// TestDeleteTreeFailedFenced: a removal that fails in the middle keeps
// its tree refused to changes, and its error says so and what to do; a
// start whose replay of it fails too keeps it refused, rather than take
// uploads into the tree that a later start's replay would remove with
// it. Removing it again finishes it, intent and all.
func TestDeleteTreeFailedFenced(t *testing.T) {
	for backend, world := range sqliteWorlds() {
		t.Run(backend, func(t *testing.T) {
			ctx := context.Background()
			w := world(t)
			var failing atomic.Bool
			start := func() (*Service, *Space) {
				b, closeBackend := w.newBackend()
				records, closeDB := w.open()
				s, err := New(Config{Backend: failingRemovals{b, &failing}, Records: records})
				must(t, err)
				s.racy = 0
				sp, err := s.Space(1)
				must(t, err)
				t.Cleanup(func() { sp.Close(); s.Close(); closeDB(); closeBackend() })
				return s, sp
			}
			s, sp := start()
			makeTree(ctx, t, sp)
			failing.Store(true)
			_, _, err := sp.DeleteTree(ctx, "dir")
			if larder.ErrorCode(err) != larder.EINTERNAL || !errors.Is(err, syscall.EIO) ||
				!strings.Contains(larder.ErrorMessage(err), `the removal of "/dir" stopped before its end: nothing in it can change until it is removed again (rm -r), or the server's next start finishes it`) {
				t.Fatalf("DeleteTree with the store failing: %v (%q); want the failure, saying the removal is unfinished and what finishes it", err, larder.ErrorMessage(err))
			}
			wantFenced := func(when string, sp *Space) {
				t.Helper()
				// Refused at its start, before a byte is sent.
				u, err := sp.StartUpload(ctx, "dir/big.bin", 1<<30, false, false)
				if err == nil {
					u.Close()
				}
				if larder.ErrorCode(err) != larder.ECONFLICT || !errors.Is(err, larder.ErrTreeBeingRemoved) {
					t.Errorf("an upload into the tree %s started: %v; want it refused at its start, the tree being removed", when, err)
				}
				err = put(ctx, sp, "dir/new.txt", []byte("new"), false)
				if larder.ErrorCode(err) != larder.ECONFLICT || !errors.Is(err, larder.ErrTreeBeingRemoved) {
					t.Errorf("a put into the tree %s: %v; want a conflict, the tree being removed", when, err)
				}
			}
			wantFenced("after the failure", sp)

			// Started again, with the store failing still.
			sp.Close()
			s.Close()
			s2, sp2 := start()
			if n, err := s2.Recover(ctx); err != nil || n != 0 {
				t.Fatalf("Recover with the store failing: %d, %v; want 0 replayed", n, err)
			}
			wantFenced("after a start whose replay failed", sp2)
			if ins, err := s2.records.Intents(ctx, s2.id); err != nil || len(ins) != 1 {
				t.Fatalf("intents after the failed replay: %+v, %v; want the removal's", ins, err)
			}

			failing.Store(false)
			if _, more, err := sp2.DeleteTree(ctx, "dir"); err != nil || more {
				t.Fatalf("DeleteTree again: more %v, %v", more, err)
			}
			if _, err := sp2.Stat(Loc{Path: "dir"}); larder.ErrorCode(err) != larder.ENOTFOUND {
				t.Errorf("dir after the removal finished: %v, want it gone", err)
			}
			if ins, err := s2.records.Intents(ctx, s2.id); err != nil || len(ins) != 0 {
				t.Errorf("intents after the removal finished: %+v, %v; want none", ins, err)
			}
			must(t, sp2.Mkdir("dir"))
			must(t, put(ctx, sp2, "dir/new.txt", []byte("new"), false))
			if d := w.disagreement(s2.records); d != "" {
				t.Errorf("after: %s", d)
			}
		})
	}
}

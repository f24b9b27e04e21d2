//go:build linux

package files

import (
	"context"
	"crypto/sha256"
	"os"
	"path/filepath"
	"testing"

	"github.com/larderfs/larder"
)

// TestRenameKeepsTheHashTrusted: a file moved keeps a record trusted for
// the version the move gave it (the change time moves), so that it is not
// read again to be hashed; a folder's files keep theirs as they were.
func TestRenameKeepsTheHashTrusted(t *testing.T) {
	ctx := context.Background()
	top := t.TempDir()
	w := &crashWorld{t: t, spaces: filepath.Join(top, "spaces"), shared: filepath.Join(top, "shared"), open: sqliteWorld(t, filepath.Join(top, "larder.db"))}
	must(t, os.Mkdir(w.shared, 0o755))
	_, sp := w.service("")
	data := []byte("some content")
	must(t, put(ctx, sp, "a.txt", data, false))
	must(t, sp.Mkdir("dir"))
	must(t, put(ctx, sp, "dir/b.txt", data, false))

	known := func(p string) bool {
		t.Helper()
		in, err := sp.Stat(Loc{Path: p})
		must(t, err)
		sum, ok := sp.Known(ctx, Loc{Path: p}, in)
		return ok && sum == sha256.Sum256(data)
	}
	for _, p := range []string{"a.txt", "dir/b.txt"} {
		if !known(p) {
			t.Fatalf("%s after its upload: hash not known", p)
		}
	}
	must(t, sp.Rename(ctx, "a.txt", "moved.txt", false))
	must(t, sp.Rename(ctx, "dir", "folder", false))
	for _, p := range []string{"moved.txt", "folder/b.txt"} {
		if !known(p) {
			t.Errorf("%s after a rename: hash not known; want the record trusted still", p)
		}
	}
}

// TestRacyHashShownNotReliedOn: a file hashed just after it changed is
// recorded with its version marked racy: STAT shows the hash, but a read
// does not rely on it and hashes the file again.
func TestRacyHashShownNotReliedOn(t *testing.T) {
	ctx := context.Background()
	top := t.TempDir()
	w := &crashWorld{t: t, spaces: filepath.Join(top, "spaces"), shared: filepath.Join(top, "shared"), open: sqliteWorld(t, filepath.Join(top, "larder.db"))}
	must(t, os.Mkdir(w.shared, 0o755))
	s, sp := w.service("")
	s.racy = DefaultRacyWindow
	hashes := 0
	s.failpoint = func(step string) error {
		if step == "hash:hashed" {
			hashes++
		}
		return nil
	}
	data := []byte("just written")
	must(t, os.WriteFile(filepath.Join(w.shared, "new.txt"), data, 0o644))
	l := Loc{Shared: true, Path: "new.txt"}
	for range 2 {
		f, err := sp.Open(ctx, l)
		must(t, err)
		f.Close()
	}
	if hashes != 2 {
		t.Errorf("two reads within the racy window hashed the file %d times, want 2", hashes)
	}
	in, err := sp.Stat(l)
	must(t, err)
	rec, err := s.records.FileByPath(ctx, "", "new.txt")
	if err != nil || rec.Version != racyMark+in.Version || rec.SHA256 != sha256.Sum256(data) {
		t.Fatalf("the record of a file hashed just after a change: %+v, %v; want its hash, the version marked racy", rec, err)
	}
	if sum, ok := sp.Known(ctx, l, in); !ok || sum != sha256.Sum256(data) {
		t.Error("the hash of a file read within the racy window is not shown")
	}
	// Once the window has passed, a read relies on a hash it takes.
	s.racy = 0
	for range 2 {
		f, err := sp.Open(ctx, l)
		must(t, err)
		f.Close()
	}
	if hashes != 3 {
		t.Errorf("two reads once settled hashed the file %d more times, want 1", hashes-2)
	}
}

// TestRefusalReadsNothing: a rename refused before it changes anything
// (its target exists) does not replay its intent, which would hash the
// files it names when their records are not trusted (as records from
// before versions are not).
func TestRefusalReadsNothing(t *testing.T) {
	for backend, world := range worlds(sqliteDB) {
		t.Run(backend, func(t *testing.T) {
			ctx := context.Background()
			w := world(t)
			s, sp := w.service("")
			must(t, put(ctx, sp, "a.txt", []byte("file a"), false))
			must(t, put(ctx, sp, "b.txt", []byte("file b"), false))
			for _, p := range []string{"a.txt", "b.txt"} {
				rec, err := s.records.FileByPath(ctx, "#1", p)
				must(t, err)
				rec.Version = "" // as an older version recorded it
				must(t, s.records.PutFile(ctx, rec))
			}
			if err := sp.Rename(ctx, "a.txt", "b.txt", false); err == nil {
				t.Fatal("a rename onto an existing file without overwrite succeeded")
			}
			for _, p := range []string{"a.txt", "b.txt"} {
				if rec, err := s.records.FileByPath(ctx, "#1", p); err != nil || rec.Version != "" {
					t.Errorf("%s after a refused rename: %+v, %v; want its record untouched (not hashed again)", p, rec, err)
				}
			}
			if ins, err := s.records.Intents(ctx, s.id); err != nil || len(ins) != 0 {
				t.Errorf("intents after a refused rename: %v, %v; want none", ins, err)
			}
		})
	}
}

// TestDeleteWhileHashing: a file deleted while a download hashes it gets
// no record when the hash is done: a record of a file that is not there
// would count against the quota for good.
func TestDeleteWhileHashing(t *testing.T) {
	for backend, world := range worlds(sqliteDB) {
		t.Run(backend, func(t *testing.T) {
			ctx := context.Background()
			w := world(t)
			s, sp := w.service("")
			must(t, put(ctx, sp, "a.txt", []byte("file a"), false))
			// A record no longer trusted, as after a change behind the
			// service's back: the next read hashes the file again.
			rec, err := s.records.FileByPath(ctx, "#1", "a.txt")
			must(t, err)
			rec.Version = ""
			must(t, s.records.PutFile(ctx, rec))
			s.failpoint = func(step string) error {
				if step == "hash:hashed" {
					s.failpoint = nil
					must(t, sp.Delete(ctx, "a.txt")) // by another session, meanwhile
				}
				return nil
			}
			f, err := sp.Open(ctx, Loc{Path: "a.txt"})
			must(t, err)
			f.Close()
			if d := w.disagreement(s.records); d != "" {
				t.Errorf("after a delete during a hash: %s", d)
			}
		})
	}
}

// sqliteDB returns the open of a crashWorld on a new SQLite database.
func sqliteDB(t *testing.T) func() (larder.FileStore, func()) {
	return sqliteWorld(t, filepath.Join(t.TempDir(), "larder.db"))
}

// TestRenameKeepsARacyHashShown: a file whose hash was taken just after
// it changed (its record marked racy) and then moved still shows its
// hash, the record marked racy still; before, the move left the record at
// the old version, and after a restart STAT and LIST showed the hash as
// not known until the file was read again.
func TestRenameKeepsARacyHashShown(t *testing.T) {
	ctx := context.Background()
	top := t.TempDir()
	w := &crashWorld{t: t, spaces: filepath.Join(top, "spaces"), shared: filepath.Join(top, "shared"), open: sqliteWorld(t, filepath.Join(top, "larder.db"))}
	must(t, os.Mkdir(w.shared, 0o755))
	s, sp := w.service("")
	s.racy = DefaultRacyWindow
	data := []byte("hashed as it changed")
	must(t, put(ctx, sp, "a.txt", data, false))
	// Rewritten behind the server's back, then read: the new hash is
	// taken within the racy window.
	in, err := sp.Stat(Loc{Path: "a.txt"})
	must(t, err)
	data = []byte("rewritten by another tool")
	must(t, os.WriteFile(filepath.Join(w.spaces, "id-1", "files", "a.txt"), data, 0o644))
	f, err := sp.Open(ctx, Loc{Path: "a.txt"})
	must(t, err)
	f.Close()
	if rec, err := s.records.FileByPath(ctx, sp.Key(), "a.txt"); err != nil || rec.Version == in.Version || rec.Version[:len(racyMark)] != racyMark {
		t.Fatalf("record after a read just after a change: %+v, %v; want its version marked racy", rec, err)
	}

	must(t, sp.Rename(ctx, "a.txt", "moved.txt", false))
	// A restarted server, which remembers no hash: the record alone.
	_, sp = w.service("")
	moved, err := sp.Stat(Loc{Path: "moved.txt"})
	must(t, err)
	if sum, ok := sp.Known(ctx, Loc{Path: "moved.txt"}, moved); !ok || sum != sha256.Sum256(data) {
		t.Error("a file with a racy hash, moved: hash not shown after a restart")
	}
	if rec, err := s.records.FileByPath(ctx, sp.Key(), "moved.txt"); err != nil || rec.Version != racyMark+moved.Version {
		t.Errorf("record of the moved file: %+v, %v; want the new version, still marked racy", rec, err)
	}
}

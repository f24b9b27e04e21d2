//go:build linux

package files

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/disk"
	"github.com/larderfs/larder/internal/postgres"
	"github.com/larderfs/larder/internal/postgres/pgtest"
	"github.com/larderfs/larder/internal/sqlite"
)

// A crashWorld is a data folder and a database that services are opened
// over, one after the other, as servers are over a restart.
type crashWorld struct {
	t      *testing.T
	spaces string
	shared string
	open   func() (larder.FileStore, func()) // a new connection to the one database
	// backend, if not nil, opens a new instance of another backend
	// than the disk at spaces and shared, over one storage.
	backend func() (Backend, func())
}

// worlds returns the crashWorlds of each backend, on the database open
// opens: the disk's below a new folder, and each of TestBackends.
func worlds(open func(t *testing.T) func() (larder.FileStore, func())) map[string]func(t *testing.T) *crashWorld {
	ws := map[string]func(t *testing.T) *crashWorld{
		"disk": func(t *testing.T) *crashWorld {
			top := t.TempDir()
			w := &crashWorld{t: t, spaces: filepath.Join(top, "spaces"), shared: filepath.Join(top, "shared"), open: open(t)}
			must(t, os.Mkdir(w.shared, 0o755))
			return w
		},
	}
	for name, backend := range TestBackends {
		ws[name] = func(t *testing.T) *crashWorld { return &crashWorld{t: t, open: open(t), backend: backend(t)} }
	}
	return ws
}

// newBackend opens a new instance of the world's backend.
func (w *crashWorld) newBackend() (Backend, func()) {
	if w.backend != nil {
		return w.backend()
	}
	spaces, err := disk.OpenSpaces(w.spaces)
	must(w.t, err)
	shared, err := disk.Open(w.shared)
	must(w.t, err)
	return NewLocal(shared, spaces), func() { shared.Close(); spaces.Close() }
}

// service opens a new Service over the world, stopping at the step named
// stop (none if ""), with the racy window off.
func (w *crashWorld) service(stop string) (*Service, *Space) {
	t := w.t
	backend, closeBackend := w.newBackend()
	records, closeDB := w.open()
	s, err := New(Config{Backend: backend, Records: records, Quota: larder.Quota{Bytes: 1 << 20}})
	must(t, err)
	s.racy = 0
	if stop != "" {
		s.failpoint = func(step string) error {
			if step == stop {
				return errors.New("killed")
			}
			return nil
		}
	}
	sp, err := s.Space(1)
	must(t, err)
	t.Cleanup(func() {
		sp.Close()
		s.Close()
		closeDB()
		closeBackend()
	})
	return s, sp
}

// put uploads data to p through sp, as a session does.
func put(ctx context.Context, sp *Space, p string, data []byte, overwrite bool) error {
	u, err := sp.StartUpload(ctx, p, int64(len(data)), false, overwrite)
	if err != nil {
		return err
	}
	defer u.Close()
	if err := write(u, data); err != nil {
		return err
	}
	_, err = u.Commit(ctx, sha256.Sum256(data), nil, 0, nil)
	return err
}

// write writes data to u as the receiver does: to the part, and to the
// upload's hash unless the part hashes it.
func write(u *Upload, data []byte) error {
	if _, err := u.Write(data); err != nil {
		return err
	}
	if u.Hash != nil {
		u.Hash.Write(data)
	}
	return nil
}

// disagreement returns how the records of space #1 differ from its files
// on the backend, "" if they agree: every file has a record of its size
// and SHA-256, and the records hold as many files and bytes as the
// backend (so none is of a file that is not there), which is the usage
// the quota counts.
func (w *crashWorld) disagreement(records larder.FileStore) string {
	ctx := context.Background()
	b, closeBackend := w.newBackend()
	defer closeBackend()
	a, err := b.Area("#1")
	if err != nil {
		return err.Error()
	}
	defer a.Close()
	var stored larder.Usage
	var diffs []string
	var walk func(dir string) error
	walk = func(dir string) error {
		l, err := a.List(dir)
		if err != nil {
			return err
		}
		defer l.Close()
		for {
			ins, err := l.Next(100)
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			for _, in := range ins {
				rel := path.Join(dir, in.Name)
				if in.Dir {
					if err := walk(rel); err != nil {
						return err
					}
					continue
				}
				o, err := a.Open(rel)
				if err != nil {
					return err
				}
				data, err := io.ReadAll(io.NewSectionReader(o, 0, o.Info().Size))
				o.Close()
				if err != nil {
					return err
				}
				stored.Bytes += int64(len(data))
				stored.Files++
				rec, err := records.FileByPath(ctx, "#1", rel)
				switch {
				case err != nil:
					diffs = append(diffs, fmt.Sprintf("%s: stored, no record (%v)", rel, larder.ErrorMessage(err)))
				case rec.Size != int64(len(data)) || rec.SHA256 != sha256.Sum256(data):
					diffs = append(diffs, fmt.Sprintf("%s: the record says %d bytes %x, the backend has %d bytes %x", rel, rec.Size, rec.SHA256[:4], len(data), sha256.Sum256(data)))
				}
			}
		}
	}
	if err := walk(""); err != nil {
		return err.Error()
	}
	u, err := records.SpaceUsage(ctx, "#1")
	if err != nil {
		return err.Error()
	}
	if u != stored {
		diffs = append(diffs, fmt.Sprintf("the records hold %+v, the backend %+v", u, stored))
	}
	return strings.Join(diffs, "; ")
}

// sqliteWorld returns the open of a crashWorld on the SQLite database at
// path.
func sqliteWorld(t *testing.T, path string) func() (larder.FileStore, func()) {
	return func() (larder.FileStore, func()) {
		db, err := sqlite.Open(context.Background(), path)
		must(t, err)
		return sqlite.NewFileStore(db), func() { db.Close() }
	}
}

// TestCrashConsistency stops a put, a delete and a rename after each of
// their steps, as a SIGKILL there would, then opens a new service over
// the same folder and database, as a restart does: after its Recover the
// records and the disk agree, usage included, and no intent is left. In
// the middle of each change they disagree before Recover, which is what a
// crash left behind before the journal.
func TestCrashConsistency(t *testing.T) {
	stores := map[string]func(t *testing.T) func() (larder.FileStore, func()){
		"sqlite": func(t *testing.T) func() (larder.FileStore, func()) {
			return sqliteWorld(t, filepath.Join(t.TempDir(), "larder.db"))
		},
		"postgres": func(t *testing.T) func() (larder.FileStore, func()) {
			url := pgtest.URL(t)
			return func() (larder.FileStore, func()) {
				db, err := postgres.Open(context.Background(), url)
				must(t, err)
				return postgres.NewFileStore(db), db.Close
			}
		},
	}
	type op struct {
		name  string
		steps []string
		// middle are the steps after which, before Recover, the records
		// and the disk disagree.
		middle []string
		do     func(ctx context.Context, sp *Space) error
	}
	ops := []op{
		{"put new", []string{"put:intent", "put:placed", "put:committed"}, []string{"put:placed"},
			func(ctx context.Context, sp *Space) error {
				return put(ctx, sp, "new.txt", []byte("a new file"), false)
			}},
		{"put over", []string{"put:intent", "put:placed", "put:committed"}, []string{"put:placed"},
			func(ctx context.Context, sp *Space) error {
				return put(ctx, sp, "a.txt", []byte("a.txt, longer, rewritten"), true)
			}},
		{"delete", []string{"delete:intent", "delete:removed", "delete:recorded"}, []string{"delete:removed"},
			func(ctx context.Context, sp *Space) error { return sp.Delete(ctx, "a.txt") }},
		{"rename file", []string{"rename:intent", "rename:moved", "rename:recorded"}, []string{"rename:moved"},
			func(ctx context.Context, sp *Space) error { return sp.Rename(ctx, "a.txt", "moved.txt", false) }},
		{"rename over", []string{"rename:intent", "rename:moved", "rename:recorded"}, []string{"rename:moved"},
			func(ctx context.Context, sp *Space) error { return sp.Rename(ctx, "a.txt", "c.txt", true) }},
		{"rename folder", []string{"rename:intent", "rename:moved", "rename:recorded"}, []string{"rename:moved"},
			func(ctx context.Context, sp *Space) error { return sp.Rename(ctx, "dir", "elsewhere", false) }},
		{"delete tree", []string{"deletetree:intent", "deletetree:batch", "deletetree:removed", "deletetree:recorded"}, []string{"deletetree:batch", "deletetree:removed"},
			func(ctx context.Context, sp *Space) error {
				_, _, err := sp.DeleteTree(ctx, "dir")
				return err
			}},
	}
	for store, open := range stores {
		for backend, world := range worlds(open) {
			t.Run(store+"/"+backend, func(t *testing.T) {
				for _, o := range ops {
					for _, stop := range o.steps {
						t.Run(o.name+" stopped after "+stop, func(t *testing.T) {
							ctx := context.Background()
							w := world(t)
							_, sp := w.service("")
							must(t, put(ctx, sp, "a.txt", []byte("file a"), false))
							must(t, put(ctx, sp, "c.txt", []byte("file c, to be replaced"), false))
							must(t, sp.Mkdir("dir"))
							must(t, put(ctx, sp, "dir/b.txt", []byte("file b, in a folder"), false))
							must(t, put(ctx, sp, "dir/d.txt", []byte("file d"), false))

							_, sp = w.service(stop)
							if err := o.do(ctx, sp); !errors.Is(err, errCrash) {
								t.Fatalf("%s: got %v, want it stopped after %s", o.name, err, stop)
							}
							// The restart: a new service over the same folder
							// and database.
							s2, _ := w.service("")
							before := w.disagreement(s2.records)
							if middle := contains(o.middle, stop); middle != (before != "") {
								t.Errorf("before Recover: disagreement %q; want one: %v", before, middle)
							}
							n, err := s2.Recover(ctx)
							if err != nil || n != 1 {
								t.Fatalf("Recover: got %d, %v; want 1 intent replayed", n, err)
							}
							if d := w.disagreement(s2.records); d != "" {
								t.Errorf("after Recover: %s", d)
							}
							if ins, err := s2.records.Intents(ctx, s2.id); err != nil || len(ins) != 0 {
								t.Errorf("intents after Recover: got %v, %v; want none", ins, err)
							}
						})
					}
				}
			})
		}
	}
}

// TestDeleteTreeCutInTheMiddle: a removal of a tree that a crash cut in
// the middle of the backend's work (some files gone, others and the
// folders still there, every record still there) is finished by the
// replay at the next start, whatever the backend.
func TestDeleteTreeCutInTheMiddle(t *testing.T) {
	for backend, world := range sqliteWorlds() {
		t.Run(backend, func(t *testing.T) {
			ctx := context.Background()
			w := world(t)
			s, sp := w.service("")
			must(t, put(ctx, sp, "keep.txt", []byte("stays"), false))
			makeTree(ctx, t, sp)
			must(t, s.records.AddIntent(ctx, &larder.FileIntent{Backend: s.journal, Op: opDeleteTree, Space: "#1", Path: "dir"}))
			b, closeBackend := w.newBackend()
			a, err := b.Area("#1")
			must(t, err)
			must(t, a.Remove("dir/sub/c.txt"))
			must(t, a.Remove("dir/a.txt"))
			a.Close()
			closeBackend()

			s2, sp2 := w.service("")
			if d := w.disagreement(s2.records); d == "" {
				t.Fatal("before Recover: the records agree with a tree cut in the middle")
			}
			if n, err := s2.Recover(ctx); err != nil || n != 1 {
				t.Fatalf("Recover: got %d, %v; want 1", n, err)
			}
			if d := w.disagreement(s2.records); d != "" {
				t.Errorf("after Recover: %s", d)
			}
			if _, err := sp2.Stat(Loc{Path: "dir"}); larder.ErrorCode(err) != larder.ENOTFOUND {
				t.Errorf("dir after Recover: %v, want it gone", err)
			}
			if u, err := s2.records.SpaceUsage(ctx, "#1"); err != nil || u.Files != 1 {
				t.Errorf("usage after Recover: %+v, %v; want keep.txt alone", u, err)
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestRecoverKeepsWhatItCannotReplay: an intent that cannot be replayed
// (here of an op this version does not know) is kept for the next start
// and does not stop the others, nor the start.
func TestRecoverKeepsWhatItCannotReplay(t *testing.T) {
	ctx := context.Background()
	top := t.TempDir()
	path := filepath.Join(top, "larder.db")
	w := &crashWorld{t: t, spaces: filepath.Join(top, "spaces"), shared: filepath.Join(top, "shared"), open: sqliteWorld(t, path)}
	must(t, os.Mkdir(w.shared, 0o755))
	s, sp := w.service("")
	must(t, put(ctx, sp, "a.txt", []byte("file a"), false))
	// A record of a file that is not there, and an intent about it, as a
	// delete stopped after its removal leaves them; and one of an op
	// unknown to this version.
	must(t, s.records.PutFile(ctx, &larder.File{Space: "#1", Path: "gone.txt", Size: 5, Modified: time.Unix(0, 0)}))
	unknown := &larder.FileIntent{Backend: s.id, Op: "frobnicate", Space: "#1", Path: "a.txt"}
	must(t, s.records.AddIntent(ctx, unknown))
	must(t, s.records.AddIntent(ctx, &larder.FileIntent{Backend: s.id, Op: opDelete, Space: "#1", Path: "gone.txt"}))

	n, err := s.Recover(ctx)
	if err != nil || n != 1 {
		t.Fatalf("Recover: got %d, %v; want 1 replayed, nil", n, err)
	}
	if d := w.disagreement(s.records); d != "" {
		t.Errorf("after Recover: %s", d)
	}
	ins, err := s.records.Intents(ctx, s.id)
	if err != nil || len(ins) != 1 || ins[0].ID != unknown.ID {
		t.Errorf("intents after Recover: got %+v, %v; want only the unknown one, kept", ins, err)
	}
}

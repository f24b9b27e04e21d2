//go:build linux

package files

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/larderfs/larder"
)

// store writes data to p of space #1 straight on the backend, as a
// process other than larder would, leaving the records as they are.
func (w *crashWorld) store(p string, data []byte) {
	w.t.Helper()
	b, closeBackend := w.newBackend()
	defer closeBackend()
	a, err := b.Area("#1")
	must(w.t, err)
	defer a.Close()
	part, err := a.StartUpload(p, int64(len(data)), false)
	must(w.t, err)
	defer part.Close()
	_, err = part.Write(data)
	must(w.t, err)
	_, err = part.Sync()
	must(w.t, err)
	_, err = part.Place(true)
	must(w.t, err)
}

// kinds returns the differences of c as "kind path", in order.
func kinds(c *SpaceCheck) []string {
	var ks []string
	for _, d := range c.Differences {
		ks = append(ks, d.Kind+" "+d.Path)
	}
	return ks
}

// TestCheck makes each kind of difference between the records of a
// space and its files, on the disk and on S3: Check reports each one and
// changes nothing; with repair the records follow the files, as the
// independent walk of disagreement sees, and a second check finds none.
func TestCheck(t *testing.T) {
	for backend, world := range worlds(func(t *testing.T) func() (larder.FileStore, func()) {
		return sqliteWorld(t, filepath.Join(t.TempDir(), "larder.db"))
	}) {
		t.Run(backend, func(t *testing.T) {
			ctx := context.Background()
			w := world(t)
			s, sp := w.service("")
			for _, p := range []string{"gone.txt", "size.txt", "version.txt", "same.txt"} {
				must(t, put(ctx, sp, p, []byte("the content of "+p), false))
			}
			must(t, sp.Mkdir("dir"))
			must(t, put(ctx, sp, "dir/in.txt", []byte("in a folder"), false))
			c, err := s.Check(ctx, "#1", false)
			must(t, err)
			if len(c.Differences) != 0 || c.Records != 5 || c.Objects != 5 {
				t.Fatalf("check after uploads: got %d records, %d objects, differences %q; want 5, 5, none", c.Records, c.Objects, kinds(c))
			}

			b, closeBackend := w.newBackend()
			a, err := b.Area("#1")
			must(t, err)
			must(t, a.Remove("gone.txt"))
			part, err := a.StartUpload("later.txt", 100, false)
			must(t, err)
			_, err = part.Write([]byte("the first ten"))
			must(t, err)
			_, err = part.Sync()
			must(t, err)
			must(t, part.Close())
			a.Close()
			closeBackend()
			longer := []byte("longer than it was when it was uploaded")
			w.store("size.txt", longer)
			version := []byte("the content of version.txt")
			version[0] = 'T'
			w.store("version.txt", version)
			newData := []byte("put there by another tool")
			w.store("dir/new.txt", newData)
			for _, p := range []string{"ghost.txt", "dir"} {
				must(t, s.records.PutFile(ctx, &larder.File{Space: "#1", Path: p, Size: 3, Modified: time.Now(), Version: "v"}))
			}

			want := []string{"no object dir", "no record dir/new.txt", "no object ghost.txt", "no object gone.txt", "size size.txt", "version version.txt"}
			for range 2 { // a check changes nothing
				c, err = s.Check(ctx, "#1", false)
				must(t, err)
				if got := kinds(c); !slices.Equal(got, want) {
					t.Fatalf("check: got %q, want %q", got, want)
				}
			}
			if c.Records != 7 || c.Objects != 5 {
				t.Errorf("check: got %d records, %d objects; want 7, 5", c.Records, c.Objects)
			}
			for _, d := range c.Differences {
				if d.Repaired || d.RepairError != "" {
					t.Errorf("check without repair: %s %s says repaired %v, %q", d.Kind, d.Path, d.Repaired, d.RepairError)
				}
				if was := int64(len("the content of size.txt")); d.Path == "size.txt" && (d.RecordSize != was || d.StoredSize != int64(len(longer))) {
					t.Errorf("size.txt: got record %d bytes, stored %d; want %d, %d", d.RecordSize, d.StoredSize, was, len(longer))
				}
			}
			if len(c.Uploads) != 1 || c.Uploads[0].Target != "later.txt" || c.Uploads[0].Size != 100 {
				t.Errorf("unfinished uploads: got %+v, want one to later.txt of 100 bytes", c.Uploads)
			}
			if d := w.disagreement(s.records); d == "" {
				t.Fatal("before the repair: the records and the backend agree; want them not to")
			}

			c, err = s.Check(ctx, "#1", true)
			must(t, err)
			if got := kinds(c); !slices.Equal(got, want) {
				t.Errorf("repair: got %q, want %q", got, want)
			}
			for _, d := range c.Differences {
				if !d.Repaired {
					t.Errorf("repair: %s %s not repaired: %s", d.Kind, d.Path, d.RepairError)
				}
			}
			if d := w.disagreement(s.records); d != "" {
				t.Errorf("after the repair: %s", d)
			}
			rec, err := s.records.FileByPath(ctx, "#1", "dir/new.txt")
			if err != nil || rec.SHA256 != sha256.Sum256(newData) {
				t.Errorf("dir/new.txt after the repair: got %v, %v; want its hash recorded", rec, err)
			}
			c, err = s.Check(ctx, "#1", false)
			must(t, err)
			if len(c.Differences) != 0 || c.Records != 5 || c.Objects != 5 {
				t.Errorf("check after the repair: got %d records, %d objects, differences %q; want 5, 5, none", c.Records, c.Objects, kinds(c))
			}
			if len(c.Uploads) != 1 {
				t.Errorf("after the repair: %d unfinished uploads; want the one kept", len(c.Uploads))
			}
		})
	}
}

// TestCheckReportsPending: an intent left by a change cut short is
// listed with its space, and left for a server's start to replay.
func TestCheckReportsPending(t *testing.T) {
	ctx := context.Background()
	top := t.TempDir()
	w := &crashWorld{t: t, spaces: filepath.Join(top, "spaces"), shared: filepath.Join(top, "shared"), open: sqliteWorld(t, filepath.Join(top, "larder.db"))}
	must(t, os.Mkdir(w.shared, 0o755))
	_, sp := w.service("")
	must(t, put(ctx, sp, "a.txt", []byte("a"), false))
	_, sp = w.service("delete:removed")
	if err := sp.Delete(ctx, "a.txt"); err == nil {
		t.Fatal("delete: no error; want it stopped after delete:removed")
	}
	s, _ := w.service("")
	c, err := s.Check(ctx, "#1", false)
	must(t, err)
	if len(c.Pending) != 1 || c.Pending[0].Op != opDelete || c.Pending[0].Path != "a.txt" {
		t.Errorf("pending: got %+v, want the delete of a.txt", c.Pending)
	}
	if got := fmt.Sprint(kinds(c)); !strings.Contains(got, "no object a.txt") {
		t.Errorf("differences: got %s, want no object a.txt", got)
	}
	// The shared area is checked on its own: the space's intent is not
	// among its pending changes.
	if c, err := s.Check(ctx, "", false); err != nil || len(c.Pending) != 0 || len(c.Differences) != 0 {
		t.Errorf("check of the empty shared area: got %+v, %v; want nothing pending, no difference", c, err)
	}
}

// TestDiffers: a record is a difference by its size, or by its version
// where the backend identifies the content; a file the backend gives no
// version (an object put without an ETag) is never trusted, so a record
// of its size is as good as a record of it can be, and a check that
// called it a difference would find it again after every repair.
func TestDiffers(t *testing.T) {
	rec := func(size int64, version string) *larder.File {
		return &larder.File{Path: "f", Size: size, Version: version}
	}
	for _, tc := range []struct {
		rec  *larder.File
		in   Info
		want string
	}{
		{nil, Info{Size: 3, Version: "v"}, NoRecord},
		{rec(4, "v"), Info{Size: 3, Version: "v"}, SizeDiffers},
		{rec(3, "v"), Info{Size: 3, Version: "v"}, ""},
		{rec(3, racyMark+"v"), Info{Size: 3, Version: "v"}, ""},
		{rec(3, "w"), Info{Size: 3, Version: "v"}, VersionDiffers},
		{rec(3, ""), Info{Size: 3, Version: "v"}, VersionDiffers},
		{rec(3, ""), Info{Size: 3}, ""},
		{rec(3, "w"), Info{Size: 3}, ""},
		{rec(4, ""), Info{Size: 3}, SizeDiffers},
	} {
		if got := differs(tc.rec, tc.in); got != tc.want {
			t.Errorf("differs(%+v, %+v): got %q, want %q", tc.rec, tc.in, got, tc.want)
		}
	}
}

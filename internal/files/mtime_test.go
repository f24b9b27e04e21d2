//go:build linux

package files

import (
	"context"
	"crypto/sha256"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/larderfs/larder"
)

// TestUploadModTime: the modification time an upload gives is the file's
// on every backend: on a disk, set on the file itself; on a bucket, whose
// objects take the store's time, kept in the record and answered from
// it, while the record is of the object's content. A time no file can
// have is refused at commit.
func TestUploadModTime(t *testing.T) {
	for backend, world := range worlds(func(t *testing.T) func() (larder.FileStore, func()) {
		return sqliteWorld(t, filepath.Join(t.TempDir(), "larder.db"))
	}) {
		t.Run(backend, func(t *testing.T) {
			ctx := context.Background()
			w := world(t)
			_, sp := w.service("")
			when := time.Date(2009, 11, 10, 23, 0, 0, 5000, time.UTC)
			data := []byte("hello, playground")
			u, err := sp.StartUpload(ctx, "go.txt", int64(len(data)), false, false)
			must(t, err)
			u.Modified = when
			must(t, write(u, data))
			placed, err := u.Commit(ctx, sha256.Sum256(data), nil, 0, nil)
			must(t, err)
			u.Close()
			if !placed.ModTime.Equal(when) {
				t.Errorf("Commit's Info: modified %v, want %v", placed.ModTime, when)
			}
			l := Loc{Path: "go.txt"}
			in, err := sp.Stat(l)
			must(t, err)
			if got := sp.ModTime(ctx, l, in); !got.Equal(when) {
				t.Errorf("ModTime: got %v, want %v", got, when)
			}
			if backend == "disk" && !in.ModTime.Equal(when) {
				t.Errorf("the file on disk: modified %v, want %v", in.ModTime, when)
			}
			f, _, err := sp.OpenKnown(ctx, l)
			must(t, err)
			if !f.ModTime.Equal(when) {
				t.Errorf("OpenKnown: modified %v, want %v", f.ModTime, when)
			}
			f.Close()
			f, err = sp.Open(ctx, l)
			must(t, err)
			if !f.ModTime.Equal(when) {
				t.Errorf("Open: modified %v, want %v", f.ModTime, when)
			}
			f.Close()

			// Replaced without a time: the commit's, not the old record's.
			before := time.Now().Add(-2 * time.Second)
			must(t, put(ctx, sp, "go.txt", []byte("another content"), true))
			in, err = sp.Stat(l)
			must(t, err)
			if got := sp.ModTime(ctx, l, in); got.Before(before) {
				t.Errorf("ModTime after a replacement without a time: got %v, want about now", got)
			}

			u, err = sp.StartUpload(ctx, "bad.txt", 1, false, false)
			must(t, err)
			u.Modified = time.Unix(-1, 0)
			write(u, []byte("x"))
			_, err = u.Commit(ctx, sha256.Sum256([]byte("x")), nil, 0, nil)
			checkCode(t, "a commit with a time before 1970", err, larder.EINVALID)
			u.Discard()
		})
	}
}

// TestCheckModTimeEdges: each refused time says why it is, truly: the
// time 0 is not "before 1970".
func TestCheckModTimeEdges(t *testing.T) {
	for _, c := range []struct {
		t    time.Time
		want string // "" for kept
	}{
		{time.Unix(0, 0), "the time 0"},
		{time.Unix(0, -1), "before 1970"},
		{time.Unix(0, 1), ""},
		{time.Now(), ""},
		{time.Now().Add(MaxModTimeAhead + time.Minute), "more than a day ahead"},
	} {
		err := CheckModTime(c.t)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%v: %v, want kept", c.t, err)
		case c.want != "" && (larder.ErrorCode(err) != larder.EINVALID || !strings.Contains(err.Error(), c.want) ||
			c.want != "before 1970" && strings.Contains(err.Error(), "before 1970")):
			t.Errorf("%v: %v, want EINVALID saying %q", c.t, err, c.want)
		}
	}
}

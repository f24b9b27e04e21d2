package disk_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/disk"
)

// TestRemoveTree: a tree is removed a budget of entries at a time, the
// deepest first, each call going on where the last stopped, with what it
// removed counted; a deep tree is no harder; symbolic links and special
// files in it go, and what they point to stays; nothing there is gone,
// and the top of the space is refused.
func TestRemoveTree(t *testing.T) {
	dir := t.TempDir()
	spaces, err := disk.OpenSpaces(dir)
	ok(t, err)
	defer spaces.Close()
	sp, err := spaces.Space(1)
	ok(t, err)
	defer sp.Close()
	files := filepath.Join(dir, "id-1", "files")
	if _, err := os.Stat(files); err != nil {
		t.Fatalf("the space's files folder: %v", err)
	}
	outside := t.TempDir()
	ok(t, os.WriteFile(filepath.Join(outside, "precious"), []byte("keep"), 0o600))
	deep := filepath.Join(files, "t", strings.Repeat("d/", 300))
	ok(t, os.MkdirAll(deep, 0o700))
	for i, name := range []string{"a", "b", "c"} {
		ok(t, os.WriteFile(filepath.Join(files, "t", name), []byte(strings.Repeat("x", i+1)), 0o600))
		ok(t, os.WriteFile(filepath.Join(deep, name), []byte("y"), 0o600))
	}
	ok(t, os.Symlink(outside, filepath.Join(files, "t", "link")))
	ok(t, os.Symlink(filepath.Join(outside, "precious"), filepath.Join(deep, "flink")))

	var total disk.Removed
	calls := 0
	for {
		r, gone, err := sp.RemoveTree("t", 50)
		calls++
		if err != nil {
			t.Fatalf("call %d: %v", calls, err)
		}
		if r.Files+r.Folders > 50 {
			t.Errorf("call %d removed %+v, more than 50 entries", calls, r)
		}
		total.Files, total.Folders, total.Bytes = total.Files+r.Files, total.Folders+r.Folders, total.Bytes+r.Bytes
		if gone {
			break
		}
		if calls > 100 {
			t.Fatal("not gone after 100 calls")
		}
	}
	if want := (disk.Removed{Files: 6, Folders: 301, Bytes: 1 + 2 + 3 + 3}); total != want || calls < 7 {
		t.Errorf("removed %+v in %d calls, want %+v in 7 or more", total, calls, want)
	}
	if _, err := os.Lstat(filepath.Join(files, "t")); !os.IsNotExist(err) {
		t.Errorf("t after: %v, want it gone", err)
	}
	if b, err := os.ReadFile(filepath.Join(outside, "precious")); err != nil || string(b) != "keep" {
		t.Errorf("the file a link pointed to: %q, %v", b, err)
	}
	if r, gone, err := sp.RemoveTree("t", 50); err != nil || !gone || r != (disk.Removed{}) {
		t.Errorf("again: %+v, %v, %v; want gone, nothing removed", r, gone, err)
	}
	if _, _, err := sp.RemoveTree("", 50); larder.ErrorCode(err) != larder.EINVALID {
		t.Errorf("the top: %v, want refused", err)
	}
}

func ok(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

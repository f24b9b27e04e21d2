package disk_test

import (
	"strings"
	"testing"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/disk"
)

func TestCleanPath(t *testing.T) {
	for in, want := range map[string]string{
		"":          "",
		"/":         "",
		"a":         "a",
		"/a/b.txt":  "a/b.txt",
		"a b/c":     "a b/c",
		"...":       "...",
		"a/.hidden": "a/.hidden",
	} {
		if got, err := disk.CleanPath(in); err != nil || got != want {
			t.Errorf("CleanPath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{
		"..", "a/../b", "a/./b", ".", "a//b", "a/", "//a", "a\x00b",
		strings.Repeat("n", disk.MaxNameLen+1), strings.Repeat("a/", disk.MaxPathLen/2+1),
	} {
		if _, err := disk.CleanPath(in); larder.ErrorCode(err) != larder.EINVALID {
			t.Errorf("CleanPath(%q): %v, want an EINVALID error", in, err)
		}
	}
}

// Each account gets a space of its own, by its id.
func TestSpacesKeepUsersApart(t *testing.T) {
	spaces, err := disk.OpenSpaces(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer spaces.Close()
	for _, id := range []int64{1, 2, 10, 12, 1 << 62} {
		sp, err := spaces.Space(id)
		if err != nil {
			t.Fatalf("space of %d: %v", id, err)
		}
		if err := sp.Mkdir("mine"); err != nil {
			t.Errorf("%d: mkdir: %v (another user's folder?)", id, err)
		}
		sp.Close()
	}
}

func TestRemoveStaleUploads(t *testing.T) {
	spaces, err := disk.OpenSpaces(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer spaces.Close()
	sp, err := spaces.Space(1)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	idle, err := sp.StartUpload("idle.bin", 10, false)
	if err != nil {
		t.Fatal(err)
	}
	idle.Write([]byte("12345"))
	idle.Close() // interrupted: kept for a resume
	busy, err := sp.StartUpload("busy.bin", 10, false)
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	if n, err := spaces.RemoveStaleUploads(time.Now().Add(-time.Hour)); err != nil || n != 0 {
		t.Fatalf("uploads of the last hour: removed %d, %v", n, err)
	}
	if n, err := spaces.RemoveStaleUploads(time.Now().Add(time.Hour)); err != nil || n != 1 {
		t.Fatalf("removed %d, %v; want the idle upload only", n, err)
	}
	// The idle upload starts over; the busy one is still there, locked.
	again, err := sp.StartUpload("idle.bin", 10, true)
	if err != nil || again.Offset != 0 {
		t.Fatalf("resuming a removed upload: offset %v, %v", again, err)
	}
	again.Close()
	if _, err := sp.StartUpload("busy.bin", 10, true); larder.ErrorCode(err) != larder.ECONFLICT {
		t.Errorf("the busy upload: %v, want a conflict", err)
	}
}

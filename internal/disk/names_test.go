package disk

import (
	"strings"
	"testing"

	"github.com/larderfs/larder"
)

// TestNamesBeforeTheRule: a file or folder whose name the rule for new
// names refuses, made before the rule (or by hand), can still be
// replaced, moved away and removed; no new one can be made.
func TestNamesBeforeTheRule(t *testing.T) {
	spaces, err := OpenSpaces(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer spaces.Close()
	sp, err := spaces.Space(1)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	const old = "old\u202etxt.exe"
	if err := sp.root.WriteFile(tree(old), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	up, err := sp.StartUpload(old, 1, false)
	if err != nil {
		t.Fatalf("replacing %q: %v", old, err)
	}
	up.Close()
	if err := sp.Rename(old, "renamed.exe", false); err != nil {
		t.Fatalf("moving %q away: %v", old, err)
	}
	if err := sp.Rename("renamed.exe", old, false); larder.ErrorCode(err) != larder.EINVALID || !strings.Contains(err.Error(), "U+202E") {
		t.Fatalf("moving back to the bad name: got %v, want EINVALID naming U+202E", err)
	}
	if err := sp.root.Mkdir(tree("dir\x1b"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := sp.Remove("dir\x1b"); err != nil {
		t.Fatalf("removing a folder with ESC in its name: %v", err)
	}
	if err := sp.Mkdir("dir\x1b"); larder.ErrorCode(err) != larder.EINVALID {
		t.Fatalf("making it again: got %v, want EINVALID", err)
	}
}

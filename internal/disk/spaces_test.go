package disk_test

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/disk"
)

// TestSpacesDeleteAndAdopt: Delete removes an account's space, under its
// id or under the name an older version gave it; a removal a crash cut
// short is finished by Adopt; Adopt moves an older version's space to its
// account's id, sets aside one whose name has no account, and a second
// run changes nothing.
func TestSpacesDeleteAndAdopt(t *testing.T) {
	dir, aside := t.TempDir(), filepath.Join(t.TempDir(), "deleted")
	write := func(rel, data string) {
		t.Helper()
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	legacy := func(name string) string { return "u-" + hex.EncodeToString([]byte(name)) }
	write(legacy("alice")+"/files/a.txt", "alice's")
	write(legacy("ghost")+"/files/g.txt", "a deleted user's")
	write(legacy("bob")+"/files/b.txt", "bob's old")
	write("id-2/files/b.txt", "bob's")
	write("trash-id-9-123/files/x.txt", "half removed")
	write(legacy("carol")+"/files/c.txt", "carol's")

	spaces, err := disk.OpenSpaces(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer spaces.Close()
	// carol, id 3, is deleted before any start of this version.
	if found, err := spaces.Delete(3, "carol"); !found || err != nil {
		t.Fatalf("Delete(3, carol): got %v, %v; want true, nil", found, err)
	}
	ids := map[string]int64{"alice": 1, "bob": 2}
	lookup := func(name string) (int64, error) {
		if id, ok := ids[name]; ok {
			return id, nil
		}
		return 0, larder.UserNotFound(name)
	}
	for range 2 {
		if _, err := spaces.Adopt(lookup, aside); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]bool{}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		got[e.Name()] = true
	}
	if len(got) != 2 || !got["id-1"] || !got["id-2"] {
		t.Errorf("spaces after Adopt: got %v, want id-1 and id-2", got)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "id-1", "files", "a.txt")); err != nil || string(b) != "alice's" {
		t.Errorf("alice's file after Adopt: %q, %v", b, err)
	}
	for _, pattern := range []string{"ghost-0-*/files/g.txt", "bob-0-*/files/b.txt"} {
		if m, _ := filepath.Glob(filepath.Join(aside, pattern)); len(m) != 1 {
			t.Errorf("set aside %s: got %v", pattern, m)
		}
	}

	// Export moves a space aside whole, and says whether there was one.
	to := filepath.Join(aside, disk.AsideName("../a/b", 2, time.Unix(0, 0)))
	if found, err := spaces.Export(2, "bob", to); !found || err != nil {
		t.Fatalf("Export(2, bob): got %v, %v", found, err)
	}
	if filepath.Base(to) != "_._a_b-2-19700101T000000Z" {
		t.Errorf("AsideName: got %q", filepath.Base(to))
	}
	if b, err := os.ReadFile(filepath.Join(to, "files", "b.txt")); err != nil || string(b) != "bob's" {
		t.Errorf("the exported file: %q, %v", b, err)
	}
	if found, err := spaces.Export(2, "bob", to+"x"); found || err != nil {
		t.Errorf("Export of a space that is gone: got %v, %v; want false, nil", found, err)
	}
}

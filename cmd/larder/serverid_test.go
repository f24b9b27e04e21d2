package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestServerID: a server's name is made once and kept; a file that does
// not hold one is refused, saying what to do, not replaced (the journal
// of changes in flight is under the name it held).
func TestServerID(t *testing.T) {
	dir := t.TempDir()
	id, err := serverID(dir)
	if err != nil || !validServerID(id) {
		t.Fatalf("first serverID: %q, %v; want 16 hex digits", id, err)
	}
	if again, err := serverID(dir); again != id || err != nil {
		t.Errorf("second serverID: %q, %v; want %q", again, err, id)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("the data folder holds %d entries, want the server-id file alone", len(entries))
	}
	must(t, os.WriteFile(filepath.Join(dir, serverIDFile), []byte("../x\n"), 0o600))
	if _, err := serverID(dir); err == nil {
		t.Errorf("serverID of a file holding %q: no error", "../x")
	}
}

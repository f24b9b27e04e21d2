package clientconf

import (
	"os"
	"runtime"
	"strings"
	"testing"
)

func TestEnrolledLookupRecord(t *testing.T) {
	e := Open(t.TempDir()).Enrolled()
	if ok, err := e.Lookup("h:1", "alice"); ok || err != nil {
		t.Fatalf("Lookup in a missing file: %v, %v; want false, nil", ok, err)
	}
	for range 2 { // recording twice keeps one line
		if err := e.Record("Host:1", "alice"); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Record("h:2", "bob"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		server, user string
		want         bool
	}{{"host:1", "alice", true}, {"HOST:1", "alice", true}, {"h:2", "bob", true}, {"h:2", "alice", false}, {"host:1", "bob", false}} {
		if ok, err := e.Lookup(c.server, c.user); ok != c.want || err != nil {
			t.Errorf("Lookup(%q, %q) = %v, %v; want %v", c.server, c.user, ok, err, c.want)
		}
	}
	b, err := os.ReadFile(e.Path())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), "host:1\talice\nh:2\tbob\n"; got != want {
		t.Errorf("file holds %q, want %q", got, want)
	}
	if err := e.Record("h:3", "a\tb"); err == nil {
		t.Error("Record of a user with a tab succeeded")
	}
	if runtime.GOOS == "windows" {
		return
	}
	if fi, err := os.Stat(e.Path()); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	if err := os.Chmod(e.Path(), 0o666); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Lookup("h:2", "bob"); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("Lookup in a file others may change: %v; want a refusal naming chmod 600", err)
	}
}

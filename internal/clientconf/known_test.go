package clientconf_test

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/larderfs/larder/internal/clientconf"
)

// Two fingerprints for the tests.
var (
	fpA = "SHA256:" + strings.Repeat("a1", 32)
	fpB = "SHA256:" + strings.Repeat("b2", 32)
)

func TestKnownServersPin(t *testing.T) {
	k := newKnown(t)
	if _, ok, err := k.Lookup("h:1"); ok || err != nil {
		t.Fatalf("Lookup in a missing file: got %v, %v; want none", ok, err)
	}
	if err := k.Record("Example.ORG:23456", fpA); err != nil {
		t.Fatal(err)
	}
	if err := k.Record("[::1]:23456", fpB); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ addr, want string }{
		{"example.org:23456", fpA},
		{"EXAMPLE.org:23456", fpA},
		{"[::1]:23456", fpB},
		{"example.org:23457", ""},
		{"localhost:23456", fpB}, // [::1] is localhost
		{"[0:0:0:0:0:0:0:1]:023456", fpB},
	}
	for _, tt := range tests {
		got, ok, err := k.Lookup(tt.addr)
		if err != nil || got != tt.want || ok != (tt.want != "") {
			t.Errorf("Lookup(%q) = %q, %v, %v; want %q", tt.addr, got, ok, err, tt.want)
		}
	}

	// Recording again the same is nothing; another is refused.
	if err := k.Record("example.org:23456", fpA); err != nil {
		t.Errorf("pinning the same fingerprint again: %v", err)
	}
	err := k.Record("example.org:23456", fpB)
	if ce, ok := err.(*clientconf.PinConflictError); !ok || ce.Addr != "example.org:23456" || ce.Pinned != fpA || ce.Got != fpB || ce.File != k.Path() {
		t.Errorf("pinning another fingerprint: got %v, want a *PinConflictError", err)
	}

	data, err := os.ReadFile(k.Path())
	if err != nil {
		t.Fatal(err)
	}
	want := "example.org:23456 " + fpA + "\n[::1]:23456 " + fpB + "\n"
	if !strings.HasSuffix(string(data), want) || pinLines(string(data)) != 2 {
		t.Errorf("file holds\n%s\nwant it to end with\n%s", data, want)
	}

	for _, bad := range []struct{ addr, fp string }{
		{"nohost", fpA},
		{"a b:1", fpA},
		{"h:1", "SHA256:abc"},
		{"h:1", strings.Repeat("a1", 32)},
	} {
		if err := k.Record(bad.addr, bad.fp); err == nil {
			t.Errorf("Record(%q, %q) succeeded", bad.addr, bad.fp)
		}
	}
}

// pinLines counts the lines of data that are neither blank nor comments.
func pinLines(data string) int {
	n := 0
	for line := range strings.Lines(data) {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			n++
		}
	}
	return n
}

// TestKnownServersKeepsLines adds a pin to a file written by hand: every
// line in it must stay as it was.
func TestKnownServersKeepsLines(t *testing.T) {
	k := newKnown(t)
	if err := os.MkdirAll(filepath.Dir(k.Path()), 0o700); err != nil {
		t.Fatal(err)
	}
	// A hand-written line may use openssl's form of the digits.
	opensslForm := strings.Repeat("C3:", 31) + "C3"
	old := "# my servers\n\nwork:23456 " + fpA + "\n   # indented comment\nhome:23456   SHA256:" + opensslForm // no final newline
	if err := os.WriteFile(k.Path(), []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, _, err := k.Lookup("home:23456"); err != nil || got != "SHA256:"+strings.Repeat("c3", 32) {
		t.Errorf("Lookup of a line in openssl's form: got %q, %v", got, err)
	}
	if err := k.Record("new:23456", fpB); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(k.Path())
	if err != nil {
		t.Fatal(err)
	}
	if want := old + "\nnew:23456 " + fpB + "\n"; string(data) != want {
		t.Errorf("file holds\n%q\nwant\n%q", data, want)
	}
}

func TestKnownServersPermissions(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permissions")
	}
	k := newKnown(t)
	if err := k.Record("h:1", fpA); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]fs.FileMode{
		filepath.Dir(k.Path()): 0o700,
		k.Path():               0o600,
		k.Path() + ".lock":     0o600,
	} {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s has mode %04o, want %04o", filepath.Base(name), got, want)
		}
	}

	// Others may read the file, but not change it...
	if err := os.Chmod(k.Path(), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := k.Lookup("h:1"); err != nil {
		t.Errorf("Lookup in a 0644 file: %v", err)
	}
	if err := os.Chmod(k.Path(), 0o664); err != nil {
		t.Fatal(err)
	}
	if _, _, err := k.Lookup("h:1"); err == nil || !strings.Contains(err.Error(), "chmod 600 "+k.Path()) {
		t.Errorf("Lookup in a 0664 file: got %v, want a refusal naming chmod 600", err)
	}
	// ...and Record repairs it, keeping what it held.
	if err := k.Record("h:2", fpB); err != nil {
		t.Fatal(err)
	}
	if got, _, err := k.Lookup("h:1"); err != nil || got != fpA {
		t.Errorf("after Record repaired the file: got %q, %v", got, err)
	}
	if fi, _ := os.Stat(k.Path()); fi.Mode().Perm() != 0o600 {
		t.Errorf("after Record the file has mode %04o, want 0600", fi.Mode().Perm())
	}
}

func TestKnownServersDamaged(t *testing.T) {
	for _, content := range []string{
		"h:1\n",
		"h:1 " + fpA + " extra\n",
		"h:1 SHA256:xyz\n",
		"h:1 MD5:" + strings.Repeat("a", 32) + "\n",
		"h:1 " + fpA + "\nH:1 " + fpB + "\n", // two pins for one server
	} {
		k := newKnown(t)
		if err := os.MkdirAll(filepath.Dir(k.Path()), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(k.Path(), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, _, err := k.Lookup("h:1")
		if err == nil || !strings.Contains(err.Error(), k.Path()+" line ") {
			t.Errorf("%q: got %v, want an error naming the file and line", content, err)
		}
		// Record must not overwrite a file it cannot read.
		if err := k.Record("other:1", fpA); err == nil {
			t.Errorf("%q: Record replaced a file it could not read", content)
		}
	}
	k := newKnown(t)
	if err := os.MkdirAll(filepath.Dir(k.Path()), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(k.Path(), []byte("h:1 "+fpA+"\nH:1 "+fpA+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, _, err := k.Lookup("h:1"); err != nil || got != fpA {
		t.Errorf("a pin repeated: got %q, %v; want %s", got, err, fpA)
	}
}

// TestKnownServersConcurrentPin pins many servers from many goroutines at
// once; the lock must keep every pin.
func TestKnownServersConcurrentPin(t *testing.T) {
	k := newKnown(t)
	const workers, each = 8, 10
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				if err := k.Record(fmt.Sprintf("w%d:%d", w, i), fpA); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	for w := range workers {
		for i := range each {
			if _, ok, err := k.Lookup(fmt.Sprintf("w%d:%d", w, i)); !ok || err != nil {
				t.Errorf("w%d:%d lost: %v", w, i, err)
			}
		}
	}
	entries, err := os.ReadDir(filepath.Dir(k.Path()))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Errorf("folder holds %d files, want the file and its lock", len(entries))
	}
}

func TestDefaultKnownServersPath(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", "/tmp/xdg")
	t.Setenv("HOME", "/tmp/home")
	dir, err := clientconf.DefaultPath()
	if err != nil {
		t.Fatal(err)
	}
	path := clientconf.Open(dir).KnownServers().Path()
	if runtime.GOOS == "linux" && path != "/tmp/xdg/larder/known_servers" {
		t.Errorf("the default known servers are in %q, want /tmp/xdg/larder/known_servers", path)
	}
}

func newKnown(t *testing.T) *clientconf.KnownServers {
	return clientconf.Open(filepath.Join(t.TempDir(), "config", "larder")).KnownServers()
}

package clientconf_test

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/larderfs/larder/internal/clientconf"
)

const testSalt = "0123456789012345678901234567890123456789012345678901234567890123"

func newStore(t *testing.T) *clientconf.Salts {
	return clientconf.Open(filepath.Join(t.TempDir(), "config", "larder")).Salts()
}

func TestSaltsLookupRecord(t *testing.T) {
	s := newStore(t)
	if got, ok, err := s.Lookup("127.0.0.1:23456", "alice"); ok || err != nil {
		t.Fatalf("Lookup in an empty store: got %q, %v, %v; want none", got, ok, err)
	}

	if err := s.Record("Example.ORG:23456", "alice", "salt-a"); err != nil {
		t.Fatal(err)
	}
	if err := s.Record("example.org:23456", "bob", "salt-b"); err != nil {
		t.Fatal(err)
	}
	if err := s.Record("127.0.0.1:23456", "alice", testSalt); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		server, user, want string
	}{
		{"example.org:23456", "alice", "salt-a"},
		{"EXAMPLE.org:23456", "bob", "salt-b"},
		{"127.0.0.1:23456", "alice", testSalt},
		{"localhost:23456", "alice", testSalt}, // one server, however spelled
		{"[::ffff:127.0.0.1]:23456", "alice", testSalt},
		{"127.0.0.2:23456", "alice", ""}, // another address
		{"example.org:23457", "alice", ""},
		{"example.org:23456", "Alice", ""}, // usernames are case-sensitive
	}
	for _, tt := range tests {
		got, ok, err := s.Lookup(tt.server, tt.user)
		if err != nil || got != tt.want || ok != (tt.want != "") {
			t.Errorf("Lookup(%q, %q) = %q, %v, %v; want %q", tt.server, tt.user, got, ok, err, tt.want)
		}
	}

	// Record replaces.
	if err := s.Record("example.org:23456", "alice", "salt-a2"); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := s.Lookup("example.org:23456", "alice"); got != "salt-a2" {
		t.Errorf("after a second Record got %q, want salt-a2", got)
	}
	if err := s.Record("x:1", "alice", ""); err == nil {
		t.Error("an empty salt was stored")
	}
}

func TestServerKey(t *testing.T) {
	tests := []struct{ in, want string }{
		{"127.0.0.1:23456", "localhost:23456"},
		{"LocalHost:23456", "localhost:23456"},
		{"localhost.:023456", "localhost:23456"},
		{"[::1]:23456", "localhost:23456"},
		{"[::ffff:127.0.0.1]:23456", "localhost:23456"},
		{"127.0.0.2:23456", "127.0.0.2:23456"},
		{"[::ffff:10.0.0.1]:80", "10.0.0.1:80"},
		{"[FE80::1]:80", "[fe80::1]:80"},
		{"[2001:DB8:0:0:0:0:0:1]:80", "[2001:db8::1]:80"},
		{"Example.ORG.:443", "example.org:443"},
		{"NoPort", "noport"},
	}
	for _, tt := range tests {
		if got := clientconf.ServerKey(tt.in); got != tt.want {
			t.Errorf("ServerKey(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSaltsPermissions(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permissions")
	}
	s := newStore(t)
	if err := s.Record("h:1", "alice", "s"); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(s.Path())
	for name, want := range map[string]fs.FileMode{
		dir:                              0o700,
		s.Path():                         0o600,
		filepath.Join(dir, "salts.lock"): 0o600,
	} {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s has mode %04o, want %04o", filepath.Base(name), got, want)
		}
	}

	// A file others can read is refused, with the fix in the message...
	if err := os.Chmod(s.Path(), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := s.Lookup("h:1", "alice")
	if err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("Lookup in a 0644 file: got %v, want a refusal naming chmod 600", err)
	}
	// ...and repaired by Record, which must not lose what it held.
	if err := s.Record("h:1", "bob", "t"); err != nil {
		t.Fatalf("Record over a 0644 file: %v", err)
	}
	if got, _, err := s.Lookup("h:1", "alice"); err != nil || got != "s" {
		t.Errorf("after Record repaired the file: got %q, %v", got, err)
	}
}

func TestSaltsDamaged(t *testing.T) {
	s := newStore(t)
	if err := s.Prepare(); err != nil {
		t.Fatal(err)
	}
	for _, content := range []string{"{not json", `{"version": 2, "salts": {}}`} {
		if err := os.WriteFile(s.Path(), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := s.Lookup("h:1", "alice"); err == nil {
			t.Errorf("%q: got %v, %v, want a damaged-file error", content, ok, err)
		}
		// Record must not overwrite a file it cannot read: it may hold
		// salts that a newer version wrote.
		if err := s.Record("h:1", "alice", "s"); err == nil {
			t.Errorf("%q: Record replaced a file it could not read", content)
		}
	}
}

func TestSaltsNoTempFilesLeft(t *testing.T) {
	s := newStore(t)
	for i := range 10 {
		if err := s.Record("h:1", fmt.Sprint("u", i), "s"); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := os.ReadDir(filepath.Dir(s.Path()))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 2 {
		t.Errorf("folder holds %v, want only salts.json and salts.lock", names)
	}
}

func TestPrepare(t *testing.T) {
	s := newStore(t)
	if err := s.Prepare(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(s.Path())); err != nil {
		t.Errorf("Prepare did not create the folder: %v", err)
	}
	if runtime.GOOS == "windows" || os.Getuid() == 0 {
		return // root ignores permissions
	}
	ro := filepath.Join(t.TempDir(), "ro")
	if err := os.Mkdir(ro, 0o500); err != nil {
		t.Fatal(err)
	}
	if err := clientconf.Open(filepath.Join(ro, "larder")).Salts().Prepare(); err == nil {
		t.Error("Prepare in a read-only folder succeeded")
	}
}

func TestDefaultPath(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", "/tmp/xdg")
	t.Setenv("HOME", "/tmp/home")
	dir, err := clientconf.DefaultPath()
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(dir) != "larder" {
		t.Errorf("DefaultPath() = %q, want a folder named larder", dir)
	}
}

// TestConcurrentRecord stores salts from many goroutines at once; the lock
// must keep every one.
func TestConcurrentRecord(t *testing.T) {
	s := newStore(t)
	const workers, each = 8, 10
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				if err := s.Record("h:1", fmt.Sprintf("w%d-%d", w, i), strconv.Itoa(w*each+i)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	checkAll(t, s, "w", workers, each)
}

func checkAll(t *testing.T, s *clientconf.Salts, prefix string, workers, each int) {
	t.Helper()
	for w := range workers {
		for i := range each {
			user := fmt.Sprintf("%s%d-%d", prefix, w, i)
			if got, _, err := s.Lookup("h:1", user); err != nil || got != strconv.Itoa(w*each+i) {
				t.Errorf("%s: got %q, %v", user, got, err)
			}
		}
	}
}

// helperEnv names the environment variable that turns this test binary
// into a process that stores salts, for TestConcurrentRecordProcesses.
const helperEnv = "LARDER_SALT_TEST_HELPER"

// TestConcurrentRecordProcesses runs the test binary as several processes that
// store salts in one folder at once: the flock, not a mutex, is what keeps
// them from losing each other's writes.
func TestConcurrentRecordProcesses(t *testing.T) {
	if spec := os.Getenv(helperEnv); spec != "" {
		runHelper(t, spec)
		return
	}
	if testing.Short() {
		t.Skip("starts processes")
	}
	s := newStore(t)
	const procs, each = 3, 15
	cmds := make([]*exec.Cmd, procs)
	outs := make([]strings.Builder, procs)
	for p := range cmds {
		cmds[p] = exec.Command(os.Args[0], "-test.run=^TestConcurrentRecordProcesses$")
		cmds[p].Env = append(os.Environ(), fmt.Sprintf("%s=%s|%d|%d", helperEnv, filepath.Dir(s.Path()), p, each))
		cmds[p].Stdout, cmds[p].Stderr = &outs[p], &outs[p]
		if err := cmds[p].Start(); err != nil {
			t.Fatal(err)
		}
	}
	for p, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Errorf("helper process %d: %v\n%s", p, err, outs[p].String())
		}
	}
	checkAll(t, s, "p", procs, each)
}

func runHelper(t *testing.T, spec string) {
	parts := strings.Split(spec, "|")
	p, _ := strconv.Atoi(parts[1])
	each, _ := strconv.Atoi(parts[2])
	s := clientconf.Open(parts[0]).Salts()
	for i := range each {
		if err := s.Record("h:1", fmt.Sprintf("p%d-%d", p, i), strconv.Itoa(p*each+i)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSaltsSpellings: a file that an earlier version wrote with one
// server under two spellings still works: the spelling typed wins, one
// that agrees is found by any spelling, two that disagree are named; and
// recording the salt again leaves one entry.
func TestSaltsSpellings(t *testing.T) {
	s := newStore(t)
	b := `{"version":1,"salts":{"localhost:23456":{"alice":"a1","bob":"b"},"127.0.0.1:23456":{"alice":"a2","bob":"b"}}}`
	if err := os.MkdirAll(filepath.Dir(s.Path()), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.Path(), []byte(b), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ server, user, want string }{
		{"localhost:23456", "alice", "a1"},
		{"127.0.0.1:23456", "alice", "a2"},
		{"[::1]:23456", "bob", "b"},
	} {
		if got, _, err := s.Lookup(tt.server, tt.user); err != nil || got != tt.want {
			t.Errorf("Lookup(%q, %q) = %q, %v; want %q", tt.server, tt.user, got, err, tt.want)
		}
	}
	_, _, err := s.Lookup("[::1]:23456", "alice")
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:23456 and localhost:23456") {
		t.Errorf("Lookup of alice under a third spelling: got %v, want an error naming both entries", err)
	}
	if err := s.Record("[::1]:23456", "alice", "a3"); err != nil {
		t.Fatal(err)
	}
	for _, server := range []string{"localhost:23456", "127.0.0.1:23456", "[::1]:23456"} {
		if got, _, err := s.Lookup(server, "alice"); err != nil || got != "a3" {
			t.Errorf("after Record, Lookup(%q) = %q, %v; want a3", server, got, err)
		}
	}
	if got, _, err := s.Lookup("localhost:23456", "bob"); err != nil || got != "b" {
		t.Errorf("bob's salt: %q, %v", got, err)
	}
}

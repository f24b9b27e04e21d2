package clientconf_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/larderfs/larder/internal/clientconf"
)

func newRemotes(t *testing.T) *clientconf.Remotes {
	return clientconf.Open(filepath.Join(t.TempDir(), "config", "larder")).Remotes()
}

func TestRemotesRecordLookupRemove(t *testing.T) {
	r := newRemotes(t)
	if names, err := r.Names(); err != nil || len(names) != 0 {
		t.Fatalf("Names of a missing file: %q, %v; want none", names, err)
	}
	work := clientconf.Remote{Server: "files.example.org:23457", User: "alice", Trust: clientconf.Trust{Mode: clientconf.TrustPin}}
	lab := clientconf.Remote{Server: "[::1]:9000", CourseServer: "[::1]:9001", Trust: clientconf.Trust{Mode: clientconf.TrustCA, CAFile: "/etc/ca.pem"}}
	must(t, r.Record("work", work))
	must(t, r.Record("lab", lab))
	if got, ok, err := r.Lookup("work"); err != nil || !ok || got != work {
		t.Errorf("Lookup(work) = %+v, %v, %v; want %+v", got, ok, err, work)
	}
	if names, err := r.Names(); err != nil || !slices.Equal(names, []string{"lab", "work"}) {
		t.Errorf("Names = %q, %v", names, err)
	}
	must(t, r.Remove("lab"))
	if err := r.Remove("lab"); !errors.Is(err, clientconf.ErrNoRemote) {
		t.Errorf("Remove of a removed remote: %v, want ErrNoRemote", err)
	}
	if _, ok, _ := r.Lookup("lab"); ok {
		t.Error("lab is still there after Remove")
	}
	for _, bad := range []string{"", "1a", "a:b", "a/b", "a@b", "a b", strings.Repeat("a", clientconf.MaxRemoteName+1)} {
		if err := r.Record(bad, work); err == nil {
			t.Errorf("Record(%q) was accepted", bad)
		}
	}
	if err := r.Record("empty", clientconf.Remote{}); err == nil {
		t.Error("a remote without a server was accepted")
	}
	if runtime.GOOS != "windows" {
		if fi, err := os.Stat(r.Path()); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v (%v), want 0600", r.Path(), fi.Mode().Perm(), err)
		}
	}
}

// TestRemotesRefused: a file that others may change, of another version,
// or damaged, is refused and never overwritten.
func TestRemotesRefused(t *testing.T) {
	for name, c := range map[string]struct {
		body string
		mode os.FileMode
		want string
	}{
		"writable": {`{"version":1,"remotes":{}}`, 0o666, "chmod 600"},
		"version":  {`{"version":2,"remotes":{}}`, 0o600, "format version 2"},
		"damaged":  {`{"version":1,`, 0o600, "damaged"},
		"bad name": {`{"version":1,"remotes":{"$(x)":{"server":"a:1","trust":"pin"}}}`, 0o600, "bad name"},
		"no trust": {`{"version":1,"remotes":{"a":{"server":"a:1"}}}`, 0o600, "no trust mode"},
	} {
		t.Run(name, func(t *testing.T) {
			if runtime.GOOS == "windows" && c.mode == 0o666 {
				t.Skip("no Unix permissions")
			}
			r := newRemotes(t)
			must(t, os.MkdirAll(filepath.Dir(r.Path()), 0o700))
			must(t, os.WriteFile(r.Path(), []byte(c.body), c.mode))
			must(t, os.Chmod(r.Path(), c.mode))
			if _, err := r.Names(); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Names: %v, want an error with %q", err, c.want)
			}
			if c.mode == 0o600 {
				if err := r.Record("b", clientconf.Remote{Server: "b:1", Trust: clientconf.Trust{Mode: clientconf.TrustPin}}); err == nil {
					t.Error("Record replaced a file it cannot read")
				}
				if b, _ := os.ReadFile(r.Path()); string(b) != c.body {
					t.Errorf("the file changed to %q", b)
				}
			}
		})
	}
}

// TestRemotesConcurrentRecord: clients that add remotes at once lose
// none of them.
func TestRemotesConcurrentRecord(t *testing.T) {
	r := newRemotes(t)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			if err := r.Record(fmt.Sprintf("r%d", i), clientconf.Remote{Server: fmt.Sprintf("h:%d", i+1), Trust: clientconf.Trust{Mode: clientconf.TrustPin}}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if names, err := r.Names(); err != nil || len(names) != 16 {
		t.Errorf("after 16 concurrent Records: %q, %v", names, err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

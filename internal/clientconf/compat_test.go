package clientconf_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/larderfs/larder/internal/clientconf"
)

// The files under testdata were written by larder's client before this
// package existed, when the salts were internal/salt's, the pins
// internal/tlsconf's and the profile cmd/larder's: "larder register" on a
// course port (26301) and "larder login" on the native port (26302),
// pinning its certificate (testdata/pin), and "larder login --server
// localhost:26302 --salt … --ca-file … --system-roots" in another folder
// (testdata/ca). Users have these files; they must read as they did.
const (
	todaysSalt = "I7yYKxnGZ16LVigQDrrKiyo8h9UmVquIGEyBtS3tSpth0BpgZfnH7m0XWjHD4XHB"
	todaysPin  = "SHA256:fdcd1cacd4c34254cfac91aba61203789c889df4c571e3d0856fa9d44301d074"
)

// todaysDir copies the files of testdata/name into a folder as the client
// left them, private, and opens it.
func todaysDir(t *testing.T, name string) *clientconf.Dir {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "larder")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("testdata", name, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return clientconf.Open(dir)
}

func TestTodaysFilesRead(t *testing.T) {
	pin := todaysDir(t, "pin")
	for _, server := range []string{"127.0.0.1:26301", "127.0.0.1:26302"} {
		if got, ok, err := pin.Salts().Lookup(server, "alice"); err != nil || !ok || got != todaysSalt {
			t.Errorf("salt of alice on %s: got %q, %v, %v; want %s", server, got, ok, err, todaysSalt)
		}
	}
	if got, ok, err := pin.KnownServers().Lookup("127.0.0.1:26302"); err != nil || !ok || got != todaysPin {
		t.Errorf("pin of 127.0.0.1:26302: got %q, %v, %v; want %s", got, ok, err, todaysPin)
	}
	want := clientconf.Settings{Server: "127.0.0.1:26302", User: "alice", Trust: clientconf.Trust{Mode: clientconf.TrustPin}}
	if got, ok, err := pin.Profile().Lookup(); err != nil || !ok || got != want {
		t.Errorf("profile: got %+v, %v, %v; want %+v", got, ok, err, want)
	}

	ca := todaysDir(t, "ca")
	if got, ok, err := ca.Salts().Lookup("LocalHost:26302", "alice"); err != nil || !ok || got != todaysSalt {
		t.Errorf("salt of alice on localhost:26302: got %q, %v, %v; want %s", got, ok, err, todaysSalt)
	}
	want = clientconf.Settings{Server: "localhost:26302", User: "alice", Trust: clientconf.Trust{
		Mode: clientconf.TrustCA, CAFile: "/tmp/cc-fx/data/tls/cert.pem", SystemRoots: true,
	}}
	if got, ok, err := ca.Profile().Lookup(); err != nil || !ok || got != want {
		t.Errorf("profile: got %+v, %v, %v; want %+v", got, ok, err, want)
	}
	if _, ok, err := ca.KnownServers().Lookup("localhost:26302"); ok || err != nil {
		t.Errorf("a login with a certificate authority pinned nothing, but Lookup found a pin (%v)", err)
	}
}

// TestTodaysFilesWritten records what the earlier client recorded, in a
// new folder: the files must be the same bytes, so that an earlier client
// reads them too.
func TestTodaysFilesWritten(t *testing.T) {
	for _, tt := range []struct {
		name    string
		salts   []string // servers with alice's salt
		pins    []string // servers pinned with todaysPin
		profile clientconf.Settings
	}{
		{"pin", []string{"127.0.0.1:26301", "127.0.0.1:26302"}, []string{"127.0.0.1:26302"},
			clientconf.Settings{Server: "127.0.0.1:26302", User: "alice", Trust: clientconf.Trust{Mode: clientconf.TrustPin}}},
		{"ca", []string{"localhost:26302"}, nil,
			clientconf.Settings{Server: "localhost:26302", User: "alice", Trust: clientconf.Trust{
				Mode: clientconf.TrustCA, CAFile: "/tmp/cc-fx/data/tls/cert.pem", SystemRoots: true}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := clientconf.Open(filepath.Join(t.TempDir(), "larder"))
			for _, server := range tt.salts {
				if err := d.Salts().Record(server, "alice", todaysSalt); err != nil {
					t.Fatal(err)
				}
			}
			for _, server := range tt.pins {
				if err := d.KnownServers().Record(server, todaysPin); err != nil {
					t.Fatal(err)
				}
			}
			if err := d.Profile().Record(tt.profile); err != nil {
				t.Fatal(err)
			}
			entries, err := os.ReadDir(filepath.Join("testdata", tt.name))
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				want, err := os.ReadFile(filepath.Join("testdata", tt.name, e.Name()))
				if err != nil {
					t.Fatal(err)
				}
				got, err := os.ReadFile(filepath.Join(d.Path(), e.Name()))
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("%s: got\n%s(%v)\nwant\n%s", e.Name(), got, err, want)
				}
			}
		})
	}
}

// TestTodaysFilesUpdated records into the earlier client's files: what
// they held stays.
func TestTodaysFilesUpdated(t *testing.T) {
	d := todaysDir(t, "pin")
	if err := d.Salts().Record("example.org:23456", "bob", "bobs-salt"); err != nil {
		t.Fatal(err)
	}
	for server, want := range map[string]string{"127.0.0.1:26301": todaysSalt, "example.org:23456": ""} {
		if got, _, err := d.Salts().Lookup(server, "alice"); err != nil || got != want {
			t.Errorf("salt of alice on %s: got %q, %v; want %q", server, got, err, want)
		}
	}
	if got, _, err := d.Salts().Lookup("example.org:23456", "bob"); err != nil || got != "bobs-salt" {
		t.Errorf("salt of bob: got %q, %v", got, err)
	}

	old, err := os.ReadFile(filepath.Join("testdata", "pin", "known_servers"))
	if err != nil {
		t.Fatal(err)
	}
	other := "SHA256:" + strings.Repeat("0f", 32)
	if err := d.KnownServers().Record("example.org:23457", other); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(d.KnownServers().Path())
	if want := string(old) + "example.org:23457 " + other + "\n"; err != nil || string(got) != want {
		t.Errorf("known_servers: got\n%s(%v)\nwant\n%s", got, err, want)
	}
}

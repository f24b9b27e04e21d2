package clientconf_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/larderfs/larder/internal/clientconf"
)

func newProfile(t *testing.T) *clientconf.Profile {
	return clientconf.Open(filepath.Join(t.TempDir(), "config", "larder")).Profile()
}

func TestProfileLookupRecord(t *testing.T) {
	p := newProfile(t)
	if got, ok, err := p.Lookup(); ok || err != nil {
		t.Fatalf("Lookup of a missing profile: got %+v, %v, %v; want none", got, ok, err)
	}
	for _, want := range []clientconf.Settings{
		{Server: "h:1", User: "alice", Trust: clientconf.Trust{Mode: clientconf.TrustPin}},
		{Server: "h:2", User: "bob", Trust: clientconf.Trust{Mode: clientconf.TrustCA, CAFile: "/etc/ca.pem", SystemRoots: true}},
		{Server: "h:3", User: "carol", Trust: clientconf.Trust{Mode: clientconf.TrustPlaintext}},
	} {
		if err := p.Record(want); err != nil {
			t.Fatal(err)
		}
		if got, ok, err := p.Lookup(); err != nil || !ok || got != want {
			t.Errorf("after Record(%+v): got %+v, %v, %v", want, got, ok, err)
		}
	}
	if runtime.GOOS == "windows" {
		return
	}
	for name, want := range map[string]fs.FileMode{filepath.Dir(p.Path()): 0o700, p.Path(): 0o600} {
		if fi, err := os.Stat(name); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: got %v (%v), want mode %04o", name, fi.Mode().Perm(), err, want)
		}
	}
	if entries, _ := os.ReadDir(filepath.Dir(p.Path())); len(entries) != 1 {
		t.Errorf("the folder holds %d entries, want the profile alone: a temporary file was left", len(entries))
	}
}

func TestProfilePermissions(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permissions")
	}
	p := newProfile(t)
	s := clientconf.Settings{Server: "h:1", User: "alice", Trust: clientconf.Trust{Mode: clientconf.TrustPin}}
	if err := p.Record(s); err != nil {
		t.Fatal(err)
	}
	// Others may read the profile, but not change it...
	if err := os.Chmod(p.Path(), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.Lookup(); err != nil {
		t.Errorf("Lookup of a 0644 profile: %v", err)
	}
	if err := os.Chmod(p.Path(), 0o664); err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.Lookup(); err == nil || !strings.Contains(err.Error(), "chmod 600 "+p.Path()) {
		t.Errorf("Lookup of a 0664 profile: got %v, want a refusal naming chmod 600", err)
	}
	// ...and Record repairs it.
	if err := p.Record(s); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(p.Path()); fi.Mode().Perm() != 0o600 {
		t.Errorf("after Record the profile has mode %04o, want 0600", fi.Mode().Perm())
	}
}

func TestProfileDamaged(t *testing.T) {
	for _, tt := range []struct{ content, want string }{
		{"{not json", "is damaged (run larder login again)"},
		{`{"version": 2, "server": "h:1", "user": "alice", "trust": "pin"}`, "has format version 2"},
		{`{"version": 1, "user": "alice", "trust": "pin"}`, "no server, user or trust mode"},
		{`{"version": 1, "server": "h:1", "trust": "pin"}`, "no server, user or trust mode"},
		{`{"version": 1, "server": "h:1", "user": "alice", "trust": "none"}`, "no server, user or trust mode"},
	} {
		p := newProfile(t)
		if err := os.MkdirAll(filepath.Dir(p.Path()), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p.Path(), []byte(tt.content), 0o600); err != nil {
			t.Fatal(err)
		}
		if got, ok, err := p.Lookup(); err == nil || ok || !strings.Contains(err.Error(), p.Path()) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %+v, %v, %v; want an error naming the file and saying %q", tt.content, got, ok, err, tt.want)
		}
	}
}

func TestLocate(t *testing.T) {
	env := map[string]string{clientconf.EnvDir: "/somewhere/else"}
	if got, err := clientconf.Locate(func(k string) string { return env[k] }); err != nil || got != "/somewhere/else" {
		t.Errorf("Locate with %s set: got %q, %v", clientconf.EnvDir, got, err)
	}
	t.Setenv("XDG_CONFIG_HOME", "/tmp/xdg")
	t.Setenv("HOME", "/tmp/home")
	want, err := clientconf.DefaultPath()
	if err != nil {
		t.Fatal(err)
	}
	if got, err := clientconf.Locate(func(string) string { return "" }); err != nil || got != want {
		t.Errorf("Locate without %s: got %q, %v; want %q", clientconf.EnvDir, got, err, want)
	}
	if runtime.GOOS == "windows" || runtime.GOOS == "darwin" || runtime.GOOS == "plan9" {
		return
	}
	// Without a home, the error says what to set.
	t.Setenv("XDG_CONFIG_HOME", "")
	t.Setenv("HOME", "")
	if _, err := clientconf.Locate(func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), "set "+clientconf.EnvDir) {
		t.Errorf("Locate without a home: got %v, want an error saying to set %s", err, clientconf.EnvDir)
	}
}

package clientconf_test

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/larderfs/larder/internal/clientconf"
)

func TestDevices(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "conf")
	s := clientconf.Open(dir).Devices()
	if _, ok, err := s.Lookup("h:1", "alice"); ok || err != nil {
		t.Fatalf("Lookup in no file: %v, %v", ok, err)
	}
	d := clientconf.Device{ID: [16]byte{1, 2}, Secret: [32]byte{3, 4}, Expires: time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)}
	if err := s.Record("H:1", "alice", d); err != nil {
		t.Fatal(err)
	}
	if err := s.Record("h:1", "bob", clientconf.Device{Expires: d.Expires}); err != nil {
		t.Fatal(err)
	}
	got, ok, err := s.Lookup("h:1", "alice")
	if !ok || err != nil || got.ID != d.ID || got.Secret != d.Secret || !got.Expires.Equal(d.Expires) {
		t.Fatalf("Lookup: %+v, %v, %v; want %+v", got, ok, err, d)
	}
	fi, err := os.Stat(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %04o, want 0600", fi.Mode().Perm())
	}
	if err := s.Remove("h:1", "alice"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.Lookup("h:1", "alice"); ok {
		t.Error("Lookup after Remove found it")
	}
	if _, ok, _ := s.Lookup("h:1", "bob"); !ok {
		t.Error("Remove of alice removed bob")
	}
	if runtime.GOOS != "windows" {
		if err := os.Chmod(s.Path(), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Lookup("h:1", "bob"); err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("Lookup in a file others may read: got %v, want a refusal", err)
		}
	}
}

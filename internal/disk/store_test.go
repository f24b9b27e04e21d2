//go:build linux

package disk

import (
	"bytes"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/larderfs/larder"
)

// newTree builds a served folder with a secret file beside it, outside.
func newTree(t *testing.T) (served, secret string) {
	t.Helper()
	top := t.TempDir()
	served = filepath.Join(top, "served")
	secret = filepath.Join(top, "secret.txt")
	must(t, os.MkdirAll(filepath.Join(served, "sub"), 0o755))
	must(t, os.WriteFile(secret, []byte("the server's secret"), 0o644))
	must(t, os.WriteFile(filepath.Join(served, "hello.txt"), []byte("hello\r\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(served, "sub", "inner.txt"), []byte("inner"), 0o644))
	must(t, os.WriteFile(filepath.Join(served, "empty"), nil, 0o644))
	must(t, os.Symlink("../secret.txt", filepath.Join(served, "escape-relative")))
	must(t, os.Symlink(secret, filepath.Join(served, "escape-absolute")))
	must(t, os.Symlink("..", filepath.Join(served, "parent")))
	must(t, os.Symlink("sub/inner.txt", filepath.Join(served, "inside-link")))
	must(t, os.Symlink("loop-b", filepath.Join(served, "loop-a")))
	must(t, os.Symlink("loop-a", filepath.Join(served, "loop-b")))
	must(t, syscall.Mkfifo(filepath.Join(served, "fifo"), 0o644))
	return served, secret
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func openStore(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir)
	must(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func TestOpenServesFilesInside(t *testing.T) {
	served, _ := newTree(t)
	s := openStore(t, served)
	for name, want := range map[string]string{
		"hello.txt":     "hello\r\n",
		"sub/inner.txt": "inner",
		"./hello.txt":   "hello\r\n",
		"inside-link":   "inner",
		"empty":         "",
	} {
		f, err := s.Open(name)
		if err != nil {
			t.Errorf("Open(%q): %v", name, err)
			continue
		}
		got, _ := io.ReadAll(io.NewSectionReader(f, 0, f.Size))
		f.Close()
		if string(got) != want || f.Size != int64(len(want)) {
			t.Errorf("Open(%q) read %q (size %d), want %q", name, got, f.Size, want)
		}
	}
}

// Every way out of the served folder must be refused, and the secret
// beside it never read.
func TestOpenRefusesTraversal(t *testing.T) {
	served, secret := newTree(t)
	s := openStore(t, served)
	tests := []struct {
		name string
		code string
	}{
		{"../secret.txt", larder.EINVALID},
		{"..", larder.EINVALID},
		{"sub/../../secret.txt", larder.EINVALID},
		{"sub/../hello.txt", larder.EINVALID}, // harmless, but ".." is refused outright
		{secret, larder.EINVALID},             // absolute
		{"/etc/passwd", larder.EINVALID},
		{"escape-relative", larder.EINVALID},
		{"escape-absolute", larder.EINVALID},
		{"parent/secret.txt", larder.EINVALID},
		{"hello.txt\x00.png", larder.EINVALID},
		{"\x00", larder.EINVALID},
		{"", larder.EINVALID},
		{".", larder.EINVALID},
		{"sub", larder.EINVALID},
		{"sub/", larder.EINVALID},
		{"fifo", larder.EINVALID},
		{"loop-a", larder.EINVALID},
		{"missing.txt", larder.ENOTFOUND},
		{"hello.txt/x", larder.ENOTFOUND},
	}
	for _, tt := range tests {
		done := make(chan struct{})
		var err error
		go func() {
			defer close(done)
			var f *File
			f, err = s.Open(tt.name)
			if err == nil {
				f.Close()
			}
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("Open(%q) blocked", tt.name)
		}
		if got := larder.ErrorCode(err); got != tt.code {
			t.Errorf("Open(%q): got code %q (%v), want %q", tt.name, got, err, tt.code)
		}
		if msg := larder.ErrorMessage(err); bytes.Contains([]byte(msg), []byte("secret's")) {
			t.Errorf("Open(%q): message %q leaks content", tt.name, msg)
		}
	}
}

func TestOpenBinaryExact(t *testing.T) {
	dir := t.TempDir()
	var all []byte
	for i := range 256 {
		all = append(all, byte(i))
	}
	all = append(all, "\r\n\n\r"...)
	must(t, os.WriteFile(filepath.Join(dir, "bin"), all, 0o644))
	s := openStore(t, dir)
	f, err := s.Open("bin")
	must(t, err)
	defer f.Close()
	got, _ := io.ReadAll(io.NewSectionReader(f, 0, f.Size))
	if !bytes.Equal(got, all) {
		t.Fatal("binary content changed")
	}
}

// TestOpenErrorPermission: a file the server may not read is not the
// client's mistake in the path but a refusal: EFORBIDDEN, which LNP/1
// answers DENIED, not EINVALID (BAD_REQUEST, "not found" to the client).
func TestOpenErrorPermission(t *testing.T) {
	err := (&Store{}).openError("secret", &fs.PathError{Op: "openat", Path: "secret", Err: syscall.EACCES})
	if code := larder.ErrorCode(err); code != larder.EFORBIDDEN {
		t.Errorf("permission denied: got code %q (%v), want %q", code, err, larder.EFORBIDDEN)
	}
	if msg := larder.ErrorMessage(err); !strings.Contains(msg, "permission denied") {
		t.Errorf("message %q does not say permission denied", msg)
	}
}

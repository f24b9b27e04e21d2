//go:build linux

package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/larderfs/larder/client"
)

// The tests of this file hold larder's promise that get never destroys
// local data: a device or FIFO is written into, never
// replaced; a failed or doubtful fetch leaves an existing file as it was;
// an existing file that is not an earlier, partial copy of the remote is
// replaced only with -f.

// mknodNull makes a character device like /dev/null (1, 3) in dir, or
// skips the test where that is not allowed (only root may).
func mknodNull(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "fakenull")
	if err := syscall.Mknod(p, syscall.S_IFCHR|0o666, 1<<8|3); err != nil {
		t.Skipf("cannot make a device node: %v", err)
	}
	return p
}

// wantCharDevice checks that p is still a character device.
func wantCharDevice(t *testing.T, p string) {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		t.Errorf("%s is no longer a character device: %v, %v", p, fi.Mode(), err)
	}
}

// readFIFO makes a FIFO at dir/name and reads it in the background; the
// returned function waits for what was read.
func readFIFO(t *testing.T, dir, name string) (string, func() []byte) {
	t.Helper()
	p := filepath.Join(dir, name)
	must(t, syscall.Mkfifo(p, 0o600))
	got := make(chan []byte, 1)
	go func() {
		f, err := os.Open(p) // blocks until get opens it for writing
		if err != nil {
			got <- nil
			return
		}
		defer f.Close()
		b, _ := io.ReadAll(f)
		got <- b
	}()
	return p, func() []byte {
		select {
		case b := <-got:
			return b
		case <-time.After(10 * time.Second):
			t.Fatal("nothing came out of the FIFO")
			return nil
		}
	}
}

// TestGetCourseIntoDevice: for the course protocol, -o naming a device or
// a FIFO writes into it, and leaves it what it was.
func TestGetCourseIntoDevice(t *testing.T) {
	data := bytes.Repeat([]byte("device "), 1000)
	srv := filesServer(t, map[string][]byte{"f": data})
	t.Run("device", func(t *testing.T) {
		dir := t.TempDir()
		null := mknodNull(t, dir)
		env, _, stderr := testEnv(t, srv.addr)
		if err := run(env, "get", "--salt", testSalt, "f", "--course", "-o", null); err != nil {
			t.Fatalf("get: %v\n%s", err, stderr)
		}
		wantCharDevice(t, null)
		onlyFile(t, dir, "fakenull")
	})
	t.Run("fifo", func(t *testing.T) {
		dir := t.TempDir()
		fifo, read := readFIFO(t, dir, "pipe")
		env, _, stderr := testEnv(t, srv.addr)
		if err := run(env, "get", "--salt", testSalt, "f", "--course", "-o", fifo); err != nil {
			t.Fatalf("get: %v\n%s", err, stderr)
		}
		if got := read(); !bytes.Equal(got, data) {
			t.Errorf("the FIFO gave %d bytes, want %d", len(got), len(data))
		}
		if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
			t.Errorf("%s is no longer a FIFO: %v", fifo, err)
		}
		onlyFile(t, dir, "pipe")
	})
}

// TestGetLNPIntoDevice is TestGetCourseIntoDevice for LNP/1.
func TestGetLNPIntoDevice(t *testing.T) {
	l := startLarder(t)
	env := loggedIn(t, l)
	data := randomData(100_000, 3)
	dir := t.TempDir()
	runOK(t, env, "put", writeLocal(t, dir, "f.bin", data), "/f.bin")
	t.Run("device", func(t *testing.T) {
		dir := t.TempDir()
		null := mknodNull(t, dir)
		runOK(t, env, "get", "/f.bin", "-o", null)
		wantCharDevice(t, null)
		onlyFile(t, dir, "fakenull")
	})
	t.Run("fifo", func(t *testing.T) {
		dir := t.TempDir()
		fifo, read := readFIFO(t, dir, "pipe")
		runOK(t, env, "get", "/f.bin", "-o", fifo)
		if got := read(); !bytes.Equal(got, data) {
			t.Errorf("the FIFO gave %d bytes, want %d", len(got), len(data))
		}
		onlyFile(t, dir, "pipe")
	})
}

// TestGetNoReplyKeepsFile: a course server's silence is an error
// that says what it may mean, with the network exit code, and an existing
// FILE stays as it was.
func TestGetNoReplyKeepsFile(t *testing.T) {
	srv := filesServer(t, map[string][]byte{"empty": nil})
	env, _, _ := testEnv(t, srv.addr)
	dir := t.TempDir()
	precious := writeLocal(t, dir, "precious.txt", []byte("precious"))
	err := run(env, "get", "--salt", testSalt, "empty", "-o", precious)
	if code := ExitCode(err); code != exitNetwork {
		t.Errorf("exit %d (%v), want %d", code, err, exitNetwork)
	}
	for _, want := range []string{"no reply", "not a course-protocol server", "empty file"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want it to mention %q", err, want)
		}
	}
	if b, _ := os.ReadFile(precious); string(b) != "precious" {
		t.Errorf("precious.txt holds %q, want it untouched", b)
	}
	onlyFile(t, dir, "precious.txt")
	// A new FILE is not made either.
	err = run(env, "get", "--salt", testSalt, "empty", "-o", filepath.Join(dir, "new.txt"))
	if ExitCode(err) != exitNetwork {
		t.Errorf("into a new file: %v, want exit %d", err, exitNetwork)
	}
	onlyFile(t, dir, "precious.txt")
}

// TestGetCourseFromLNPPort is TestGetNoReplyKeepsFile as users met it:
// the course protocol sent to larder's LNP/1 (TLS) port.
func TestGetCourseFromLNPPort(t *testing.T) {
	l := startLarder(t)
	l.put(t, "hello.txt", []byte("hello"))
	env, _, _ := testEnv(t, l.addr())
	must(t, run(env, "register"))
	s, err := storedSalt(env, l.addr(), "alice")
	must(t, err)
	dir := t.TempDir()
	precious := writeLocal(t, dir, "precious.txt", []byte("precious"))
	err = run(env, "get", "hello.txt", "--course", "--salt", s, "--server", l.lnpAddr(), "-o", precious)
	if code := ExitCode(err); code != exitNetwork {
		t.Errorf("exit %d (%v), want %d", code, err, exitNetwork)
	}
	if b, _ := os.ReadFile(precious); string(b) != "precious" {
		t.Errorf("precious.txt holds %q, want it untouched", b)
	}
	onlyFile(t, dir, "precious.txt")
}

// TestGetCourseReplacesOnlyPrefix, for the course protocol: an
// existing FILE that the download does not start with is replaced only
// with -f; one it starts with (an earlier, partial copy) is replaced.
func TestGetCourseReplacesOnlyPrefix(t *testing.T) {
	srv := filesServer(t, map[string][]byte{"f": []byte("new content")})
	env, _, _ := testEnv(t, srv.addr)
	dir := t.TempDir()
	out := writeLocal(t, dir, "out", []byte("my notes"))
	err := run(env, "get", "--salt", testSalt, "f", "-o", out)
	if code := ExitCode(err); code != exitFailure || err == nil || !strings.Contains(err.Error(), "-f") {
		t.Errorf("exit %d (%v), want %d and a word of -f", code, err, exitFailure)
	}
	if b, _ := os.ReadFile(out); string(b) != "my notes" {
		t.Errorf("out holds %q, want it untouched", b)
	}
	onlyFile(t, dir, "out")
	must(t, run(env, "get", "--salt", testSalt, "f", "-o", out, "-f"))
	if b, _ := os.ReadFile(out); string(b) != "new content" {
		t.Errorf("after -f, out holds %q", b)
	}
	must(t, os.WriteFile(out, []byte("new co"), 0o644))
	must(t, run(env, "get", "--salt", testSalt, "f", "-o", out))
	if b, _ := os.ReadFile(out); string(b) != "new content" {
		t.Errorf("after a partial copy, out holds %q", b)
	}
	onlyFile(t, dir, "out")
}

// TestGetCourseThroughSymlink checks that -o naming a symbolic link
// replaces the file it points to and keeps the link.
func TestGetCourseThroughSymlink(t *testing.T) {
	srv := filesServer(t, map[string][]byte{"f": []byte("new")})
	env, _, _ := testEnv(t, srv.addr)
	dir := t.TempDir()
	target := writeLocal(t, dir, "target", nil)
	link := filepath.Join(dir, "link")
	must(t, os.Symlink("target", link))
	must(t, run(env, "get", "--salt", testSalt, "f", "-o", link))
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link was replaced: %v", err)
	}
	if b, _ := os.ReadFile(target); string(b) != "new" {
		t.Errorf("the link's target holds %q", b)
	}
}

// TestLNPGetKeepsUnrelatedFile is TestGetCourseReplacesOnlyPrefix for
// LNP/1: an
// existing file that is not a partial copy of the remote is left as it was
// without -f, and nothing is downloaded.
func TestLNPGetKeepsUnrelatedFile(t *testing.T) {
	l := startLarder(t)
	env := loggedIn(t, l)
	data := randomData(3<<20, 5)
	dir := t.TempDir()
	runOK(t, env, "put", writeLocal(t, dir, "big.bin", data), "/big.bin")
	notes := writeLocal(t, dir, "notes.txt", []byte("my notes, not a download"))
	wantExit(t, env, exitFailure, []string{"notes.txt", "-f"}, "get", "/big.bin", "-o", notes)
	if b, _ := os.ReadFile(notes); string(b) != "my notes, not a download" {
		t.Errorf("notes.txt holds %d bytes, want it untouched", len(b))
	}
	// The download stopped at the first bytes that told.
	if fi, err := os.Stat(notes + ".larder-part"); err == nil && fi.Size() >= int64(len(data)) {
		t.Errorf("the refused download fetched all %d bytes", fi.Size())
	}
	runOK(t, env, "get", "/big.bin", "-o", notes, "-f")
	if b, _ := os.ReadFile(notes); !bytes.Equal(b, data) {
		t.Errorf("after -f, notes.txt holds %d bytes, want the download", len(b))
	}
	if _, err := os.Stat(notes + ".larder-part"); err == nil {
		t.Error("the part file is left after a complete download")
	}
}

// TestLNPGetFullDisk: on a full disk the download fails with a clear
// error and the existing file is left as it was.
func TestLNPGetFullDisk(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small")
	must(t, os.Mkdir(small, 0o700))
	if err := syscall.Mount("tmpfs", small, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("cannot mount a small file system: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(small, syscall.MNT_DETACH) })
	l := startLarder(t)
	env := loggedIn(t, l)
	data := randomData(3<<20, 6)
	runOK(t, env, "put", writeLocal(t, dir, "big.bin", data), "/big.bin")
	local := writeLocal(t, small, "big.bin", data[:1000])
	env2, _, stderr := withVars(env)
	err := run(env2, "get", "/big.bin", "-o", local)
	if err == nil || !strings.Contains(err.Error(), "no space left") {
		t.Errorf("got %v, want a full disk", err)
	}
	if !strings.Contains(stderr.String(), "not changed") {
		t.Errorf("stderr %q, want it to say the file was not changed", stderr)
	}
	if b, _ := os.ReadFile(local); !bytes.Equal(b, data[:1000]) {
		t.Errorf("%s holds %d bytes, want its 1000 untouched", local, len(b))
	}
}

// TestLNPGetOneAtATime checks that a second get into the same file,
// while one runs, is refused rather than writing the same part file.
func TestLNPGetOneAtATime(t *testing.T) {
	l := startLarder(t)
	env := loggedIn(t, l)
	dir := t.TempDir()
	runOK(t, env, "put", writeLocal(t, dir, "f.bin", []byte("content")), "/f.bin")
	local := filepath.Join(dir, "got.bin")
	first, err := client.OpenLocal(local, true) // as a get running does
	must(t, err)
	defer first.Abort()
	wantExit(t, env, exitFailure, []string{"another download"}, "get", "/f.bin", "-o", local)
	if _, err := os.Stat(local); err == nil {
		t.Errorf("%s was made", local)
	}
}

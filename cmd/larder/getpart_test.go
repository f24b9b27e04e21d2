//go:build unix

package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/larderfs/larder/internal/flock"
)

// The tests of this file hold that the files get works with beside FILE
// are larder's own: a FILE.larder-part that is not a verified prefix of
// the remote, or not a regular file, is left alone, and the temporary
// files of a killed course get are cleaned up by the next one, and by
// nothing else.

// TestLNPGetForeignPart: a FILE.larder-part that larder did not make
// from this file is refused by name, and kept, byte for byte.
func TestLNPGetForeignPart(t *testing.T) {
	l := startLarder(t)
	env := loggedIn(t, l)
	dir := t.TempDir()
	data := randomData(3<<20+5, 7)
	runOK(t, env, "put", writeLocal(t, dir, "src.bin", data), "/big.bin")
	runOK(t, env, "put", writeLocal(t, dir, "hello", []byte("hello, world\n")), "/hello.txt")

	for _, tt := range []struct {
		name, remote string
		part         []byte
	}{
		{"shorter than a block", "/hello.txt", []byte("my own notes\n")},
		{"longer than the remote", "/hello.txt", []byte("hello, world\nand more of my own")},
		{"whole blocks that differ", "/big.bin", randomData(2<<20, 8)},
		{"a prefix, then bytes that differ", "/big.bin", append(append([]byte(nil), data[:1<<20]...), []byte("mine")...)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out3")
			part := writeLocal(t, filepath.Dir(out), "out3.larder-part", tt.part)
			wantExit(t, env, exitFailure, []string{part, "-f"}, "get", tt.remote, "-o", out)
			if b, _ := os.ReadFile(part); !bytes.Equal(b, tt.part) {
				t.Errorf("the part file holds %d bytes, want its own %d untouched", len(b), len(tt.part))
			}
			if _, err := os.Lstat(out); err == nil {
				t.Error("FILE was made from a foreign part file")
			}
			// -f starts over.
			runOK(t, env, "get", tt.remote, "-o", out, "-f")
			want := data
			if tt.remote == "/hello.txt" {
				want = []byte("hello, world\n")
			}
			if b, _ := os.ReadFile(out); !bytes.Equal(b, want) {
				t.Errorf("after -f, FILE holds %d bytes, want %d", len(b), len(want))
			}
			onlyFile(t, filepath.Dir(out), "out3")
		})
	}

	// A part that is a prefix, cut in the middle of a block, still
	// resumes.
	out := filepath.Join(t.TempDir(), "big.bin")
	writeLocal(t, filepath.Dir(out), "big.bin.larder-part", data[:1<<20+123])
	_, stderr := runOK(t, env, "get", "/big.bin", "-o", out)
	if b, _ := os.ReadFile(out); !bytes.Equal(b, data) {
		t.Errorf("resumed FILE holds %d bytes, want %d", len(b), len(data))
	}
	if !strings.Contains(stderr, "resumed") {
		t.Errorf("stderr %q does not say it resumed", stderr)
	}
	onlyFile(t, filepath.Dir(out), "big.bin")
}

// TestLNPGetPartNotRegular: a FILE.larder-part that is a symbolic
// link, a FIFO or a hard link to another file is never followed nor
// written, and the message does not call it the bytes fetched so far.
func TestLNPGetPartNotRegular(t *testing.T) {
	l := startLarder(t)
	env := loggedIn(t, l)
	dir := t.TempDir()
	runOK(t, env, "put", writeLocal(t, dir, "hello", []byte("hello, world\n")), "/hello.txt")
	victim := writeLocal(t, dir, "victim", []byte("hello, my victim"))

	for _, tt := range []struct {
		name string
		make func(part string)
		word string
	}{
		{"symlink", func(part string) { must(t, os.Symlink(victim, part)) }, "symbolic link"},
		{"dangling symlink", func(part string) { must(t, os.Symlink(filepath.Join(dir, "nowhere"), part)) }, "symbolic link"},
		{"fifo", func(part string) { must(t, syscall.Mkfifo(part, 0o600)) }, "not a regular file"},
		{"hard link", func(part string) { must(t, os.Link(victim, part)) }, "other names"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sub := t.TempDir()
			out := filepath.Join(sub, "out1")
			part := out + ".larder-part"
			tt.make(part)
			env2, _, stderr := withVars(env)
			err := run(env2, "get", "/hello.txt", "-o", out)
			if code := ExitCode(err); code != exitFailure || err == nil || !strings.Contains(err.Error(), part) || !strings.Contains(err.Error(), tt.word) {
				t.Errorf("exit %d (%v), want %d naming %s and %q", code, err, exitFailure, part, tt.word)
			}
			if strings.Contains(stderr.String(), "fetched so far") {
				t.Errorf("stderr %q calls it what was fetched", stderr)
			}
			if b, _ := os.ReadFile(victim); string(b) != "hello, my victim" {
				t.Errorf("the link's target holds %q", b)
			}
			if _, err := os.Stat(filepath.Join(dir, "nowhere")); err == nil {
				t.Error("a dangling link was followed")
			}
			if _, err := os.Lstat(out); err == nil {
				t.Error("FILE was made")
			}
			if _, err := os.Lstat(part); err != nil {
				t.Errorf("the part was removed: %v", err)
			}
		})
	}
}

// TestCourseGetCleansStaleTemps: the temporary files of a course get that
// was killed are removed by the next get of that target; those of a get
// still running (locked), look-alikes and anything but a regular file are
// left.
func TestCourseGetCleansStaleTemps(t *testing.T) {
	srv := filesServer(t, map[string][]byte{"f": []byte("new content")})
	env, _, _ := testEnv(t, srv.addr)
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	stale := writeLocal(t, dir, ".out.larder-ABCDEFGHIJ.tmp", []byte("half a download"))
	running := writeLocal(t, dir, ".out.larder-KLMNOPQRS2.tmp", []byte("a download going on"))
	f, err := os.OpenFile(running, os.O_RDWR, 0)
	must(t, err)
	defer f.Close()
	if ok, err := flock.TryLock(f); !ok {
		t.Fatalf("cannot lock: %v", err)
	}
	keep := []string{
		writeLocal(t, dir, ".out.larder-notes.tmp", []byte("mine")),
		writeLocal(t, dir, ".out.larder-abcdefghij.tmp", []byte("mine")),
		writeLocal(t, dir, ".other.larder-ABCDEFGHIJ.tmp", []byte("another target's")),
		running,
	}
	link := filepath.Join(dir, ".out.larder-ZZZZZZZZZZ.tmp")
	must(t, os.Symlink(running, link))
	keep = append(keep, link)

	must(t, run(env, "get", "--salt", testSalt, "f", "-o", out))
	if b, _ := os.ReadFile(out); string(b) != "new content" {
		t.Errorf("out holds %q", b)
	}
	if _, err := os.Lstat(stale); err == nil {
		t.Error("the stale temporary file is still there")
	}
	for _, p := range keep {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("%s was removed", filepath.Base(p))
		}
	}
}

// notCourseServer answers every connection with what an HTTP server says
// to bytes it cannot parse.
func notCourseServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.Read(make([]byte, 4096))
				c.Write([]byte("HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request"))
			}()
		}
	}()
	return ln.Addr().String()
}

// TestCourseToHTTPServer: get and register against something that is not
// a course server say so, with the network exit code, and write nothing.
func TestCourseToHTTPServer(t *testing.T) {
	addr := notCourseServer(t)
	env, _, _ := testEnv(t, addr)
	dir := t.TempDir()
	precious := writeLocal(t, dir, "precious.txt", []byte("precious"))
	words := []string{"not the course protocol", `"HTTP/1.1 400`, "right port"}
	wantExit(t, env, exitNetwork, words, "get", "--course", "--salt", testSalt, "f", "-o", precious)
	wantExit(t, env, exitNetwork, words, "register")
	if b, _ := os.ReadFile(precious); string(b) != "precious" {
		t.Errorf("precious.txt holds %q", b)
	}
	onlyFile(t, dir, "precious.txt")
}

// TestRegisterOnLNPPort: register against larder's native (TLS) port
// says what it met, with get's exit code, and how to register there.
func TestRegisterOnLNPPort(t *testing.T) {
	l := startLarder(t)
	env, _, _ := testEnv(t, l.addr())
	wantExit(t, env, exitNetwork, []string{"not a course-protocol server", "larder register --native --server " + l.lnpAddr()}, "register", "--server", l.lnpAddr())
}

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestGetKeepsMtime: a native get gives the local file the server's
// modification time, unless --no-mtime.
func TestGetKeepsMtime(t *testing.T) {
	l := startLarder(t)
	env := loggedIn(t, l)
	l.put(t, "old.txt", []byte("an old file"))
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	must(t, os.Chtimes(filepath.Join(l.files, "old.txt"), old, old))

	dir := t.TempDir()
	kept := filepath.Join(dir, "kept.txt")
	runOK(t, env, "get", "/shared/old.txt", "-o", kept)
	if fi, err := os.Stat(kept); err != nil || !fi.ModTime().Equal(old) {
		t.Errorf("get: modification time %v (%v), want the server's %v", fi.ModTime(), err, old)
	}
	now := filepath.Join(dir, "now.txt")
	start := time.Now().Add(-time.Minute)
	runOK(t, env, "get", "/shared/old.txt", "-o", now, "--no-mtime")
	if fi, err := os.Stat(now); err != nil || fi.ModTime().Before(start) {
		t.Errorf("get --no-mtime: modification time %v (%v), want the time of the download", fi.ModTime(), err)
	}
}

// TestPutStdin: put - REMOTE uploads standard input to REMOTE.
func TestPutStdin(t *testing.T) {
	l := startLarder(t)
	env := loggedIn(t, l)
	data := string(randomData(1<<20+17, 3))
	e, _, stderr := withVars(env)
	e.Stdin = strings.NewReader(data)
	if err := run(e, "put", "-", "/from-stdin.bin"); err != nil {
		t.Fatalf("put -: %v\n%s", err, stderr)
	}
	if out, _ := runOK(t, env, "get", "/from-stdin.bin", "-o", "-"); out != data {
		t.Errorf("got %d bytes back, want the %d put", len(out), len(data))
	}
	wantExit(t, env, exitUsage, []string{"put - REMOTE"}, "put", "-")
	wantExit(t, env, exitUsage, []string{"put - REMOTE"}, "put", "-", "dir/")
	wantExit(t, env, exitUsage, []string{"--password-stdin"}, "put", "-", "x", "--password-stdin")
	runOK(t, env, "mkdir", "d")
	wantExit(t, env, exitUsage, []string{"is a folder"}, "put", "-", "d")
}

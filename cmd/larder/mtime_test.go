package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/larderfs/larder/client"
	"github.com/larderfs/larder/lnp"
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

// TestPutKeepsMtime: put gives REMOTE LOCAL's modification time, and a
// get of it gives it back; with --no-mtime, or a time no file can have
// (said on stderr), REMOTE takes the time of the upload.
func TestPutKeepsMtime(t *testing.T) {
	l := startLarder(t)
	env := loggedIn(t, l)
	dir := t.TempDir()
	old := time.Date(2003, 4, 5, 6, 7, 8, 9000, time.UTC)
	local := writeLocal(t, dir, "old.txt", []byte("kept time"))
	must(t, os.Chtimes(local, old, old))
	runOK(t, env, "put", local)
	stat := func(p string) entryJSON {
		t.Helper()
		out, _ := runOK(t, env, "stat", p, "--json")
		var e entryJSON
		must(t, json.Unmarshal([]byte(out), &e))
		return e
	}
	if e := stat("old.txt"); !e.Modified.Equal(old) {
		t.Errorf("stat after put: modified %v, want LOCAL's %v", e.Modified, old)
	}
	back := filepath.Join(dir, "back.txt")
	runOK(t, env, "get", "old.txt", "-o", back)
	if fi, err := os.Stat(back); err != nil || !fi.ModTime().Equal(old) {
		t.Errorf("get of it: modified %v (%v), want %v", fi.ModTime(), err, old)
	}

	start := time.Now().Add(-time.Minute)
	runOK(t, env, "put", local, "now.txt", "--no-mtime")
	if e := stat("now.txt"); e.Modified.Before(start) {
		t.Errorf("put --no-mtime: modified %v, want the time of the upload", e.Modified)
	}
	must(t, os.Chtimes(local, old, time.Date(1969, 7, 20, 20, 17, 0, 0, time.UTC)))
	if _, errOut := runOK(t, env, "put", local, "moon.txt"); !strings.Contains(errOut, "before 1970") {
		t.Errorf("put of a file from 1969 said %q on stderr, want why its time is not kept", errOut)
	}
	if e := stat("moon.txt"); e.Modified.Before(start) {
		t.Errorf("put of a file from 1969: modified %v, want the time of the upload", e.Modified)
	}
}

// TestRefusedFeatures: the refusal of a HELLO with features by a server
// from before them, as such a server words it, is told from other
// refusals.
func TestRefusedFeatures(t *testing.T) {
	old := &client.LNPError{Status: lnp.StatusMalformed, Message: "malformed HELLO: lnp: HELLO body with 4 bytes left over"}
	if !refusedFeatures(old, lnp.FeaturePutTime) {
		t.Error("an old server's refusal of features not recognized")
	}
	if refusedFeatures(old, 0) {
		t.Error("a refusal of a HELLO that offered nothing taken for one of features")
	}
	for _, err := range []error{
		&client.LNPError{Status: lnp.StatusInvalidLogin, Message: "unknown user or wrong password"},
		&client.LNPError{Status: lnp.StatusMalformed, Message: "malformed HELLO: a HELLO of unknown method 9"},
		errors.New("left over"),
	} {
		if refusedFeatures(err, lnp.FeaturePutTime) {
			t.Errorf("%v taken for a refusal of features", err)
		}
	}
}

// TestPutTreeKeepsMtime: put -r gives each file its local modification
// time, as put does, and get -r gives it back; --no-mtime leaves the time
// of the upload.
func TestPutTreeKeepsMtime(t *testing.T) {
	l := startLarder(t)
	env := loggedIn(t, l)
	dir := t.TempDir()
	old := time.Date(2011, 2, 3, 4, 5, 6, 0, time.UTC)
	for _, p := range []string{"a.txt", "sub/b.txt"} {
		must(t, os.MkdirAll(filepath.Join(dir, "tree", filepath.Dir(p)), 0o755))
		local := writeLocal(t, filepath.Join(dir, "tree", filepath.Dir(p)), filepath.Base(p), []byte("tree "+p))
		must(t, os.Chtimes(local, old, old))
	}
	runOK(t, env, "put", "-r", filepath.Join(dir, "tree"), "kept")
	start := time.Now().Add(-time.Minute)
	runOK(t, env, "put", "-r", "--no-mtime", filepath.Join(dir, "tree"), "now")
	for _, p := range []string{"a.txt", "sub/b.txt"} {
		var e entryJSON
		out, _ := runOK(t, env, "stat", "kept/"+p, "--json")
		must(t, json.Unmarshal([]byte(out), &e))
		if !e.Modified.Equal(old) {
			t.Errorf("stat kept/%s after put -r: modified %v, want LOCAL's %v", p, e.Modified, old)
		}
		out, _ = runOK(t, env, "stat", "now/"+p, "--json")
		must(t, json.Unmarshal([]byte(out), &e))
		if e.Modified.Before(start) {
			t.Errorf("stat now/%s after put -r --no-mtime: modified %v, want the time of the upload", p, e.Modified)
		}
	}
	back := filepath.Join(dir, "back")
	runOK(t, env, "get", "-r", "kept", back)
	if fi, err := os.Stat(filepath.Join(back, "sub", "b.txt")); err != nil || !fi.ModTime().Equal(old) {
		t.Errorf("get -r of it: sub/b.txt %v (%v), want modified %v", fi, err, old)
	}
}

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPutComposesLocalName: a local file whose name is decomposed (as
// macOS writes names) is uploaded under the composed (NFC) form of its
// name, which the server's rule for new names accepts; a name the user
// types is sent as typed.
func TestPutComposesLocalName(t *testing.T) {
	l := startLarder(t)
	env := loggedIn(t, l)
	local := writeLocal(t, t.TempDir(), "cafe\u0301.txt", []byte("x"))
	runOK(t, env, "put", local)
	runOK(t, env, "stat", "/caf\u00e9.txt")
	wantExit(t, env, exitNotFound, []string{"NFC", `\u00e9.txt`}, "put", local, "/e\u0301.txt")
}

// TestPathNotUTF8: a path that is not UTF-8, typed or made from a local
// file's name, is refused before it is sent, saying so, with exit 3 (the
// server could only answer MALFORMED, which blamed the protocol and told
// the user to update the client).
func TestPathNotUTF8(t *testing.T) {
	l := startLarder(t)
	env := loggedIn(t, l)
	runOK(t, env, "mkdir", "/d")
	local := writeLocal(t, t.TempDir(), "bad\xff.txt", []byte("x"))
	for _, args := range [][]string{
		{"put", local},
		{"put", local, "/d/"},
		{"ls", "/bad\xff"},
		{"stat", "/bad\xff"},
		{"mkdir", "/d/bad\xff"},
		{"mv", "/d", "/bad\xff"},
		{"rm", "/bad\xff"},
		{"get", "/bad\xff", "-o", filepath.Join(t.TempDir(), "x")},
	} {
		wantExit(t, env, exitNotFound, []string{"is not UTF-8 text"}, args...)
	}
	err := run(env, "put", "-r", filepath.Dir(local), "/tree")
	if msg := Message(err); ExitCode(err) != exitNotFound || !strings.Contains(msg, "is not UTF-8 text") || strings.Contains(msg, "update the client") {
		t.Errorf("put -r of a tree with a name that is not UTF-8: exit %d, %q", ExitCode(err), msg)
	}
}

// TestEmptyLocalOrRemote: an empty LOCAL or REMOTE, most often a
// variable that was not set ('-o "$DEST"'), is refused, as rm -r's empty
// PATH is, rather than taken for one not given: the file or tree went
// into the current folder, or to the top of the space.
func TestEmptyLocalOrRemote(t *testing.T) {
	l := startLarder(t)
	env := loggedIn(t, l)
	dir := t.TempDir()
	local := writeLocal(t, dir, "a.txt", []byte("a"))
	runOK(t, env, "put", local, "/a.txt")
	t.Chdir(dir)
	for _, args := range [][]string{
		{"get", "/a.txt", "-o", ""},
		{"get", "-r", "/", ""},
		{"get", "-r", "/", "-o", ""},
	} {
		wantExit(t, env, exitUsage, []string{"empty LOCAL"}, args...)
	}
	wantExit(t, env, exitUsage, []string{"empty REMOTE"}, "put", local, "")
	wantExit(t, env, exitUsage, []string{"empty REMOTE"}, "put", "-r", dir, "")
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("the current folder holds %d files, want only a.txt", len(entries))
	}
}

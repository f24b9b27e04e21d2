package main

import (
	"strings"
	"sync/atomic"
	"testing"

	"github.com/larderfs/larder/internal/files"
	"github.com/larderfs/larder/internal/files/backendtest"
)

// TestTreeBeingRemovedHints: a tree whose rm -r stopped in the middle
// refuses writes, moves and removals in it with a CONFLICT whose message
// says to finish the removal; the CLI's hint agrees with it, for put, mv
// and rm with or without -f, rather than advising -f, which cannot help.
// rm -r again finishes the removal, and the folder can be used again. The
// rm -r that failed says that the tree stays so, and what finishes it; a
// restart whose replay of the removal fails keeps it so.
func TestTreeBeingRemovedHints(t *testing.T) {
	var failing atomic.Bool
	l := startLarder(t, func(c *ServeConfig) {
		c.wrapBackend = func(b files.Backend) files.Backend { return backendtest.FailingRemovals{Backend: b, Failing: &failing} }
	})
	env := loggedIn(t, l)
	local := writeLocal(t, t.TempDir(), "f.txt", []byte("a file"))
	src := makeTree(t, treeFiles)
	runOK(t, env, "put", "-r", src, "/d")
	runOK(t, env, "put", local, "/top.txt")
	runOK(t, env, "put", local, "/d/f.txt")

	failing.Store(true)
	wantExit(t, env, exitFailure, []string{`the removal of "/d" stopped before its end: nothing in it can change until it is removed again (rm -r), or the server's next start finishes it`}, "rm", "-r", "/d")

	// A start whose replay of the removal fails too keeps the tree
	// refused: that replay, once it succeeds, removes what is in it.
	addr := l.lnpAddr()
	l = l.restart(t, func(c *ServeConfig) { c.LNPListen = addr })
	wantExit(t, env, exitFailure, []string{"is being removed", "-f does not help"}, "put", local, "/d/new.txt")
	failing.Store(false)

	const being = `"/d" is being removed with everything in it, which is not finished: remove it again (rm -r) to finish`
	for _, args := range [][]string{
		{"put", local, "/d/new.txt"},
		{"put", "-f", local, "/d/f.txt"},
		{"put", "-r", src, "/d/tree"},
		{"mv", "/top.txt", "/d/top.txt"},
		{"mv", "-f", "/top.txt", "/d/f.txt"},
		{"mv", "/d/f.txt", "/f.txt"},
		{"rm", "/d/f.txt"},
	} {
		env, _, _ := withVars(env)
		err := run(env, args...)
		if ExitCode(err) != exitFailure || err == nil {
			t.Errorf("larder %q: exit %d (%v), want %d", args, ExitCode(err), err, exitFailure)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, being) || !strings.Contains(msg, "-f does not help") {
			t.Errorf("larder %q: %q; want the server's message and a hint that -f does not help", args, msg)
		}
		for _, wrong := range []string{"replaces", "must be empty", "is a file on the server"} {
			if strings.Contains(msg, wrong) {
				t.Errorf("larder %q: %q: a hint that does not fit a tree being removed (%q)", args, msg, wrong)
			}
		}
	}

	runOK(t, env, "rm", "-r", "/d")
	if out, _ := runOK(t, env, "ls", "/"); out != "shared/\ntop.txt\n" {
		t.Errorf("ls / after rm -r /d finished: %q", out)
	}
	runOK(t, env, "mkdir", "/d")
	runOK(t, env, "put", local, "/d/new.txt")
}

package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestSharedFileRewrittenInPlace: a file of the shared area, once read
// over both protocols, is rewritten in place with other bytes of the same
// size, and its modification time put back, as "cp -p" does. Both
// protocols must then serve the new bytes, and LNP/1's stat must never
// give the old SHA-256: what the server keeps of a file must not outlive
// the file's content.
func TestSharedFileRewrittenInPlace(t *testing.T) {
	for _, size := range []int{100, 1<<20 + 12345} { // one block; two of LNP/1's
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			l := startLarder(t)
			old := randomData(size, 7)
			l.put(t, "rewritten.bin", old)
			env := loggedIn(t, l)
			out := t.TempDir()

			wantGet(t, env, old, "get", "/shared/rewritten.bin", "-o", filepath.Join(out, "native-1"))
			wantGet(t, env, old, "get", "--course", "rewritten.bin", "-o", filepath.Join(out, "course-1"))
			// Else the server keeps nothing that could go stale, and
			// the test proves nothing.
			if got := statSum(t, env, "/shared/rewritten.bin"); got != sum(old) {
				t.Fatalf("stat after a complete download: sha256 %q, want %q", got, sum(old))
			}

			fresh := randomData(size, 8)
			rewriteInPlace(t, filepath.Join(l.files, "rewritten.bin"), fresh)

			switch got := statSum(t, env, "/shared/rewritten.bin"); got {
			case sum(fresh), "": // "" is "not known yet", which is true
			case sum(old):
				t.Errorf("stat after the rewrite: the old sha256 %s, want the new one %s (or none)", got, sum(fresh))
			default:
				t.Errorf("stat after the rewrite: sha256 %s, want the new one %s (or none); the old was %s", got, sum(fresh), sum(old))
			}
			wantGet(t, env, fresh, "get", "/shared/rewritten.bin", "-o", filepath.Join(out, "native-2"))
			if got := statSum(t, env, "/shared/rewritten.bin"); got != sum(fresh) {
				t.Errorf("stat after a complete download of the new bytes: sha256 %q, want %q (the old was %s)", got, sum(fresh), sum(old))
			}
			wantGet(t, env, fresh, "get", "--course", "rewritten.bin", "-o", filepath.Join(out, "course-2"))
		})
	}
}

// rewriteInPlace writes data over the file at path, which has its size,
// without truncating it or making a new file, and puts its modification
// time back. It checks that the file kept its inode, size and time.
func rewriteInPlace(t *testing.T, path string, data []byte) {
	t.Helper()
	before, err := os.Stat(path)
	must(t, err)
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	must(t, err)
	if _, err := f.WriteAt(data, 0); err != nil {
		t.Fatal(err)
	}
	must(t, f.Close())
	must(t, os.Chtimes(path, before.ModTime(), before.ModTime()))
	after, err := os.Stat(path)
	must(t, err)
	if !os.SameFile(before, after) || after.Size() != before.Size() || !after.ModTime().Equal(before.ModTime()) {
		t.Fatalf("the rewrite changed more than the bytes: same file %v, %d bytes, %v; before %d bytes, %v",
			os.SameFile(before, after), after.Size(), after.ModTime(), before.Size(), before.ModTime())
	}
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// statSum returns the sha256 that "larder stat --json" prints for p, ""
// if it prints none.
func statSum(t *testing.T, env *Env, p string) string {
	t.Helper()
	out, _ := runOK(t, env, "stat", "--json", p)
	var e entryJSON
	if err := json.Unmarshal([]byte(out), &e); err != nil {
		t.Fatalf("stat --json %s printed %q: %v", p, out, err)
	}
	return e.SHA256
}

// wantGet runs larder with args, a get whose -o is the last argument, and
// checks that it succeeds and writes want.
func wantGet(t *testing.T, env *Env, want []byte, args ...string) {
	t.Helper()
	e, _, stderr := withVars(env)
	if err := run(e, args...); err != nil {
		t.Errorf("larder %q: exit %d: %v\n%s", args, ExitCode(err), err, stderr)
		return
	}
	got, err := os.ReadFile(args[len(args)-1])
	must(t, err)
	if !bytes.Equal(got, want) {
		t.Errorf("larder %q wrote %d bytes of sha256 %s, want %d bytes of %s", args, len(got), sum(got), len(want), sum(want))
	}
}

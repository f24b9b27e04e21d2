//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/larderfs/larder/client"
)

// makeTree writes files (slash-separated name → content) under a new
// folder and returns it.
func makeTree(t *testing.T, files map[string][]byte) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "src")
	must(t, os.MkdirAll(root, 0o755))
	for name, data := range files {
		putFile(t, root, name, data)
	}
	return root
}

// sameTree checks that every file of want is in dir with the same bytes.
func sameTree(t *testing.T, dir string, want map[string][]byte) {
	t.Helper()
	for name, data := range want {
		got, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !bytes.Equal(got, data) {
			t.Errorf("%s: %d bytes, not the %d put", name, len(got), len(data))
		}
	}
}

// runErr runs larder in env and returns its error and what it printed.
func runErr(env *Env, args ...string) (stdout, stderr string, err error) {
	env, out, errOut := withVars(env)
	err = run(env, args...)
	return out.String(), errOut.String(), err
}

var treeFiles = map[string][]byte{
	"top.bin":        randomData(300_000, 1),
	"empty":          {},
	"a/b/c.txt":      []byte("deep\n"),
	"a/b/big.bin":    randomData(2<<20+17, 2),
	"a/x.txt":        []byte("x\n"),
	"naïve café.txt": []byte("composed\n"),
}

// TestPutGetTree: put -r and get -r copy a tree both ways, to the same
// place when run again, where files already there the same are not sent
// again, files that differ are skipped without -f and replaced with it,
// and symbolic links are not followed.
func TestPutGetTree(t *testing.T) {
	l := startLarder(t)
	env := loggedIn(t, l)
	src := makeTree(t, treeFiles)
	must(t, os.Mkdir(filepath.Join(src, "emptydir"), 0o755))
	outside := t.TempDir()
	must(t, os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o600))
	must(t, os.Symlink(filepath.Join(outside, "secret"), filepath.Join(src, "link")))
	must(t, os.Symlink(outside, filepath.Join(src, "a", "dirlink")))

	_, stderr := runOK(t, env, "put", "-r", src)
	for _, want := range []string{"link: skipped: a symbolic link", "dirlink: skipped: a symbolic link", "put: 6 files", "0 unchanged", "2 skipped, 0 failed"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("put -r said %q, want it to say %q", stderr, want)
		}
	}
	if out, _ := runOK(t, env, "ls", "/src"); out != "a/\nempty\nemptydir/\nnaïve café.txt\ntop.bin\n" {
		t.Errorf("ls /src: %q", out)
	}
	if out, _ := runOK(t, env, "ls", "/src/a"); out != "b/\nx.txt\n" {
		t.Errorf("ls /src/a: %q (a link was followed?)", out)
	}

	// Again: nothing is sent, and nothing lands elsewhere.
	_, stderr = runOK(t, env, "put", "-r", src)
	if !strings.Contains(stderr, "put: 0 files (0 B)") || !strings.Contains(stderr, "6 unchanged") {
		t.Errorf("put -r again said %q, want 0 files and 6 unchanged", stderr)
	}
	if out, _ := runOK(t, env, "ls", "/"); strings.Contains(out, "src/src") {
		t.Errorf("ls /: %q", out)
	}

	// A file changed locally: skipped without -f, said so; sent with it.
	changed := []byte("changed\n")
	must(t, os.WriteFile(filepath.Join(src, "a", "x.txt"), changed, 0o644))
	_, stderr = runOK(t, env, "put", "-r", src)
	if !strings.Contains(stderr, "x.txt: skipped: /src/a/x.txt exists on the server and differs (-f replaces it)") {
		t.Errorf("put -r of a changed file said %q", stderr)
	}
	_, stderr = runOK(t, env, "put", "-r", "-f", src)
	if !strings.Contains(stderr, "put: 1 file ") {
		t.Errorf("put -r -f said %q, want 1 file sent", stderr)
	}
	want := make(map[string][]byte)
	for k, v := range treeFiles {
		want[k] = v
	}
	want["a/x.txt"] = changed

	// LOCALDIR named through a link is followed, as the user named it.
	link := filepath.Join(t.TempDir(), "link")
	must(t, os.Symlink(src, link))
	_, stderr = runOK(t, env, "put", "-r", link, "/src")
	if !strings.Contains(stderr, "6 unchanged") {
		t.Errorf("put -r through a link to the same tree said %q", stderr)
	}

	// REMOTE is the copy of the tree, again and again; REMOTE/ gets it
	// under its name.
	runOK(t, env, "put", "-r", src, "/dest")
	runOK(t, env, "put", "-r", src, "/dest")
	if out, _ := runOK(t, env, "ls", "/dest"); out != "a/\nempty\nemptydir/\nnaïve café.txt\ntop.bin\n" {
		t.Errorf("ls /dest after two put -r: %q", out)
	}
	runOK(t, env, "put", "-r", src, "/into/")
	if out, _ := runOK(t, env, "ls", "/into"); out != "src/\n" {
		t.Errorf("ls /into: %q", out)
	}

	// get -r: the tree, with the server's modification times.
	dst := filepath.Join(t.TempDir(), "copy")
	_, stderr = runOK(t, env, "get", "-r", "/src", dst)
	if !strings.Contains(stderr, "get: 6 files") {
		t.Errorf("get -r said %q", stderr)
	}
	sameTree(t, dst, want)
	if fi, err := os.Stat(filepath.Join(dst, "emptydir")); err != nil || !fi.IsDir() {
		t.Errorf("the empty folder was not made: %v", err)
	}
	out, _ := runOK(t, env, "stat", "--json", "/src/a/b/big.bin")
	var st entryJSON
	must(t, json.Unmarshal([]byte(out), &st))
	if fi, err := os.Stat(filepath.Join(dst, "a", "b", "big.bin")); err != nil || !fi.ModTime().Equal(st.Modified) {
		t.Errorf("big.bin's time is %v, want the server's %v", fi.ModTime(), st.Modified)
	}
	_, stderr = runOK(t, env, "get", "-r", "/src", dst)
	if !strings.Contains(stderr, "get: 0 files (0 B)") || !strings.Contains(stderr, "6 unchanged") {
		t.Errorf("get -r again said %q, want 0 files and 6 unchanged", stderr)
	}
	// A local file that differs is skipped, and kept; -f replaces it.
	mine := filepath.Join(dst, "top.bin")
	must(t, os.WriteFile(mine, []byte("mine"), 0o644))
	_, stderr = runOK(t, env, "get", "-r", "/src", dst)
	if !strings.Contains(stderr, "top.bin: skipped: "+mine+" exists here and differs (-f replaces it)") {
		t.Errorf("get -r over a different file said %q", stderr)
	}
	if b, _ := os.ReadFile(mine); string(b) != "mine" {
		t.Errorf("the local file was changed without -f: %q", b)
	}
	runOK(t, env, "get", "-r", "-f", "/src", dst)
	sameTree(t, dst, want)

	// Without LOCALDIR, REMOTE's name here; LOCALDIR/ gets it in it.
	parent := t.TempDir()
	runOK(t, env, "get", "-r", "/src/a", parent+"/")
	sameTree(t, filepath.Join(parent, "a"), map[string][]byte{"b/c.txt": []byte("deep\n")})

	// --json, one summary.
	out, _ = runOK(t, env, "get", "-r", "--json", "/src", dst)
	var sum treeJSON
	must(t, json.Unmarshal([]byte(out), &sum))
	if sum.Unchanged != 6 || sum.Files != 0 || len(sum.Skipped) != 0 || len(sum.Failed) != 0 {
		t.Errorf("get -r --json: %+v", sum)
	}
}

// TestTreeParallelSessions: with --transfers above the server's limit of
// transfers per account, the BUSY answers are retried and every file
// arrives; the device credential opens the further sessions.
func TestTreeParallelSessions(t *testing.T) {
	l := startLarder(t, func(c *ServeConfig) { c.MaxTransfersPerUser = 1 })
	env := loggedIn(t, l)
	env, _, _ = withVars(env, "LARDER_PASSWORD", "") // the device credential
	files := make(map[string][]byte)
	for i := range 6 {
		files[string(rune('a'+i))+".bin"] = randomData(4<<20, byte(i))
	}
	src := makeTree(t, files)
	_, stderr := runOK(t, env, "put", "-r", "--transfers", "4", "--retries", "20", src, "/p")
	if !strings.Contains(stderr, "put: 6 files") {
		t.Errorf("put -r said %q", stderr)
	}
	if !strings.Contains(stderr, "wait for their turn") {
		t.Errorf("put -r said %q: no BUSY came, so the test did not test it", stderr)
	}
	dst := t.TempDir()
	runOK(t, env, "get", "-r", "--transfers", "4", "--retries", "20", "/p", dst)
	sameTree(t, dst, files)

	// Far more than the server takes, and no retries: the files wait for
	// their turn rather than fail, as the BUSY answers are the command's
	// own doing.
	_, stderr = runOK(t, env, "put", "-r", "--transfers", "16", "--retries", "0", src, "/q")
	if !strings.Contains(stderr, "put: 6 files") || !strings.Contains(stderr, "wait for their turn") {
		t.Errorf("put -r --transfers 16 said %q", stderr)
	}
}

// TestTreeFailureExitCode: files that fail do not stop the others; the
// summary counts them, and the exit code is the first failure's.
func TestTreeFailureExitCode(t *testing.T) {
	l := startLarder(t, func(c *ServeConfig) { c.Quota.Files = 2 })
	env := loggedIn(t, l)
	src := makeTree(t, map[string][]byte{"1": []byte("1"), "2": []byte("2"), "3": []byte("3"), "4": []byte("4")})
	_, stderr, err := runErr(env, "put", "-r", "--transfers", "1", src, "/q")
	if got := ExitCode(err); got != exitQuota {
		t.Errorf("put -r over the quota: exit %d (%v), want %d", got, err, exitQuota)
	}
	if !strings.Contains(stderr, "put: 2 files") || !strings.Contains(stderr, "2 failed") || !strings.Contains(stderr, "3: failed: ") {
		t.Errorf("put -r over the quota said %q", stderr)
	}
	if err == nil || !strings.Contains(Message(err), "2 of 4 files failed") {
		t.Errorf("the error says %q", Message(err))
	}
}

// TestGetTreeStaysInside: get -r writes nothing outside LOCALDIR: names
// the server sends that are not printable or that larder keeps for its
// part files are skipped, and a symbolic link planted in LOCALDIR, to a
// folder or to a file, is neither followed nor replaced.
func TestGetTreeStaysInside(t *testing.T) {
	l := startLarder(t)
	env := loggedIn(t, l)
	// The shared area is the server's disk: names no upload could make.
	l.put(t, "ok.txt", []byte("ok"))
	l.put(t, "sub/in.txt", []byte("in"))
	l.put(t, "file.txt", []byte("file"))
	l.put(t, "bell\x07\x1b[2J.txt", []byte("escape"))
	l.put(t, "x.txt"+client.PartSuffix, []byte("part"))
	dst := t.TempDir()
	outside := t.TempDir()
	must(t, os.Symlink(outside, filepath.Join(dst, "sub")))
	must(t, os.WriteFile(filepath.Join(outside, "target"), []byte("keep"), 0o600))
	must(t, os.Symlink(filepath.Join(outside, "target"), filepath.Join(dst, "file.txt")))

	_, stderr := runOK(t, env, "get", "-r", "/shared", dst)
	for _, want := range []string{"is a symbolic link here: not followed", "is a symbolic link here: neither followed nor replaced",
		"characters that are not printable", "which larder keeps for its partial downloads", "get: 1 file "} {
		if !strings.Contains(stderr, want) {
			t.Errorf("get -r said %q, want it to say %q", stderr, want)
		}
	}
	if strings.Contains(stderr, "\x07") || strings.Contains(stderr, "\x1b[2J") {
		t.Errorf("get -r printed the server's control characters: %q", stderr)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 1 {
		t.Errorf("something was written outside LOCALDIR: %v", entries)
	}
	if b, _ := os.ReadFile(filepath.Join(outside, "target")); string(b) != "keep" {
		t.Errorf("the link's target was written: %q", b)
	}
	sameTree(t, dst, map[string][]byte{"ok.txt": []byte("ok")})
}

func TestSafeName(t *testing.T) {
	for _, bad := range []string{"", ".", "..", "a/b", "/etc", `..\x`, "a\x00b", "\x1b[31m", "tab\there", "\u202eevil", "\xff", "f" + client.PartSuffix} {
		if safeName(bad) == nil {
			t.Errorf("safeName(%q) took it", bad)
		}
	}
	for _, good := range []string{"a", "naïve café.txt", "..a", "a..", "日本語", ".hidden"} {
		if err := safeName(good); err != nil {
			t.Errorf("safeName(%q): %v", good, err)
		}
	}
}

// TestRmTree: rm -r removes a folder and everything in it; the top of
// the space only with --whole-space, the shared area never.
func TestRmTree(t *testing.T) {
	l := startLarder(t)
	env := loggedIn(t, l)
	l.put(t, "course.txt", []byte("course"))
	src := makeTree(t, treeFiles)
	runOK(t, env, "put", "-r", src, "/one")
	runOK(t, env, "put", "-r", src, "/two")

	wantExit(t, env, exitUsage, []string{"--whole-space"}, "rm", "-r", "/")
	wantExit(t, env, exitUsage, []string{"--whole-space"}, "rm", "-r", "//")
	wantExit(t, env, exitUsage, []string{"an empty PATH"}, "rm", "-r", "--whole-space", "")
	wantExit(t, env, exitUsage, []string{"shared area"}, "rm", "-r", "/shared")
	wantExit(t, env, exitUsage, []string{"shared area"}, "rm", "-r", "shared/")
	wantExit(t, env, exitUsage, []string{"goes with -r"}, "rm", "--whole-space", "/one")
	wantExit(t, env, exitFailure, []string{"(-r removes it with everything in it)"}, "rm", "/one")

	_, stderr := runOK(t, env, "rm", "-r", "/one")
	if !strings.Contains(stderr, "rm: removed 6 files and 3 folders") {
		t.Errorf("rm -r said %q", stderr)
	}
	if out, _ := runOK(t, env, "ls", "/"); out != "shared/\ntwo/\n" {
		t.Errorf("ls / after rm -r /one: %q", out)
	}
	runOK(t, env, "rm", "-r", "/two/a/b/c.txt")
	runOK(t, env, "rm", "-r", "--whole-space", "/")
	if out, _ := runOK(t, env, "ls", "/"); out != "shared/\n" {
		t.Errorf("ls / after rm -r --whole-space /: %q", out)
	}
	if out, _ := runOK(t, env, "ls", "/shared"); out != "course.txt\n" {
		t.Errorf("ls /shared after rm -r --whole-space /: %q", out)
	}
}

// cutProxy forwards connections to a server, but cuts the first one
// after it has carried limit bytes from the client: a network failure in
// the middle of an upload.
type cutProxy struct {
	ln    net.Listener
	to    string
	limit int64
	conns atomic.Int32
	wg    sync.WaitGroup
}

func startCutProxy(t *testing.T, to string, limit int64) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	p := &cutProxy{ln: ln, to: to, limit: limit}
	p.wg.Go(p.serve)
	t.Cleanup(func() { ln.Close(); p.wg.Wait() })
	return p
}

func (p *cutProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		n := p.conns.Add(1)
		p.wg.Go(func() {
			defer c.Close()
			s, err := net.Dial("tcp", p.to)
			if err != nil {
				return
			}
			defer s.Close()
			done := make(chan struct{})
			go func() { io.Copy(c, s); c.Close(); close(done) }()
			if n == 1 {
				io.CopyN(s, c, p.limit)
				s.Close()
				c.Close()
			} else {
				io.Copy(s, c)
				s.Close()
			}
			<-done
		})
	}
}

// TestPutRetriesResume: an upload whose connection fails in the middle is
// retried on a new session, and goes on from what the server had, saying
// so.
func TestPutRetriesResume(t *testing.T) {
	l := startLarder(t)
	env := loggedIn(t, l)
	data := randomData(8<<20, 5)
	local := writeLocal(t, t.TempDir(), "big.bin", data)
	proxy := startCutProxy(t, l.lnpAddr(), 3<<20)
	_, stderr := runOK(t, env, "put", "--server", proxy.ln.Addr().String(), local, "/big.bin")
	if !strings.Contains(stderr, "retry 1 of 3") || !strings.Contains(stderr, "resuming at ") {
		t.Errorf("put through a cut connection said %q, want a retry that resumes", stderr)
	}
	dst := filepath.Join(t.TempDir(), "back")
	runOK(t, env, "get", "/big.bin", "-o", dst)
	if b, _ := os.ReadFile(dst); !bytes.Equal(b, data) {
		t.Errorf("the file came back with %d bytes, not the %d put", len(b), len(data))
	}

	// --retries 0: the failure is the command's.
	proxy = startCutProxy(t, l.lnpAddr(), 3<<20)
	_, _, err := runErr(env, "put", "--retries", "0", "--server", proxy.ln.Addr().String(), local, "/other.bin")
	if got := ExitCode(err); got != exitNetwork {
		t.Errorf("put --retries 0 through a cut connection: exit %d (%v), want %d", got, err, exitNetwork)
	}
}

// TestRetryDelay: the pauses grow twice at each retry, within a half of
// jitter, up to the most.
func TestRetryDelay(t *testing.T) {
	r := newRetrier(10, nil)
	for attempt, want := range []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second} {
		for range 50 {
			if d := r.delay(attempt); d > want || d < want/2 {
				t.Fatalf("delay(%d) = %v, want %v to %v", attempt, d, want/2, want)
			}
		}
	}
	if d := r.delay(200); d > 30*time.Second || d < 15*time.Second {
		t.Errorf("delay(200) = %v", d)
	}
}

func TestRetryable(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{&client.LNPError{Status: 14}, true},  // BUSY
		{&client.LNPError{Status: 8}, false},  // NOT_FOUND
		{&client.LNPError{Status: 11}, false}, // QUOTA_EXCEEDED
		{io.ErrUnexpectedEOF, true},
		{errServerClosed, true},
		{&net.OpError{Op: "dial", Err: os.ErrDeadlineExceeded}, true},
		{context.Canceled, false},
		{&client.IntegrityError{Block: 1}, false},
		{errNotTLS, false},
		{&retryLater{err: &client.LNPError{Status: 10}}, true},
	} {
		if got := retryable(tt.err); got != tt.want {
			t.Errorf("retryable(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

// TestPutRetriesBusy: a put told BUSY, as another transfer of the
// account holds the server's only slot, waits and tries again, and
// succeeds once that transfer ends.
func TestPutRetriesBusy(t *testing.T) {
	l := startLarder(t, func(c *ServeConfig) { c.MaxTransfersPerUser = 1 })
	env := loggedIn(t, l)
	ctx := context.Background()
	_, s, err := lnpFlagsFor(t, env).connect(ctx, env)
	must(t, err)
	defer s.Close()
	data := randomData(2<<20, 9)
	b := &blockAt{data: data, at: 1 << 20, release: make(chan struct{})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Put(ctx, "/held.bin", b, int64(len(data)), client.PutOptions{})
	}()
	for i := 0; ; i++ {
		if out, _ := runOK(t, env, "parts"); strings.Contains(out, "/held.bin  ") && !strings.Contains(out, "0 B of") {
			break
		}
		if i == 100 {
			t.Fatal("the upload never started")
		}
		time.Sleep(20 * time.Millisecond)
	}
	local := writeLocal(t, t.TempDir(), "other.bin", data)
	wantExit(t, env, exitFailure, []string{"BUSY"}, "put", "--retries", "0", local, "/other.bin")
	time.AfterFunc(1500*time.Millisecond, func() { close(b.release) })
	defer func() { <-done }()
	_, stderr := runOK(t, env, "put", "--retries", "6", local, "/other.bin")
	if !strings.Contains(stderr, "too many transfers at once") || !strings.Contains(stderr, "retry 1 of 6") {
		t.Errorf("put said %q, want BUSY retried", stderr)
	}
}

// TestGetTreeFolderSwapped: a folder of LOCALDIR, or a file, replaced by
// a symbolic link after get -r checked it (another program racing the
// get) leads nothing out of LOCALDIR: nothing is written through the
// link, nor is its target replaced, and the file is said to have failed.
func TestGetTreeFolderSwapped(t *testing.T) {
	l := startLarder(t)
	env := loggedIn(t, l)
	l.put(t, "sub/in.txt", []byte("in"))
	l.put(t, "top.txt", []byte("top"))
	l.put(t, "file.txt", []byte("file"))
	dst := t.TempDir()
	outside := t.TempDir()
	target := filepath.Join(t.TempDir(), "target")
	must(t, os.WriteFile(target, []byte("keep"), 0o600))
	var once, onceFile sync.Once
	testHookTreeGet = func(local string) {
		switch filepath.Base(local) {
		case "in.txt":
			once.Do(func() {
				sub := filepath.Dir(local)
				must(t, os.Rename(sub, sub+".moved"))
				must(t, os.Symlink(outside, sub))
			})
		case "file.txt":
			onceFile.Do(func() { must(t, os.Symlink(target, local)) })
		}
	}
	t.Cleanup(func() { testHookTreeGet = nil })

	_, stderr, err := runErr(env, "get", "-r", "-f", "/shared", dst, "--retries", "0")
	if err == nil {
		t.Errorf("get -r succeeded through a folder swapped for a link; it said %q", stderr)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("get -r wrote outside LOCALDIR, through the link: %v", entries)
	}
	if b, _ := os.ReadFile(target); string(b) != "keep" {
		t.Errorf("get -r replaced the target of a link planted at a file's place: %q", b)
	}
	if fi, err := os.Lstat(filepath.Join(dst, "file.txt")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link planted at file.txt was replaced: %v, %v", fi, err)
	}
	for _, want := range []string{"in.txt: failed", "file.txt: failed", "symbolic link"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("get -r said %q, want it to say %q", stderr, want)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dst, "top.txt")); err != nil || string(b) != "top" {
		t.Errorf("top.txt: %q, %v", b, err)
	}
}

// TestPutTreeFolderSwapped: a folder of LOCALDIR replaced by a symbolic
// link to a folder outside after put -r found it, and before it read it
// (another program racing the put), sends nothing from outside LOCALDIR.
func TestPutTreeFolderSwapped(t *testing.T) {
	l := startLarder(t)
	env := loggedIn(t, l)
	src := makeTree(t, map[string][]byte{"a.txt": []byte("a"), "sub/in.txt": []byte("in")})
	outside := t.TempDir()
	must(t, os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o600))
	var once sync.Once
	testHookPutWalk = func(p string) {
		if filepath.Base(p) == "sub" {
			once.Do(func() {
				must(t, os.Rename(p, p+".moved"))
				must(t, os.Symlink(outside, p))
			})
		}
	}
	t.Cleanup(func() { testHookPutWalk = nil })

	_, stderr, _ := runErr(env, "put", "-r", src, "/tree", "--retries", "0")
	if _, err := run2(env, "stat", "/tree/sub/secret"); err == nil {
		t.Errorf("put -r sent a file from outside LOCALDIR, through a folder swapped for a link; it said %q", stderr)
	}
	runOK(t, env, "stat", "/tree/a.txt")
}

func run2(env *Env, args ...string) (string, error) {
	stdout, _, err := runErr(env, args...)
	return stdout, err
}

// TestPutTreeFileSwappedForFIFO: a file of LOCALDIR replaced by a FIFO
// after put -r found it (another program racing the put) is skipped: put
// -r does not wait forever to open it.
func TestPutTreeFileSwappedForFIFO(t *testing.T) {
	l := startLarder(t)
	env := loggedIn(t, l)
	src := makeTree(t, map[string][]byte{"a.txt": []byte("a"), "b.txt": []byte("b")})
	var once sync.Once
	testHookPutWalk = func(p string) {
		if filepath.Base(p) == "a.txt" {
			once.Do(func() {
				must(t, os.Remove(p))
				must(t, syscall.Mkfifo(p, 0o644))
			})
		}
	}
	t.Cleanup(func() { testHookPutWalk = nil })
	done := make(chan string, 1)
	go func() {
		_, stderr, _ := runErr(env, "put", "-r", src, "/tree", "--retries", "0")
		done <- stderr
	}()
	select {
	case stderr := <-done:
		if !strings.Contains(stderr, "a.txt: skipped") {
			t.Errorf("put -r said %q, want a.txt skipped", stderr)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("put -r still waits to open a FIFO swapped in for a file")
	}
	runOK(t, env, "stat", "/tree/b.txt")
}

// TestPutFIFORefusedAtOnce: put of a FIFO is refused as not a regular
// file at once; it waited for a writer first, and Ctrl-C did not end it.
func TestPutFIFORefusedAtOnce(t *testing.T) {
	l := startLarder(t)
	env := loggedIn(t, l)
	fifo := filepath.Join(t.TempDir(), "fifo")
	must(t, syscall.Mkfifo(fifo, 0o644))
	done := make(chan error, 1)
	go func() { done <- run(env, "put", fifo, "/fifo") }()
	select {
	case err := <-done:
		if ExitCode(err) != exitUsage || !strings.Contains(Message(err), "not a regular file") {
			t.Errorf("put of a FIFO: exit %d, %v", ExitCode(err), err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("put of a FIFO still waits for a writer")
	}
}

// TestTreeQuickCheck: a rerun of put -r or get -r takes a file of the
// same size and modification time on both sides for unchanged without
// reading it, as rsync does; --checksum compares its SHA-256 instead.
func TestTreeQuickCheck(t *testing.T) {
	l := startLarder(t)
	env := loggedIn(t, l)
	src := makeTree(t, treeFiles)
	runOK(t, env, "put", "-r", src)

	// The same size and time, other bytes: only --checksum sees it.
	x := filepath.Join(src, "a", "x.txt")
	fi, err := os.Stat(x)
	must(t, err)
	must(t, os.WriteFile(x, bytes.Repeat([]byte("y"), int(fi.Size())), 0o644))
	must(t, os.Chtimes(x, fi.ModTime(), fi.ModTime()))
	if _, stderr := runOK(t, env, "put", "-r", src); !strings.Contains(stderr, "6 unchanged") {
		t.Errorf("put -r over the same sizes and times said %q, want 6 unchanged (by the quick check)", stderr)
	}
	if _, stderr := runOK(t, env, "put", "-r", "--checksum", src); !strings.Contains(stderr, "x.txt: skipped: /src/a/x.txt exists on the server and differs") || !strings.Contains(stderr, "5 unchanged") {
		t.Errorf("put -r --checksum said %q, want x.txt to differ", stderr)
	}
	// Another time: the file is read and compared, and found to differ.
	must(t, os.Chtimes(x, fi.ModTime(), fi.ModTime().Add(time.Second)))
	if _, stderr := runOK(t, env, "put", "-r", src); !strings.Contains(stderr, "x.txt: skipped") {
		t.Errorf("put -r after a change of time said %q, want x.txt compared and found to differ", stderr)
	}

	dst := filepath.Join(t.TempDir(), "copy")
	runOK(t, env, "get", "-r", "/src", dst)
	top := filepath.Join(dst, "top.bin")
	fi, err = os.Stat(top)
	must(t, err)
	must(t, os.WriteFile(top, bytes.Repeat([]byte("z"), int(fi.Size())), 0o644))
	must(t, os.Chtimes(top, fi.ModTime(), fi.ModTime()))
	if _, stderr := runOK(t, env, "get", "-r", "/src", dst); !strings.Contains(stderr, "6 unchanged") {
		t.Errorf("get -r over the same sizes and times said %q, want 6 unchanged (by the quick check)", stderr)
	}
	if _, stderr := runOK(t, env, "get", "-r", "-c", "/src", dst); !strings.Contains(stderr, "top.bin: skipped: "+top+" exists here and differs") {
		t.Errorf("get -r -c said %q, want top.bin to differ", stderr)
	}
	wantExit(t, env, exitUsage, []string{"--checksum", "-r"}, "put", "--checksum", x, "/one.txt")
}

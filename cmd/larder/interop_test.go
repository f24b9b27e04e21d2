package main

// Interoperability tests (issue 2): larder against the peers it must work
// with unchanged, the course's Python client and server and students' C
// clients. The course's code is not available to us, so the peers under
// testdata/interop are independent re-creations written from the course
// protocol reference; testdata/interop/README.md says what each reproduces,
// defects included. These tests skip when python3 or a C compiler is
// missing.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/larderfs/larder/client"
	"github.com/larderfs/larder/wire"
)

// interopDir holds the peers, relative to this package.
var interopDir = filepath.Join("..", "..", "testdata", "interop")

// peerFile returns the path of a peer's source, after a stat that makes
// the go command's test cache notice when it changes: the peers are read
// by python3 and cc, whose reads the cache cannot see.
func peerFile(t *testing.T, name string) string {
	t.Helper()
	path := filepath.Join(interopDir, name)
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
	return path
}

// peerTimeout bounds every subprocess run, so that a hung peer fails the
// test instead of hanging it.
const peerTimeout = 20 * time.Second

// peerExitOK is the peer clients' exit code for status 1 (OK); see
// testdata/interop/README.md for the others.
const peerExitOK = 0

// peerExitStatus is a peer client's exit code for a reply with status s.
func peerExitStatus(s wire.Status) int { return 10 + int(s) }

func lookPython(t *testing.T) string {
	t.Helper()
	py, err := pythonPath()
	if err != nil {
		t.Skipf("python3 not found: %v", err)
	}
	return py
}

// pythonPath finds python3 and asks it for its own executable: python3 on
// the PATH may be a launcher script (pyenv's shims take a quarter of a
// second per run), and these tests run it dozens of times.
var pythonPath = sync.OnceValues(func() (string, error) {
	py, err := exec.LookPath("python3")
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), peerTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, py, "-I", "-c", "import sys; print(sys.executable)").Output()
	if exe := strings.TrimSpace(string(out)); err == nil && filepath.IsAbs(exe) {
		return exe, nil
	}
	return py, nil
})

// lookCC finds a C compiler: $CC, else cc, gcc or clang.
func lookCC(t *testing.T) string {
	t.Helper()
	var errs []error
	for _, name := range []string{os.Getenv("CC"), "cc", "gcc", "clang"} {
		if name == "" {
			continue
		}
		cc, err := exec.LookPath(name)
		if err == nil {
			return cc
		}
		errs = append(errs, err)
	}
	t.Skipf("C compiler not found: %v", errors.Join(errs...))
	return ""
}

// peerRun is what a peer client did.
type peerRun struct {
	code   int
	stdout []byte
	stderr string
}

func (r peerRun) String() string {
	return fmt.Sprintf("exit %d, %d bytes out, stderr %q", r.code, len(r.stdout), r.stderr)
}

// runPeer runs a program to completion within peerTimeout. Only a failure
// to run it at all, or the timeout, fails the test; an exit code is a
// result.
func runPeer(t *testing.T, name string, args ...string) peerRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), peerTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := peerRun{stdout: stdout.Bytes(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("%s %q: no result within %v (stderr %q)", filepath.Base(name), args, peerTimeout, r.stderr)
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("%s %q: %v", filepath.Base(name), args, err)
	}
	return r
}

// interopBinary is a file that only a byte-exact server serves intact:
// every byte value, NULs, CRLFs, lone CRs and LFs, invalid UTF-8, over
// several blocks with a short last one.
func interopBinary() []byte {
	var b []byte
	for i := range 11 {
		for v := range 256 {
			b = append(b, byte(v))
		}
		b = append(b, "\r\n\r\r\n\n"[:i%6+1]...)
	}
	return b // 2,852 bytes: 4 blocks
}

// interopRandom returns n reproducible bytes with no structure.
func interopRandom(n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(uint64(n), 42))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// interopText is a text file of n 55-byte lines.
func interopText(n int) []byte {
	var b bytes.Buffer
	for i := range n {
		fmt.Fprintf(&b, "line %04d: the quick brown fox jumps over the lazy dog\n", i)
	}
	return b.Bytes()
}

// peerClient runs one of the peer clients against a server: path "" is a
// registration, extra are further switches.
type peerClient func(t *testing.T, host, port, user, password, path string, extra ...string) peerRun

// pythonCourseClient returns a peerClient running course_client.py.
func pythonCourseClient(t *testing.T) peerClient {
	py := lookPython(t)
	script := peerFile(t, "course_client.py")
	return func(t *testing.T, host, port, user, password, path string, extra ...string) peerRun {
		t.Helper()
		args := []string{"-I", script, host, port, user, password}
		if path != "" {
			args = append(args, path)
		}
		return runPeer(t, py, append(args, extra...)...)
	}
}

// peerClientCases are what both peer clients must do against larder: l,
// which sends blocks in order, and a second server that shuffles them as
// the course's server does. The subtests are parallel: each registers its
// own user or only reads alice's files, and alice is registered first.
func peerClientCases(t *testing.T, l *testLarder, run peerClient) {
	text := interopText(60) // 3,300 bytes: 4 blocks
	bin := interopBinary()
	large := interopRandom(1<<20 + 7) // 1,111 blocks
	l.put(t, "notes.txt", []byte("Hello from larder.\nSecond line.\n"))
	l.put(t, "big.txt", text)
	l.put(t, "sub/dir/binary.bin", bin)
	l.put(t, "large.bin", large)
	l.put(t, "empty.txt", nil)

	r := run(t, l.host, l.port, "alice", "s3cret", "")
	if r.code != peerExitOK || !bytes.Contains(r.stdout, []byte("alice")) {
		t.Fatalf("register alice: %v, want exit 0 and a message naming alice", r)
	}

	fetches := []struct {
		name, path string
		want       []byte
	}{
		{"text", "notes.txt", []byte("Hello from larder.\nSecond line.\n")},
		{"leading-slash", "/notes.txt", []byte("Hello from larder.\nSecond line.\n")},
		{"multi-block-text", "big.txt", text},
		{"binary", "sub/dir/binary.bin", bin},
		{"large", "large.bin", large},
		{"empty", "empty.txt", []byte{}}, // larder sends one empty block
	}
	for _, f := range fetches {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			r := run(t, l.host, l.port, "alice", "s3cret", f.path)
			if r.code != peerExitOK {
				t.Fatalf("got %v, want exit 0", r)
			}
			if !bytes.Equal(r.stdout, f.want) {
				t.Errorf("got %d bytes, want %d bytes exactly as on disk", len(r.stdout), len(f.want))
			}
		})
	}

	t.Run("shuffled", func(t *testing.T) {
		t.Parallel()
		sl := startLarder(t, shuffleBlocks)
		files := map[string][]byte{"big.txt": text, "binary.bin": bin, "large.bin": large}
		for name, data := range files {
			sl.put(t, name, data)
		}
		if r := run(t, sl.host, sl.port, "alice", "s3cret", ""); r.code != peerExitOK {
			t.Fatalf("register alice: %v, want exit 0", r)
		}
		for name, want := range files {
			if r := run(t, sl.host, sl.port, "alice", "s3cret", name); r.code != peerExitOK || !bytes.Equal(r.stdout, want) {
				t.Errorf("%s: got %v, want exit 0 and the file's %d bytes", name, r, len(want))
			}
		}
	})
	t.Run("long-username", func(t *testing.T) {
		t.Parallel()
		// The reference: "longer names are cut to 16". Both peers cut
		// the same way, so the long name works as its first 16 bytes.
		const long = "abcdefghijklmnopqrstuvwxyz"
		if r := run(t, l.host, l.port, long, "pw", ""); r.code != peerExitOK || !bytes.Contains(r.stdout, []byte(long[:16])) {
			t.Fatalf("register %s: %v, want exit 0 and a message naming %s", long, r, long[:16])
		}
		if r := run(t, l.host, l.port, long, "pw", "notes.txt"); r.code != peerExitOK {
			t.Errorf("retrieve as %s: %v, want exit 0", long, r)
		}
		if r := run(t, l.host, l.port, long[:16], "pw", ""); r.code != peerExitStatus(wire.StatusUserExists) {
			t.Errorf("register %s: %v, want exit %d", long[:16], r, peerExitStatus(wire.StatusUserExists))
		}
	})

	refusals := []struct {
		name, user, password, path string
		want                       wire.Status
	}{
		{"name-taken", "alice", "another password", "", wire.StatusUserExists},
		{"unknown-user", "mallory", "s3cret", "notes.txt", wire.StatusUserMissing},
		{"wrong-password", "alice", "S3cret", "notes.txt", wire.StatusInvalidLogin},
		{"missing-file", "alice", "s3cret", "no/such/file.txt", wire.StatusBadRequest},
		{"directory", "alice", "s3cret", "sub/dir", wire.StatusBadRequest},
		{"dot-dot", "alice", "s3cret", "../secret.txt", wire.StatusBadRequest},
		{"empty-username/register", "", "s3cret", "", wire.StatusBadRequest},
		{"empty-username/retrieve", "", "s3cret", "notes.txt", wire.StatusBadRequest},
	}
	for _, c := range refusals {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := run(t, l.host, l.port, c.user, c.password, c.path)
			prefix := fmt.Sprintf("status %d: ", c.want)
			if r.code != peerExitStatus(c.want) || !strings.HasPrefix(r.stderr, prefix) || len(r.stdout) != 0 {
				t.Errorf("got %v, want exit %d, nothing on stdout and stderr starting %q",
					r, peerExitStatus(c.want), prefix)
			}
		})
	}
}

// TestInteropCourseClient runs the course's Python client, as re-created
// from the reference, against larder: registration, byte-exact files of
// every kind (where the reference server itself fails on binary files and
// CRLFs), the empty file, and every refusal with its status.
func TestInteropCourseClient(t *testing.T) {
	run := pythonCourseClient(t)
	peerClientCases(t, startLarder(t), run)
}

// buildStudentClient compiles student_client.c with the flags a course
// would demand, runs its SHA-256 self-test, and returns the binary.
func buildStudentClient(t *testing.T) string {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("student_client.c uses POSIX sockets")
	}
	cc := lookCC(t)
	bin := filepath.Join(t.TempDir(), "student_client")
	r := runPeer(t, cc, "-std=c11", "-Wall", "-Wextra", "-Werror", "-O2",
		"-o", bin, peerFile(t, "student_client.c"))
	if r.code != 0 {
		t.Fatalf("compiling student_client.c: %v", r)
	}
	if r := runPeer(t, bin, "--selftest"); r.code != 0 || string(r.stdout) != "selftest: ok\n" {
		t.Fatalf("student_client --selftest: %v", r)
	}
	return bin
}

// TestInteropStudentClient runs a student's C client, as re-created from
// the reference, against larder: the same cases as the course client, and
// two bugs of real student clients that larder must tolerate: a path sent
// in a fixed 128-byte buffer after a length that counts only the path, and
// a request split over two writes (which the reference server rejects).
func TestInteropStudentClient(t *testing.T) {
	bin := buildStudentClient(t) // compiled once for all subtests
	l := startLarder(t)
	run := func(t *testing.T, host, port, user, password, path string, extra ...string) peerRun {
		t.Helper()
		args := []string{host, port, user, password, wire.CourseSalt}
		if path != "" {
			args = append(args, path)
		}
		return runPeer(t, bin, append(args, extra...)...)
	}
	peerClientCases(t, l, run)

	bin2 := interopBinary()
	for _, c := range []struct {
		name  string
		path  string
		want  []byte
		flags []string
	}{
		{"fixed-buffer/text", "notes.txt", []byte("Hello from larder.\nSecond line.\n"), []string{"--fixed-buffer"}},
		{"fixed-buffer/binary", "sub/dir/binary.bin", bin2, []string{"--fixed-buffer"}},
		{"fixed-buffer/empty", "empty.txt", []byte{}, []string{"--fixed-buffer"}},
		{"split/text", "notes.txt", []byte("Hello from larder.\nSecond line.\n"), []string{"--split"}},
		{"split/binary", "sub/dir/binary.bin", bin2, []string{"--split"}},
		{"split+fixed-buffer", "/sub/dir/binary.bin", bin2, []string{"--split", "--fixed-buffer"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := run(t, l.host, l.port, "alice", "s3cret", c.path, c.flags...)
			if r.code != peerExitOK || !bytes.Equal(r.stdout, c.want) {
				t.Errorf("got %v, want exit 0 and the file's %d bytes", r, len(c.want))
			}
		})
	}
	t.Run("fixed-buffer/register", func(t *testing.T) {
		t.Parallel()
		// 128 NUL bytes after a length of 0: still a registration.
		r := run(t, l.host, l.port, "carol", "pw", "", "--fixed-buffer")
		if r.code != peerExitOK {
			t.Fatalf("register: %v, want exit 0", r)
		}
		if r := run(t, l.host, l.port, "carol", "pw", "notes.txt", "--fixed-buffer"); r.code != peerExitOK {
			t.Errorf("retrieve: %v, want exit 0", r)
		}
	})
	t.Run("fixed-buffer/missing-file", func(t *testing.T) {
		t.Parallel()
		r := run(t, l.host, l.port, "alice", "s3cret", "nope.txt", "--fixed-buffer")
		if r.code != peerExitStatus(wire.StatusBadRequest) {
			t.Errorf("got %v, want exit %d", r, peerExitStatus(wire.StatusBadRequest))
		}
	})
	t.Run("course-client-account", func(t *testing.T) {
		t.Parallel()
		// Registered with the course's Python client, used from C with
		// the course's salt.
		course := pythonCourseClient(t)
		if r := course(t, l.host, l.port, "erin", "s3cret", ""); r.code != peerExitOK {
			t.Fatalf("course client register: %v", r)
		}
		r := run(t, l.host, l.port, "erin", "s3cret", "sub/dir/binary.bin")
		if r.code != peerExitOK || !bytes.Equal(r.stdout, bin2) {
			t.Errorf("got %v, want exit 0 and the file's %d bytes", r, len(bin2))
		}
	})
	t.Run("split/register", func(t *testing.T) {
		t.Parallel()
		// A registration has no body: --split has nothing to split.
		r := run(t, l.host, l.port, "bob", "pw", "", "--split")
		if r.code != peerExitOK {
			t.Errorf("got %v, want exit 0", r)
		}
	})
}

// courseServer is course_server.py, the re-created reference server,
// running on 127.0.0.1 over its own folder.
type courseServer struct {
	addr string
	root string
}

func (s *courseServer) put(t *testing.T, name string, data []byte) {
	t.Helper()
	path := filepath.Join(s.root, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// firstLineWriter collects a process's output and hands its first line
// over a channel.
type firstLineWriter struct {
	lockedBuffer
	once  sync.Once
	first chan string
}

func (w *firstLineWriter) Write(p []byte) (int, error) {
	n, err := w.lockedBuffer.Write(p)
	if s := w.String(); strings.Contains(s, "\n") {
		w.once.Do(func() { w.first <- s[:strings.IndexByte(s, '\n')] })
	}
	return n, err
}

// startCourseServer starts course_server.py on a free port and stops it
// with SIGTERM when the test ends, checking that it obeys.
func startCourseServer(t *testing.T) *courseServer {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("course_server.py waits for POSIX signals")
	}
	py := lookPython(t)
	s := &courseServer{root: t.TempDir()}
	// The context is a backstop that kills the server if the test is
	// somehow left running; Cleanup stops it politely first.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	cmd := exec.CommandContext(ctx, py, "-I", peerFile(t, "course_server.py"),
		"--host", "127.0.0.1", "--port", "0", "--root", s.root)
	stdout := &firstLineWriter{first: make(chan string, 1)}
	stderr := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting course_server.py: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		defer cancel()
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil && !t.Failed() {
				t.Errorf("course_server.py on SIGTERM: %v, want exit 0 (stderr %q)", err, stderr)
			}
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
			t.Errorf("course_server.py ignored SIGTERM for 5s; killed")
		}
		// The server writes to stderr only when a request handler
		// raised something unexpected: a bug of the fixture.
		if s := stderr.String(); s != "" {
			t.Errorf("course_server.py's stderr:\n%s", s)
		}
	})

	select {
	case line := <-stdout.first:
		port, ok := strings.CutPrefix(line, "listening on ")
		if _, err := strconv.Atoi(port); !ok || err != nil {
			t.Fatalf("course_server.py's first line is %q, want \"listening on PORT\"", line)
		}
		s.addr = net.JoinHostPort("127.0.0.1", port)
	case err := <-exited:
		exited <- err // for Cleanup
		t.Fatalf("course_server.py exited at start: %v (stderr %q)", err, stderr)
	case <-time.After(10 * time.Second):
		t.Fatalf("course_server.py did not say where it listens within 10s (stderr %q)", stderr)
	}
	return s
}

// dialGoClient dials addr for one request, bounded by peerTimeout.
func dialGoClient(t *testing.T, addr string) (context.Context, *client.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), peerTimeout)
	t.Cleanup(cancel)
	c, err := client.Dial(ctx, addr)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return ctx, c
}

var courseSig = wire.NewSignature("s3cret", wire.CourseSalt)

// lateBodyConn sends a request in two writes, as some student clients do:
// the header, then the body only once the server has answered the header
// alone and closed. The reference server's single recv is then certain to
// see the header alone, and the body cannot reach a closed socket while
// the reply is still in flight, which would reset the connection. Reads
// replay what the server sent.
type lateBodyConn struct {
	net.Conn
	reply    *bytes.Reader
	replyLen int
}

func (c *lateBodyConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p[:min(len(p), wire.RequestHeaderSize)])
	if err != nil || n == len(p) {
		return n, err
	}
	reply, err := io.ReadAll(c.Conn)
	if err != nil {
		return n, err
	}
	c.reply, c.replyLen = bytes.NewReader(reply), len(reply)
	c.Conn.Write(p[n:]) // too late: the server has closed
	return len(p), nil
}

func (c *lateBodyConn) Read(p []byte) (int, error) {
	if c.reply == nil {
		return c.Conn.Read(p)
	}
	return c.reply.Read(p)
}

// wantStatusError checks that err is a *client.StatusError with status
// want, and returns its message.
func wantStatusError(t *testing.T, err error, want wire.Status) string {
	t.Helper()
	var se *client.StatusError
	if !errors.As(err, &se) || se.Status != want {
		t.Fatalf("got error %v, want a StatusError with status %v", err, want)
	}
	return se.Message
}

// TestInteropGoClientCourseServer runs larder's Go client against the
// course's reference server, as re-created from the reference with its
// defects: shuffled blocks, no reply at all for an empty file, status 6 for
// a binary file, CRLF turned into LF. The client must deliver what the
// server sent, surface the server's statuses and messages, and report the
// empty file's silence as NoReply rather than fail.
func TestInteropGoClientCourseServer(t *testing.T) {
	s := startCourseServer(t)
	text := interopText(90) // 4,950 bytes: 6 blocks, shuffled by the server
	s.put(t, "big.txt", text)
	s.put(t, "crlf.txt", []byte("one\r\ntwo\r\n"))
	s.put(t, "empty.txt", nil)
	s.put(t, "binary.bin", interopBinary())
	s.put(t, "sub/dir/x.txt", []byte("x"))

	t.Run("register", func(t *testing.T) {
		ctx, c := dialGoClient(t, s.addr)
		msg, err := c.Register(ctx, "alice", courseSig)
		if err != nil || msg != "New user alice registered." {
			t.Fatalf("got %q, %v; want the reference's message", msg, err)
		}
	})
	t.Run("name-taken", func(t *testing.T) {
		ctx, c := dialGoClient(t, s.addr)
		_, err := c.Register(ctx, "alice", wire.NewSignature("other", wire.CourseSalt))
		msg := wantStatusError(t, err, wire.StatusUserExists)
		if want := "Cannot register user under name 'alice', already exists"; msg != want {
			t.Errorf("got message %q, want %q", msg, want)
		}
	})
	t.Run("shuffled-multi-block/stream", func(t *testing.T) {
		ctx, c := dialGoClient(t, s.addr)
		var got bytes.Buffer
		res, err := c.Retrieve(ctx, "alice", courseSig, "big.txt", &got)
		if err != nil {
			t.Fatalf("Retrieve: %v", err)
		}
		if !bytes.Equal(got.Bytes(), text) || res.Size != int64(len(text)) || res.Blocks != 6 || res.NoReply {
			t.Errorf("got %d bytes, %+v; want the file's %d bytes in 6 blocks", got.Len(), res, len(text))
		}
	})
	t.Run("shuffled-multi-block/file", func(t *testing.T) {
		ctx, c := dialGoClient(t, s.addr)
		f, err := os.Create(filepath.Join(t.TempDir(), "big.txt"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := c.Retrieve(ctx, "alice", courseSig, "/big.txt", f); err != nil {
			t.Fatalf("Retrieve: %v", err)
		}
		if got, err := os.ReadFile(f.Name()); err != nil || !bytes.Equal(got, text) {
			t.Errorf("got %d bytes (%v), want the file's %d bytes", len(got), err, len(text))
		}
	})
	t.Run("crlf-becomes-lf", func(t *testing.T) {
		// The reference server's text-mode defect: the client delivers
		// what the server sent, which is not what is on its disk.
		ctx, c := dialGoClient(t, s.addr)
		var got bytes.Buffer
		if _, err := c.Retrieve(ctx, "alice", courseSig, "crlf.txt", &got); err != nil {
			t.Fatalf("Retrieve: %v", err)
		}
		if got.String() != "one\ntwo\n" {
			t.Errorf("got %q, want %q", got.String(), "one\ntwo\n")
		}
	})
	t.Run("empty-file-no-reply", func(t *testing.T) {
		ctx, c := dialGoClient(t, s.addr)
		var got bytes.Buffer
		res, err := c.Retrieve(ctx, "alice", courseSig, "empty.txt", &got)
		if err != nil || !res.NoReply || res.Size != 0 || got.Len() != 0 {
			t.Errorf("got %+v, %v, %d bytes; want NoReply and nothing written", res, err, got.Len())
		}
	})
	t.Run("malformed-then-second-reply", func(t *testing.T) {
		// The reference server answers a request split over two writes
		// with status 7 and then a second reply on the same connection.
		// The client must report the first and ignore the rest.
		conn, err := net.DialTimeout("tcp", s.addr, peerTimeout)
		if err != nil {
			t.Fatal(err)
		}
		split := &lateBodyConn{Conn: conn}
		c := client.NewClient(split)
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), peerTimeout)
		defer cancel()
		var got bytes.Buffer
		_, err = c.Retrieve(ctx, "alice", courseSig, "big.txt", &got)
		msg := wantStatusError(t, err, wire.StatusMalformed)
		if want := "Malformed request. Length of request does not match given length"; msg != want {
			t.Errorf("got message %q, want %q", msg, want)
		}
		if first := wire.BlockHeaderSize + len(msg); split.replyLen <= first {
			t.Errorf("the server sent %d bytes, no more than its first reply's %d: no second reply to ignore", split.replyLen, first)
		}
		if got.Len() != 0 {
			t.Errorf("%d bytes written to the destination, want none", got.Len())
		}
	})
	refusals := []struct {
		name, user, path string
		sig              wire.Signature
		want             wire.Status
		message          string // "" means any non-empty message
	}{
		{"missing-file", "alice", "nope.txt", courseSig, wire.StatusBadRequest, "Requested content nope.txt does not exist"},
		{"directory", "alice", "/sub/dir", courseSig, wire.StatusBadRequest, "Request URI sub/dir is not a file"},
		{"wrong-password", "alice", "big.txt", wire.NewSignature("S3cret", wire.CourseSalt), wire.StatusInvalidLogin, "Signature hashes do not match for alice."},
		{"unknown-user", "mallory", "big.txt", courseSig, wire.StatusUserMissing, "Cannot serve non-registered user 'mallory'"},
		// The reference server's text-mode defect.
		{"binary-file", "alice", "binary.bin", courseSig, wire.StatusOther, ""},
	}
	for _, c := range refusals {
		t.Run(c.name, func(t *testing.T) {
			ctx, cl := dialGoClient(t, s.addr)
			var got bytes.Buffer
			_, err := cl.Retrieve(ctx, c.user, c.sig, c.path, &got)
			msg := wantStatusError(t, err, c.want)
			switch {
			case c.message == "" && msg == "":
				t.Errorf("got an empty message, want the server's")
			case c.message != "" && msg != c.message:
				t.Errorf("got message %q, want %q", msg, c.message)
			}
			if got.Len() != 0 {
				t.Errorf("%d bytes written to the destination, want none", got.Len())
			}
		})
	}
}

// TestInteropCourseServerDefects checks that course_server.py reproduces
// the reference's defects that the other tests rely on, so that larder's
// client is tested against the real behaviour: blocks arrive shuffled, and
// a request split over two writes gets status 7 and then a second reply.
func TestInteropCourseServerDefects(t *testing.T) {
	s := startCourseServer(t)
	s.put(t, "long.txt", interopText(600)) // 33,000 bytes: 35 blocks
	ctx, c := dialGoClient(t, s.addr)
	if _, err := c.Register(ctx, "alice", courseSig); err != nil {
		t.Fatal(err)
	}

	// exchange sends req, in two writes if split (see lateBodyConn), and
	// returns the status and index of every block received until the
	// server closes.
	exchange := func(t *testing.T, req []byte, split bool) (statuses []wire.Status, indexes []uint32) {
		t.Helper()
		conn, err := net.DialTimeout("tcp", s.addr, peerTimeout)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(peerTimeout))
		if split {
			conn = &lateBodyConn{Conn: conn}
		}
		if _, err := conn.Write(req); err != nil {
			t.Fatal(err)
		}
		br := wire.NewBlockReader(conn)
		for {
			h, _, err := br.ReadBlock()
			if err == io.EOF {
				return statuses, indexes
			}
			if err != nil {
				t.Fatalf("after %d blocks: %v", len(indexes), err)
			}
			statuses = append(statuses, h.Status)
			indexes = append(indexes, h.Index)
		}
	}
	request := func(path string) []byte {
		b, err := (&wire.Request{Username: "alice", Signature: courseSig, Body: []byte(path)}).AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	t.Run("shuffled", func(t *testing.T) {
		statuses, indexes := exchange(t, request("long.txt"), false)
		if len(indexes) != 35 || statuses[0] != wire.StatusOK {
			t.Fatalf("got %d blocks with statuses %v, want 35 with OK", len(indexes), statuses)
		}
		inOrder := true
		for i, x := range indexes {
			inOrder = inOrder && x == uint32(i)
		}
		if inOrder {
			t.Errorf("35 blocks arrived in order (chance 1 in 35!): the server does not shuffle")
		}
	})
	t.Run("split-request", func(t *testing.T) {
		statuses, _ := exchange(t, request("long.txt"), true)
		// Status 7, then the fall-through treats the missing body as a
		// registration of a name already taken.
		want := []wire.Status{wire.StatusMalformed, wire.StatusUserExists}
		if fmt.Sprint(statuses) != fmt.Sprint(want) {
			t.Errorf("got block statuses %v, want %v", statuses, want)
		}
	})
}

// interopCLI runs the larder command in-process through Run, against
// server, with the password in LARDER_PASSWORD and the salt store in a
// private folder, configDir.
type interopCLI struct {
	server    string
	configDir string
}

func newInteropCLI(t *testing.T, server string) *interopCLI {
	return &interopCLI{server: server, configDir: filepath.Join(t.TempDir(), "config")}
}

// run runs "larder args..." with the given password and returns its
// standard output, standard error and error.
func (c *interopCLI) run(t *testing.T, password string, args ...string) (stdout []byte, stderr string, err error) {
	t.Helper()
	vars := map[string]string{
		"LARDER_SERVER":     c.server,
		"LARDER_CONFIG_DIR": c.configDir,
		"LARDER_PASSWORD":   password,
	}
	var out, errb bytes.Buffer
	env := &Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return vars[k] }}
	ctx, cancel := context.WithTimeout(context.Background(), peerTimeout)
	defer cancel()
	err = Run(ctx, env, args)
	if ctx.Err() != nil {
		t.Fatalf("larder %q: no result within %v: %v", args, peerTimeout, err)
	}
	return out.Bytes(), errb.String(), err
}

// TestInteropCLICourseServer runs the larder command against the course's
// reference server, as re-created from the reference: an account
// registered with the course client's salt (--salt) and one with a random
// salt kept in the configuration folder, as the assignment asks of
// clients, then files fetched to a file and to stdout, and the server's
// refusals and defects turned into exit codes.
func TestInteropCLICourseServer(t *testing.T) {
	s := startCourseServer(t)
	text := interopText(90)
	s.put(t, "big.txt", text)
	s.put(t, "empty.txt", nil)
	s.put(t, "binary.bin", interopBinary())
	cli := newInteropCLI(t, s.addr)
	course := []string{"--user", "carol", "--salt", wire.CourseSalt}
	out := t.TempDir()

	t.Run("register/course-salt", func(t *testing.T) {
		stdout, stderr, err := cli.run(t, "s3cret", append([]string{"register"}, course...)...)
		if err != nil || string(stdout) != "New user carol registered.\n" {
			t.Fatalf("got %v, stdout %q, stderr %q; want the server's message", err, stdout, stderr)
		}
		if _, err := os.Stat(cli.configDir); !os.IsNotExist(err) {
			t.Errorf("register --salt touched the salt store: %v", err)
		}
	})
	t.Run("get/file", func(t *testing.T) {
		dst := filepath.Join(out, "big.txt")
		_, stderr, err := cli.run(t, "s3cret", append([]string{"get", "big.txt", "-o", dst}, course...)...)
		if err != nil {
			t.Fatalf("get: %v (stderr %q)", err, stderr)
		}
		if got, err := os.ReadFile(dst); err != nil || !bytes.Equal(got, text) {
			t.Errorf("got %d bytes (%v), want the file's %d bytes", len(got), err, len(text))
		}
	})
	t.Run("get/stdout", func(t *testing.T) {
		stdout, stderr, err := cli.run(t, "s3cret", append([]string{"get", "/big.txt"}, course...)...)
		if err != nil || !bytes.Equal(stdout, text) {
			t.Errorf("got %v, %d bytes (stderr %q); want the file's %d bytes", err, len(stdout), stderr, len(text))
		}
	})
	t.Run("get/empty-file-no-reply", func(t *testing.T) {
		// The reference server sends nothing for an empty file; the
		// command warns and writes an empty file.
		dst := filepath.Join(out, "empty.txt")
		_, stderr, err := cli.run(t, "s3cret", append([]string{"get", "empty.txt", "-o", dst}, course...)...)
		if err != nil || !strings.Contains(stderr, "no reply") {
			t.Fatalf("got %v, stderr %q; want success with a warning", err, stderr)
		}
		if got, err := os.ReadFile(dst); err != nil || len(got) != 0 {
			t.Errorf("got %d bytes (%v), want an empty file", len(got), err)
		}
	})
	for _, c := range []struct {
		name, user, password, path string
		want                       wire.Status
		code                       int
	}{
		{"missing-file", "carol", "s3cret", "nope.txt", wire.StatusBadRequest, exitNotFound},
		{"wrong-password", "carol", "S3cret", "big.txt", wire.StatusInvalidLogin, exitDenied},
		{"unknown-user", "mallory", "s3cret", "big.txt", wire.StatusUserMissing, exitNotFound},
		// The reference server's text-mode defect.
		{"binary-file", "carol", "s3cret", "binary.bin", wire.StatusOther, exitFailure},
	} {
		t.Run("get/"+c.name, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "out")
			_, _, err := cli.run(t, c.password, "get", c.path, "-o", dst, "--user", c.user, "--salt", wire.CourseSalt)
			wantStatusError(t, err, c.want)
			if got := ExitCode(err); got != c.code {
				t.Errorf("exit code %d, want %d", got, c.code)
			}
			if entries, _ := os.ReadDir(filepath.Dir(dst)); len(entries) != 0 {
				t.Errorf("left %d files behind, want none", len(entries))
			}
		})
	}
	t.Run("stored-salt", func(t *testing.T) {
		// larder's own way: a random salt per account, kept locally.
		_, stderr, err := cli.run(t, "pw", "register", "--user", "dora")
		if err != nil {
			t.Fatalf("register: %v (stderr %q)", err, stderr)
		}
		stdout, stderr, err := cli.run(t, "pw", "get", "big.txt", "--user", "dora")
		if err != nil || !bytes.Equal(stdout, text) {
			t.Errorf("get: %v, %d bytes (stderr %q); want the file's %d bytes", err, len(stdout), stderr, len(text))
		}
		// The course salt is not dora's: the server must refuse it.
		_, _, err = cli.run(t, "pw", "get", "big.txt", "--user", "dora", "--salt", wire.CourseSalt)
		wantStatusError(t, err, wire.StatusInvalidLogin)
	})
}

// TestInteropSharedAccount uses one account on larder from the course's
// Python client, whose salt is fixed, and from the larder command with
// --salt set to that salt, each registering for the other.
// TestInteropStudentClient does the same with the C client.
func TestInteropSharedAccount(t *testing.T) {
	course := pythonCourseClient(t)
	l := startLarder(t)
	data := interopBinary()
	l.put(t, "shared/data.bin", data)
	cli := newInteropCLI(t, l.addr())

	t.Run("course-client-registers", func(t *testing.T) {
		if r := course(t, l.host, l.port, "erin", "s3cret", ""); r.code != peerExitOK {
			t.Fatalf("course client register: %v", r)
		}
		dst := filepath.Join(t.TempDir(), "data.bin")
		_, stderr, err := cli.run(t, "s3cret", "get", "shared/data.bin", "-o", dst, "--user", "erin", "--salt", wire.CourseSalt)
		if err != nil {
			t.Fatalf("larder get: %v (stderr %q)", err, stderr)
		}
		if got, err := os.ReadFile(dst); err != nil || !bytes.Equal(got, data) {
			t.Errorf("got %d bytes (%v), want the file's %d bytes", len(got), err, len(data))
		}
	})
	t.Run("cli-registers", func(t *testing.T) {
		_, stderr, err := cli.run(t, "hunter2", "register", "--user", "frank", "--salt", wire.CourseSalt)
		if err != nil {
			t.Fatalf("larder register: %v (stderr %q)", err, stderr)
		}
		r := course(t, l.host, l.port, "frank", "hunter2", "shared/data.bin")
		if r.code != peerExitOK || !bytes.Equal(r.stdout, data) {
			t.Errorf("course client get: %v, want exit 0 and the file's %d bytes", r, len(data))
		}
	})
}

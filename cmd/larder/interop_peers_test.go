package main

// The peers of the interoperability tests: how to find, build and run
// them. See interop_test.go.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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

	"github.com/larderfs/larder/course"
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
func peerExitStatus(s course.Status) int { return 10 + int(s) }

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

// courseServer is course_server.py, the re-created reference server,
// running on 127.0.0.1 over its own folder.
type courseServer struct {
	addr string
	root string
}

func (s *courseServer) put(t *testing.T, name string, data []byte) { putFile(t, s.root, name, data) }

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

package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/client"
	"github.com/larderfs/larder/course"
)

// TestMain lets the test binary stand in for the larder binary: run with
// LARDER_TEST_RUN_MAIN=1 it is "larder", so that the process-level tests
// below exercise the real main, signals and exit codes included.
func TestMain(m *testing.M) {
	if os.Getenv("LARDER_TEST_RUN_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

func randomData(n int, seed byte) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{seed}).Read(b)
	return b
}

// The CLI end to end against the real server: register, then get.
func TestEndToEndRegisterThenGet(t *testing.T) {
	l := startLarder(t)
	bin := randomData(300_000, 1)
	l.put(t, "hello.txt", []byte("hello, larder\r\n"))
	l.put(t, "dir/data.bin", bin)
	env, stdout, stderr := testEnv(t, l.addr())

	if err := run(env, "register"); err != nil {
		t.Fatalf("register: %v\n%s", err, stderr)
	}
	if got := stdout.String(); got != "New user alice registered.\n" {
		t.Fatalf("register printed %q", got)
	}

	out := filepath.Join(t.TempDir(), "data.bin")
	if err := run(env, "get", "dir/data.bin", "-o", out); err != nil {
		t.Fatalf("get -o: %v\n%s", err, stderr)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, bin) {
		t.Fatal("the fetched file differs from the served one")
	}

	stdout.Reset()
	if err := run(env, "get", "/hello.txt"); err != nil {
		t.Fatalf("get to stdout: %v\n%s", err, stderr)
	}
	if got := stdout.String(); got != "hello, larder\r\n" {
		t.Fatalf("get printed %q", got)
	}

	// Later runs share alice's configuration folder, where her salt is.
	config := env.Getenv("LARDER_CONFIG_DIR")
	for _, tc := range []struct {
		args []string
		vars []string
		code int
	}{
		{[]string{"get", "missing.txt"}, nil, exitNotFound},
		{[]string{"get", "../escape"}, nil, exitNotFound},
		{[]string{"get", "hello.txt"}, []string{"LARDER_PASSWORD", "wrong"}, exitDenied},
		{[]string{"register"}, nil, exitDenied},
	} {
		env, _, stderr := testEnv(t, l.addr(), append([]string{"LARDER_CONFIG_DIR", config}, tc.vars...)...)
		err := run(env, tc.args...)
		if got := ExitCode(err); got != tc.code {
			t.Errorf("larder %q: exit %d (%v), want %d\n%s", tc.args, got, err, tc.code, stderr)
		}
	}
}

// TestRestartKeepsAccounts registers accounts, restarts the server on the
// same data folder, and checks that every account still logs in.
func TestRestartKeepsAccounts(t *testing.T) {
	data, files := t.TempDir(), t.TempDir()
	same := func(c *ServeConfig) { c.DataDir, c.FilesDir = data, files }
	l := startLarder(t, same)
	l.put(t, "f.txt", []byte("still here"))

	sig := func(i int) larder.Signature { return larder.NewSignature(fmt.Sprint("password", i), "salt") }
	const users = 25
	for i := range users {
		if r := rawExchange(t, l.addr(), fmt.Sprint("user", i), sig(i), ""); r.status != course.StatusOK {
			t.Fatalf("register user%d: %v", i, r.status)
		}
	}
	l.shutdown()

	l = startLarder(t, same)
	for i := range users {
		name := fmt.Sprint("user", i)
		if r := rawExchange(t, l.addr(), name, sig(i), "f.txt"); r.status != course.StatusOK || string(r.payload) != "still here" {
			t.Fatalf("%s after restart: %v %q", name, r.status, r.payload)
		}
		if r := rawExchange(t, l.addr(), name, sig(i+1), "f.txt"); r.status != course.StatusInvalidLogin {
			t.Fatalf("%s with another's password after restart: %v", name, r.status)
		}
	}
	if r := rawExchange(t, l.addr(), "user0", sig(0), ""); r.status != course.StatusUserExists {
		t.Fatalf("re-registering after restart: %v", r.status)
	}
}

// TestShuffledBlocksReassembledByClient fetches from a server that
// shuffles its blocks, into a file and into a plain writer.
func TestShuffledBlocksReassembledByClient(t *testing.T) {
	l := startLarder(t, shuffleBlocks)
	data := randomData(1<<20, 2)
	l.put(t, "shuffled.bin", data)
	sig := larder.NewSignature("pw", "salt")
	if r := rawExchange(t, l.addr(), "alice", sig, ""); r.status != course.StatusOK {
		t.Fatal(r.status)
	}
	// The server really shuffles.
	if r := rawExchange(t, l.addr(), "alice", sig, "shuffled.bin"); r.inOrder {
		t.Fatal("blocks arrived in order from a shuffling server")
	}

	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	must(t, err)
	defer f.Close()
	var buf bytes.Buffer
	for _, dst := range []io.Writer{f, &buf} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		c, err := client.Dial(ctx, l.addr())
		must(t, err)
		res, err := c.Retrieve(ctx, "alice", sig, "shuffled.bin", dst)
		c.Close()
		cancel()
		if err != nil || res.Size != int64(len(data)) {
			t.Fatalf("Retrieve into %T: %v, %+v", dst, err, res)
		}
	}
	got, err := os.ReadFile(f.Name())
	must(t, err)
	if !bytes.Equal(got, data) || !bytes.Equal(buf.Bytes(), data) {
		t.Fatal("reassembled payload differs")
	}
}

// TestServeProcessSIGTERM runs "larder serve" as a process, starts a
// large download, sends SIGTERM in the middle of it, and checks that the
// download finishes, new connections are refused, and the process exits 0.
func TestServeProcessSIGTERM(t *testing.T) {
	p := startProcess(t, "--shutdown-grace", "1m")
	p.put(t, "big", randomData(32<<20, 3))
	sig := larder.NewSignature("pw", "salt")
	if r := rawExchange(t, p.addr, "alice", sig, ""); r.status != course.StatusOK {
		t.Fatal(r.status)
	}
	want := sha256.Sum256(randomData(32<<20, 3))

	c, err := net.Dial("tcp", p.addr)
	must(t, err)
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	_, err = (&course.Request{Username: "alice", Signature: sig, Body: []byte("big")}).WriteTo(c)
	must(t, err)
	first := make([]byte, 1<<20)
	_, err = io.ReadFull(c, first)
	must(t, err)

	must(t, p.cmd.Process.Signal(syscall.SIGTERM))
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", p.addr, time.Second)
		if err != nil {
			break
		}
		conn.Close()
		if time.Now().After(deadline) {
			t.Fatal("still accepting 30s after SIGTERM")
		}
		time.Sleep(20 * time.Millisecond)
	}

	r := readReply(t, io.MultiReader(bytes.NewReader(first), c))
	if r.status != course.StatusOK || sha256.Sum256(r.payload) != want {
		t.Fatalf("download after SIGTERM: %v, %d bytes", r.status, len(r.payload))
	}
	c.Close()
	if err := p.wait(); err != nil {
		t.Fatalf("larder exited with %v after a graceful shutdown\n%s", err, p.stderr)
	}
	if !strings.Contains(p.stderr.String(), "shutting down") {
		t.Fatalf("no shutdown logged:\n%s", p.stderr)
	}
}

// TestServeProcessGraceExpires: a client that stops reading cannot hold
// the shutdown beyond its grace period; larder cuts it off and exits
// non-zero, saying why.
func TestServeProcessGraceExpires(t *testing.T) {
	p := startProcess(t, "--shutdown-grace", "500ms", "--write-timeout", "1m")
	p.put(t, "big", randomData(64<<20, 4))
	sig := larder.NewSignature("pw", "salt")
	if r := rawExchange(t, p.addr, "alice", sig, ""); r.status != course.StatusOK {
		t.Fatal(r.status)
	}
	c, err := net.Dial("tcp", p.addr)
	must(t, err)
	defer c.Close()
	_, err = (&course.Request{Username: "alice", Signature: sig, Body: []byte("big")}).WriteTo(c)
	must(t, err)
	// The reply's first bytes say the transfer has started; the client
	// reads no more, and the rest stalls in the socket buffers.
	c.SetReadDeadline(time.Now().Add(time.Minute))
	_, err = io.ReadFull(c, make([]byte, course.BlockHeaderSize))
	must(t, err)
	must(t, p.cmd.Process.Signal(syscall.SIGTERM))
	err = p.wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitFailure {
		t.Fatalf("larder exited with %v, want exit status %d\n%s", err, exitFailure, p.stderr)
	}
	if !strings.Contains(p.stderr.String(), "grace period") {
		t.Fatalf("the exit does not say why:\n%s", p.stderr)
	}
}

// larderProcess is "larder serve" running as a child process.
type larderProcess struct {
	cmd    *exec.Cmd
	addr   string
	files  string
	stderr *lockedBuffer
	exited chan struct{} // closed when the process has exited
	err    error         // its exit, once exited is closed
}

func (p *larderProcess) put(t *testing.T, name string, data []byte) { putFile(t, p.files, name, data) }

// wait waits for the process to exit, at most a minute.
func (p *larderProcess) wait() error {
	select {
	case <-p.exited:
		return p.err
	case <-time.After(time.Minute):
		p.cmd.Process.Kill()
		return fmt.Errorf("larder did not exit within a minute")
	}
}

var servingLine = regexp.MustCompile(`serving .* on (127\.0\.0\.1:\d+) `)

func startProcess(t *testing.T, args ...string) *larderProcess {
	t.Helper()
	return startProcessWithStdout(t, nil, args...)
}

// startProcessWithStdout is startProcess with the process's standard
// output going to stdout (nil: the null device).
func startProcessWithStdout(t *testing.T, stdout *os.File, args ...string) *larderProcess {
	t.Helper()
	return startProcessEnv(t, stdout, nil, args...)
}

// startProcessEnv is startProcessWithStdout with env added to the
// process's environment.
func startProcessEnv(t *testing.T, stdout *os.File, env []string, args ...string) *larderProcess {
	t.Helper()
	files := t.TempDir()
	args = append([]string{"serve", "--listen", "127.0.0.1:0", "--native-listen", "127.0.0.1:0", "--data", t.TempDir(), "--files", files,
		"--hash-memory", "64", "--hash-passes", "1"}, args...)
	return startProcessArgs(t, stdout, env, files, args...)
}

// startProcessArgs runs larder with args, all of them, serving files, and
// waits until it says where it serves the course protocol.
func startProcessArgs(t *testing.T, stdout *os.File, env []string, files string, args ...string) *larderProcess {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), "LARDER_TEST_RUN_MAIN=1"), env...)
	if stdout != nil {
		cmd.Stdout = stdout
	}
	return startProcessCmd(t, cmd, files)
}

// startProcessCmd starts cmd, larder serve serving files, and waits until
// it says where it serves the course protocol.
func startProcessCmd(t *testing.T, cmd *exec.Cmd, files string) *larderProcess {
	t.Helper()
	p := &larderProcess{cmd: cmd, files: files, stderr: &lockedBuffer{}, exited: make(chan struct{})}
	pr, pw := io.Pipe()
	p.cmd.Stderr = io.MultiWriter(p.stderr, pw)
	must(t, p.cmd.Start())
	go func() {
		p.err = p.cmd.Wait()
		pw.Close()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
	})

	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := servingLine.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
				break
			}
		}
		io.Copy(io.Discard, pr)
	}()
	select {
	case p.addr = <-found:
	case <-p.exited:
		t.Fatalf("larder exited (%v) before it said where it serves:\n%s", p.err, p.stderr)
	case <-time.After(30 * time.Second):
		t.Fatalf("larder did not say where it serves:\n%s", p.stderr)
	}
	return p
}

// wireReply is a reply as read by rawExchange.
type wireReply struct {
	status  course.Status
	payload []byte
	inOrder bool
}

// rawExchange sends one request with the codec alone and reads the reply
// with readReply.
func rawExchange(t *testing.T, addr, user string, sig larder.Signature, path string) wireReply {
	t.Helper()
	return rawExchangeFrom(t, "", addr, user, sig, path)
}

// readReply reassembles a reply from any block order and checks every
// hash; it is independent of package client, which it helps to test.
func readReply(t *testing.T, r io.Reader) wireReply {
	t.Helper()
	br := course.NewBlockReader(r)
	var (
		out      wireReply
		payload  []byte
		got      uint32
		count    uint32
		total    [32]byte
		expected uint32
	)
	out.inOrder = true
	for {
		h, p, err := br.ReadBlock()
		if err == io.EOF {
			break
		}
		must(t, err)
		if got == 0 {
			out.status, count, total = h.Status, h.Count, h.TotalHash
			payload = make([]byte, int(count)*course.MaxBlockPayload)
		}
		if h.Index >= count || sha256.Sum256(p) != h.BlockHash || h.TotalHash != total {
			t.Fatalf("bad block %d of %d", h.Index, count)
		}
		out.inOrder = out.inOrder && h.Index == expected
		expected++
		copy(payload[int(h.Index)*course.MaxBlockPayload:], p)
		if h.Index == count-1 {
			payload = payload[:int(h.Index)*course.MaxBlockPayload+len(p)]
		}
		got++
	}
	if got != count || sha256.Sum256(payload) != total {
		t.Fatalf("reply of %d/%d blocks fails its total hash", got, count)
	}
	out.payload = payload
	return out
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestServeCPUProfile: --cpuprofile leaves, after a graceful shutdown, a
// profile go tool pprof reads: gzip-compressed protocol buffers.
func TestServeCPUProfile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cpu.pprof")
	p := startProcess(t, "--cpuprofile", path)
	if r := rawExchange(t, p.addr, "alice", larder.NewSignature("pw", "salt"), ""); r.status != course.StatusOK {
		t.Fatal(r.status)
	}
	must(t, p.cmd.Process.Signal(syscall.SIGTERM))
	if err := p.wait(); err != nil {
		t.Fatalf("larder exited with %v\n%s", err, p.stderr)
	}
	f, err := os.Open(path)
	must(t, err)
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("the profile is not gzip-compressed: %v", err)
	}
	body, err := io.ReadAll(zr)
	if err != nil || len(body) == 0 {
		t.Fatalf("the profile reads as %d bytes, %v", len(body), err)
	}
	if !bytes.Contains(body, []byte("samples")) || !bytes.Contains(body, []byte("cpu")) {
		t.Errorf("the profile names no cpu samples (%d bytes)", len(body))
	}
}

// TestServeProcessSIGHUP: SIGHUP, which an operator sends to reload (and a
// closed terminal sends too), never stops the server: it keeps serving,
// says what it did, and still shuts down gracefully on SIGTERM after.
func TestServeProcessSIGHUP(t *testing.T) {
	p := startProcess(t)
	p.put(t, "f.txt", []byte("still served"))
	sig := larder.NewSignature("pw", "salt")
	if r := rawExchange(t, p.addr, "alice", sig, ""); r.status != course.StatusOK {
		t.Fatal(r.status)
	}
	// Each SIGHUP is sent once the one before has been handled (logged):
	// signals sent together may arrive as one.
	const handled = "SIGHUP: configuration reloaded"
	for i := range 3 {
		must(t, p.cmd.Process.Signal(syscall.SIGHUP))
		waitUntil(t, fmt.Sprintf("SIGHUP %d handled", i+1), func() bool {
			select {
			case <-p.exited:
				return true
			default:
				return strings.Count(p.stderr.String(), handled) == i+1
			}
		})
	}
	select {
	case <-p.exited:
		t.Fatalf("larder exited on SIGHUP: %v\n%s", p.err, p.stderr)
	default:
	}
	if r := rawExchange(t, p.addr, "alice", sig, "f.txt"); r.status != course.StatusOK || string(r.payload) != "still served" {
		t.Fatalf("after SIGHUP: %v %q", r.status, r.payload)
	}
	if !strings.Contains(p.stderr.String(), "SIGHUP") {
		t.Errorf("SIGHUP not logged:\n%s", p.stderr)
	}
	must(t, p.cmd.Process.Signal(syscall.SIGTERM))
	if err := p.wait(); err != nil {
		t.Fatalf("larder exited with %v after SIGHUP then SIGTERM\n%s", err, p.stderr)
	}
}

// TestServeProcessAuditStdoutReaderGone: with the audit trail on standard
// output, a reader that goes away (the pipe's reading end closed) does not
// kill the server with SIGPIPE: the deliveries fail, the events wait in
// the spool, and the server goes on serving.
func TestServeProcessAuditStdoutReaderGone(t *testing.T) {
	r, w, err := os.Pipe()
	must(t, err)
	p := startProcessWithStdout(t, w, "--audit-sink", "stdout")
	w.Close()
	r.Close() // the reader is gone before the first event
	sig := larder.NewSignature("pw", "salt")
	if rep := rawExchange(t, p.addr, "alice", sig, ""); rep.status != course.StatusOK {
		t.Fatalf("register: %v", rep.status)
	}
	waitUntil(t, "a delivery to the closed pipe failed", func() bool {
		select {
		case <-p.exited:
			return true
		default:
			return strings.Contains(p.stderr.String(), "the sink is down")
		}
	})
	select {
	case <-p.exited:
		t.Fatalf("larder exited when its audit reader went away: %v\n%s", p.err, p.stderr)
	default:
	}
	p.put(t, "f.txt", []byte("still served"))
	if rep := rawExchange(t, p.addr, "alice", sig, "f.txt"); rep.status != course.StatusOK || string(rep.payload) != "still served" {
		t.Fatalf("after the reader went away: %v %q", rep.status, rep.payload)
	}
	if !strings.Contains(p.stderr.String(), "broken pipe") {
		t.Errorf("the log does not say why the sink is down:\n%s", p.stderr)
	}
}

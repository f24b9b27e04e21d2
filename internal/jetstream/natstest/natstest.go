// Package natstest gives tests a NATS server with JetStream: the shared
// test server, with a stream of their own on it, or a private nats-server
// that a test may stop and start again. Tests skip, saying why, when there
// is none.
//
// The shared server is named by the environment variable LARDER_TEST_NATS,
// such as
//
//	nats://127.0.0.1:4299
//
// .ci/run starts one (nats-server -js) and sets it.
package natstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// EnvVar is the environment variable that names the shared test server.
const EnvVar = "LARDER_TEST_NATS"

// timeout bounds each administrative step: connecting, asking JetStream,
// a private server starting.
const timeout = 15 * time.Second

// URL returns the URL of the shared test server, after checking that it
// answers and has JetStream enabled. If EnvVar is unset or the server
// cannot be used, URL skips t with the reason.
func URL(t testing.TB) string {
	t.Helper()
	url := os.Getenv(EnvVar)
	if url == "" {
		t.Skipf("no NATS server to test against: %s is not set (.ci/run starts nats-server and sets it)", EnvVar)
	}
	if err := check(url); err != nil {
		t.Skipf("no NATS server to test against: %s is set, but: %v", EnvVar, err)
	}
	return url
}

// check connects to url and asks JetStream for the account's limits.
func check(url string) error {
	nc, err := nats.Connect(url, nats.Timeout(timeout))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if _, err := js.AccountInfo(ctx); err != nil {
		return fmt.Errorf("JetStream: %w", err)
	}
	return nil
}

// Stream returns a stream name and a subject prefix that no other test
// uses, so that tests sharing the server can run in parallel (two streams
// cannot take the same subjects), and deletes the stream, with its
// consumers, when t and its subtests have finished. The stream itself is
// the code under test's to create.
func Stream(t testing.TB, url string) (name, subject string) {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	id := hex.EncodeToString(b)
	name, subject = "LARDER_TEST_"+strings.ToUpper(id), "larder.test."+id
	t.Cleanup(func() {
		nc, err := nats.Connect(url, nats.Timeout(timeout))
		if err != nil {
			t.Errorf("natstest: delete stream %s: %v", name, err)
			return
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			t.Errorf("natstest: delete stream %s: %v", name, err)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		if err := js.DeleteStream(ctx, name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Errorf("natstest: delete stream %s: %v", name, err)
		}
	})
	return name, subject
}

// Server is a private nats-server with JetStream, on a free port of
// 127.0.0.1 and a temporary store directory, for tests of what happens
// while NATS is down.
type Server struct {
	t    testing.TB
	port int
	dir  string
	cmd  *exec.Cmd
	exit chan struct{} // closed when cmd has exited
}

// Start starts a private server, which t's cleanup stops. If there is no
// nats-server on the PATH, Start skips t.
func Start(t testing.TB) *Server {
	t.Helper()
	if _, err := exec.LookPath("nats-server"); err != nil {
		t.Skipf("no private NATS server: nats-server is not on the PATH (.ci/run installs it): %v", err)
	}
	s := &Server{t: t, dir: t.TempDir()}
	t.Cleanup(s.Stop)
	// A port found free may be taken before the server binds it: try a
	// few.
	var err error
	for range 5 {
		if s.port, err = freePort(); err != nil {
			break
		}
		if err = s.start(); err == nil {
			return s
		}
	}
	t.Fatalf("natstest: start nats-server: %v", err)
	return nil
}

// URL returns the server's URL, which stays the same across Stop and
// Restart.
func (s *Server) URL() string { return "nats://127.0.0.1:" + strconv.Itoa(s.port) }

// Stop stops the server gracefully (SIGTERM), and waits for it to exit. It
// does nothing if the server is not running.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exit:
	case <-time.After(timeout):
		s.cmd.Process.Kill()
		<-s.exit
	}
	s.cmd = nil
}

// Restart starts the stopped server again, on the same port and store
// directory: its streams and their messages are back.
func (s *Server) Restart() {
	s.t.Helper()
	if err := s.restart(); err != nil {
		s.t.Fatalf("natstest: restart nats-server: %v", err)
	}
}

// restart is Restart's work. While the server was stopped its port was
// free for anyone to take (a listener on port 0, a connection's own
// port, in any process): it waits up to timeout for the port to be free
// again.
func (s *Server) restart() error {
	deadline := time.Now().Add(timeout)
	for {
		err := s.start()
		if err == nil || !errors.Is(err, errPortTaken) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// errPortTaken is start's error when nats-server could not bind its port.
var errPortTaken = errors.New("the port is taken")

// start runs nats-server and waits until it says it is ready. A
// connection accepted on the port is not enough: a port found free may
// have been taken before nats-server binds it, and then another's
// listener accepts while nats-server exits.
func (s *Server) start() error {
	log := filepath.Join(s.dir, "server.log")
	// nats-server appends to its log: a restart's lines come after what
	// the log holds now.
	var from int64
	if fi, err := os.Stat(log); err == nil {
		from = fi.Size()
	}
	cmd := exec.Command("nats-server", "-a", "127.0.0.1", "-p", strconv.Itoa(s.port),
		"-js", "-sd", filepath.Join(s.dir, "store"), "-l", log)
	if err := cmd.Start(); err != nil {
		return err
	}
	exit := make(chan struct{})
	go func() { cmd.Wait(); close(exit) }()
	since := func() string {
		b, _ := os.ReadFile(log)
		return string(b[min(from, int64(len(b))):])
	}
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-exit:
			out := since()
			err := fmt.Errorf("nats-server on port %d exited at once: %s", s.port, lastLines(out, 5))
			if strings.Contains(out, "address already in use") {
				err = fmt.Errorf("%w: %w", errPortTaken, err)
			}
			return err
		default:
		}
		if strings.Contains(since(), "Server is ready") {
			s.cmd, s.exit = cmd, exit
			return nil
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-exit
			return fmt.Errorf("nats-server on port %d is not ready after %v: %s", s.port, timeout, lastLines(since(), 5))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

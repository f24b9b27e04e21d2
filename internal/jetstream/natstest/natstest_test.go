package natstest

import (
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// holdPort listens on 127.0.0.1:0, as another test running at the same
// time may, accepting and closing what comes, until t ends; it returns
// the port.
func holdPort(t *testing.T) (int, net.Listener) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port, ln
}

func needServer(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("nats-server"); err != nil {
		t.Skipf("nats-server is not on the PATH (.ci/run installs it): %v", err)
	}
}

// TestStartPortTaken: a port found free and taken by someone else before
// nats-server binds it is an error of start, which Start answers by
// trying another port, not a server said to run while the one answering
// is another's (nats-server itself having exited, unable to bind).
func TestStartPortTaken(t *testing.T) {
	needServer(t)
	port, _ := holdPort(t)
	s := &Server{t: t, port: port, dir: t.TempDir()}
	t.Cleanup(s.Stop)
	err := s.start()
	if err == nil {
		t.Fatalf("start on port %d, which another listener holds: got nil, want an error", port)
	}
	if !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("start on a port taken: got %v, want nats-server's reason (address already in use)", err)
	}
}

// TestRestartWaitsForPort: a Restart whose port someone else holds for a
// moment (as a connection's ephemeral port may) waits for it, rather than
// failing the test at once.
func TestRestartWaitsForPort(t *testing.T) {
	needServer(t)
	s := Start(t)
	s.Stop()
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(s.port))
	if err != nil {
		t.Fatalf("take the stopped server's port: %v", err)
	}
	freed := make(chan struct{})
	go func() {
		time.Sleep(time.Second)
		ln.Close()
		close(freed)
	}()
	if err := s.restart(); err != nil {
		t.Fatalf("restart once the port is free again: %v", err)
	}
	<-freed
	if err := check(s.URL()); err != nil {
		t.Fatalf("the restarted server: %v", err)
	}
}

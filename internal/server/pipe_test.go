package server_test

import (
	"net"
	"sync"
	"testing"

	"github.com/larderfs/larder/internal/server"
)

// pipeListener hands the server one end of a net.Pipe per dial: a network
// inside a testing/synctest bubble, where the server's deadlines and
// timeouts run on the bubble's fake clock (real sockets block outside it).
type pipeListener struct {
	conns     chan net.Conn
	done      chan struct{}
	closeOnce sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

// dial connects to the listener, waiting until the server accepts.
func (l *pipeListener) dial() (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.done:
		client.Close()
		server.Close()
		return nil, net.ErrClosed
	}
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// newPipeHarness is newHarness over net.Pipe connections, for tests run
// in a synctest bubble.
func newPipeHarness(t *testing.T, configure ...func(*server.Server)) *harness {
	t.Helper()
	ln := newPipeListener()
	return startHarness(t, ln, ln.dial, configure...)
}

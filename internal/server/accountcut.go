package server

import (
	"net"
	"sync"
	"time"
)

// cutGrace is how long a connection whose account ended during a reply
// still has to write, and to hand the client, what tells it so (LNP/1's
// END DENIED) before it is closed with its unsent bytes dropped: a client
// that reads slowly, or not at all, is never waited for longer.
const cutGrace = 500 * time.Millisecond

// cut says a connection's account was disabled or deleted during a reply:
// its writes end at a deadline, whatever the write timeout says, and it is
// then closed without handing the client what remains in its buffers.
type cut struct {
	mu  sync.Mutex
	at  time.Time // the writes' last deadline; zero while not cut
	err error     // from checkAccount
}

// setWriteDeadline sets the write deadline of c's connection to t, or to
// the deadline of the cut if c is cut and that comes first. Every write
// deadline of a reply is set through it, so that a fresh one never undoes
// a cut.
func (c *conn) setWriteDeadline(t time.Time) {
	c.cut.mu.Lock()
	defer c.cut.mu.Unlock()
	if !c.cut.at.IsZero() && c.cut.at.Before(t) {
		t = c.cut.at
	}
	c.rwc.SetWriteDeadline(t)
}

// cutWrites cuts c for err: a write blocked on a client that does not
// read returns at at, as will any later one.
func (c *conn) cutWrites(err error, at time.Time) {
	c.cut.mu.Lock()
	defer c.cut.mu.Unlock()
	if !c.cut.at.IsZero() {
		return
	}
	c.cut.at, c.cut.err = at, err
	c.rwc.SetWriteDeadline(at)
}

// cutError returns the error c was cut for, or nil.
func (c *conn) cutError() error {
	c.cut.mu.Lock()
	defer c.cut.mu.Unlock()
	return c.cut.err
}

// closeCut closes a cut connection: once the kernel has sent what was
// written, or at the cut's deadline with the rest dropped (a reset), so
// that a client stalled with megabytes in the server's buffers does not
// go on receiving them. A TLS connection is closed underneath, without
// the close_notify alert that would wait on the client.
func (c *conn) closeCut() {
	c.cut.mu.Lock()
	at := c.cut.at
	c.cut.mu.Unlock()
	tcp := tcpConnOf(c.rwc)
	if tcp == nil {
		c.rwc.Close()
		return
	}
	for {
		if queued, known := outputQueued(tcp); known && !queued {
			break
		}
		if !time.Now().Before(at) {
			tcp.SetLinger(0)
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	tcp.Close()
	c.rwc.Close()
}

// tcpConnOf returns the TCP connection under rwc, or nil.
func tcpConnOf(rwc net.Conn) *net.TCPConn {
	if nc, ok := rwc.(interface{ NetConn() net.Conn }); ok {
		rwc = nc.NetConn()
	}
	tcp, _ := rwc.(*net.TCPConn)
	return tcp
}

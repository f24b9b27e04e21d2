package server

import (
	"crypto/tls"
	"errors"
	"io"
	"os"
	"runtime/debug"
	"time"
)

// A connection that has not sent its HELLO costs a goroutine, whose stack
// keeps the size that its deepest call grew it to, and Go's TLS state.
// The TLS handshake runs deep (key exchange, certificate), and so does a
// read through crypto/tls: a goroutine parked inside tls.Conn.Read holds
// an 8 KiB stack. So an LNP/1 connection waits for its client on the
// socket itself, in shallow frames, both before the handshake and after
// it, and runs the handshake on a goroutine of its own, which ends with
// it; the goroutine stack of an idle connection then stays at its 2 KiB
// minimum, or shrinks back to it at the next garbage collection.

// awaitClient waits until the client behind c has sent something, hung up,
// or the read deadline (deadline, set by the caller) passed. Over TLS it
// runs the handshake when the ClientHello arrives, then waits again for
// the client's first frame. It returns the bytes of that frame which came
// with the handshake's last flight, and which TLS has already taken from
// the socket: they are to be read first. A failed handshake is left for
// the first read to report. ok is false after a panic in the handshake,
// which it logs.
func (c *conn) awaitClient(deadline time.Time) (early []byte, ok bool) {
	tc, isTLS := c.rwc.(*tls.Conn)
	if !isTLS {
		waitReadable(c.rwc)
		return nil, true
	}
	waitReadable(tc.NetConn())
	done := make(chan handshakeResult, 1)
	go c.handshake(tc, deadline, done)
	r := <-done
	if r.wait {
		waitReadable(tc.NetConn())
	}
	return r.early, !r.panicked
}

// handshakeResult is what handshake sends back.
type handshakeResult struct {
	early    []byte // the first bytes of the client's data, if TLS has them
	wait     bool   // TLS holds none: wait for them on the socket
	panicked bool
}

// handshake runs the TLS handshake of tc, then takes whatever the client
// sent after its Finished that TLS read along with it, without waiting
// for more, and sends the result on done.
func (c *conn) handshake(tc *tls.Conn, deadline time.Time, done chan<- handshakeResult) {
	var r handshakeResult
	defer func() {
		if p := recover(); p != nil {
			c.srv.logger().Error("panic in a TLS handshake", "remote", c.remote,
				"panic", p, "stack", string(debug.Stack()))
			r = handshakeResult{panicked: true}
		}
		done <- r
	}()
	if tc.Handshake() != nil {
		return
	}
	// A deadline in the past makes the read take what TLS holds, a whole
	// record at least, and never touch the socket. A timeout is not
	// fatal to a tls.Conn's reads: the next read goes on where it
	// stopped, with any part of a record it holds.
	var b [1]byte
	tc.SetReadDeadline(time.Unix(1, 0))
	n, err := tc.Read(b[:])
	tc.SetReadDeadline(deadline)
	switch {
	case n > 0:
		r.early = b[:n]
	case errors.Is(err, os.ErrDeadlineExceeded):
		r.wait = true
	}
	// Any other error (the client closed, an alert) is left for the
	// first read, which meets it again.
}

// earlyReader reads early, then r.
type earlyReader struct {
	early []byte
	r     io.Reader
}

func (e *earlyReader) Read(p []byte) (int, error) {
	if len(e.early) > 0 {
		n := copy(p, e.early)
		e.early = e.early[n:]
		return n, nil
	}
	return e.r.Read(p)
}

package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
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
// it; the handshake, and recording the connection's opening, run on
// goroutines of their own, which end with them (aside). The goroutine of
// an idle connection then keeps the 2 KiB stack it started with: Go
// shrinks a stack only when under a quarter of it is in use, which a
// 4 KiB stack never is while its goroutine waits in the poller.

// tlsConn is what the server asks of a TLS connection: a *tls.Conn, or
// a tlsconf.Conn, whose NetConn is the socket.
type tlsConn interface {
	net.Conn
	Handshake() error
	ConnectionState() tls.ConnectionState
	NetConn() net.Conn
}

// awaitClient waits until the client behind c has sent something, hung up,
// or the read deadline (deadline, set by the caller) passed. Over TLS it
// runs the handshake when the ClientHello arrives, then waits again for
// the client's first frame. It returns the bytes of that frame which came
// with the handshake's last flight, and which TLS has already taken from
// the socket: they are to be read first. A failed handshake is left for
// the first read to report.
func (c *conn) awaitClient(deadline time.Time) (early []byte) {
	tc, isTLS := c.rwc.(tlsConn)
	if !isTLS {
		waitReadable(c.rwc)
		return nil
	}
	waitReadable(tc.NetConn())
	var wait bool
	aside(func() { early, wait = handshake(tc, deadline) })
	if wait {
		waitReadable(tc.NetConn())
	}
	return early
}

// handshake runs the TLS handshake of tc, then takes whatever the client
// sent after its Finished that TLS read along with it, without waiting
// for more. wait says that TLS holds none of it: it is to be waited for
// on the socket.
func handshake(tc tlsConn, deadline time.Time) (early []byte, wait bool) {
	if tc.Handshake() != nil {
		return nil, false
	}
	// With a deadline in the past, the read returns data only from whole
	// records that TLS already holds, and never touches the socket. A
	// timeout is not fatal to a tls.Conn's reads: the next read goes on
	// where it stopped, with any part of a record it holds.
	var b [1]byte
	tc.SetReadDeadline(time.Unix(1, 0))
	n, err := tc.Read(b[:])
	tc.SetReadDeadline(deadline)
	// Any other error (the client closed, an alert) is left for the
	// first read, which meets it again.
	return b[:n], n == 0 && errors.Is(err, os.ErrDeadlineExceeded)
}

// aside runs f on a goroutine of its own and waits for it to return, so
// that the stack f's calls grow goes with that goroutine. A panic in f
// is carried over to the caller, with the stack where it happened.
func aside(f func()) {
	var p any
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			if v := recover(); v != nil {
				p = asidePanic{v, debug.Stack()}
			}
		}()
		f()
	}()
	<-done
	if p != nil {
		panic(p)
	}
}

// asidePanic is a panic on the goroutine of aside.
type asidePanic struct {
	value any
	stack []byte
}

func (p asidePanic) String() string {
	return fmt.Sprintf("%v (on a goroutine of its own, at:\n%s)", p.value, p.stack)
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

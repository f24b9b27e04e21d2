package client

import (
	"context"
	"net"
	"sync"
	"time"
)

// deadlineConn applies a request's context and idle timeout to a
// connection. The context's deadline is the connection's deadline; with an
// idle timeout, every Read and Write first pushes the deadline to
// now+idle, capped by the context's. Cancellation pins the deadline in the
// past, which unblocks any Read or Write in progress; the mutex and the
// aborted flag keep a Read that starts just after from pushing it forward
// again and losing the cancellation.
type deadlineConn struct {
	net.Conn
	idle     time.Duration
	deadline time.Time // the context's, or zero

	mu      sync.Mutex
	aborted bool
}

func newDeadlineConn(conn net.Conn, ctx context.Context, idle time.Duration) *deadlineConn {
	d := &deadlineConn{Conn: conn, idle: idle}
	d.deadline, _ = ctx.Deadline()
	// Set the deadline once even without an idle timeout: a deadline left
	// on the connection by its previous owner must not apply.
	conn.SetDeadline(d.deadline)
	return d
}

// arm moves the deadline forward before an I/O call when an idle timeout
// is set.
func (d *deadlineConn) arm() {
	if d.idle <= 0 {
		return
	}
	t := time.Now().Add(d.idle)
	if !d.deadline.IsZero() && d.deadline.Before(t) {
		t = d.deadline
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.aborted {
		d.Conn.SetDeadline(t)
	}
}

// abort makes every pending and future Read and Write fail at once.
func (d *deadlineConn) abort() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.aborted = true
	d.Conn.SetDeadline(time.Unix(1, 0))
}

func (d *deadlineConn) Read(p []byte) (int, error) {
	d.arm()
	return d.Conn.Read(p)
}

func (d *deadlineConn) Write(p []byte) (int, error) {
	d.arm()
	return d.Conn.Write(p)
}

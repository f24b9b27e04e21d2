package tlsconf

import (
	"context"
	"crypto/tls"
	"net"
	"sync"
	"sync/atomic"
)

// gatherSize is the most bytes of records a Conn sends with one write:
// four records. crypto/tls writes each record, at most 16 KiB of data
// (recordMax with what TLS adds), with a system call of its own; four at
// once copy about 1.4 times as fast over loopback (BenchmarkCopy), and
// more at once gained nothing (docs/BENCHMARKS.md, "third slice").
const (
	recordMax  = 16<<10 + 256
	gatherSize = 4 * recordMax
)

// Conn is a TLS connection whose writes of several records reach the
// socket in writes of up to 64 KiB, not one per record. Everything else
// is the embedded *tls.Conn's.
type Conn struct {
	*tls.Conn
	raw     *gatherer
	wmu     sync.Mutex   // one Write at a time
	writing atomic.Int32 // Writes in flight, for Close
}

// Server returns the server side of a TLS connection over nc, as
// tls.Server does.
func Server(nc net.Conn, cfg *tls.Config) *Conn {
	g := &gatherer{Conn: nc}
	return &Conn{Conn: tls.Server(g, cfg), raw: g}
}

// Client returns the client side of a TLS connection over nc, as
// tls.Client does.
func Client(nc net.Conn, cfg *tls.Config) *Conn {
	g := &gatherer{Conn: nc}
	return &Conn{Conn: tls.Client(g, cfg), raw: g}
}

// Dial connects to addr with d and runs the TLS handshake of cfg within
// ctx, as tls.Dialer does: d's Timeout and Deadline bound both, a nil cfg
// is the zero one, and if cfg names no server, the host of addr is the
// name.
func Dial(ctx context.Context, d *net.Dialer, addr string, cfg *tls.Config) (*Conn, error) {
	if d.Timeout != 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.Timeout)
		defer cancel()
	}
	if !d.Deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d.Deadline)
		defer cancel()
	}
	if cfg == nil {
		cfg = &tls.Config{}
	}
	if cfg.ServerName == "" {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		cfg = cfg.Clone()
		cfg.ServerName = host
	}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c := Client(nc, cfg)
	if err := c.HandshakeContext(ctx); err != nil {
		nc.Close()
		return nil, err
	}
	return c, nil
}

// NewListener returns a listener whose connections are the server side
// of TLS with cfg, as tls.NewListener's are, each a *Conn.
func NewListener(ln net.Listener, cfg *tls.Config) net.Listener {
	return &listener{Listener: ln, cfg: cfg}
}

type listener struct {
	net.Listener
	cfg *tls.Config
}

func (l *listener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return Server(nc, l.cfg), nil
}

// Write writes p as tls.Conn.Write does, its records gathered. An error
// says nothing of how much of p reached the peer: the connection is
// then of no further use, as crypto/tls's is after a write fails.
func (c *Conn) Write(p []byte) (int, error) {
	c.writing.Add(1)
	defer c.writing.Add(-1)
	gather := len(p) > 16<<10 // more than one record
	if gather {
		// The handshake first: its flights must go out as they are
		// written, since each waits for the peer's answer.
		if err := c.Conn.Handshake(); err != nil {
			return 0, err
		}
	}
	// A Write of one record waits too: written while another gathers,
	// it would wait among that Write's records, and that Write's failure
	// to write them would not be its own.
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if !gather {
		return c.Conn.Write(p)
	}
	c.raw.gather(true)
	n, err := c.Conn.Write(p)
	if ferr := c.raw.gather(false); err == nil && ferr != nil {
		n, err = 0, ferr
	}
	return n, err
}

// CloseWrite sends close_notify as tls.Conn.CloseWrite does, after the
// Write in flight, if any, as crypto/tls's waits for its own Write. Else
// the alert would sit among that Write's gathered records, and the write
// deadline crypto/tls sets once it is sent would cut them off.
func (c *Conn) CloseWrite() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.Conn.CloseWrite()
}

// Close closes the connection as tls.Conn.Close does: with a
// close_notify alert, unless a Write is in flight. Then, as crypto/tls
// does for its own Writes, it only closes the socket, which ends the
// Write. crypto/tls cannot tell by itself once its Write has returned
// and this Write still writes what it gathered, and would wait for that
// to send its alert, up to 5 seconds on a peer that reads nothing.
func (c *Conn) Close() error {
	if c.writing.Load() == 0 {
		return c.Conn.Close()
	}
	err := c.raw.Conn.Close()
	c.Conn.Close() // marks it closed; its alert, if any, fails at once
	return err
}

// NetConn returns the socket under the TLS. Reading or writing it
// corrupts the TLS session; it is for waiting on and for socket options.
func (c *Conn) NetConn() net.Conn { return c.raw.Conn }

// gatherer is the connection that a Conn's TLS writes its records to.
// While gathering, it holds them and writes them gatherSize at a time.
type gatherer struct {
	net.Conn
	mu  sync.Mutex
	on  bool
	buf []byte // while on: records not yet written
	err error  // the first write's error: every later write's too
}

// gatherPool holds the gatherers' buffers between Writes, so that an idle
// connection holds none.
var gatherPool = sync.Pool{New: func() any { return make([]byte, 0, gatherSize) }}

// gather turns gathering on or off. Turning it off writes what is held,
// and returns the error of any write since it was turned on.
func (g *gatherer) gather(on bool) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if on {
		g.on, g.buf = true, gatherPool.Get().([]byte)[:0]
		return nil
	}
	err := g.flushLocked()
	gatherPool.Put(g.buf[:0])
	g.on, g.buf = false, nil
	return err
}

func (g *gatherer) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.err != nil {
		return 0, g.err
	}
	if !g.on {
		return g.write(p)
	}
	if len(g.buf)+len(p) > cap(g.buf) {
		if err := g.flushLocked(); err != nil {
			return 0, err
		}
		if len(p) > cap(g.buf) {
			return g.write(p)
		}
	}
	g.buf = append(g.buf, p...)
	return len(p), nil
}

func (g *gatherer) flushLocked() error {
	if g.err != nil || len(g.buf) == 0 {
		return g.err
	}
	_, err := g.write(g.buf)
	g.buf = g.buf[:0]
	return err
}

func (g *gatherer) write(p []byte) (int, error) {
	n, err := g.Conn.Write(p)
	if err != nil {
		g.err = err
	}
	return n, err
}

// Close closes the socket at once, without waiting for mu: a Write
// blocked on a peer that reads nothing holds it, and crypto/tls's Close
// of a connection with a Write in flight is what ends that Write. Records
// still held belong to a Write running alongside the Close, which then
// fails; nothing is held between Writes.
func (g *gatherer) Close() error {
	return g.Conn.Close()
}

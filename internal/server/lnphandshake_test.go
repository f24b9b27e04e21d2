package server_test

import (
	"bytes"
	"crypto/tls"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/larderfs/larder/internal/server"
	"github.com/larderfs/larder/lnp"
)

// heldConn passes its first write (the ClientHello) and holds the ones
// after it until release or flush, so that a test chooses which of the
// client's bytes arrive together.
type heldConn struct {
	net.Conn
	mu     sync.Mutex
	writes int
	held   []byte
	open   bool
}

func (c *heldConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.writes++; c.writes == 1 || c.open {
		return c.Conn.Write(p)
	}
	c.held = append(c.held, p...)
	return len(p), nil
}

// release sends the first n bytes held, in one write.
func (c *heldConn) release(t *testing.T, n int) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err := c.Conn.Write(c.held[:n])
	must(t, err)
	c.held = c.held[n:]
}

// flush sends what is held, in one write, and every write after it at once.
func (c *heldConn) flush(t *testing.T) {
	t.Helper()
	c.release(t, len(c.held))
	c.mu.Lock()
	c.open = true
	c.mu.Unlock()
}

// TestLNPHelloWithTheHandshake: a client whose HELLO reaches the server
// in the same segment as its TLS Finished is answered at once. The
// server reads that segment whole during the handshake, so the HELLO is
// in the TLS connection's buffers, not the socket's: a server that then
// waited for the socket to become readable would wait for the request
// timeout. The HELLO may also be cut anywhere: in the middle of its TLS
// record, or in two records.
func TestLNPHelloWithTheHandshake(t *testing.T) {
	h := newLNPHarness(t)
	sig := h.register(t, "alice", "pw")
	var hello bytes.Buffer
	w := lnp.NewWriter(&hello, 0)
	must(t, w.Write(lnp.Hello{User: "alice", Signature: sig, MaxBlock: lnp.DefaultBlockSize}))
	must(t, w.Flush())
	frame := hello.Bytes()

	for _, tc := range []struct {
		name string
		send func(*testing.T, *heldConn, *tls.Conn)
	}{
		{"whole, with the Finished", func(t *testing.T, hc *heldConn, c *tls.Conn) {
			_, err := c.Write(frame)
			must(t, err)
			hc.flush(t)
		}},
		{"its record cut, the first part with the Finished", func(t *testing.T, hc *heldConn, c *tls.Conn) {
			_, err := c.Write(frame)
			must(t, err)
			hc.release(t, len(hc.held)-10)
			time.Sleep(50 * time.Millisecond)
			hc.flush(t)
		}},
		{"in two records, the first with the Finished", func(t *testing.T, hc *heldConn, c *tls.Conn) {
			_, err := c.Write(frame[:3])
			must(t, err)
			hc.flush(t)
			time.Sleep(50 * time.Millisecond)
			_, err = c.Write(frame[3:])
			must(t, err)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nc, err := net.Dial("tcp", h.addr)
			must(t, err)
			defer nc.Close()
			hc := &heldConn{Conn: nc}
			c := tls.Client(hc, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
			// The client's handshake ends once its Finished is written
			// (here: held).
			must(t, c.Handshake())
			tc.send(t, hc, c)
			// The harness's request timeout is 5 s: an answer within 3 s
			// was not the timeout's.
			if wl := readWelcome(t, c, 3*time.Second); wl.Status != lnp.StatusOK {
				t.Fatalf("got %v %q, want OK", wl.Status, wl.Message)
			}
		})
	}
}

// stackPerConn returns how much goroutine stack the server holds for each
// of n connections to addr opened by open, once they idle.
func stackPerConn(t *testing.T, h *lnpHarness, n int, open func(net.Conn) net.Conn) int64 {
	t.Helper()
	stacks := func() int64 {
		// Two cycles: the first may leave stacks to shrink to the second.
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return int64(m.StackInuse)
	}
	before := stacks()
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range n {
		c, err := net.Dial("tcp", h.addr)
		must(t, err)
		conns = append(conns, open(c))
	}
	waitFor(t, func() bool { return h.srv.Conns() == n })
	time.Sleep(100 * time.Millisecond) // let each goroutine reach its wait
	return (stacks() - before) / int64(n)
}

// TestLNPIdleAfterHandshakeKeepsSmallStack: a connection that completed
// the TLS handshake and sends nothing holds no more goroutine stack than
// one that sent nothing at all. A connection goroutine that ran the
// handshake itself, or waited inside crypto/tls's read, kept the 8 KiB
// stack that grew it to, for as long as the client idled. The client side
// of each connection is in this process too, but holds no goroutine.
func TestLNPIdleAfterHandshakeKeepsSmallStack(t *testing.T) {
	h := newLNPHarness(t, func(s *server.Server) { s.MaxConnsPerAddress = -1 })
	const n = 200
	silent := stackPerConn(t, h, n, func(c net.Conn) net.Conn { return c })
	shook := stackPerConn(t, h, n, func(c net.Conn) net.Conn {
		tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
		must(t, tc.Handshake())
		return tc
	})
	t.Logf("goroutine stack per idle connection: %d bytes silent, %d after the TLS handshake", silent, shook)
	if shook > silent+512 {
		t.Errorf("an idle connection holds %d bytes of goroutine stack after the TLS handshake, %d before it: want at most 512 bytes more", shook, silent)
	}
}

// TestLNPPanicInHandshake: a panic during a TLS handshake (here in the
// configuration's GetCertificate) ends that connection, logged, and the
// server goes on; the handshake runs on a goroutine of its own, whose
// panic would otherwise end the process.
func TestLNPPanicInHandshake(t *testing.T) {
	h := newLNPHarness(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	panicky := tls.NewListener(ln, &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			panic("no certificate today")
		},
	})
	served := make(chan error, 1)
	go func() { served <- h.srv.ServeLNP(panicky) }()
	t.Cleanup(func() {
		h.srv.Close()
		<-served
	})

	nc, err := net.Dial("tcp", ln.Addr().String())
	must(t, err)
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	c := tls.Client(nc, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
	if err := c.Handshake(); err == nil {
		t.Fatal("handshake with a server whose certificate lookup panics: got no error")
	}
	waitFor(t, func() bool { return strings.Contains(h.logs.String(), "panic in a TLS handshake") })
	waitFor(t, func() bool { return h.srv.Conns() == 0 })
	// The server still serves.
	sig := h.register(t, "alice", "pw")
	h.login(t, "alice", sig)
}

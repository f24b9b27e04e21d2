package server_test

import (
	"bytes"
	"crypto/tls"
	"fmt"
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

// idleGoroutines returns the stacks of the goroutines serving LNP/1
// connections.
func idleGoroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "server.(*conn).serveLNP(") {
			out = append(out, g)
		}
	}
	return out
}

// TestLNPIdleConnectionWaitsOnTheSocket: a connection whose client sends
// nothing, before or after the TLS handshake, waits on the socket, with
// nothing on its goroutine's stack but serveLNP's own calls: no frame of
// crypto/tls, of the session or of the audit trail. A goroutine keeps
// the stack its deepest call grew it to, and one that waited inside
// tls.Conn.Read, under the HELLO's frames, held 8 KiB for as long as its
// client idled, where one waiting on the socket holds Go's 2 KiB least.
func TestLNPIdleConnectionWaitsOnTheSocket(t *testing.T) {
	for _, shake := range []bool{false, true} {
		t.Run(fmt.Sprintf("handshake=%v", shake), func(t *testing.T) { idleWaitsOnTheSocket(t, shake) })
	}
}

func idleWaitsOnTheSocket(t *testing.T, shake bool) {
	h := newLNPHarness(t, func(s *server.Server) { s.MaxConnsPerAddress = -1 })
	const n = 20
	for range n {
		c, err := net.Dial("tcp", h.addr)
		must(t, err)
		defer c.Close()
		if shake {
			tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
			must(t, tc.Handshake())
		}
	}
	waitFor(t, func() bool { return h.srv.Conns() == n })
	// Each goroutine reaches its wait soon after the handshake
	// (or the accept); one deep in a read never does.
	var bad string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		gs := idleGoroutines()
		bad = ""
		waiting := 0
		for _, g := range gs {
			switch {
			case strings.Contains(g, "crypto/tls."), strings.Contains(g, "sessionLNP"), strings.Contains(g, "openLNP"):
				bad = g
			case strings.Contains(g, "server.waitReadable("):
				waiting++
			}
		}
		if bad == "" && waiting == n && len(gs) == n {
			break
		}
		if bad == "" {
			bad = fmt.Sprintf("%d of %d connections' goroutines waiting on the socket", waiting, len(gs))
		}
	}
	if bad != "" {
		t.Errorf("%d idle connections, want each goroutine waiting on the socket in serveLNP's own calls; got:\n%s", n, bad)
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
	waitFor(t, func() bool {
		logs := h.logs.String()
		return strings.Contains(logs, "panic serving a native session") && strings.Contains(logs, "no certificate today")
	})
	waitFor(t, func() bool { return h.srv.Conns() == 0 })
	// The server still serves.
	sig := h.register(t, "alice", "pw")
	h.login(t, "alice", sig)
}

package tlsconf

import (
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"
)

// TestWriteNotHeldByAnother checks that a small Write does not return
// while its record sits among another Write's gathered records, which go
// out only when that Write ends: should they fail, the small Write would
// have said nothing of it. The other Write is caught where crypto/tls's
// Write has returned and ours has not yet written what it gathered, the
// moment a concurrent Write can slip in.
func TestWriteNotHeldByAnother(t *testing.T) {
	c, got := pair(t, len("gatheredx"))
	end := catchGathered(t, c, "gathered")
	small := make(chan error, 1)
	go func() {
		_, err := c.Write([]byte("x"))
		small <- err
	}()
	select {
	case err := <-small:
		t.Fatalf("a small Write returned (%v) while another Write's gathered records were not yet written", err)
	case <-time.After(300 * time.Millisecond):
	}
	end()
	if err := <-small; err != nil {
		t.Fatal(err)
	}
	if b := <-got; string(b) != "gatheredx" {
		t.Fatalf("the peer read %q, want %q", b, "gatheredx")
	}
}

// catchGathered writes data on c, after its handshake, and catches that
// Write where crypto/tls's Write has returned and ours has not yet
// written what it gathered, the moment another call may slip in. end
// finishes the Write as ours would, and returns its error.
func catchGathered(t *testing.T, c *Conn, data string) (end func() error) {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if err := c.Handshake(); err != nil {
		t.Fatal(err)
	}
	c.wmu.Lock()
	c.raw.gather(true)
	if _, err := c.Conn.Write([]byte(data)); err != nil {
		t.Fatal(err)
	}
	c.raw.mu.Lock()
	held := len(c.raw.buf)
	c.raw.mu.Unlock()
	if held == 0 {
		t.Fatal("the gatherer held nothing while gathering: the test sets up nothing")
	}
	return func() error {
		defer c.wmu.Unlock()
		return c.raw.gather(false)
	}
}

// pair returns the client end of a TLS connection over loopback, and the
// first n bytes its server reads, when it has; the server then reads
// nothing more until the test ends.
func pair(t *testing.T, n int) (*Conn, <-chan []byte) {
	t.Helper()
	id, err := LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Closed only once accepted: closing a listener resets the
	// connections still in its queue.
	t.Cleanup(func() { ln.Close() })
	got := make(chan []byte, 1)
	ctx := t.Context()
	go func() {
		nc, err := ln.Accept()
		ln.Close()
		if err != nil {
			got <- nil
			return
		}
		s := Server(nc, id.ServerConfig())
		defer s.Close()
		s.SetDeadline(time.Now().Add(10 * time.Second))
		s.Handshake()
		b := make([]byte, n)
		m, _ := io.ReadFull(s, b)
		got <- b[:m]
		<-ctx.Done() // then reads nothing more
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := Client(nc, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
	t.Cleanup(func() { c.Close() })
	return c, got
}

// TestIdleHoldsNoBuffer checks that a connection holds no gathering
// buffer between Writes: after one that succeeded, after one that
// failed, and after one that Close ended.
func TestIdleHoldsNoBuffer(t *testing.T) {
	idle := func(c *Conn) bool {
		c.raw.mu.Lock()
		defer c.raw.mu.Unlock()
		return c.raw.buf == nil && !c.raw.on
	}
	c, got := pair(t, 1<<20)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	if !idle(c) {
		t.Error("a buffer held after a Write")
	}
	if b := <-got; len(b) != 1<<20 {
		t.Fatalf("the peer read %d bytes, want %d", len(b), 1<<20)
	}
	c.raw.Conn.Close() // the socket, under the TLS
	if _, err := c.Write(make([]byte, 1<<20)); err == nil {
		t.Fatal("a Write to a closed socket succeeded")
	}
	if !idle(c) {
		t.Error("a buffer held after a failed Write")
	}

	c, _ = pair(t, 0) // a peer that reads nothing
	c.SetDeadline(time.Now().Add(10 * time.Second))
	wrote := make(chan error, 1)
	go func() {
		for {
			if _, err := c.Write(make([]byte, 100<<10)); err != nil {
				wrote <- err
				return
			}
		}
	}()
	time.Sleep(300 * time.Millisecond) // the sockets' buffers full
	c.Close()
	select {
	case <-wrote:
	case <-time.After(5 * time.Second):
		t.Fatal("a Write still blocked 5 s after Close")
	}
	if !idle(c) {
		t.Error("a buffer held after a Write that Close ended")
	}
}

// TestCloseWriteAfterGathered checks that CloseWrite waits for a Write's
// gathered records, as crypto/tls's CloseWrite waits for its Write: its
// close_notify must follow them, and its write deadline must not cut
// them off. The Write is caught where crypto/tls's Write has returned and
// ours has not yet written what it gathered.
func TestCloseWriteAfterGathered(t *testing.T) {
	c, got := pair(t, len("gathered")+1)
	end := catchGathered(t, c, "gathered")
	closed := make(chan error, 1)
	go func() { closed <- c.CloseWrite() }()
	select {
	case err := <-closed:
		t.Errorf("CloseWrite returned (%v) while a Write's gathered records were not yet written", err)
	case <-time.After(300 * time.Millisecond):
	}
	if err := end(); err != nil {
		t.Fatalf("the gathered records were not written: %v", err)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if b := <-got; string(b) != "gathered" {
		t.Fatalf("the peer read %q before the end, want %q", b, "gathered")
	}
}

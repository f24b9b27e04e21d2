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
	id, err := LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []byte, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		s := Server(nc, id.ServerConfig())
		defer s.Close()
		s.SetDeadline(time.Now().Add(10 * time.Second))
		b := make([]byte, len("gatheredx"))
		n, _ := io.ReadFull(s, b)
		got <- b[:n]
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := Client(nc, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if err := c.Handshake(); err != nil {
		t.Fatal(err)
	}
	c.wmu.Lock()
	c.raw.gather(true)
	if _, err := c.Conn.Write([]byte("gathered")); err != nil {
		t.Fatal(err)
	}
	c.raw.mu.Lock()
	held := len(c.raw.buf)
	c.raw.mu.Unlock()
	if held == 0 {
		t.Fatal("the gatherer held nothing while gathering: the test sets up nothing")
	}
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
	c.raw.gather(false)
	c.wmu.Unlock()
	if err := <-small; err != nil {
		t.Fatal(err)
	}
	if b := <-got; string(b) != "gatheredx" {
		t.Fatalf("the peer read %q, want %q", b, "gatheredx")
	}
}

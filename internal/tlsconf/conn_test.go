package tlsconf_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/larderfs/larder/internal/tlsconf"
)

// countingConn counts the writes to its connection, and their bytes.
type countingConn struct {
	net.Conn
	writes, bytes atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	n, err := c.Conn.Write(p)
	c.bytes.Add(int64(n))
	return n, err
}

// connPair returns the two ends of a TLS connection over loopback, the
// server's socket counted, without having run the handshake.
func connPair(t *testing.T) (server *tlsconf.Conn, counted *countingConn, client *tlsconf.Conn) {
	t.Helper()
	addr, accepted := acceptOne(t)
	cc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	nc := <-accepted
	if nc == nil {
		t.Fatal("accept failed")
	}
	counted = &countingConn{Conn: nc}
	server = tlsconf.Server(counted, newIdentity(t).ServerConfig())
	client = tlsconf.Client(cc, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, counted, client
}

// acceptOne listens on loopback and accepts one connection, which it
// sends on accepted (nil if Accept failed); only then does it close the
// listener, as closing it resets a connection still in its queue.
func acceptOne(tb testing.TB) (addr string, accepted <-chan net.Conn) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	ch := make(chan net.Conn, 1)
	go func() {
		nc, err := ln.Accept()
		ln.Close()
		if err != nil {
			nc = nil
		}
		ch <- nc
	}()
	return ln.Addr().String(), ch
}

func pattern(n int, seed byte) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = seed + byte(i*7)
	}
	return p
}

// TestConnGathersRecords checks that a large Write reaches the socket in
// writes of several records, and arrives whole: the first Write also runs
// the handshake, whose flights must not be held back.
func TestConnGathersRecords(t *testing.T) {
	server, counted, client := connPair(t)
	want := pattern(4<<20, 1)
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(client)
		got <- b
	}()
	server.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := server.Write(want); err != nil { // the handshake's first
		t.Fatal(err)
	}
	afterHandshake := counted.writes.Load()
	if _, err := server.Write(want); err != nil {
		t.Fatal(err)
	}
	writes := counted.writes.Load() - afterHandshake
	if err := server.Close(); err != nil {
		t.Fatal(err)
	}
	b := <-got
	if !bytes.Equal(b, append(want, want...)) {
		t.Fatalf("received %d bytes, not the %d written", len(b), 2*len(want))
	}
	// 4 MiB in 16 KiB records is 256 writes, one a record; gathered
	// into 64 KiB, 64 and a few.
	if writes > 72 {
		t.Errorf("a 4 MiB Write took %d writes of the socket; gathered, it takes about 64", writes)
	}
}

// TestConnConcurrentWrites checks that Writes from several goroutines
// each arrive whole, as crypto/tls's do.
func TestConnConcurrentWrites(t *testing.T) {
	server, _, client := connPair(t)
	const size, each = 200 << 10, 20
	server.SetDeadline(time.Now().Add(20 * time.Second))
	var wg sync.WaitGroup
	for g := range 3 {
		wg.Go(func() {
			p := bytes.Repeat([]byte{byte('a' + g)}, size)
			for range each {
				if _, err := server.Write(p); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	go func() { wg.Wait(); server.Close() }()
	b, err := io.ReadAll(client)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 3*each*size {
		t.Fatalf("received %d bytes, want %d", len(b), 3*each*size)
	}
	for i := 0; i < len(b); i += size {
		if w := b[i : i+size]; bytes.Count(w, w[:1]) != size {
			t.Fatalf("the Write at %d arrived mixed with another", i)
		}
	}
}

// TestConnWriteFails checks that a write the socket refuses is an error
// of the Write, not lost in what was gathered, and that every Write after
// it fails too.
func TestConnWriteFails(t *testing.T) {
	server, counted, client := connPair(t)
	go io.Copy(io.Discard, client)
	if err := server.Handshake(); err != nil {
		t.Fatal(err)
	}
	counted.Conn.Close() // the socket, under the TLS
	if _, err := server.Write(make([]byte, 1<<20)); err == nil {
		t.Fatal("a Write to a closed socket succeeded")
	}
	if _, err := server.Write(make([]byte, 1<<20)); err == nil {
		t.Fatal("a Write after a failed one succeeded")
	}
}

// TestConnWriteDeadline checks that a Write the peer does not read stops
// at the deadline, gathered records and all: of one record, of a few
// (written all at the Write's end) and of many.
func TestConnWriteDeadline(t *testing.T) {
	for _, size := range []int{8 << 10, 32 << 10, 1 << 20} {
		server, _, client := connPair(t)
		go client.Handshake() // and then reads nothing
		if err := server.Handshake(); err != nil {
			t.Fatal(err)
		}
		server.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
		var err error
		for range 1000 << 20 / size { // far more than the sockets' buffers hold
			if _, err = server.Write(make([]byte, size)); err != nil {
				break
			}
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("%d-byte Writes: %v, want the deadline's error", size, err)
		}
	}
}

// TestDial checks Dial against a NewListener: the handshake done, the
// server's name taken from the address, and a dial to nothing refused.
func TestDial(t *testing.T) {
	id := newIdentity(t)
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := tlsconf.NewListener(raw, id.ServerConfig())
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	var name string
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error { name = cs.ServerName; return nil }}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	c, err := tlsconf.Dial(context.Background(), &net.Dialer{Timeout: 5 * time.Second}, net.JoinHostPort("localhost", port), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !c.ConnectionState().HandshakeComplete || name != "localhost" {
		t.Fatalf("handshake complete %v, server name %q; want true, localhost", c.ConnectionState().HandshakeComplete, name)
	}
	want := pattern(300<<10, 3)
	go c.Write(want)
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("echo: %v, equal %v", err, bytes.Equal(got, want))
	}
	raw2, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := raw2.Addr().String()
	raw2.Close()
	if _, err := tlsconf.Dial(context.Background(), &net.Dialer{}, addr, cfg); err == nil {
		t.Fatal("Dial to a closed port succeeded")
	}
}

// benchKind is one kind of TLS connection the benchmarks compare.
type benchKind struct {
	name           string
	server, client func(net.Conn) net.Conn
}

// benchKinds are crypto/tls's connections and Conns, at both ends.
func benchKinds(b *testing.B) []benchKind {
	id := newIdentity(b)
	client := &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}
	return []benchKind{
		{"crypto-tls",
			func(c net.Conn) net.Conn { return tls.Server(c, id.ServerConfig()) },
			func(c net.Conn) net.Conn { return tls.Client(c, client) }},
		{"tlsconf",
			func(c net.Conn) net.Conn { return tlsconf.Server(c, id.ServerConfig()) },
			func(c net.Conn) net.Conn { return tlsconf.Client(c, client) }},
	}
}

// benchConn returns the client end of a connection of kind k over
// loopback, whose server end serve runs on (and then closes).
func benchConn(b *testing.B, k benchKind, serve func(net.Conn)) net.Conn {
	addr, accepted := acceptOne(b)
	go func() {
		nc := <-accepted
		if nc == nil {
			return
		}
		c := k.server(nc)
		defer c.Close()
		serve(c)
	}()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	c := k.client(nc)
	b.Cleanup(func() { c.Close() })
	return c
}

// BenchmarkCopy copies over loopback, in 1 MiB writes, with crypto/tls's
// connections and with Conns at both ends.
func BenchmarkCopy(b *testing.B) {
	for _, k := range benchKinds(b) {
		b.Run(k.name, func(b *testing.B) {
			block := make([]byte, 1<<20)
			c := benchConn(b, k, func(c net.Conn) {
				for range b.N {
					if _, err := c.Write(block); err != nil {
						return
					}
				}
			})
			b.SetBytes(int64(len(block)))
			b.ResetTimer()
			n, err := io.CopyBuffer(io.Discard, c, make([]byte, 1<<20))
			if err != nil || n != int64(b.N)*int64(len(block)) {
				b.Fatalf("copied %d bytes of %d: %v", n, b.N*len(block), err)
			}
		})
	}
}

// TestConnCloseUnblocksWrite checks that Close, from another goroutine,
// ends a Write blocked on a peer that reads nothing, as a tls.Conn's Close
// does (it closes the socket under a Write in flight): Server.Close and
// the cut of a stalled client rely on it. A Write of a few records blocks
// writing them all at its end, after crypto/tls's Write has returned,
// where Close's close_notify would wait for it, and for the 5 seconds
// crypto/tls allows that alert.
func TestConnCloseUnblocksWrite(t *testing.T) {
	for _, size := range []int{8 << 10, 32 << 10, 1 << 20} { // one record; gathered at the end; gathered
		server, _, client := connPair(t)
		go client.Handshake() // and then reads nothing
		if err := server.Handshake(); err != nil {
			t.Fatal(err)
		}
		wrote := make(chan error, 1)
		go func() {
			p := make([]byte, size)
			for {
				if _, err := server.Write(p); err != nil {
					wrote <- err
					return
				}
			}
		}()
		time.Sleep(500 * time.Millisecond) // the sockets' buffers full
		closed := make(chan error, 1)
		go func() { closed <- server.Close() }()
		select {
		case <-closed:
		case <-time.After(2 * time.Second):
			server.SetWriteDeadline(time.Now()) // let the test end
			t.Fatalf("%d-byte Writes: Close did not return while a Write was blocked", size)
		}
		select {
		case err := <-wrote:
			if err == nil {
				t.Fatalf("%d-byte Writes: the blocked Write returned no error", size)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%d-byte Writes: the blocked Write did not return after Close", size)
		}
	}
}

// TestConnWriteSizes checks that Writes of sizes about the record and
// the gathering boundaries arrive whole and in order, from the first
// Write of a connection on (whose records crypto/tls keeps small at
// first) to the full-sized ones after.
func TestConnWriteSizes(t *testing.T) {
	server, _, client := connPair(t)
	const rec = 16 << 10
	sizes := []int{1, rec - 1, rec, rec + 1, 2 * rec, 4*rec - 1, 4 * rec, 4*rec + 1,
		4*(rec+256) - 1, 4 * (rec + 256), 4*(rec+256) + 1, 8 * rec, 8*rec + 1, 1<<20 + 7, 3, rec + 1}
	var want []byte
	for i, n := range sizes {
		want = append(want, pattern(n, byte(i))...)
	}
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(client)
		got <- b
	}()
	server.SetDeadline(time.Now().Add(20 * time.Second))
	for i, n := range sizes {
		if m, err := server.Write(pattern(n, byte(i))); m != n || err != nil {
			t.Fatalf("Write of %d bytes: %d, %v", n, m, err)
		}
	}
	if err := server.Close(); err != nil {
		t.Fatal(err)
	}
	if b := <-got; !bytes.Equal(b, want) {
		t.Fatalf("received %d bytes, not the %d written, in order", len(b), len(want))
	}
}

// TestConnConcurrentUse runs Reads, Writes of every size, deadline
// changes and a Close at once (under -race, for its reports): every call
// returns once the connection is closed, and no goroutine is left.
func TestConnConcurrentUse(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		server, _, client := connPair(t)
		defer client.Close()
		go io.Copy(io.Discard, client)
		go func() {
			for range 50 {
				if _, err := client.Write([]byte("ping")); err != nil {
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
		var wg sync.WaitGroup
		wg.Go(func() { io.Copy(io.Discard, server) })
		for w := range 2 {
			wg.Go(func() {
				sizes := []int{100, 16<<10 + 1, 70 << 10, 1 << 20}
				for i := 0; ; i++ {
					if _, err := server.Write(make([]byte, sizes[(i+w)%len(sizes)])); err != nil {
						return
					}
				}
			})
		}
		wg.Go(func() {
			for range 100 {
				server.SetWriteDeadline(time.Now().Add(10 * time.Second))
				server.SetDeadline(time.Now().Add(10 * time.Second))
				time.Sleep(time.Millisecond)
			}
		})
		time.Sleep(300 * time.Millisecond)
		server.Close()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("calls still running 10 s after Close")
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines after the connection closed, %d before", n, before)
	}
}

// TestDialDeadline checks that the Dialer's Deadline bounds the handshake,
// as it does tls.Dialer's, against a server that accepts and never
// answers.
func TestDialDeadline(t *testing.T) {
	addr, accepted := acceptOne(t) // and says nothing
	dialed := make(chan error, 1)
	go func() {
		d := &net.Dialer{Deadline: time.Now().Add(300 * time.Millisecond)}
		c, err := tlsconf.Dial(context.Background(), d, addr, &tls.Config{InsecureSkipVerify: true})
		if err == nil {
			c.Close()
		}
		dialed <- err
	}()
	defer func() {
		if nc := <-accepted; nc != nil {
			nc.Close()
		}
	}()
	select {
	case err := <-dialed:
		if err == nil {
			t.Fatal("Dial to a server that never answers succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Dial still in its handshake 5 s after the Dialer's 300 ms deadline")
	}
}

// TestDialNilConfig checks that Dial takes a nil config as tls.Dialer
// does, for the zero one, rather than panicking.
func TestDialNilConfig(t *testing.T) {
	addr, accepted := acceptOne(t)
	go func() {
		if nc := <-accepted; nc != nil {
			nc.Close() // no TLS here: the handshake fails
		}
	}()
	if _, err := tlsconf.Dial(context.Background(), &net.Dialer{Timeout: 5 * time.Second}, addr, nil); err == nil {
		t.Fatal("Dial to a server that hangs up succeeded")
	}
}

// BenchmarkExchange runs request and reply over loopback, a 100-byte
// request and replies of sizes about one record and four, with crypto/tls's
// connections and with Conns at both ends: gathering must not slow the
// small exchanges of logins and listings.
func BenchmarkExchange(b *testing.B) {
	kinds := benchKinds(b)
	for _, size := range []int{100, 16 << 10, 16<<10 + 1, 64 << 10} {
		for _, k := range kinds {
			b.Run(fmt.Sprintf("%s/%d", k.name, size), func(b *testing.B) {
				c := benchConn(b, k, func(c net.Conn) {
					req, reply := make([]byte, 100), make([]byte, size)
					for {
						if _, err := io.ReadFull(c, req); err != nil {
							return
						}
						if _, err := c.Write(reply); err != nil {
							return
						}
					}
				})
				req, reply := make([]byte, 100), make([]byte, size)
				for i := range b.N + 1 { // the first runs the handshake
					if i == 1 {
						b.ResetTimer()
					}
					if _, err := c.Write(req); err != nil {
						b.Fatal(err)
					}
					if _, err := io.ReadFull(c, reply); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

package server_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/larderfs/larder/client"
	"github.com/larderfs/larder/internal/server"
)

// gatedWriter blocks its first Write until open is closed, after saying
// on started that the write arrived.
type gatedWriter struct {
	started chan struct{}
	open    chan struct{}
	buf     bytes.Buffer
}

func (w *gatedWriter) Write(p []byte) (int, error) {
	if w.started != nil {
		close(w.started)
		w.started = nil
		<-w.open
	}
	return w.buf.Write(p)
}

// At shutdown an LNP/1 session with no request in progress, logged in or
// not, is closed without a frame (it asked nothing, so nothing answers
// it), while a download in flight runs to its END OK and holds Shutdown
// until then: what docs/PROTOCOL.md promises under "Session".
func TestLNPShutdownClosesIdleSessionsAndFinishesTransfers(t *testing.T) {
	h := newPlaintextLNPHarness(t, func(s *server.Server) {
		s.RequestTimeout = time.Minute
		s.WriteTimeout = time.Minute
	})
	ctx := context.Background()
	sig := h.register(t, "alice", "pw")
	busy := h.login(t, "alice", sig)
	data := randomBytes(16<<20, 7) // far more than the socket buffers hold
	if _, err := busy.Put(ctx, "big.bin", bytes.NewReader(data), int64(len(data)), client.PutOptions{}); err != nil {
		t.Fatal(err)
	}

	idleConn, err := net.Dial("tcp", h.addr)
	must(t, err)
	defer idleConn.Close()
	idle, err := client.NewSession(ctx, idleConn, "alice", sig, client.SessionOptions{})
	must(t, err)
	defer idle.Close()
	silent, err := net.Dial("tcp", h.addr) // connected, no HELLO yet
	must(t, err)
	defer silent.Close()
	waitFor(t, func() bool { return h.srv.Conns() == 3 })

	dst := &gatedWriter{started: make(chan struct{}), open: make(chan struct{})}
	started := dst.started
	got := make(chan error, 1)
	go func() {
		_, err := busy.Get(ctx, "big.bin", 0, dst, nil)
		got <- err
	}()
	<-started // the download is under way

	shutdown := make(chan error, 1)
	go func() { shutdown <- h.srv.Shutdown(ctx) }()

	for name, c := range map[string]net.Conn{"idle session": idleConn, "connection without HELLO": silent} {
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		b, err := io.ReadAll(c)
		if err != nil || len(b) != 0 {
			t.Errorf("%s at shutdown: read %d bytes (%q), %v; want the connection closed without a frame", name, len(b), b, err)
		}
	}
	select {
	case err := <-shutdown:
		t.Fatalf("Shutdown returned %v while a download was in flight", err)
	default:
	}

	close(dst.open)
	if err := <-got; err != nil {
		t.Fatalf("the download in flight at shutdown: %v; want it whole", err)
	}
	if !bytes.Equal(dst.buf.Bytes(), data) {
		t.Fatalf("the download in flight at shutdown got %d of %d bytes, or other bytes", dst.buf.Len(), len(data))
	}
	if err := <-shutdown; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// Close cuts a TLS download whose client stopped reading, at once: the
// server's Write is blocked on the client, and Close holds the server's
// lock while it closes each connection, so a Close that waited for the
// Write would hold up the whole server until the write timeout.
func TestLNPCloseCutsStalledTLSDownload(t *testing.T) {
	h := newLNPHarness(t, func(s *server.Server) {
		s.RequestTimeout = time.Minute
		s.WriteTimeout = time.Minute
	})
	ctx := context.Background()
	s := h.login(t, "alice", h.register(t, "alice", "pw"))
	data := randomBytes(16<<20, 9) // far more than the socket buffers hold
	if _, err := s.Put(ctx, "big.bin", bytes.NewReader(data), int64(len(data)), client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	dst := &gatedWriter{started: make(chan struct{}), open: make(chan struct{})}
	defer close(dst.open)
	started := dst.started
	go s.Get(ctx, "big.bin", 0, dst, nil)
	<-started               // the client reads no more
	time.Sleep(time.Second) // and the server's writes fill the sockets
	closed := make(chan error, 1)
	go func() { closed <- h.srv.Close() }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return while a TLS download was stalled on its client")
	}
}

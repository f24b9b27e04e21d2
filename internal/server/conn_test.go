package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/larderfs/larder/course"
	"github.com/larderfs/larder/internal/files"
	"github.com/larderfs/larder/internal/server"
)

func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{byte(seed)}).Read(b)
	return b
}

func TestManyClientsAtOnce(t *testing.T) {
	h := newHarness(t, func(s *server.Server) { s.MaxConnsPerAddress = -1 }) // all from 127.0.0.1
	h.register(t, "alice")
	data := randomBytes(50_000, 1)
	h.write(t, "f.bin", data)

	const clients = 200
	var (
		start = make(chan struct{})
		wg    sync.WaitGroup
		errs  = make(chan error, clients)
	)
	for range clients {
		wg.Go(func() {
			c, err := net.Dial("tcp", h.addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			<-start
			c.SetDeadline(time.Now().Add(60 * time.Second))
			if _, err := c.Write(request("alice", testSig, "f.bin")); err != nil {
				errs <- err
				return
			}
			got, err := io.ReadAll(c)
			if err != nil {
				errs <- err
				return
			}
			if want := len(data) + 53*course.BlockHeaderSize; len(got) != want {
				errs <- errors.New("short reply")
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// And the payloads are right: check one more through the verifier.
	if r := h.exchange(t, request("alice", testSig, "f.bin")); !bytes.Equal(r.payload, data) {
		t.Fatal("payload differs")
	}
}

// A client that sends its request one byte a second holds a connection,
// but the others are served meanwhile; it is cut off exactly at its
// deadline, counted from the accept, with a MALFORMED reply that says so.
// It runs on the fake clock of a synctest bubble, over pipes.
func TestSlowClientCutOffWithoutStallingOthers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const timeout = 2 * time.Second
		h := newPipeHarness(t, func(s *server.Server) { s.RequestTimeout = timeout })
		h.register(t, "alice")
		h.write(t, "f", []byte("fast"))

		slowStart := time.Now()
		c, err := h.dial()
		must(t, err)
		// The writer must end before the bubble's function returns: a
		// goroutine still asleep then is a deadlock to synctest, since
		// its clock no longer moves.
		writerDone := make(chan struct{})
		defer func() { c.Close(); <-writerDone }()
		go func() { // one byte a second until the server gives up
			defer close(writerDone)
			for _, b := range request("alice", testSig, "f") {
				time.Sleep(time.Second)
				if _, err := c.Write([]byte{b}); err != nil {
					return
				}
			}
		}()
		slowDone := make(chan *reply, 1)
		go func() { slowDone <- readWholeReply(t, c) }()

		for i := range 20 {
			if r := h.exchange(t, request("alice", testSig, "f")); string(r.payload) != "fast" {
				t.Fatalf("request %d: got %v %q", i, r.status, r.payload)
			}
		}
		select {
		case <-slowDone:
			t.Fatal("the slow client was answered before the fast ones were all served")
		default:
		}

		r := <-slowDone
		if elapsed := time.Since(slowStart); elapsed != timeout {
			t.Errorf("slow client cut off after %v, want at its %v deadline", elapsed, timeout)
		}
		if r.status != course.StatusMalformed || !strings.Contains(string(r.payload), "not complete within 2s") {
			t.Fatalf("slow client got %v %q", r.status, r.payload)
		}
	})
}

// A body shorter than its declared length gets exactly one MALFORMED reply
// (the reference server sent a second one), whether the client hangs up or
// waits.
func TestLengthMismatchOneReply(t *testing.T) {
	h := newHarness(t, func(s *server.Server) { s.RequestTimeout = time.Second })
	for _, hangUp := range []bool{true, false} {
		c, err := net.Dial("tcp", h.addr)
		must(t, err)
		c.SetDeadline(time.Now().Add(30 * time.Second))
		_, err = c.Write(rawHeader("alice", testSig, 20, "only-ten!!"))
		must(t, err)
		if hangUp {
			c.(*net.TCPConn).CloseWrite()
		}
		r := readWholeReply(t, c) // fails on a second reply: its block 0 repeats
		c.Close()
		if r.status != course.StatusMalformed || len(r.blocks) != 1 {
			t.Fatalf("hang up %v: got %v in %d blocks", hangUp, r.status, len(r.blocks))
		}
		if !strings.Contains(string(r.payload), "received 10 of 20") {
			t.Fatalf("hang up %v: message %q does not say what was wrong", hangUp, r.payload)
		}
	}
}

func TestRequestSplitAcrossSegments(t *testing.T) {
	h := newHarness(t)
	h.register(t, "alice")
	h.write(t, "split.txt", []byte("reassembled"))
	c, err := net.Dial("tcp", h.addr)
	must(t, err)
	defer c.Close()
	for _, b := range request("alice", testSig, "split.txt") {
		_, err := c.Write([]byte{b}) // TCP_NODELAY is on: a segment each
		must(t, err)
		time.Sleep(time.Millisecond)
	}
	if r := readWholeReply(t, c); string(r.payload) != "reassembled" {
		t.Fatalf("got %v %q", r.status, r.payload)
	}
}

func TestConnectionLimit(t *testing.T) {
	h := newHarness(t, func(s *server.Server) { s.MaxConns = 2 })
	h.register(t, "alice")
	h.write(t, "f", []byte("x"))
	waitFor(t, func() bool { return h.srv.Conns() == 0 }) // registration's connection gone

	var idle []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", h.addr)
		must(t, err)
		idle = append(idle, c)
	}
	waitFor(t, func() bool { return h.srv.Conns() == 2 })
	r := h.exchange(t, request("alice", testSig, "f"))
	if r.status != course.StatusOther || !strings.Contains(string(r.payload), "too many connections") {
		t.Fatalf("over the limit: got %v %q", r.status, r.payload)
	}
	if h.srv.Rejected() != 1 {
		t.Fatalf("Rejected() = %d, want 1", h.srv.Rejected())
	}
	for _, c := range idle {
		c.Close()
	}
	waitFor(t, func() bool { return h.srv.Conns() == 0 })
	if r := h.exchange(t, request("alice", testSig, "f")); r.status != course.StatusOK {
		t.Fatalf("after the idle clients left: got %v %q", r.status, r.payload)
	}
}

// A client that stops reading is cut off exactly at the write timeout, and
// its slot is freed. It runs on the fake clock of a synctest bubble, over a
// pipe, which holds no byte: the reply's first write blocks.
func TestWriteTimeoutCutsStalledReader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const timeout = 300 * time.Millisecond
		h := newPipeHarness(t, func(s *server.Server) { s.WriteTimeout = timeout })
		h.register(t, "alice")
		h.write(t, "big", randomBytes(1<<20, 2))
		c, err := h.dial()
		must(t, err)
		defer c.Close()
		_, err = c.Write(request("alice", testSig, "big"))
		must(t, err)

		time.Sleep(timeout - time.Millisecond)
		synctest.Wait()
		if h.srv.Conns() != 1 {
			t.Fatalf("%v after the request: %d connections, want the stalled one still served", timeout-time.Millisecond, h.srv.Conns())
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if h.srv.Conns() != 0 {
			t.Fatalf("at the write timeout: %d connections, want the stalled one cut off", h.srv.Conns())
		}
		if !strings.Contains(h.logs.String(), "op=retrieve") || !strings.Contains(h.logs.String(), "i/o timeout") {
			t.Fatalf("the log does not show the write timing out:\n%s", h.logs)
		}
	})
}

// The write timeout reaches the kernel's send paths too (sendfile, the
// segment-aligned writes on the socket's descriptor), which pipes do not
// take: a stalled reader on a real socket is cut off.
func TestWriteTimeoutCutsStalledReaderOnSocket(t *testing.T) {
	h := newHarness(t, func(s *server.Server) { s.WriteTimeout = 300 * time.Millisecond })
	h.register(t, "alice")
	h.write(t, "big", randomBytes(64<<20, 2)) // far more than the socket buffers hold
	c, err := net.Dial("tcp", h.addr)
	must(t, err)
	defer c.Close()
	_, err = c.Write(request("alice", testSig, "big"))
	must(t, err)
	waitFor(t, func() bool { return strings.Contains(h.logs.String(), "op=retrieve") })
	if h.srv.Conns() != 0 {
		t.Fatal("the stalled connection is still counted")
	}
	if !strings.Contains(h.logs.String(), "i/o timeout") {
		t.Fatalf("the log does not show the write timing out:\n%s", h.logs)
	}
}

// A shutdown in the middle of a 100 MiB download lets it finish, refuses
// new connections, and returns once the transfer is done.
func TestShutdownLetsTransferFinish(t *testing.T) {
	// The race detector slows this test's client down a lot; the write
	// timeout is not what is tested here.
	h := newHarness(t, func(s *server.Server) { s.WriteTimeout = 5 * time.Minute })
	h.register(t, "alice")
	data := randomBytes(100<<20, 3)
	h.write(t, "big", data)
	want := sha256.Sum256(data)
	data = nil

	c, err := net.Dial("tcp", h.addr)
	must(t, err)
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Minute))
	_, err = c.Write(request("alice", testSig, "big"))
	must(t, err)
	first := make([]byte, 1<<20)
	_, err = io.ReadFull(c, first)
	must(t, err)

	shutdown := make(chan error, 1)
	go func() { shutdown <- h.srv.Shutdown(context.Background()) }()
	waitFor(t, func() bool {
		_, err := net.DialTimeout("tcp", h.addr, time.Second)
		return err != nil
	})
	select {
	case err := <-shutdown:
		t.Fatalf("Shutdown returned %v while the download was in flight", err)
	case <-time.After(200 * time.Millisecond):
	}

	r := readWholeReply(t, io.MultiReader(bytes.NewReader(first), c))
	if r.status != course.StatusOK || sha256.Sum256(r.payload) != want {
		t.Fatalf("download finished with %v and %d bytes; want the whole file", r.status, len(r.payload))
	}
	c.Close()
	if err := <-shutdown; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// A client still sending its request when the server shuts down is told
// so, and does not hold the shutdown up.
func TestShutdownInterruptsWaitingClients(t *testing.T) {
	h := newHarness(t, func(s *server.Server) { s.RequestTimeout = time.Minute })
	c, err := net.Dial("tcp", h.addr)
	must(t, err)
	defer c.Close()
	_, err = c.Write(request("alice", testSig, "f")[:10])
	must(t, err)
	waitFor(t, func() bool { return h.srv.Conns() == 1 })

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	must(t, h.srv.Shutdown(ctx))
	r := readWholeReply(t, c)
	if r.status != course.StatusOther || !strings.Contains(string(r.payload), "shutting down") {
		t.Fatalf("got %v %q", r.status, r.payload)
	}
}

// When the grace period ends first, Shutdown says so, at the end of the
// grace, and Close cuts what is left. It runs on the fake clock of a
// synctest bubble, over a pipe.
func TestShutdownDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newPipeHarness(t, func(s *server.Server) { s.WriteTimeout = time.Minute })
		h.register(t, "alice")
		h.write(t, "big", randomBytes(1<<20, 4))
		c, err := h.dial()
		must(t, err)
		defer c.Close()
		_, err = c.Write(request("alice", testSig, "big")) // and never read
		must(t, err)
		synctest.Wait()
		if h.srv.Conns() != 1 {
			t.Fatalf("%d connections, want the stalled download's", h.srv.Conns())
		}

		const grace = 300 * time.Millisecond
		ctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		start := time.Now()
		if err := h.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Shutdown = %v, want context.DeadlineExceeded", err)
		}
		if d := time.Since(start); d != grace {
			t.Errorf("Shutdown returned after %v, want at the end of the %v grace", d, grace)
		}
		h.srv.Close()
		synctest.Wait()
		if h.srv.Conns() != 0 {
			t.Fatalf("%d connections after Close, want none", h.srv.Conns())
		}
	})
}

// A panic while serving one connection closes that connection only.
func TestPanicRecovered(t *testing.T) {
	h := newHarness(t, func(s *server.Server) { // retrieving will panic
		s.Files, _ = files.New(files.Config{Backend: panicking{}})
	})
	h.register(t, "alice")
	c, err := net.Dial("tcp", h.addr)
	must(t, err)
	defer c.Close()
	_, err = c.Write(request("alice", testSig, "f"))
	must(t, err)
	if got, _ := io.ReadAll(c); len(got) != 0 {
		t.Fatalf("got %d bytes after a panic; want the connection closed", len(got))
	}
	h.register(t, "bob") // the server still serves
	if !strings.Contains(h.logs.String(), "panic serving connection") {
		t.Fatal("the panic was not logged")
	}
}

func TestServeAfterShutdown(t *testing.T) {
	h := newHarness(t)
	must(t, h.srv.Shutdown(context.Background()))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	if err := h.srv.Serve(ln); !errors.Is(err, server.ErrServerClosed) {
		t.Fatalf("Serve after Shutdown = %v, want ErrServerClosed", err)
	}
}

func TestLogLine(t *testing.T) {
	h := newHarness(t)
	h.register(t, "alice")
	h.write(t, "logged.txt", []byte("12345"))
	h.exchange(t, request("alice", testSig, "logged.txt"))
	waitFor(t, func() bool { return strings.Contains(h.logs.String(), "path=/shared/logged.txt") })
	var line string
	for l := range strings.Lines(h.logs.String()) {
		if strings.Contains(l, "path=/shared/logged.txt") {
			line = l
		}
	}
	for _, field := range []string{"remote=127.0.0.1:", "op=retrieve", "user=alice", "status=1", "bytes=5", "duration="} {
		if !strings.Contains(line, field) {
			t.Errorf("log line %q lacks %q", line, field)
		}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 20s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestInputAfterRequestKeepsReply: a client that sends bytes after its
// request still gets the whole reply. Closing with its bytes unread would
// reset the connection, and the kernel would drop the reply's tail still
// in the send buffer; the server drains them instead.
func TestInputAfterRequestKeepsReply(t *testing.T) {
	h := newHarness(t)
	h.register(t, "alice")
	data := randomBytes(8<<20, 5)
	h.write(t, "big", data)
	raw := append(request("alice", testSig, "big"), bytes.Repeat([]byte("junk"), 2048)...)
	for range 3 {
		if r := h.exchange(t, raw); r.status != course.StatusOK || !bytes.Equal(r.payload, data) {
			t.Fatalf("reply to a request followed by junk: status %v, %d of %d bytes", r.status, len(r.payload), len(data))
		}
	}
}

// panicking is a files.Backend whose shared area panics when a file is
// opened.
type panicking struct{}

func (panicking) ID() (string, error)                       { return "panicking", nil }
func (panicking) Area(string) (files.Area, error)           { return panickingArea{}, nil }
func (panicking) RemoveStaleUploads(time.Time) (int, error) { return 0, nil }

type panickingArea struct{ files.Area }

func (panickingArea) Open(string) (files.Object, error) { panic("a fault injected by the test") }
func (panickingArea) Close() error                      { return nil }

// TestServeWithoutFiles: a Server without its files service refuses to
// serve, saying what is missing, and closes the listener, rather than
// failing every request.
func TestServeWithoutFiles(t *testing.T) {
	for name, serve := range map[string]func(*server.Server, net.Listener) error{
		"Serve":    (*server.Server).Serve,
		"ServeLNP": (*server.Server).ServeLNP,
	} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		must(t, err)
		done := make(chan error, 1)
		go func() { done <- serve(&server.Server{}, ln) }()
		select {
		case err := <-done:
			if err == nil || errors.Is(err, server.ErrServerClosed) || !strings.Contains(err.Error(), "without Files") {
				t.Errorf("%s without Files: got %v, want an error naming Files", name, err)
			}
		case <-time.After(5 * time.Second):
			ln.Close()
			t.Fatalf("%s without Files is serving", name)
		}
		if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
			c.Close()
			t.Errorf("%s without Files left its listener open", name)
		}
	}
}

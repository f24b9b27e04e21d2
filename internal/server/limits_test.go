package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/client"
	"github.com/larderfs/larder/course"
	"github.com/larderfs/larder/internal/audit"
	"github.com/larderfs/larder/internal/server"
	"github.com/larderfs/larder/lnp"
)

// readWelcome reads one frame from c, which must be a WELCOME, within d.
func readWelcome(t *testing.T, c net.Conn, d time.Duration) lnp.Welcome {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	var hdr [lnp.HeaderSize]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		t.Fatalf("no answer within %v: %v", d, err)
	}
	body := make([]byte, binary.BigEndian.Uint32(hdr[1:]))
	if _, err := io.ReadFull(c, body); err != nil {
		t.Fatal(err)
	}
	if lnp.Type(hdr[0]) != lnp.TypeWelcome {
		t.Fatalf("got a %v frame, want WELCOME", lnp.Type(hdr[0]))
	}
	w, err := lnp.ParseWelcome(body)
	must(t, err)
	return w
}

// TestLNPLargeFrameBeforeHelloRefused: before the login a frame larger
// than a HELLO can be is refused as soon as its header is in, without the
// server waiting for (or making room for) its body.
func TestLNPLargeFrameBeforeHelloRefused(t *testing.T) {
	h := newPlaintextLNPHarness(t, func(s *server.Server) { s.RequestTimeout = 30 * time.Second })
	for _, tc := range []struct {
		typ  lnp.Type
		size uint32
	}{
		{lnp.TypeData, 1 << 20},
		{lnp.TypeHello, lnp.MaxControlBody},
		{lnp.TypeHello, lnp.MaxHelloBody + 1},
	} {
		c, err := net.Dial("tcp", h.addr)
		must(t, err)
		var hdr [lnp.HeaderSize]byte
		hdr[0] = byte(tc.typ)
		binary.BigEndian.PutUint32(hdr[1:], tc.size)
		_, err = c.Write(hdr[:])
		must(t, err)
		w := readWelcome(t, c, 3*time.Second)
		if w.Status != lnp.StatusMalformed || !bytes.Contains([]byte(w.Message), []byte("bytes")) {
			t.Errorf("%v frame of %d bytes before HELLO: got %v %q, want MALFORMED naming the limit", tc.typ, tc.size, w.Status, w.Message)
		}
		c.Close()
	}
}

// heapInUse returns the bytes of heap objects and goroutine stacks in use
// after a collection.
func heapInUse() int64 {
	runtime.GC()
	runtime.GC() // a second cycle empties the sync.Pools
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc + m.StackInuse)
}

// TestLNPIdleConnectionsAreCheap: connections that have not logged in
// yet hold small buffers only (a server that allocated its transfer
// buffers at the accept took 1.2 GiB for 3,000 of them).
func TestLNPIdleConnectionsAreCheap(t *testing.T) {
	for _, proto := range []string{"course", "plaintext", "tls"} {
		h := startLNPHarness(t, proto == "plaintext", func(s *server.Server) { s.MaxConnsPerAddress = -1 })
		addr := h.addr
		if proto == "course" {
			addr = h.courseAddr
		}
		const n = 200
		before := heapInUse()
		var conns []net.Conn
		for range n {
			c, err := net.Dial("tcp", addr)
			must(t, err)
			conns = append(conns, c)
		}
		waitFor(t, func() bool { return h.srv.Conns() == n })
		time.Sleep(50 * time.Millisecond) // let each goroutine reach its first read
		per := (heapInUse() - before) / n
		for _, c := range conns {
			c.Close()
		}
		// Both ends of each connection are in this process; a server
		// that makes room for transfers at the accept takes 320 KiB.
		if per > 16<<10 {
			t.Errorf("%s: %d idle connections took %d KiB each, want at most 16", proto, n, per>>10)
		}
		t.Logf("%s: %.1f KiB per idle connection (both ends)", proto, float64(per)/1024)
	}
}

// rawSession is an LNP/1 client that holds nothing between frames, so
// that a test measuring the server's memory in-process measures the
// server's.
type rawSession struct {
	t *testing.T
	c net.Conn
}

func rawLogin(t *testing.T, addr, user string, sig larder.Signature) *rawSession {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	must(t, err)
	t.Cleanup(func() { c.Close() })
	rs := &rawSession{t: t, c: c}
	rs.send(lnp.Hello{User: user, Signature: sig, MaxBlock: lnp.DefaultBlockSize})
	if w := readWelcome(t, c, 5*time.Second); w.Status != lnp.StatusOK {
		t.Fatalf("login %s: %v %q", user, w.Status, w.Message)
	}
	return rs
}

func (rs *rawSession) send(m lnp.Message) {
	rs.t.Helper()
	body := m.AppendBody(nil)
	rs.frame(m.Type(), body)
}

func (rs *rawSession) frame(t lnp.Type, body []byte) {
	rs.t.Helper()
	b := append([]byte{byte(t), 0, 0, 0, 0}, body...)
	binary.BigEndian.PutUint32(b[1:], uint32(len(body)))
	rs.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := rs.c.Write(b)
	must(rs.t, err)
}

// next reads a frame; a DATA frame's body is discarded and returned nil.
func (rs *rawSession) next() (lnp.Type, []byte) {
	rs.t.Helper()
	rs.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var hdr [lnp.HeaderSize]byte
	_, err := io.ReadFull(rs.c, hdr[:])
	must(rs.t, err)
	t, n := lnp.Type(hdr[0]), int64(binary.BigEndian.Uint32(hdr[1:]))
	if t == lnp.TypeData {
		_, err = io.CopyN(io.Discard, rs.c, n)
		must(rs.t, err)
		return t, nil
	}
	body := make([]byte, n)
	_, err = io.ReadFull(rs.c, body)
	must(rs.t, err)
	return t, body
}

func (rs *rawSession) wantOK(what string) []byte {
	rs.t.Helper()
	t, body := rs.next()
	r, err := lnp.ParseReply(body)
	if t != lnp.TypeReply || err != nil || r.Status != lnp.StatusOK {
		rs.t.Fatalf("%s: got %v %v %q (%v)", what, t, r.Status, r.Message, err)
	}
	return r.Body
}

// get downloads path and throws it away.
func (rs *rawSession) get(path string) {
	rs.t.Helper()
	rs.send(lnp.Get{Path: path})
	rs.wantOK("GET " + path)
	for {
		t, body := rs.next()
		if t == lnp.TypeData {
			continue
		}
		if e, err := lnp.ParseEndStatus(body); t != lnp.TypeEnd || err != nil || e.Status != lnp.StatusOK {
			rs.t.Fatalf("GET %s ended with %v %+v %v", path, t, e, err)
		}
		return
	}
}

// put uploads data to path in blocks of lnp.DefaultBlockSize.
func (rs *rawSession) put(path string, data []byte) {
	rs.t.Helper()
	rs.send(lnp.Put{Path: path, Size: uint64(len(data)), Overwrite: true})
	rs.wantOK("PUT " + path)
	for off := 0; off < len(data); off += lnp.DefaultBlockSize {
		p := data[off:min(off+lnp.DefaultBlockSize, len(data))]
		d := lnp.Data{Offset: uint64(off), SHA256: sha256.Sum256(p)}
		rs.frame(lnp.TypeData, append(d.AppendHead(nil), p...))
	}
	rs.send(lnp.EndHash{SHA256: sha256.Sum256(data)})
	rs.wantOK("END of PUT " + path)
}

// TestLNPIdleSessionsAreCheap: a session that has logged in, or has
// finished its transfers, holds no transfer buffer while it idles (1,000
// idle sessions of one user took 1.33 GiB).
func TestLNPIdleSessionsAreCheap(t *testing.T) {
	const n = 30
	h := newPlaintextLNPHarness(t, func(s *server.Server) {
		s.MaxConnsPerAddress, s.MaxSessionsPerUser, s.MaxTransfersPerUser = -1, -1, n
	})
	sig := h.register(t, "alice", "pw")
	data := bytes.Repeat([]byte("larder "), 300_000) // 2.1 MB: three blocks
	warm := rawLogin(t, h.addr, "alice", sig)
	warm.put("big.bin", data)
	warm.get("big.bin")
	warm.put("up.bin", data[:1<<20+1])

	before := heapInUse()
	var wg sync.WaitGroup
	for i := range n {
		rs := rawLogin(t, h.addr, "alice", sig)
		if i%2 == 0 {
			continue // idle since the login
		}
		wg.Go(func() {
			rs.get("big.bin")
			rs.put(fmt.Sprintf("up%d.bin", i), data[:1<<20+1])
		})
	}
	wg.Wait()
	per := (heapInUse() - before) / n
	// A session that keeps its block buffer from the login, and its
	// transfer buffers after a transfer, holds more than 1 MiB.
	if per > 64<<10 {
		t.Errorf("%d idle sessions, half of them after a download and an upload, hold %d KiB each, want at most 64", n, per>>10)
	}
	t.Logf("%.1f KiB per idle session", float64(per)/1024)
}

// auditBuffer returns an audit trail writing JSON lines to a buffer, and
// the function that closes it and returns the events.
func auditBuffer(t *testing.T) (*audit.Log, func() []larder.Event) {
	t.Helper()
	var out syncBuffer
	trail, err := audit.Open(audit.Config{Dir: t.TempDir(), Sink: audit.NewJSONLines(&out, nil)})
	must(t, err)
	return trail, func() []larder.Event {
		must(t, trail.Close(context.Background()))
		var evs []larder.Event
		for line := range strings.SplitSeq(strings.TrimSpace(out.String()), "\n") {
			if line == "" {
				continue
			}
			var e larder.Event
			must(t, json.Unmarshal([]byte(line), &e))
			evs = append(evs, e)
		}
		return evs
	}
}

// TestSessionsPerUserLimit: one account cannot hold more than
// MaxSessionsPerUser LNP/1 sessions; the one over is answered BUSY with
// the limit named, and recorded; other accounts are not affected.
func TestSessionsPerUserLimit(t *testing.T) {
	trail, events := auditBuffer(t)
	h := newLNPHarness(t, func(s *server.Server) { s.MaxSessionsPerUser, s.Audit = 3, trail })
	alice, bob := h.register(t, "alice", "pw"), h.register(t, "bob", "pw")
	var held []*client.Session
	for range 3 {
		held = append(held, h.login(t, "alice", alice))
	}
	_, err := h.dial("alice", alice, 0)
	wantLNPStatus(t, "a fourth session", err, lnp.StatusBusy)
	if msg := err.Error(); !strings.Contains(msg, "sessions") || !strings.Contains(msg, "limit is 3") {
		t.Errorf("the refusal %q does not name the limit and its value", msg)
	}
	h.login(t, "bob", bob) // another account is not held up
	held[0].Close()
	waitFor(t, func() bool {
		s, err := h.dial("alice", alice, 0)
		if err == nil {
			s.Close()
		}
		return err == nil
	})
	h.srv.Close()
	h.srv.Wait()
	found := false
	for _, e := range events() {
		if e.Kind == larder.EventRefused && e.User == "alice" && e.Status == int(lnp.StatusBusy) && strings.Contains(e.Reason, "limit is 3") {
			found = true
		}
	}
	if !found {
		t.Error("no refused event for the session over the limit")
	}
}

// TestConnsPerAddressLimit: one address cannot hold more than
// MaxConnsPerAddress connections, of both protocols together; the one
// over is told why in its protocol, and recorded.
func TestConnsPerAddressLimit(t *testing.T) {
	trail, events := auditBuffer(t)
	h := newPlaintextLNPHarness(t, func(s *server.Server) { s.MaxConnsPerAddress, s.Audit = 3, trail })
	sig := h.register(t, "alice", "pw")
	waitFor(t, func() bool { return h.srv.Conns() == 0 })
	var idle []net.Conn
	for _, addr := range []string{h.courseAddr, h.courseAddr, h.addr} {
		c, err := net.Dial("tcp", addr)
		must(t, err)
		idle = append(idle, c)
	}
	waitFor(t, func() bool { return h.srv.Conns() == 3 })

	c, err := net.Dial("tcp", h.courseAddr)
	must(t, err)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	_, err = c.Write(request("alice", sig, ""))
	must(t, err)
	r := readWholeReply(t, c)
	c.Close()
	if r.status != course.StatusOther || !strings.Contains(string(r.payload), "from your address") || !strings.Contains(string(r.payload), "limit is 3") {
		t.Errorf("course protocol over the limit: got %v %q, want OTHER naming the limit", r.status, r.payload)
	}
	_, err = h.dial("alice", sig, 0)
	wantLNPStatus(t, "LNP/1 over the limit", err, lnp.StatusBusy)
	if !strings.Contains(err.Error(), "limit is 3") {
		t.Errorf("LNP/1 over the limit: %v does not name the limit", err)
	}
	if st := h.srv.Stats(); st.RejectedPerAddress != 2 || st.Rejected != 0 {
		t.Errorf("RejectedPerAddress, Rejected = %d, %d; want 2, 0", st.RejectedPerAddress, st.Rejected)
	}

	idle[0].Close()
	waitFor(t, func() bool { return h.srv.Conns() == 2 })
	h.login(t, "alice", sig) // room again
	for _, c := range idle[1:] {
		c.Close()
	}
	h.srv.Close()
	h.srv.Wait()
	n := 0
	for _, e := range events() {
		if e.Kind == larder.EventRefused && strings.Contains(e.Reason, "per address") {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d refused events for the connections over the limit, want 2", n)
	}
}

// TestUnauthenticatedEventsBounded: connections that connect and close
// without logging in leave events within their address's allowance only;
// the rest are counted and summed up in one audit.suppressed event, and
// events of logged-in users are not held back.
func TestUnauthenticatedEventsBounded(t *testing.T) {
	trail, events := auditBuffer(t)
	h := newPlaintextLNPHarness(t, func(s *server.Server) {
		s.Audit, s.MaxConnsPerAddress = trail, -1
		s.AuditUnauthBurst, s.AuditUnauthEvery, s.AuditSummaryInterval = 10, time.Hour, time.Hour
	})
	sig := h.register(t, "alice", "pw")
	const cycles = 60
	for i := range cycles {
		addr := h.courseAddr
		if i%2 == 1 {
			addr = h.addr
		}
		c, err := net.Dial("tcp", addr)
		must(t, err)
		c.Close()
	}
	waitFor(t, func() bool { return h.srv.Conns() == 0 })
	for range 3 {
		s := h.login(t, "alice", sig) // logged in: recorded whatever the allowance
		s.Close()
	}
	waitFor(t, func() bool { return h.srv.Conns() == 0 })
	held := h.srv.Stats().AuditSuppressed
	h.srv.Close()
	h.srv.Wait()

	unauth, logins := 0, 0
	var sums []larder.Event
	for _, e := range events() {
		switch {
		case e.Kind == larder.EventSuppressed:
			sums = append(sums, e)
		case e.Kind == larder.EventLogin:
			logins++
		case e.User == "":
			unauth++
		}
	}
	if unauth != 10 {
		t.Errorf("%d events of connections that never logged in recorded, want the allowance of 10", unauth)
	}
	if logins != 3 {
		t.Errorf("%d login events, want 3", logins)
	}
	// Each course cycle leaves conn.close, each LNP/1 one conn.open,
	// refused (no HELLO) and conn.close, and each LNP/1 login a
	// conn.open.
	want := int64(cycles/2*(1+3) + 3 - 10)
	if held != want {
		t.Errorf("Stats().AuditSuppressed = %d, want %d", held, want)
	}
	if len(sums) != 1 {
		t.Fatalf("%d audit.suppressed events, want 1: %+v", len(sums), sums)
	}
	s := sums[0]
	if s.Remote != "127.0.0.1" || !strings.Contains(s.Reason, fmt.Sprintf("suppressed %d events from 127.0.0.1", want)) ||
		!strings.Contains(s.Reason, "conn.close") || !strings.Contains(s.Reason, "conn.open") {
		t.Errorf("the summary does not say what was held back: %+v", s)
	}
}

// TestRefusalsNotHeldBySilentClients: clients turned away at a limit that
// never speak (over TLS, the refusal waits for their handshake) cannot hold
// the few goroutines that tell clients why for longer than a second, so a
// real client turned away later still hears the reason.
func TestRefusalsNotHeldBySilentClients(t *testing.T) {
	h := newLNPHarness(t, func(s *server.Server) { s.MaxConnsPerAddress = 1 })
	sig := h.register(t, "alice", "pw")
	waitFor(t, func() bool { return h.srv.Conns() == 0 })
	held := h.login(t, "alice", sig)
	defer held.Close()
	var silent []net.Conn
	for range 80 { // more than the server tells at once
		c, err := net.Dial("tcp", h.addr)
		must(t, err)
		silent = append(silent, c)
	}
	defer func() {
		for _, c := range silent {
			c.Close()
		}
	}()
	time.Sleep(1500 * time.Millisecond)
	_, err := h.dial("alice", sig, 0)
	wantLNPStatus(t, "a client over the limit after 80 silent ones", err, lnp.StatusBusy)
}

// TestSetLimitsWhileServing: limits lowered while serving turn away new
// sessions and connections, never those already held, which keep being
// served; raised again, they let new ones in. A session takes a new idle
// timeout from its next request.
func TestSetLimitsWhileServing(t *testing.T) {
	h := newPlaintextLNPHarness(t)
	alice := h.register(t, "alice", "pw")
	waitFor(t, func() bool { return h.srv.Conns() == 0 })
	var held []*client.Session
	for range 3 {
		held = append(held, h.login(t, "alice", alice))
	}
	h.srv.SetLimits(server.Limits{MaxConns: 2, MaxSessionsPerUser: 1, MaxConnsPerAddress: 2, IdleTimeout: 300 * time.Millisecond})
	if st := h.srv.Stats(); st.MaxConns != 2 {
		t.Errorf("Stats().MaxConns = %d after SetLimits, want 2", st.MaxConns)
	}
	_, err := h.dial("alice", alice, 0)
	wantLNPStatus(t, "a session over the lowered limits", err, lnp.StatusBusy)
	for i, s := range held {
		if _, err := s.Whoami(t.Context()); err != nil {
			t.Errorf("session %d held across the lowered limits: %v", i, err)
		}
	}
	// Each held session waits at most the new idle timeout after its
	// request: all three end.
	waitFor(t, func() bool { return h.srv.Conns() == 0 })
	for i, s := range held {
		if _, err := s.Whoami(t.Context()); err == nil {
			t.Errorf("session %d idle past the new idle timeout still answers", i)
		}
	}
	h.srv.SetLimits(server.Limits{MaxConns: 10, MaxSessionsPerUser: 2})
	s, err := h.dial("alice", alice, 0)
	if err != nil {
		t.Fatalf("a session under the raised limits: %v", err)
	}
	s.Close()
}

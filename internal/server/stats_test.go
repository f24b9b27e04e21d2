package server_test

import (
	"bytes"
	"context"
	"net"
	"testing"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/course"
	"github.com/larderfs/larder/internal/server"
)

// TestStats drives a real server through each kind of exchange and checks
// every counter of its Stats.
func TestStats(t *testing.T) {
	h := newHarness(t)
	file := bytes.Repeat([]byte("x"), 2000) // three blocks
	h.write(t, "f", file)
	h.register(t, "alice")
	for range 2 {
		if r := h.exchange(t, request("alice", testSig, "f")); r.status != course.StatusOK {
			t.Fatalf("retrieve: got %v %q", r.status, r.payload)
		}
	}
	wrong := larder.NewSignature("wrong", "battery staple salt")
	if r := h.exchange(t, request("alice", wrong, "f")); r.status != course.StatusInvalidLogin {
		t.Fatalf("wrong signature: got %v %q", r.status, r.payload)
	}
	if r := h.exchange(t, rawHeader("alice", testSig, 5000, "f")); r.status != course.StatusMalformed {
		t.Fatalf("malformed: got %v %q", r.status, r.payload)
	}
	// A client that hangs up without a word is a connection, not a request.
	c, err := net.Dial("tcp", h.addr)
	must(t, err)
	c.Close()
	// A request is counted before its connection is released.
	waitFor(t, func() bool { s := h.srv.Stats(); return s.Accepted == 6 && s.Open == 0 })

	s := h.srv.Stats()
	if s.Listening != 1 || s.ShuttingDown || s.MaxConns != server.DefaultMaxConns || s.Rejected != 0 {
		t.Errorf("Listening, ShuttingDown, MaxConns, Rejected = %d, %v, %d, %d; want 1, false, %d, 0",
			s.Listening, s.ShuttingDown, s.MaxConns, s.Rejected, server.DefaultMaxConns)
	}
	if want := int64(2 * len(file)); s.PayloadBytes != want {
		t.Errorf("PayloadBytes = %d, want %d", s.PayloadBytes, want)
	}
	var want [server.NumOps][server.NumStatuses]int64
	want[server.OpRegister][course.StatusOK] = 1
	want[server.OpRetrieve][course.StatusOK] = 2
	want[server.OpRetrieve][course.StatusInvalidLogin] = 1
	want[server.OpNone][course.StatusMalformed] = 1
	if s.Requests != want {
		t.Errorf("Requests = %v, want %v", s.Requests, want)
	}
	for op, n := range []uint64{server.OpNone: 1, server.OpRegister: 1, server.OpRetrieve: 3} {
		if d := s.Durations[op]; d.Count() != n || d.Sum <= 0 {
			t.Errorf("Durations[%v]: count %d, sum %v; want %d, more than 0", server.Op(op), d.Count(), d.Sum, n)
		}
	}

	must(t, h.srv.Shutdown(context.Background()))
	if s := h.srv.Stats(); !s.ShuttingDown || s.Listening != 0 {
		t.Errorf("after Shutdown: ShuttingDown, Listening = %v, %d; want true, 0", s.ShuttingDown, s.Listening)
	}
}

// TestStatsBeforeServe: a server that has not served yet reports zeros and
// is not listening.
func TestStatsBeforeServe(t *testing.T) {
	var srv server.Server
	s := srv.Stats()
	if s.Listening != 0 || s.ShuttingDown || s.Accepted != 0 || s.MaxConns != server.DefaultMaxConns {
		t.Errorf("Stats() = %+v", s)
	}
}

package server_test

import (
	"crypto/tls"
	"encoding/binary"
	"io"
	"math"
	"testing"
	"time"

	"github.com/larderfs/larder/internal/tlsconf"
	"github.com/larderfs/larder/lnp"
)

// rawHello sends body as a HELLO and returns the WELCOME and the
// connection's frames.
func (h *lnpHarness) rawHello(t *testing.T, body []byte) (lnp.Welcome, *lnp.Writer, *lnp.Reader, error) {
	t.Helper()
	cfg, err := tlsconf.ClientConfig(h.addr, h.known, tlsconf.ClientOptions{Warn: io.Discard})
	must(t, err)
	conn, err := tls.Dial("tcp", h.addr, cfg)
	must(t, err)
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	w, r := lnp.NewWriter(conn, 0), lnp.NewReader(conn)
	must(t, w.WriteFrame(lnp.TypeHello, body))
	must(t, w.Flush())
	typ, wb, err := r.Next()
	if err != nil {
		return lnp.Welcome{}, w, r, err
	}
	if typ != lnp.TypeWelcome {
		t.Fatalf("answer to a HELLO: %v", typ)
	}
	wel, err := lnp.ParseWelcome(wb)
	return wel, w, r, err
}

// TestLNPHostileHello: every features value, and trailing bytes that are
// not a features field, get a clear answer; the server goes on.
func TestLNPHostileHello(t *testing.T) {
	h := newLNPHarness(t)
	sig := h.register(t, "alice", "pw")
	base := lnp.Hello{User: "alice", Signature: sig, MaxBlock: lnp.MinBlockSize}.AppendBody(nil)
	for _, f := range []uint32{0, 1, 2, 3, 1 << 31, math.MaxUint32} {
		body := binary.BigEndian.AppendUint32(append([]byte(nil), base...), f)
		wel, _, _, err := h.rawHello(t, body)
		want := lnp.Features(f) & (lnp.FeaturePutTime | lnp.FeatureNoBlockHashes | lnp.FeatureTreeDelete | lnp.FeatureReasons)
		if err != nil || wel.Status != lnp.StatusOK || wel.Features != want {
			t.Errorf("features %#x: got %+v, %v; want OK granting %b", f, wel, err, want)
		}
	}
	for _, extra := range [][]byte{{1}, {0, 0}, {0, 0, 1}, {0, 0, 0, 1, 0}} {
		wel, _, _, err := h.rawHello(t, append(append([]byte(nil), base...), extra...))
		if err != nil || wel.Status != lnp.StatusMalformed {
			t.Errorf("HELLO with %x after it: got %+v, %v; want MALFORMED", extra, wel, err)
		}
	}
	if _, err := h.login(t, "alice", sig).Whoami(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// TestLNPHostilePutTimes: PUT times at the edges are refused with a
// reason, or kept exactly; no part is left, the session goes on.
func TestLNPHostilePutTimes(t *testing.T) {
	h := newLNPHarness(t)
	sig := h.register(t, "alice", "pw")
	body := lnp.Hello{User: "alice", Signature: sig, MaxBlock: lnp.MinBlockSize, Features: lnp.FeaturePutTime}.AppendBody(nil)
	wel, w, r, err := h.rawHello(t, body)
	if err != nil || wel.Status != lnp.StatusOK {
		t.Fatal(wel, err)
	}
	put := lnp.Put{Path: "a.txt", Size: 1}.AppendBody(nil)
	for _, ns := range []int64{0, -1, math.MinInt64, math.MaxInt64, time.Now().Add(25 * time.Hour).UnixNano()} {
		must(t, w.WriteFrame(lnp.TypePut, binary.BigEndian.AppendUint64(append([]byte(nil), put...), uint64(ns))))
		must(t, w.Flush())
		typ, b, err := r.Next()
		must(t, err)
		rep, err := lnp.ParseReply(b)
		if typ != lnp.TypeReply || err != nil || rep.Status != lnp.StatusBadRequest {
			t.Errorf("PUT at %d: got %v %+v %v, want BAD_REQUEST", ns, typ, rep, err)
		}
	}
	// A time field cut short or followed by more is MALFORMED, on a
	// session of its own: the server ends a session after one.
	for _, n := range []int{1, 7, 9} {
		_, w, r, err := h.rawHello(t, body)
		must(t, err)
		must(t, w.WriteFrame(lnp.TypePut, append(append([]byte(nil), put...), make([]byte, n)...)))
		must(t, w.Flush())
		typ, b, err := r.Next()
		must(t, err)
		rep, err := lnp.ParseReply(b)
		if typ != lnp.TypeReply || err != nil || rep.Status != lnp.StatusMalformed {
			t.Errorf("PUT with %d bytes of time: got %v %+v %v, want MALFORMED", n, typ, rep, err)
		}
	}
	if got := partFiles(t, h.spaces); len(got) != 0 {
		t.Errorf("refused PUTs left parts: %v", got)
	}
}

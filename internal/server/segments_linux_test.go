package server_test

import (
	"bytes"
	"context"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/larderfs/larder/course"
)

// fetchWith retrieves path over a connection made by d, and returns the
// reply and the client socket's TCP_INFO at its end.
func (h *harness) fetchWith(t *testing.T, d *net.Dialer, path string) (*reply, *unix.TCPInfo) {
	t.Helper()
	c, err := d.DialContext(context.Background(), "tcp", h.addr)
	must(t, err)
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	_, err = c.Write(request("alice", testSig, path))
	must(t, err)
	r := readWholeReply(t, c)
	raw, err := c.(*net.TCPConn).SyscallConn()
	must(t, err)
	var ti *unix.TCPInfo
	var ierr error
	must(t, raw.Control(func(fd uintptr) { ti, ierr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) }))
	must(t, ierr)
	return r, ti
}

// TestRepliesInSegmentsOfOneBlock: the course listener makes the MSS one
// block (1,024 bytes of payload with timestamps), so the client receives
// segments of 1,024 bytes: every segment holds whole blocks.
func TestRepliesInSegmentsOfOneBlock(t *testing.T) {
	h := newHarness(t)
	h.register(t, "alice")
	data := bytes.Repeat([]byte("0123456789abcdef"), 20_000)
	h.write(t, "f", data)
	r, ti := h.fetchWith(t, &net.Dialer{}, "f")
	if !bytes.Equal(r.payload, data) {
		t.Fatalf("got %d bytes, want the file's %d", len(r.payload), len(data))
	}
	if ti.Options&1 == 0 { // TCPI_OPT_TIMESTAMPS
		t.Skip("TCP timestamps are off on this machine: replies go one block per write")
	}
	if ti.Rcv_mss != course.MaxMessageSize {
		t.Errorf("the client received segments of %d bytes, want %d", ti.Rcv_mss, course.MaxMessageSize)
	}
	if strings.Contains(h.logs.String(), "send=") {
		t.Errorf("the log names a slower path:\n%s", h.logs)
	}
}

// TestRepliesPerBlockForOtherMSS: a client whose MSS is not one block
// (here 900 bytes) is sent one block per write, and says so in the log.
func TestRepliesPerBlockForOtherMSS(t *testing.T) {
	h := newHarness(t)
	h.register(t, "alice")
	data := bytes.Repeat([]byte("0123456789abcdef"), 20_000)
	h.write(t, "f", data)
	d := &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_MAXSEG, 900) }); err != nil {
			return err
		}
		return serr
	}}
	r, _ := h.fetchWith(t, d, "f")
	if !bytes.Equal(r.payload, data) {
		t.Fatalf("got %d bytes, want the file's %d", len(r.payload), len(data))
	}
	// The request's log line is written after the connection is closed.
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(h.logs.String(), "send=per-block"); {
		if time.Now().After(deadline) {
			t.Fatalf("the log does not say send=per-block:\n%s", h.logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

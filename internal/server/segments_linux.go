package server

import (
	"errors"
	"io"
	"net"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/larderfs/larder/course"
)

// How a course reply keeps its blocks whole on the wire. The course's
// handout client reads each block with one recv of its exact size and
// never loops, so a recv that returns part of a block fails it. Linux cuts
// a connection's data into segments of its MSS, and a receiver is handed
// whole segments; so, with an MSS of exactly one block (1,024 bytes) and
// the socket corked (TCP_CORK: send only whole segments, until uncorked),
// every segment holds whole blocks and the client never sees part of one.
// The kernel still builds large (TSO) buffers of many segments, so the
// reply costs no more system calls than before: one per 64 blocks. See
// docs/PROTOCOL.md, "How larder sends a reply".

// tcpTimestampOption is the room the TCP timestamp option takes in every
// segment (10 bytes, padded to 12), which the MSS that TCP_MAXSEG sets
// includes: with timestamps, as Linux and macOS clients negotiate them,
// the payload per segment is then exactly one block.
const tcpTimestampOption = 12

// alignSegments sets the MSS of the connections that ln will accept to one
// block plus the timestamp option. Connections already waiting to be
// accepted keep the MSS they have, and are sent one block per write.
func alignSegments(ln net.Listener) error {
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return nil // not TCP: nothing is cut into segments
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_MAXSEG, course.MaxMessageSize+tcpTimestampOption)
	}); err != nil {
		return err
	}
	return serr
}

// chooseSendPath chooses how a reply of blocks blocks goes to rwc: a
// few blocks one per write, more by rwc's MSS, and, for the aligned
// path, corks it; the caller uncorks with finishSend. raw is nil for a
// connection that is not a socket.
func chooseSendPath(rwc net.Conn, blocks uint32) (sendPath, syscall.RawConn) {
	tc, ok := rwc.(*net.TCPConn)
	if !ok {
		return sendBatched, nil
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return sendPerBlock, nil
	}
	if blocks <= fewBlocks {
		return sendFew, raw
	}
	var mss uint32
	var serr error
	err = raw.Control(func(fd uintptr) {
		var ti *unix.TCPInfo
		if ti, serr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); serr != nil {
			return
		}
		if mss = ti.Snd_mss; mss == course.MaxMessageSize {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_CORK, 1)
		}
	})
	if err != nil || serr != nil || mss != course.MaxMessageSize {
		return sendPerBlock, raw
	}
	return sendAligned, raw
}

// finishSend uncorks a socket of the aligned path, which sends at once
// whatever the cork still holds: the reply's last, short block.
func finishSend(path sendPath, raw syscall.RawConn) error {
	if path != sendAligned {
		return nil
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_CORK, 0)
	}); err != nil {
		return err
	}
	return serr
}

// sendWriter returns what a reply on path writes to: rwc itself, or for
// the per-block and few paths an eorWriter on it.
func sendWriter(path sendPath, rwc net.Conn, raw syscall.RawConn) io.Writer {
	if path.blockPerWrite() && raw != nil {
		return eorWriter{raw}
	}
	return rwc
}

// eorWriter writes each Write's bytes with MSG_EOR, which ends the
// kernel's buffer there: later writes never join it, so a block written
// alone is sent alone whatever the MSS, and a receiver is handed it whole
// as long as the MSS is at least a block. The socket's write deadline
// applies, as to any write.
type eorWriter struct{ raw syscall.RawConn }

func (w eorWriter) Write(p []byte) (int, error) {
	written := 0
	var serr error
	err := w.raw.Write(func(fd uintptr) bool {
		for written < len(p) {
			n, err := unix.SendmsgN(int(fd), p[written:], nil, nil, unix.MSG_EOR|unix.MSG_NOSIGNAL)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if errors.Is(err, unix.EAGAIN) {
				return false // wait until writable, or the deadline
			}
			if err != nil {
				serr = err
				return true
			}
			written += n
		}
		return true
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return written, &net.OpError{Op: "write", Net: "tcp", Err: err}
	}
	return written, nil
}

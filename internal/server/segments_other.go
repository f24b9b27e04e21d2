//go:build !linux

package server

import (
	"io"
	"net"
	"syscall"
)

// Elsewhere than Linux, larder does not rely on how the kernel cuts
// segments: a reply over TCP goes one block per write, as the course's
// reference server sends it (see segments_linux.go).

func alignSegments(net.Listener) error { return nil }

func chooseSendPath(rwc net.Conn, _ uint32) (sendPath, syscall.RawConn) {
	if _, ok := rwc.(*net.TCPConn); ok {
		return sendPerBlock, nil
	}
	return sendBatched, nil
}

func finishSend(sendPath, syscall.RawConn) error { return nil }

func sendWriter(_ sendPath, rwc net.Conn, _ syscall.RawConn) io.Writer { return rwc }

package server

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// waitReadable waits until rwc has input or has been closed by the peer,
// or its read deadline passes, without reading anything; it returns at
// once where that cannot be asked.
func waitReadable(rwc net.Conn) {
	sc, ok := rwc.(syscall.Conn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	var b [1]byte
	// f says whether to stop waiting: a byte to read, the end of the
	// stream (0 bytes), or an error the next read will meet too.
	raw.Read(func(fd uintptr) bool {
		_, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		return err != unix.EAGAIN && err != unix.EINTR
	})
}

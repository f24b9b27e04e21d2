package server

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// inputPending reports whether the client has sent bytes the server has
// not read, as far as the kernel knows now; known is false where that
// cannot be asked.
func inputPending(rwc net.Conn) (pending, known bool) {
	sc, ok := rwc.(syscall.Conn)
	if !ok {
		return false, false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false, false
	}
	var n int
	var ierr error
	if err := raw.Control(func(fd uintptr) { n, ierr = unix.IoctlGetInt(int(fd), unix.SIOCINQ) }); err != nil || ierr != nil {
		return false, false
	}
	return n > 0, true
}

// outputQueued reports whether tcp holds bytes written but not yet
// acknowledged by the client; known is false where that cannot be asked.
func outputQueued(tcp *net.TCPConn) (queued, known bool) {
	raw, err := tcp.SyscallConn()
	if err != nil {
		return false, false
	}
	var n int
	var ierr error
	if err := raw.Control(func(fd uintptr) { n, ierr = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ) }); err != nil || ierr != nil {
		return false, false
	}
	return n > 0, true
}

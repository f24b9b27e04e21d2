//go:build !linux

package server

import "net"

// inputPending cannot ask the kernel here: the caller lingers always.
func inputPending(net.Conn) (pending, known bool) { return false, false }

// outputQueued cannot ask the kernel here: a cut connection is reset at
// its deadline.
func outputQueued(*net.TCPConn) (queued, known bool) { return false, false }

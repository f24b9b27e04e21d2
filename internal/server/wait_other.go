//go:build !linux

package server

import "net"

// waitReadable cannot peek here: the caller reads at once.
func waitReadable(net.Conn) {}

//go:build linux

package main

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
)

// listenPorts is the range of --ports, from which freeAddr takes the ports
// of the servers the bench starts; nil lets the kernel pick them. A shared
// machine may give each of its users a range of its own.
var listenPorts *portRange

// portRange is a flag holding a range of TCP ports, "LO-HI", both
// included.
type portRange struct {
	lo, hi int
	cursor int // the next port to try, less lo; guarded by portsMu
}

// portsMu serializes next.
var portsMu sync.Mutex

func (r *portRange) String() string {
	if r == nil || r.lo == 0 {
		return ""
	}
	return fmt.Sprintf("%d-%d", r.lo, r.hi)
}

func (r *portRange) Set(s string) error {
	a, b, ok := strings.Cut(s, "-")
	lo, err1 := strconv.Atoi(strings.TrimSpace(a))
	hi, err2 := strconv.Atoi(strings.TrimSpace(b))
	if !ok || err1 != nil || err2 != nil || lo < 1 || hi > 65535 || lo > hi {
		return fmt.Errorf("want a range of ports LO-HI, 1 ≤ LO ≤ HI ≤ 65535, such as 25450-25499; got %q", s)
	}
	r.lo, r.hi, r.cursor = lo, hi, 0
	return nil
}

// next returns a loopback address with the first port of the range,
// from the one after the port last returned, that is free now. Going
// round the range rather than back to its start spares a server the port
// another has just let go of.
func (r *portRange) next() (string, error) {
	portsMu.Lock()
	defer portsMu.Unlock()
	n := r.hi - r.lo + 1
	for i := range n {
		port := r.lo + (r.cursor+i)%n
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		ln.Close()
		r.cursor = (port - r.lo + 1) % n
		return ln.Addr().String(), nil
	}
	return "", fmt.Errorf("no free port in --ports %s on 127.0.0.1", r)
}

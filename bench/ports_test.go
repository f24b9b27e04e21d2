//go:build linux

package main

import (
	"net"
	"strconv"
	"testing"
)

func TestPortRangeSet(t *testing.T) {
	for _, tt := range []struct {
		in     string
		lo, hi int
		ok     bool
	}{
		{"25450-25499", 25450, 25499, true},
		{"8080-8080", 8080, 8080, true},
		{" 100 - 200 ", 100, 200, true},
		{"25499-25450", 0, 0, false},
		{"0-10", 0, 0, false},
		{"1-65536", 0, 0, false},
		{"25450", 0, 0, false},
		{"a-b", 0, 0, false},
		{"", 0, 0, false},
	} {
		var r portRange
		err := r.Set(tt.in)
		if (err == nil) != tt.ok || tt.ok && (r.lo != tt.lo || r.hi != tt.hi) {
			t.Errorf("Set(%q) = %d-%d, %v; want %d-%d, ok %v", tt.in, r.lo, r.hi, err, tt.lo, tt.hi, tt.ok)
		}
	}
}

// TestPortRangeNext takes the ports of a range one after the other,
// fails when none is free, and goes round.
func TestPortRangeNext(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	p := busy.Addr().(*net.TCPAddr).Port
	var r portRange
	if err := r.Set(strconv.Itoa(p) + "-" + strconv.Itoa(p)); err != nil {
		t.Fatal(err)
	}
	if addr, err := r.next(); err == nil {
		t.Fatalf("next() over a range whose only port is in use = %s, want an error", addr)
	}
	busy.Close()
	for range 2 {
		addr, err := r.next()
		if want := "127.0.0.1:" + strconv.Itoa(p); err != nil || addr != want {
			t.Fatalf("next() = %q, %v; want %s", addr, err, want)
		}
	}
}

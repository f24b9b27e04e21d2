package server

import (
	"net/netip"
	"testing"
)

// TestMaskAddr: connections are counted per IPv4 address and per IPv6
// /64, an IPv4-mapped address as its IPv4 one, whatever the zone.
func TestMaskAddr(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"192.0.2.7", "192.0.2.7"},
		{"::ffff:192.0.2.7", "192.0.2.7"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::"},
		{"2001:db8:1:2:ffff::1", "2001:db8:1:2::"},
		{"fe80::1%eth0", "fe80::"},
	} {
		if got := maskAddr(netip.MustParseAddr(tc.in)); got != netip.MustParseAddr(tc.want) {
			t.Errorf("maskAddr(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
	if got := remoteKey("[2001:db8:1:2::9]:4000"); got != netip.MustParseAddr("2001:db8:1:2::") {
		t.Errorf("remoteKey of an IPv6 remote = %s", got)
	}
	if got := remoteKey("pipe"); got.IsValid() {
		t.Errorf("remoteKey of a remote without an address = %s, want the invalid address", got)
	}
}

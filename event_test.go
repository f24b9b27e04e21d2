package larder_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/larderfs/larder"
)

func TestEventID(t *testing.T) {
	at := time.UnixMilli(0x0123456789ab)
	seen := map[larder.EventID]bool{}
	for range 10000 {
		id := larder.NewEventID(at)
		if seen[id] {
			t.Fatalf("duplicate event id %v", id)
		}
		seen[id] = true
		if id[6]>>4 != 7 || id[8]>>6 != 2 {
			t.Fatalf("%v: got version %d, variant %b; want 7 and 10", id, id[6]>>4, id[8]>>6)
		}
		if !bytes.Equal(id[:6], []byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xab}) {
			t.Fatalf("%v does not start with the time in milliseconds", id)
		}
		back, err := larder.ParseEventID(id.String())
		if err != nil || back != id {
			t.Fatalf("ParseEventID(%q) = %v, %v; want %v", id.String(), back, err, id)
		}
	}
	later := larder.NewEventID(at.Add(time.Millisecond))
	for id := range seen {
		if bytes.Compare(id[:], later[:]) >= 0 {
			t.Fatalf("an id of a later millisecond sorts before %v", id)
		}
	}
	for _, bad := range []string{"", "0123", "01234567-89ab-7cde-8f01-23456789abcg", "0123456789ab-7cde-8f01-23456789abcdef"} {
		if _, err := larder.ParseEventID(bad); err == nil {
			t.Errorf("ParseEventID(%q) succeeded", bad)
		}
	}
}

func BenchmarkNewEventID(b *testing.B) {
	now := time.Now()
	for b.Loop() {
		larder.NewEventID(now)
	}
}

func TestEventJSONRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 22, 18, 0, 0, 123456789, time.UTC)
	events := []larder.Event{
		{ID: larder.NewEventID(at), Time: at, Kind: larder.EventDownload, Server: "127.0.0.1:23456",
			User: "ålice", Remote: "127.0.0.1:40000", Path: "dir/f \"q\".txt", Bytes: 1 << 40,
			SHA256: [32]byte{1, 2, 3}, Status: 1, Duration: 1500 * time.Millisecond, Seq: 7},
		{ID: larder.NewEventID(at), Time: at, Kind: larder.EventLoginFailed, User: "bob", Reason: "wrong signature", Status: 4},
	}
	for _, e := range events {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		var back larder.Event
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if !back.Time.Equal(e.Time) {
			t.Fatalf("time %v, want %v", back.Time, e.Time)
		}
		back.Time = e.Time
		if back != e {
			t.Fatalf("round trip of %s:\n got %+v\nwant %+v", b, back, e)
		}
	}
	var e larder.Event
	for _, bad := range []string{`{"id":"x","time":"2026-11-22T18:00:00Z"}`, `{"id":"` + events[0].ID.String() + `","time":"yesterday"}`,
		`{"id":"` + events[0].ID.String() + `","time":"2026-11-22T18:00:00Z","sha256":"abc"}`} {
		if err := json.Unmarshal([]byte(bad), &e); err == nil {
			t.Errorf("Unmarshal(%s) succeeded", bad)
		}
	}
}

func TestEventFilterMatch(t *testing.T) {
	for _, tc := range []struct {
		path, p string
		want    bool
	}{
		{"", "/anything", true},
		{"/d1", "/d1", true},
		{"/d1", "/d1/x.txt", true},
		{"/d1", "/d1/sub/y", true},
		{"/d1", "/d10", false},
		{"/d1", "/d1.txt", false},
		{"/d1", "/D1/x", false},
		{"/d1/", "/d1/x", true},
		{"/d1/", "/d1", false},
		{"/", "/x", true},
		{"/", "x", false},
		{"/%", "/%", true},
		{"/%", "/a", false},
	} {
		f := larder.EventFilter{Path: tc.path}
		if got := f.MatchPath(tc.p); got != tc.want {
			t.Errorf("EventFilter{Path: %q}.MatchPath(%q) = %v, want %v", tc.path, tc.p, got, tc.want)
		}
	}
	for _, tc := range []struct {
		remote, r string
		want      bool
	}{
		{"", "192.0.2.7:1", true},
		{"192.0.2.7", "192.0.2.7:40000", true},
		{"192.0.2.7", "192.0.2.7", true},
		{"192.0.2.7", "192.0.2.70:40000", false},
		{"::ffff:192.0.2.7", "192.0.2.7:40000", true},
		{"192.0.2.7:40000", "192.0.2.7:40000", true},
		{"192.0.2.7:40000", "192.0.2.7:40001", false},
		{"2001:db8::1", "[2001:db8::1]:5000", true},
		{"[2001:db8::1]", "[2001:db8::1]:5000", true},
		{"2001:DB8:0::1", "[2001:db8::1]:5000", true},
		{"2001:db8::1", "[2001:db8::10]:5000", false},
		{"192.0.2", "192.0.2.7:1", false},
		{"pipe", "pipe", true},
	} {
		f := larder.EventFilter{Remote: tc.remote}
		if got := f.MatchRemote(tc.r); got != tc.want {
			t.Errorf("EventFilter{Remote: %q}.MatchRemote(%q) = %v, want %v", tc.remote, tc.r, got, tc.want)
		}
	}
	lo, hi := (&larder.EventFilter{Path: "/d1"}).PathRange()
	if lo != "/d1/" || hi != "/d10" {
		t.Errorf("PathRange of /d1: got [%q, %q), want [\"/d1/\", \"/d10\")", lo, hi)
	}
	lo, hi, ok := (&larder.EventFilter{Remote: "2001:db8::1"}).RemoteRange()
	if lo != "[2001:db8::1]:" || hi != "[2001:db8::1];" || !ok {
		t.Errorf("RemoteRange of 2001:db8::1: got [%q, %q), %v", lo, hi, ok)
	}
}

func TestEventPath(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "/"},
		{"/", "/"},
		{"d1/x.txt", "/d1/x.txt"},
		{"//d1/./x.txt/", "/d1/x.txt"},
		{"shared", "/shared"},
		{"/shared/f.txt", "/shared/f.txt"},
		{"../x", "/../x"},
		{"/d1/../../etc/passwd", "/d1/../../etc/passwd"},
		{"d1/..", "/d1/.."},
		{"a\x00b", "/a\x00b"},
		{"/a..b/c", "/a..b/c"},
	} {
		if got := larder.EventPath(tc.in); got != tc.want {
			t.Errorf("EventPath(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

package audit

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/larderfs/larder"
)

// fullEvent returns an event of kind k with every field set, each
// different from what another i would give.
func fullEvent(k larder.EventKind, i int) larder.Event {
	at := time.Date(2026, 11, 22, 18, 0, i%60, 123456789+i, time.UTC)
	return larder.Event{
		ID: larder.NewEventID(at), Time: at, Kind: k, Server: "127.0.0.1:23456",
		User: "ålice" + string(rune('a'+i%26)), Remote: "[::1]:40000", Path: "dir/f \"q\"\n.txt",
		Bytes: 1<<40 + int64(i), SHA256: [32]byte{1, 2, 3, byte(i), 31: 0xff}, Status: -3 + i,
		Duration: 1500*time.Millisecond + time.Duration(i), Reason: "wrong signature", Seq: 7 + int64(i),
	}
}

// sameEvent reports whether a and b are equal, times compared as instants.
func sameEvent(a, b larder.Event) bool {
	if !a.Time.Equal(b.Time) {
		return false
	}
	a.Time, b.Time = time.Time{}, time.Time{}
	return a == b
}

func TestCodecRoundTrip(t *testing.T) {
	var events []larder.Event
	for i, k := range append(larder.EventKinds, "feature.future") {
		events = append(events, fullEvent(k, i))
	}
	events = append(events,
		larder.Event{},                      // every field zero
		larder.Event{ID: larder.EventID{1}}, // only an ID
		larder.Event{Time: time.Unix(-1e10, 999999999), Bytes: -1, Status: -1, Duration: -1, Seq: -1},
		larder.Event{Time: time.Unix(1<<40, 0), Bytes: 1<<63 - 1, Duration: -1 << 63},
		larder.Event{Kind: larder.EventLogin, Reason: strings.Repeat("x", maxField)},
	)
	for _, e := range events {
		b, cut := appendEvent(nil, &e)
		if cut {
			t.Errorf("%+v: a field was cut", e)
		}
		got, err := decodeEvent(b)
		if err != nil {
			t.Fatalf("decode %+v: %v", e, err)
		}
		if !sameEvent(got, e) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, e)
		}
	}
}

func TestCodecCutsLongFields(t *testing.T) {
	e := larder.Event{Kind: larder.EventRefused, Path: strings.Repeat("p", maxField+10), Reason: "why"}
	b, cut := appendEvent(nil, &e)
	if !cut {
		t.Fatal("got no cut, want the path cut")
	}
	got, err := decodeEvent(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Path) != maxField || got.Reason != "why" {
		t.Errorf("got path of %d bytes and reason %q, want %d and %q", len(got.Path), got.Reason, maxField, "why")
	}
	if len(b) > maxPayload {
		t.Errorf("got a payload of %d bytes, want at most maxPayload %d", len(b), maxPayload)
	}
}

func TestCodecRefusesMalformed(t *testing.T) {
	e := fullEvent(larder.EventDownload, 1)
	good, _ := appendEvent(nil, &e)
	bad := map[string][]byte{
		"empty":          {},
		"version 2":      append([]byte{2}, good[1:]...),
		"unknown flag":   {1, 0x80, 0x40},
		"short id":       good[:10],
		"one byte short": good[:len(good)-1],
		"trailing byte":  append(bytes.Clone(good), 'x'),
		"zero length":    {1, fKind, 18: 0}, // kind present with length 0
		"nanos too big":  append([]byte{1, fTime}, append(make([]byte, 16), 0, 0x80, 0x94, 0xeb, 0xdc, 0x03)...),
	}
	for name, b := range bad {
		if got, err := decodeEvent(b); err == nil {
			t.Errorf("%s: got %+v, want an error", name, got)
		}
	}
}

func TestCodecDecodeAllocatesOnce(t *testing.T) {
	e := fullEvent(larder.EventUpload, 3)
	b, _ := appendEvent(nil, &e)
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := decodeEvent(b); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 1 {
		t.Errorf("decode: got %v allocations, want 1", allocs)
	}
	buf := make([]byte, 0, 4096)
	allocs = testing.AllocsPerRun(100, func() { appendEvent(buf[:0], &e) })
	if allocs != 0 {
		t.Errorf("encode: got %v allocations, want 0", allocs)
	}
}

// FuzzDecodeEvent checks that the decoder never panics, and that whatever
// it accepts encodes back to an event it decodes the same.
func FuzzDecodeEvent(f *testing.F) {
	for i, k := range larder.EventKinds {
		e := fullEvent(k, i)
		b, _ := appendEvent(nil, &e)
		f.Add(b)
	}
	f.Add([]byte{1, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeEvent(b)
		if err != nil {
			return
		}
		b2, cut := appendEvent(nil, &e)
		if cut {
			t.Fatalf("a decoded event has a field over maxField")
		}
		e2, err := decodeEvent(b2)
		if err != nil {
			t.Fatalf("re-encoded event does not decode: %v", err)
		}
		if !sameEvent(e, e2) {
			t.Fatalf("got %+v after a second round, want %+v", e2, e)
		}
		// A record holding it reads back through the segment reader.
		rec, _ := appendRecord(nil, &e)
		r := newRecordReader()
		r.reset(bytes.NewReader(rec), 0, int64(len(rec)))
		p, err := r.next()
		if err != nil || !bytes.Equal(p, b2) {
			t.Fatalf("record reader: got %x, %v; want %x", p, err, b2)
		}
	})
}

func BenchmarkEncode(b *testing.B) {
	e := fullEvent(larder.EventDownload, 1)
	buf := make([]byte, 0, 4096)
	for b.Loop() {
		buf, _ = appendRecord(buf[:0], &e)
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkDecode(b *testing.B) {
	e := fullEvent(larder.EventDownload, 1)
	buf, _ := appendEvent(nil, &e)
	b.ReportAllocs()
	for b.Loop() {
		decodeEvent(buf)
	}
}

// FuzzRecordReader feeds arbitrary bytes to the segment record reader: it
// never panics, never reads past the end, and returns only records whose
// checksum holds, stopping at the first that does not.
func FuzzRecordReader(f *testing.F) {
	var seg []byte
	for i, k := range larder.EventKinds[:4] {
		e := fullEvent(k, i)
		seg, _ = appendRecord(seg, &e)
	}
	f.Add(seg)
	f.Add(seg[:len(seg)-5])
	f.Add(make([]byte, 64))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := newRecordReader()
		r.reset(bytes.NewReader(b), 0, int64(len(b)))
		for {
			start := r.off
			p, err := r.next()
			if err != nil {
				if r.off != start {
					t.Fatalf("a failed read moved the offset from %d to %d", start, r.off)
				}
				if err == io.EOF && r.off != int64(len(b)) {
					t.Fatalf("io.EOF at %d of %d", r.off, len(b))
				}
				return
			}
			if r.off != start+recHeaderSize+int64(len(p)) || r.off > int64(len(b)) {
				t.Fatalf("record at %d of %d bytes ends at %d, in %d", start, len(p), r.off, len(b))
			}
			if crc32.Checksum(p, castagnoli) != binary.LittleEndian.Uint32(b[start+4:]) {
				t.Fatalf("record at %d returned with a bad checksum", start)
			}
		}
	})
}

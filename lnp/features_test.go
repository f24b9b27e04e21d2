package lnp

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"math"
	"reflect"
	"testing"
	"time"
)

// TestFeatures: a HELLO of either version and a WELCOME carry features
// as a trailing field, and only when there are some, so that a peer from
// before features reads what it always did; one without reads as none.
func TestFeatures(t *testing.T) {
	h := Hello{User: "alice", Signature: sha256.Sum256([]byte("pw")), MaxBlock: 1 << 20}
	old := h.AppendBody(nil)
	h.Features = FeaturePutTime | 1<<7
	body := h.AppendBody(nil)
	if len(body) != len(old)+4 || string(body[:len(old)]) != string(old) || binary.BigEndian.Uint32(body[len(old):]) != 0x81 {
		t.Errorf("HELLO with features: %x, want the HELLO of before %x and then 00000081", body, old)
	}
	if got, err := ParseHello(body); err != nil || got != h {
		t.Errorf("HELLO with features: got %+v, %v; want %+v", got, err, h)
	}
	if got, err := ParseHello(old); err != nil || got.Features != 0 {
		t.Errorf("HELLO of before: got %+v, %v; want no features", got, err)
	}
	for n := 1; n < 4; n++ {
		if _, err := ParseHello(body[:len(old)+n]); !isProtocolError(err) {
			t.Errorf("HELLO with %d bytes of features: %v, want a protocol error", n, err)
		}
	}
	if _, err := ParseHello(append(body, 0)); !isProtocolError(err) {
		t.Errorf("HELLO with a byte after the features: %v", err)
	}

	for _, h2 := range []Hello2{
		{User: "bob", Method: MethodPassword, MaxBlock: 1 << 16, Features: FeaturePutTime},
		{User: "bob", Method: MethodDevice, MaxBlock: 1 << 16, Device: [16]byte{1, 2}, Features: FeaturePutTime},
		{User: "bob", Method: MethodDevice, MaxBlock: 1 << 16, Device: [16]byte{1, 2}},
	} {
		if got, err := ParseHello2(h2.AppendBody(nil)); err != nil || got != h2 {
			t.Errorf("HELLO v2: got %+v, %v; want %+v", got, err, h2)
		}
	}

	w := Welcome{Status: StatusOK, BlockSize: 1 << 20, Server: "larder"}
	old = w.AppendBody(nil)
	w.Features = FeaturePutTime
	if got, err := ParseWelcome(w.AppendBody(nil)); err != nil || got != w {
		t.Errorf("WELCOME with features: got %+v, %v", got, err)
	}
	if got, err := ParseWelcome(old); err != nil || got.Features != 0 {
		t.Errorf("WELCOME of before: got %+v, %v; want none granted", got, err)
	}
}

// TestPutModified: a PUT carries the time to the nanosecond when it has
// one, and is the PUT of before when it has none.
func TestPutModified(t *testing.T) {
	p := Put{Path: "a.txt", Size: 5, Overwrite: true}
	old := p.AppendBody(nil)
	p.Modified = time.Date(2001, 2, 3, 4, 5, 6, 7, time.UTC)
	body := p.AppendBody(nil)
	if len(body) != len(old)+8 {
		t.Fatalf("PUT with a time: %d bytes, want %d", len(body), len(old)+8)
	}
	got, err := ParseRequest(TypePut, body)
	if err != nil || !reflect.DeepEqual(got, p) {
		t.Errorf("PUT with a time: got %+v, %v; want %+v", got, err, p)
	}
	if got, err := ParseRequest(TypePut, old); err != nil || !got.(Put).Modified.IsZero() {
		t.Errorf("PUT of before: got %+v, %v; want no time", got, err)
	}
	for n := 1; n < 8; n++ {
		if _, err := ParseRequest(TypePut, body[:len(old)+n]); !isProtocolError(err) {
			t.Errorf("PUT with %d bytes of time: %v, want a protocol error", n, err)
		}
	}
	// A time before 1970 is carried as it is: the server judges it.
	p.Modified = time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)
	if got, err := ParseRequest(TypePut, p.AppendBody(nil)); err != nil || !got.(Put).Modified.Equal(p.Modified) {
		t.Errorf("PUT with a time in 1960: got %+v, %v", got, err)
	}
}

// TestPutModifiedOutOfRange: a time an int64 of nanoseconds cannot hold
// goes as the nearest it can, which no server keeps, never wrapped round
// to a time in range (2600 was sent as a day in 2015).
func TestPutModifiedOutOfRange(t *testing.T) {
	for _, c := range []struct {
		when time.Time
		want int64
	}{
		{time.Date(2600, 1, 1, 0, 0, 0, 0, time.UTC), math.MaxInt64},
		{time.Date(2555, 1, 1, 0, 0, 0, 0, time.UTC), math.MaxInt64},
		{time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC), math.MinInt64},
		{time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC), math.MinInt64},
	} {
		got, err := ParseRequest(TypePut, Put{Path: "a", Size: 1, Modified: c.when}.AppendBody(nil))
		if err != nil || !got.(Put).Modified.Equal(time.Unix(0, c.want)) {
			t.Errorf("PUT modified %v: got %+v, %v; want %v", c.when, got, err, time.Unix(0, c.want).UTC())
		}
		e := Entry{Name: "a", Modified: c.when}
		if got, err := ParseEntry(AppendEntry(nil, &e)); err != nil || !got.Modified.Equal(time.Unix(0, c.want)) {
			t.Errorf("entry modified %v: got %v, %v", c.when, got.Modified, err)
		}
	}
}

// TestDeleteRecursive: a recursive DELETE ends with `recursive u8` 1; one
// that is not is the DELETE of before, with no field, which a server from
// before features reads; a flag other than 1 (0 is sent as no field), or
// more bytes, is a protocol error. Its reply carries the counts.
func TestDeleteRecursive(t *testing.T) {
	d := Delete{Path: "a/b"}
	old := d.AppendBody(nil)
	if want := appendStr(nil, "a/b"); string(old) != string(want) {
		t.Errorf("DELETE: %x, want %x as before", old, want)
	}
	d.Recursive = true
	body := d.AppendBody(nil)
	if len(body) != len(old)+1 || body[len(old)] != 1 {
		t.Fatalf("recursive DELETE: %x, want the DELETE of before and then 01", body)
	}
	for _, c := range []struct {
		body []byte
		want Delete
	}{
		{old, Delete{Path: "a/b"}},
		{body, Delete{Path: "a/b", Recursive: true}},
	} {
		if got, err := ParseRequest(TypeDelete, c.body); err != nil || got != c.want {
			t.Errorf("DELETE %x: got %+v, %v; want %+v", c.body, got, err, c.want)
		}
	}
	for _, bad := range [][]byte{append(old, 0), append(old, 2), append(body, 0)} {
		if _, err := ParseRequest(TypeDelete, bad); !isProtocolError(err) {
			t.Errorf("DELETE %x: %v, want a protocol error", bad, err)
		}
	}
	for _, r := range []DeleteReply{{Files: 4817, Folders: 12, Bytes: 1 << 40}, {Files: 1, More: true}} {
		if got, err := ParseDeleteReply(r.AppendBody(nil)); err != nil || got != r {
			t.Errorf("DELETE reply: got %+v, %v; want %+v", got, err, r)
		}
	}
	if _, err := ParseDeleteReply(nil); !isProtocolError(err) {
		t.Errorf("an empty DELETE reply: %v, want a protocol error", err)
	}
}

// TestReplyReason: a REPLY that is not OK carries its reason as one
// trailing byte, and none at all for ReasonNone, which is the REPLY of
// before FeatureReasons, byte for byte; a reply without the byte (an
// older server's) reads as ReasonNone, and more bytes after a refusal's
// message are malformed. An OK reply's body is its own, never a reason.
func TestReplyReason(t *testing.T) {
	plain := Reply{Status: StatusConflict, Message: "it exists"}
	before := binary.BigEndian.AppendUint16(nil, uint16(StatusConflict))
	before = appendStr(before, "it exists")
	if got := plain.AppendBody(nil); !bytes.Equal(got, before) {
		t.Errorf("a REPLY with no reason: % x, want the REPLY of before, % x", got, before)
	}
	with := Reply{Status: StatusConflict, Message: "it is being removed", Reason: ReasonBeingRemoved}
	b := with.AppendBody(nil)
	if b[len(b)-1] != byte(ReasonBeingRemoved) {
		t.Errorf("a REPLY with a reason ends in % x, want the reason's byte", b[len(b)-2:])
	}
	for _, want := range []Reply{plain, with, {Status: StatusDenied, Reason: Reason(200)}} {
		got, err := ParseReply(want.AppendBody(nil))
		if err != nil || got.Status != want.Status || got.Message != want.Message || got.Reason != want.Reason || len(got.Body) != 0 {
			t.Errorf("ParseReply of %+v: got %+v, %v", want, got, err)
		}
	}
	if r, err := ParseReply(append(with.AppendBody(nil), 0)); err == nil {
		t.Errorf("a refusal with two bytes after its message: got %+v, want MALFORMED", r)
	}
	ok := Reply{Status: StatusOK, Body: []byte{1, 2, 3}, Reason: ReasonBeingRemoved}
	if got, err := ParseReply(ok.AppendBody(nil)); err != nil || !bytes.Equal(got.Body, ok.Body) || got.Reason != ReasonNone {
		t.Errorf("an OK reply: got %+v, %v; want its body alone", got, err)
	}
}

//go:build linux

package main

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/larderfs/larder/course"
)

func TestPercentile(t *testing.T) {
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	tests := []struct {
		sample []int
		p      float64
		want   int
	}{
		{hundred, 50, 50},
		{hundred, 99, 99},
		{hundred, 99.5, 100},
		{hundred, 100, 100},
		{hundred, 0, 1},
		{hundred, 1, 1},
		{[]int{7}, 99, 7},
		{[]int{1, 2, 3, 4}, 50, 2}, // nearest rank: ceil(0.5*4) = 2nd
		{[]int{1, 2, 3, 4}, 51, 3},
		{nil, 50, 0},
	}
	for _, tt := range tests {
		if got := percentile(tt.sample, tt.p); got != tt.want {
			t.Errorf("percentile(%d values, %v) = %d, want %d", len(tt.sample), tt.p, got, tt.want)
		}
	}
}

func TestMedian(t *testing.T) {
	xs := []float64{3, 1, 2}
	if got := median(xs); got != 2 {
		t.Errorf("median(3,1,2) = %v, want 2", got)
	}
	if xs[0] != 3 {
		t.Errorf("median sorted its input: %v", xs)
	}
	if got := median([]float64{4, 1, 3, 2}); got != 2.5 {
		t.Errorf("median(4,1,3,2) = %v, want 2.5", got)
	}
	if got := median(nil); !math.IsNaN(got) {
		t.Errorf("median() = %v, want NaN", got)
	}
}

func TestSummarize(t *testing.T) {
	lat := []time.Duration{5, 1, 4, 2, 3}
	s := summarize(lat)
	if s.n != 5 || s.p50 != 3 || s.p99 != 5 || s.max != 5 || s.mean != 3 {
		t.Errorf("summarize = %+v, want n=5 p50=3 p99=5 max=5 mean=3", s)
	}
}

// encodeReply builds a reply as larder does, blocks in the given order
// (nil: in order).
func encodeReply(t *testing.T, status course.Status, payload []byte, order func(uint32) uint32) []byte {
	t.Helper()
	var b bytes.Buffer
	w := course.NewWriter(&b)
	if _, err := w.WritePayload(status, bytes.NewReader(payload), int64(len(payload)), sha256.Sum256(payload), order); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	return b.Bytes()
}

func TestCheckFileReply(t *testing.T) {
	content := bytes.Repeat([]byte("0123456789abcdef"), 150) // 2400 bytes: 3 blocks
	f := fileSpec{Path: "f", Size: len(content), Sum: sha256.Sum256(content)}
	good := encodeReply(t, course.StatusOK, content, nil)
	if len(good) != f.replySize() {
		t.Fatalf("reply is %d bytes, replySize says %d", len(good), f.replySize())
	}
	reversed := encodeReply(t, course.StatusOK, content, func(i uint32) uint32 { return 2 - i })

	mutate := func(b []byte, off int) []byte {
		b = bytes.Clone(b)
		b[off] ^= 1
		return b
	}
	var msg bytes.Buffer
	mw := course.NewWriter(&msg)
	mw.WriteMessage(course.StatusInvalidLogin, "Signature hashes do not match for bob.")
	mw.Flush()
	other := bytes.Clone(content)
	other[0] ^= 1
	twice := append(bytes.Clone(good[:course.MaxMessageSize]), good...) // block 0 repeated

	tests := []struct {
		name  string
		reply []byte
		want  string // substring of the error; "" for none
	}{
		{"in order", good, ""},
		{"reversed", reversed, ""},
		{"payload byte flipped", mutate(good, course.BlockHeaderSize+5), "block hash"},
		{"total hash flipped", mutate(good, 50), "disagrees"},
		{"truncated", good[:len(good)-1], "block 2 cut short after 511 of 512 payload bytes"},
		{"header truncated", good[:course.BlockHeaderSize-1], "block header cut short after 79 of 80 bytes"},
		{"blocks missing", good[:course.MaxMessageSize], "ends after 1 of its 3 blocks"},
		{"trailing byte", append(bytes.Clone(good), 0), "follow the last"},
		{"empty", nil, "shorter than one block header"},
		{"block repeated", twice, "sent twice"},
		{"error status", msg.Bytes(), "INVALID_LOGIN"},
		{"other content", encodeReply(t, course.StatusOK, other, nil), "not the file's content"},
		{"shorter content", encodeReply(t, course.StatusOK, content[:2000], nil), "payload of 2000 bytes"},
	}
	for _, tt := range tests {
		err := checkFileReply(tt.reply, f, nil)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: got error %v, want none", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: got error %v, want one containing %q", tt.name, err, tt.want)
		}
	}
	var se *statusError
	if err := checkFileReply(msg.Bytes(), f, nil); !errors.As(err, &se) || se.status != course.StatusInvalidLogin {
		t.Errorf("error reply: got %v, want a *statusError with INVALID_LOGIN", err)
	}
}

func TestCheckFileReplyEmptyFile(t *testing.T) {
	f := fileSpec{Size: 0, Sum: sha256.Sum256(nil)}
	if err := checkFileReply(encodeReply(t, course.StatusOK, nil, nil), f, nil); err != nil {
		t.Errorf("empty file: %v", err)
	}
}

func TestParseStatCPU(t *testing.T) {
	// A command name with a space and a parenthesis, as /proc allows.
	stat := "1234 (lar der) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 100 0 0\n"
	got, err := parseStatCPU([]byte(stat))
	if err != nil || got != 3*time.Second {
		t.Errorf("parseStatCPU = %v, %v; want 3s (300 ticks)", got, err)
	}
}

func TestIntList(t *testing.T) {
	var l intList
	if err := l.Set("1, 16,64"); err != nil || l.String() != "1,16,64" {
		t.Errorf("Set(\"1, 16,64\") = %v, %v", l.String(), err)
	}
	for _, bad := range []string{"", "1,,2", "0", "x"} {
		if err := l.Set(bad); err == nil {
			t.Errorf("Set(%q) succeeded", bad)
		}
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{"5s": "5s", "1,16,64": "1,16,64", "a b": "'a b'", "it's": `'it'\''s'`, "": "''"} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestDurStr(t *testing.T) {
	for d, want := range map[time.Duration]string{
		77 * time.Nanosecond:     "77.0 ns",
		350 * time.Nanosecond:    "350 ns",
		1500 * time.Nanosecond:   "1.50 µs",
		24100 * time.Microsecond: "24.1 ms",
		113 * time.Millisecond:   "113 ms",
	} {
		if got := durStr(d); got != want {
			t.Errorf("durStr(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestBytesStr(t *testing.T) {
	for b, want := range map[float64]string{19.9e6: "19.9 MB", 192: "192 B", 0.026: "0.026 B"} {
		if got := bytesStr(b); got != want {
			t.Errorf("bytesStr(%v) = %q, want %q", b, got, want)
		}
	}
}

func TestCount(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 384: "384", 2.5: "2", math.NaN(): "–"} {
		if got := fmtCount(v); got != want {
			t.Errorf("fmtCount(%v) = %q, want %q", v, got, want)
		}
	}
}

// FuzzDecodeReply: whatever the bytes, decodeReply does not panic, and a
// reply it accepts reassembles to a payload whose SHA-256 is the total
// hash, of the size its last block says.
func FuzzDecodeReply(f *testing.F) {
	content := bytes.Repeat([]byte("0123456789abcdef"), 150)
	f.Add(encodeReplyFuzz(content, nil))
	f.Add(encodeReplyFuzz(content, func(i uint32) uint32 { return 2 - i }))
	f.Add(encodeReplyFuzz(nil, nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeReply(b, nil)
		if err != nil {
			return
		}
		if sha256.Sum256(r.payload) != r.total {
			t.Fatalf("accepted a reply whose payload does not match its total hash")
		}
		if n, _ := course.BlockCount(int64(len(r.payload))); int(n)*course.BlockHeaderSize+len(r.payload) != len(b) {
			t.Fatalf("accepted %d bytes for a payload of %d in %d blocks", len(b), len(r.payload), n)
		}
	})
}

// encodeReplyFuzz is encodeReply for a fuzz target's seeds.
func encodeReplyFuzz(payload []byte, order func(uint32) uint32) []byte {
	var b bytes.Buffer
	w := course.NewWriter(&b)
	if _, err := w.WritePayload(course.StatusOK, bytes.NewReader(payload), int64(len(payload)), sha256.Sum256(payload), order); err != nil {
		panic(err)
	}
	w.Flush()
	return b.Bytes()
}

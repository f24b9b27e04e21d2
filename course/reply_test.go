package course

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

func TestBlockCount(t *testing.T) {
	tests := []struct {
		size int64
		want uint32
	}{
		{0, 1}, {1, 1}, {943, 1}, {944, 1}, {945, 2}, {944 * 64, 64}, {944*64 + 1, 65},
		{944 * (1<<32 - 1), 1<<32 - 1},
	}
	for _, tt := range tests {
		got, err := BlockCount(tt.size)
		if err != nil || got != tt.want {
			t.Errorf("BlockCount(%d) = %d, %v; want %d", tt.size, got, err, tt.want)
		}
	}
	for _, size := range []int64{-1, 944*(1<<32-1) + 1} {
		if _, err := BlockCount(size); err == nil {
			t.Errorf("BlockCount(%d) succeeded; want an error", size)
		}
	}
}

// readReply reads every block of a reply and reassembles the payload,
// checking what a careful client checks.
func readReply(t *testing.T, r io.Reader) (Status, []byte) {
	t.Helper()
	br := NewBlockReader(r)
	var (
		status Status
		count  uint32
		total  [32]byte
		seen   = map[uint32]bool{}
		out    []byte
	)
	for {
		h, p, err := br.ReadBlock()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("ReadBlock: %v", err)
		}
		if len(seen) == 0 {
			status, count, total = h.Status, h.Count, h.TotalHash
		}
		if h.Status != status || h.Count != count || h.TotalHash != total {
			t.Fatalf("block %d disagrees with the first block: %+v", h.Index, h)
		}
		if h.Index >= count || seen[h.Index] {
			t.Fatalf("block index %d repeated or not below count %d", h.Index, count)
		}
		if sha256.Sum256(p) != h.BlockHash {
			t.Fatalf("block %d: hash mismatch", h.Index)
		}
		if h.Index+1 < count && len(p) != MaxBlockPayload {
			t.Fatalf("block %d of %d carries %d bytes; only the last may be short", h.Index, count, len(p))
		}
		seen[h.Index] = true
		end := int(h.Index)*MaxBlockPayload + len(p)
		if end > len(out) {
			out = append(out, make([]byte, end-len(out))...)
		}
		copy(out[int(h.Index)*MaxBlockPayload:], p)
	}
	if uint32(len(seen)) != count {
		t.Fatalf("got %d blocks, want %d", len(seen), count)
	}
	if sha256.Sum256(out) != total {
		t.Fatal("total hash mismatch")
	}
	return status, out
}

func TestWritePayloadRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, size := range []int{0, 1, 943, 944, 945, 944 * 64, 944*64 + 1, 944*200 + 17} {
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		total := sha256.Sum256(data)
		for _, shuffled := range []bool{false, true} {
			var order func(uint32) uint32
			if shuffled {
				count, _ := BlockCount(int64(size))
				perm := rng.Perm(int(count))
				order = func(i uint32) uint32 { return uint32(perm[i]) }
			}
			var b bytes.Buffer
			w := NewWriter(&b)
			n, err := w.WritePayload(StatusOK, bytes.NewReader(data), int64(size), total, order)
			if err != nil || n != int64(size) {
				t.Fatalf("size %d: WritePayload = %d, %v", size, n, err)
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			count, _ := BlockCount(int64(size))
			if want := int(count)*BlockHeaderSize + size; b.Len() != want {
				t.Fatalf("size %d: wrote %d bytes, want %d", size, b.Len(), want)
			}
			status, got := readReply(t, iotest.HalfReader(&b))
			if status != StatusOK || !bytes.Equal(got, data) {
				t.Fatalf("size %d shuffled=%v: payload differs after the round trip", size, shuffled)
			}
		}
	}
}

// TestWritePayloadSums: with the blocks' hashes given, the reply is the
// very bytes WritePayload sends, in order or not; the hashes given are the
// ones sent, unchecked (a wrong one reaches the client); and a count that
// does not match the blocks is refused before anything is written.
func TestWritePayloadSums(t *testing.T) {
	data := make([]byte, 944*70+5)
	for i := range data {
		data[i] = byte(i * 13)
	}
	total := sha256.Sum256(data)
	count, _ := BlockCount(int64(len(data)))
	sums := make([][32]byte, count)
	for i := range sums {
		sums[i] = sha256.Sum256(data[i*944 : min(len(data), (i+1)*944)])
	}
	reverse := func(i uint32) uint32 { return count - 1 - i }
	for _, order := range []func(uint32) uint32{nil, reverse} {
		var want, got bytes.Buffer
		w := NewWriter(&want)
		if _, err := w.WritePayload(StatusOK, bytes.NewReader(data), int64(len(data)), total, order); err != nil {
			t.Fatal(err)
		}
		w.Flush()
		w = NewWriter(&got)
		if n, err := w.WritePayloadSums(StatusOK, bytes.NewReader(data), int64(len(data)), total, sums, order); err != nil || n != int64(len(data)) {
			t.Fatalf("WritePayloadSums = %d, %v", n, err)
		}
		w.Flush()
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Fatalf("in order %v: the reply differs from WritePayload's", order == nil)
		}
	}

	wrong := slices.Clone(sums)
	wrong[3] = [32]byte{0xba, 0xd}
	var b bytes.Buffer
	w := NewWriter(&b)
	if _, err := w.WritePayloadSums(StatusOK, bytes.NewReader(data), int64(len(data)), total, wrong, nil); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	if h := parseBlockHeader(b.Bytes()[3*(BlockHeaderSize+944):]); h.Index != 3 || h.BlockHash != wrong[3] {
		t.Fatalf("block %d went out with %x, want block 3 with the hash given", h.Index, h.BlockHash)
	}

	b.Reset()
	if _, err := w.WritePayloadSums(StatusOK, bytes.NewReader(data), int64(len(data)), total, sums[1:], nil); err == nil || b.Len() != 0 {
		t.Fatalf("one hash short: %v, %d bytes written; want an error and nothing", err, b.Len())
	}
}

func TestWritePayloadSourceShrank(t *testing.T) {
	var b bytes.Buffer
	w := NewWriter(&b)
	_, err := w.WritePayload(StatusOK, strings.NewReader("short"), 2000, [32]byte{}, nil)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("got %v, want io.ErrUnexpectedEOF when the source is shorter than size", err)
	}
}

func TestWriteMessage(t *testing.T) {
	for _, msg := range []string{"", "New user alice registered.", strings.Repeat("é", 1000)} {
		var b bytes.Buffer
		w := NewWriter(&b)
		if err := w.WriteMessage(StatusBadRequest, msg); err != nil {
			t.Fatal(err)
		}
		w.Flush()
		status, got := readReply(t, &b)
		if status != StatusBadRequest || string(got) != msg {
			t.Fatalf("got %v %q, want %v %q", status, got, StatusBadRequest, msg)
		}
	}
}

func TestReadBlockErrors(t *testing.T) {
	var ok bytes.Buffer
	w := NewWriter(&ok)
	w.WriteMessage(StatusOK, "hello")
	w.Flush()
	good := ok.Bytes()

	oversize := bytes.Clone(good)
	oversize[2], oversize[3] = 0x03, 0xb1 // length 945

	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"header cut short", good[:40], "block header cut short after 40 of 80"},
		{"payload cut short", good[:BlockHeaderSize+2], "cut short after 2 of 5 payload bytes"},
		{"length above 944", oversize, "declares 945 payload bytes"},
	}
	for _, tt := range tests {
		_, _, err := NewBlockReader(bytes.NewReader(tt.in)).ReadBlock()
		var pe *ProtocolError
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want a ProtocolError containing %q", tt.name, err, tt.want)
		}
	}
}

// TestCutBlock: CutBlock takes a reply in memory apart block by block, as
// ReadBlock does from a stream, and refuses what ReadBlock refuses with the
// same errors.
func TestCutBlock(t *testing.T) {
	var ok bytes.Buffer
	w := NewWriter(&ok)
	data := bytes.Repeat([]byte("0123456789"), 100) // two blocks: 944 and 56 bytes
	if _, err := w.WritePayload(StatusOK, bytes.NewReader(data), int64(len(data)), sha256.Sum256(data), nil); err != nil {
		t.Fatal(err)
	}
	must(t, w.Flush())
	good := ok.Bytes()

	var got []byte
	rest := good
	for i := uint32(0); ; i++ {
		h, p, r, err := CutBlock(rest)
		if err == io.EOF {
			if i != 2 {
				t.Fatalf("io.EOF after %d blocks, want 2", i)
			}
			break
		}
		if err != nil {
			t.Fatalf("block %d: %v", i, err)
		}
		if h.Index != i || h.Count != 2 || h.Status != StatusOK || int(h.Length) != len(p) ||
			h.BlockHash != sha256.Sum256(p) || h.TotalHash != sha256.Sum256(data) {
			t.Fatalf("block %d: header %+v does not describe its payload of %d bytes", i, h, len(p))
		}
		if len(r) != len(rest)-BlockHeaderSize-len(p) {
			t.Fatalf("block %d: %d bytes left, want %d", i, len(r), len(rest)-BlockHeaderSize-len(p))
		}
		got = append(got, p...)
		rest = r
	}
	if !bytes.Equal(got, data) {
		t.Errorf("payload of %d bytes reassembled, want the %d written", len(got), len(data))
	}

	oversize := bytes.Clone(good)
	oversize[2], oversize[3] = 0x03, 0xb1 // length 945
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"header cut short", good[:40], "block header cut short after 40 of 80"},
		{"payload cut short", good[:BlockHeaderSize+2], "cut short after 2 of 944 payload bytes"},
		{"length above 944", oversize, "declares 945 payload bytes"},
	}
	for _, tt := range tests {
		_, _, _, err := CutBlock(tt.in)
		var pe *ProtocolError
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want a ProtocolError containing %q", tt.name, err, tt.want)
		}
		_, _, rerr := NewBlockReader(bytes.NewReader(tt.in)).ReadBlock()
		if rerr == nil || err == nil || rerr.Error() != err.Error() {
			t.Errorf("%s: CutBlock says %v, ReadBlock %v; want the same error", tt.name, err, rerr)
		}
	}
}

func TestStatusString(t *testing.T) {
	if StatusMalformed.String() != "MALFORMED" || Status(42).String() != "STATUS(42)" {
		t.Fatalf("got %q and %q", StatusMalformed, Status(42))
	}
	if Status(0).Valid() || !StatusOK.Valid() || Status(8).Valid() {
		t.Fatal("Valid disagrees with the seven codes")
	}
}

// writeLog records every Write a Writer makes to its destination.
type writeLog struct {
	writes [][]byte
	fail   error // returned by every Write once set
}

func (l *writeLog) Write(p []byte) (int, error) {
	if l.fail != nil {
		return 0, l.fail
	}
	l.writes = append(l.writes, bytes.Clone(p))
	return len(p), nil
}

// wholeBlocks returns how many blocks p holds, or -1 if it ends inside
// one.
func wholeBlocks(p []byte) int {
	n := 0
	for len(p) > 0 {
		if len(p) < BlockHeaderSize {
			return -1
		}
		size := BlockHeaderSize + int(parseBlockHeader(p).Length)
		if len(p) < size {
			return -1
		}
		p, n = p[size:], n+1
	}
	return n
}

// TestWriterWritesWholeBlocks: every Write a Writer makes holds whole
// blocks, at most the number set, even when a short block is sent in the
// middle of a shuffled reply (a buffer that wrote whenever it was full cut
// the blocks after it in two). A server keeps blocks whole on the wire on
// top of this.
func TestWriterWritesWholeBlocks(t *testing.T) {
	data := make([]byte, 944*150+100)
	for i := range data {
		data[i] = byte(i * 7)
	}
	total := sha256.Sum256(data)
	count, _ := BlockCount(int64(len(data)))
	shortFirst := func(i uint32) uint32 { return (i + count - 1) % count } // the short block first
	for _, perWrite := range []int{0, 1, 3, 64} {
		for _, order := range []func(uint32) uint32{nil, shortFirst} {
			var dst writeLog
			w := NewWriter(&dst)
			if perWrite > 0 {
				w.SetBlocksPerWrite(perWrite)
			}
			if _, err := w.WritePayload(StatusOK, bytes.NewReader(data), int64(len(data)), total, order); err != nil {
				t.Fatal(err)
			}
			must(t, w.Flush())
			most := cmpInt(perWrite, 64)
			blocks := 0
			for i, p := range dst.writes {
				n := wholeBlocks(p)
				if n < 1 || n > most {
					t.Fatalf("%d per write, order %v: write %d of %d bytes holds %d whole blocks; want 1 to %d",
						perWrite, order != nil, i, len(p), n, most)
				}
				blocks += n
			}
			if blocks != int(count) {
				t.Errorf("%d per write: %d blocks written, want %d", perWrite, blocks, count)
			}
			_, got := readReply(t, bytes.NewReader(bytes.Join(dst.writes, nil)))
			if !bytes.Equal(got, data) {
				t.Errorf("%d per write: payload differs after the round trip", perWrite)
			}
		}
	}
}

func cmpInt(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestWriterBeforeLast: the function set with SetBeforeLast runs once,
// when every block but the last one sent has reached the destination and
// the last has not; its error withholds the last block; the next reply
// runs no function.
func TestWriterBeforeLast(t *testing.T) {
	for _, size := range []int{0, 1, 944, 945, 944*64 + 1, 944 * 200} {
		data := bytes.Repeat([]byte{'x'}, size)
		total := sha256.Sum256(data)
		count, _ := BlockCount(int64(size))
		reverse := func(i uint32) uint32 { return count - 1 - i }
		for _, order := range []func(uint32) uint32{nil, reverse} {
			var dst writeLog
			w := NewWriter(&dst)
			calls := 0
			w.SetBeforeLast(func() error {
				calls++
				if got := wholeBlocks(bytes.Join(dst.writes, nil)); got != int(count)-1 {
					t.Errorf("size %d: %d blocks written before the last, want %d", size, got, count-1)
				}
				return nil
			})
			if _, err := w.WritePayload(StatusOK, bytes.NewReader(data), int64(size), total, order); err != nil {
				t.Fatal(err)
			}
			must(t, w.Flush())
			if calls != 1 || wholeBlocks(bytes.Join(dst.writes, nil)) != int(count) {
				t.Errorf("size %d: %d calls, want 1, and every block written", size, calls)
			}

			// Refused: the last block stays unwritten.
			dst = writeLog{}
			w.Reset(&dst)
			refusal := errors.New("not recorded")
			w.SetBeforeLast(func() error { return refusal })
			if _, err := w.WritePayload(StatusOK, bytes.NewReader(data), int64(size), total, order); !errors.Is(err, refusal) {
				t.Errorf("size %d: got %v, want the function's error", size, err)
			}
			w.Flush()
			if got := wholeBlocks(bytes.Join(dst.writes, nil)); got != int(count)-1 {
				t.Errorf("size %d: %d blocks written after a refusal, want %d", size, got, count-1)
			}

			// Used once: the next reply calls nothing.
			dst = writeLog{}
			w.Reset(&dst)
			calls = 0
			w.SetBeforeLast(func() error { calls++; return nil })
			for range 2 {
				if _, err := w.WritePayload(StatusOK, bytes.NewReader(data), int64(size), total, order); err != nil {
					t.Fatal(err)
				}
			}
			if calls != 1 {
				t.Errorf("size %d: %d calls over two replies, want 1", size, calls)
			}
		}
	}
}

package xfer

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"hash"
	"io"
	"math/rand/v2"
	"testing"
	"time"
)

func randomBytes(n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{7})
	r.Read(b)
	return b
}

func TestReaderBlocks(t *testing.T) {
	data := randomBytes(10*1000 + 123)
	for _, tc := range []struct {
		name       string
		off, end   int64
		block      int
		wantBlocks int
	}{
		{"whole", 0, int64(len(data)), 1000, 11},
		{"from an offset", 2500, int64(len(data)), 1000, 8},
		{"one short block", 0, 10, 1000, 1},
		{"nothing", int64(len(data)), int64(len(data)), 1000, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			whole := sha256.New()
			r := NewReader(bytes.NewReader(data), tc.off, tc.end, ReadOptions{BlockSize: tc.block, Whole: whole})
			defer r.Close()
			var got []byte
			blocks := 0
			for {
				b, err := r.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if want := tc.off + int64(len(got)); b.Offset != want {
					t.Fatalf("block at %d, want %d", b.Offset, want)
				}
				if b.SHA256 != sha256.Sum256(b.Data) {
					t.Fatalf("block at %d: wrong SHA-256", b.Offset)
				}
				got = append(got, b.Data...)
				blocks++
				r.Release(b)
			}
			if !bytes.Equal(got, data[tc.off:tc.end]) {
				t.Fatalf("got %d bytes that differ from the source's %d", len(got), tc.end-tc.off)
			}
			if blocks != tc.wantBlocks {
				t.Errorf("got %d blocks, want %d", blocks, tc.wantBlocks)
			}
			if sum := [32]byte(whole.Sum(nil)); sum != sha256.Sum256(data[tc.off:tc.end]) {
				t.Error("the whole hash differs from the bytes read")
			}
			if _, err := r.Next(); err != io.EOF {
				t.Errorf("Next after the end: %v, want io.EOF", err)
			}
		})
	}
}

func TestReaderShortSource(t *testing.T) {
	data := randomBytes(2500)
	r := NewReader(bytes.NewReader(data), 0, 4000, ReadOptions{BlockSize: 1000})
	defer r.Close()
	n := 0
	for {
		b, err := r.Next()
		var short *ShortError
		if errors.As(err, &short) {
			if short.At != 2500 || n != 2 {
				t.Fatalf("ended at %d after %d blocks, want 2500 after 2", short.At, n)
			}
			return
		}
		if err != nil {
			t.Fatalf("got %v, want a ShortError", err)
		}
		n++
		r.Release(b)
	}
}

type failingReaderAt struct{ err error }

func (f failingReaderAt) ReadAt(p []byte, off int64) (int, error) { return 0, f.err }

func TestReaderError(t *testing.T) {
	boom := errors.New("boom")
	r := NewReader(failingReaderAt{boom}, 0, 100, ReadOptions{BlockSize: 10})
	defer r.Close()
	if _, err := r.Next(); err != boom {
		t.Fatalf("got %v, want %v", err, boom)
	}
}

// A Reader closed while its goroutines wait on a consumer that never
// comes back must not leak them: Close returns only once they end.
func TestReaderCloseEarly(t *testing.T) {
	r := NewReader(bytes.NewReader(randomBytes(100000)), 0, 100000, ReadOptions{BlockSize: 100, Depth: 2})
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	r.Close()
}

// chunkRecorder records each Write's size.
type chunkRecorder struct {
	bytes.Buffer
	sizes []int
	fail  error
}

func (c *chunkRecorder) Write(p []byte) (int, error) {
	if c.fail != nil {
		return 0, c.fail
	}
	c.sizes = append(c.sizes, len(p))
	return c.Buffer.Write(p)
}

func TestWriter(t *testing.T) {
	data := randomBytes(3*ChunkSize + 1000)
	var dst chunkRecorder
	whole := sha256.New()
	w := NewWriter(&dst, WriteOptions{Whole: whole, Depth: 2, Verify: true})
	const block = ChunkSize*2 + 10
	made := 0
	for off := 0; off < len(data); off += block {
		buf, err := w.Buffer()
		if err != nil {
			t.Fatal(err)
		}
		if buf == nil {
			made++
			buf = make([]byte, block)
		}
		n := copy(buf, data[off:])
		w.Write(buf, int64(off), buf[:n], sha256.Sum256(buf[:n]))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dst.Bytes(), data) {
		t.Fatal("the destination differs from the blocks written")
	}
	for _, n := range dst.sizes {
		if n > ChunkSize {
			t.Errorf("a write of %d bytes; the most is %d", n, ChunkSize)
		}
	}
	if sum := [32]byte(whole.Sum(nil)); sum != sha256.Sum256(data) {
		t.Error("the whole hash differs from the bytes written")
	}
	if made > 2 {
		t.Errorf("the caller made %d buffers for a Writer of depth 2", made)
	}
}

func TestWriterError(t *testing.T) {
	boom := errors.New("disk full")
	w := NewWriter(&chunkRecorder{fail: boom}, WriteOptions{Depth: 2})
	var err error
	for i := 0; i < 10 && err == nil; i++ {
		var buf []byte
		buf, err = w.Buffer()
		if err == nil {
			w.Write(buf, int64(5*i), []byte("block"), [32]byte{})
		}
	}
	if err != boom {
		t.Errorf("Buffer: got %v, want %v", err, boom)
	}
	if err := w.Close(); err != boom {
		t.Errorf("Close: got %v, want %v", err, boom)
	}
	if err := w.Close(); err != boom {
		t.Errorf("Close again: got %v, want %v", err, boom)
	}
}

func TestReaderUnhashed(t *testing.T) {
	data := randomBytes(5000)
	r := NewReader(bytes.NewReader(data), 0, 5000, ReadOptions{BlockSize: 1000, Unhashed: true})
	defer r.Close()
	var got []byte
	for {
		b, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if b.SHA256 != ([32]byte{}) {
			t.Fatalf("block at %d: hashed, want its SHA256 left zero", b.Offset)
		}
		got = append(got, b.Data...)
		r.Release(b)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("the blocks differ from the source")
	}
}

// A block that does not match its sum is not written, nor anything
// after it, and every block before it is.
func TestWriterVerify(t *testing.T) {
	data := randomBytes(10 * 100)
	var dst chunkRecorder
	w := NewWriter(&dst, WriteOptions{Verify: true})
	var err error
	for off := 0; off < len(data) && err == nil; off += 100 {
		var buf []byte
		if buf, err = w.Buffer(); err != nil {
			break
		}
		buf = append(buf[:0], data[off:off+100]...)
		sum := sha256.Sum256(buf)
		if off == 400 {
			sum[0] ^= 1
		}
		w.Write(buf, int64(off), buf, sum)
	}
	var bad *MismatchError
	if err := w.Close(); !errors.As(err, &bad) || bad.Offset != 400 {
		t.Fatalf("Close: got %v, want a MismatchError at offset 400", err)
	}
	if !bytes.Equal(dst.Bytes(), data[:400]) {
		t.Errorf("written: %d bytes, want the 400 before the bad block", dst.Len())
	}
}

// gateHash is a SHA-256 whose first Write waits until gate is closed.
type gateHash struct {
	hash.Hash
	gate   chan struct{}
	waited bool
}

func (h *gateHash) Write(p []byte) (int, error) {
	if !h.waited {
		h.waited = true
		<-h.gate
	}
	return h.Hash.Write(p)
}

// signalWriter tells of each Write on wrote.
type signalWriter struct {
	bytes.Buffer
	wrote chan int
}

func (w *signalWriter) Write(p []byte) (int, error) {
	n, _ := w.Buffer.Write(p)
	w.wrote <- n
	return n, nil
}

// TestWriterHashBehind checks that the whole file's hash does not hold up
// the writing: while the first block's hash waits, the next block is
// written.
func TestWriterHashBehind(t *testing.T) {
	const block = 1000
	data := randomBytes(2 * block)
	whole := &gateHash{Hash: sha256.New(), gate: make(chan struct{})}
	dst := &signalWriter{wrote: make(chan int, 16)}
	w := NewWriter(dst, WriteOptions{Whole: whole, Depth: 3})
	for i := range 2 {
		buf, err := w.Buffer()
		if err != nil {
			t.Fatal(err)
		}
		buf = append(buf[:0], data[i*block:(i+1)*block]...)
		w.Write(buf, int64(i*block), buf, [32]byte{})
	}
	for i := range 2 {
		select {
		case <-dst.wrote:
		case <-time.After(5 * time.Second):
			close(whole.gate)
			w.Close()
			t.Fatalf("block %d was not written while the first block's hash waited", i)
		}
	}
	close(whole.gate)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if [32]byte(whole.Sum(nil)) != sha256.Sum256(data[:2*block]) || !bytes.Equal(dst.Bytes(), data[:2*block]) {
		t.Fatal("the bytes written, or the whole hash, are not the blocks'")
	}
}

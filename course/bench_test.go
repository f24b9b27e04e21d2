package course_test

import (
	"bytes"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/course"
)

// benchRequest is a typical retrieval: a name, a signature and a short path.
var benchRequest = course.Request{
	Username:  "alice",
	Signature: larder.NewSignature("correct horse battery staple", course.CourseSalt),
	Body:      []byte("dir/report-2026.pdf"),
}

func benchPayload(n int) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{1}).Read(b)
	return b
}

// BenchmarkRequest measures a request's codec: AppendBinary into a reused
// buffer, as the client sends it, and ReadRequest, as the server reads it.
func BenchmarkRequest(b *testing.B) {
	b.Run("encode", func(b *testing.B) {
		buf := make([]byte, 0, course.MaxMessageSize)
		b.ReportAllocs()
		b.SetBytes(int64(course.RequestHeaderSize + len(benchRequest.Body)))
		for b.Loop() {
			var err error
			if buf, err = benchRequest.AppendBinary(buf[:0]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode", func(b *testing.B) {
		enc, err := benchRequest.AppendBinary(nil)
		if err != nil {
			b.Fatal(err)
		}
		src := bytes.NewReader(enc)
		b.ReportAllocs()
		b.SetBytes(int64(len(enc)))
		for b.Loop() {
			src.Reset(enc)
			req, err := course.ReadRequest(src)
			if err != nil {
				b.Fatal(err)
			}
			if req.Username != benchRequest.Username {
				b.Fatalf("got user %q, want %q", req.Username, benchRequest.Username)
			}
		}
	})
}

// BenchmarkBlock measures one full 944-byte block of a reply: WriteBlock
// (which hashes the payload) through the Writer's buffer to io.Discard, and
// ReadBlock from a stream of such blocks through the BlockReader's buffer.
func BenchmarkBlock(b *testing.B) {
	payload := benchPayload(course.MaxBlockPayload)
	b.Run("encode", func(b *testing.B) {
		w := course.NewWriter(io.Discard)
		h := course.BlockHeader{Status: course.StatusOK, Count: 1 << 20, TotalHash: sha256.Sum256(payload)}
		b.ReportAllocs()
		b.SetBytes(course.MaxBlockPayload)
		for b.Loop() {
			if err := w.WriteBlock(&h, payload); err != nil {
				b.Fatal(err)
			}
			h.Index++
		}
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
	})
	b.Run("decode", func(b *testing.B) {
		// 64 blocks, as many as the BlockReader's buffer holds, read
		// over and over: each refill of the buffer is one Read.
		var enc bytes.Buffer
		w := course.NewWriter(&enc)
		h := course.BlockHeader{Status: course.StatusOK, Count: 64}
		for h.Index = range 64 {
			if err := w.WriteBlock(&h, payload); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
		r := course.NewBlockReader(&endless{b: enc.Bytes()})
		b.ReportAllocs()
		b.SetBytes(course.MaxBlockPayload)
		for b.Loop() {
			h, p, err := r.ReadBlock()
			if err != nil {
				b.Fatal(err)
			}
			if len(p) != course.MaxBlockPayload || h.Status != course.StatusOK {
				b.Fatalf("got a block of %d bytes with status %v, want %d with %v", len(p), h.Status, course.MaxBlockPayload, course.StatusOK)
			}
		}
	})
}

// BenchmarkWritePayload measures the server's side of a 1 MiB reply:
// reading the file 64 blocks at a time, hashing and framing each block;
// and, as "sums", framing them with their hashes known beforehand, as a
// large file's reply does from the second on.
func BenchmarkWritePayload(b *testing.B) {
	const size = 1 << 20
	payload := benchPayload(size)
	total := sha256.Sum256(payload)
	var sums [][32]byte
	for p := payload; len(p) > 0; p = p[min(len(p), course.MaxBlockPayload):] {
		sums = append(sums, sha256.Sum256(p[:min(len(p), course.MaxBlockPayload)]))
	}
	for _, bc := range []struct {
		name string
		sums [][32]byte
	}{{"hashed", nil}, {"sums", sums}} {
		b.Run(bc.name, func(b *testing.B) {
			src := bytes.NewReader(payload)
			w := course.NewWriter(io.Discard)
			b.ReportAllocs()
			b.SetBytes(size)
			for b.Loop() {
				n, err := w.WritePayloadSums(course.StatusOK, src, size, total, bc.sums, nil)
				if err != nil || n != size {
					b.Fatalf("WritePayloadSums: got %d, %v; want %d, nil", n, err, size)
				}
				if err := w.Flush(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// endless reads b over and over, as a connection that never runs dry.
type endless struct {
	b   []byte
	off int
}

func (e *endless) Read(p []byte) (int, error) {
	n := copy(p, e.b[e.off:])
	e.off = (e.off + n) % len(e.b)
	return n, nil
}

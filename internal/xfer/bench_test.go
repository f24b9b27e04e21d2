package xfer_test

import (
	"bytes"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/larderfs/larder/course"
	"github.com/larderfs/larder/internal/xfer"
	"github.com/larderfs/larder/lnp"
)

// A transfer of benchFile bytes in blocks of benchBlock, LNP/1's default.
const (
	benchFile  = 64 << 20
	benchBlock = lnp.DefaultBlockSize
)

func benchBytes(n int) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{3}).Read(b)
	return b
}

// BenchmarkSHA256 measures hashing one block of each protocol: a full
// course block (944 bytes, course.MaxBlockPayload) and a default native
// block (1 MiB), what every block sent or received costs.
func BenchmarkSHA256(b *testing.B) {
	for _, tc := range []struct {
		name string
		size int
	}{
		{"course-944B", course.MaxBlockPayload},
		{"native-1MiB", lnp.DefaultBlockSize},
	} {
		b.Run(tc.name, func(b *testing.B) {
			p := benchBytes(tc.size)
			var sum [32]byte
			b.ReportAllocs()
			b.SetBytes(int64(tc.size))
			for b.Loop() {
				sum = sha256.Sum256(p)
			}
			if sum == ([32]byte{}) {
				b.Fatal("zero hash")
			}
		})
	}
}

// BenchmarkReader reads a 64 MiB source in 1 MiB blocks through a new
// Reader each time, as a download does: "hashed" computes each block's
// SHA-256 on the Reader's second goroutine, "unhashed" is a file whose
// block sums are known. Each op is one whole file; its allocations
// include the Reader's goroutines, channels and Depth buffers.
func BenchmarkReader(b *testing.B) {
	data := benchBytes(benchFile)
	for _, tc := range []struct {
		name     string
		unhashed bool
	}{
		{"hashed", false},
		{"unhashed", true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			src := bytes.NewReader(data)
			b.ReportAllocs()
			b.SetBytes(benchFile)
			for b.Loop() {
				r := xfer.NewReader(src, 0, benchFile, xfer.ReadOptions{BlockSize: benchBlock, Unhashed: tc.unhashed})
				var n int64
				for {
					blk, err := r.Next()
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					n += int64(len(blk.Data))
					r.Release(blk)
				}
				r.Close()
				if n != benchFile {
					b.Fatalf("read %d bytes, want %d", n, benchFile)
				}
			}
		})
	}
}

// BenchmarkWriter writes a 64 MiB file in 1 MiB blocks through a new
// Writer each time, to io.Discard, as an upload is written: each block's
// SHA-256 checked, and the whole file hashed. The producer takes its
// buffers from Buffer and fills each with a copy of the block, as a
// network read would.
func BenchmarkWriter(b *testing.B) {
	data := benchBytes(benchFile)
	sums := make([][32]byte, benchFile/benchBlock)
	for i := range sums {
		sums[i] = sha256.Sum256(data[i*benchBlock : (i+1)*benchBlock])
	}
	want := sha256.Sum256(data)
	b.ReportAllocs()
	b.SetBytes(benchFile)
	for b.Loop() {
		whole := sha256.New()
		w := xfer.NewWriter(io.Discard, xfer.WriteOptions{Verify: true, Whole: whole})
		for i, sum := range sums {
			buf, err := w.Buffer()
			if err != nil {
				b.Fatal(err)
			}
			if buf == nil {
				buf = make([]byte, benchBlock)
			}
			off := i * benchBlock
			n := copy(buf, data[off:off+benchBlock])
			w.Write(buf, int64(off), buf[:n], sum)
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		if [32]byte(whole.Sum(nil)) != want {
			b.Fatal("the whole hash differs from the bytes written")
		}
	}
}

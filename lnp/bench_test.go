package lnp_test

import (
	"bytes"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/larderfs/larder/lnp"
)

// benchData returns a DATA frame's body with a payload of n bytes, and
// its head and payload apart.
func benchData(n int) (body, head, payload []byte) {
	payload = make([]byte, n)
	rand.NewChaCha8([32]byte{2}).Read(payload)
	d := lnp.Data{Offset: 7 << 20, SHA256: sha256.Sum256(payload)}
	head = d.AppendHead(nil)
	return append(head[:len(head):len(head)], payload...), head, payload
}

// BenchmarkReaderNext measures reading one DATA frame of a full default
// block (1 MiB) into the Reader's buffer, which it reuses: the steady
// state must not allocate.
func BenchmarkReaderNext(b *testing.B) {
	body, _, _ := benchData(lnp.DefaultBlockSize)
	var frame bytes.Buffer
	w := lnp.NewWriter(&frame, 0)
	if err := w.WriteFrame(lnp.TypeData, body); err != nil {
		b.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	enc := frame.Bytes()
	src := bytes.NewReader(enc)
	r := lnp.NewReader(src)
	b.ReportAllocs()
	b.SetBytes(int64(len(enc)))
	for b.Loop() {
		src.Reset(enc)
		t, got, err := r.Next()
		if err != nil {
			b.Fatal(err)
		}
		if t != lnp.TypeData || len(got) != len(body) {
			b.Fatalf("got a %v frame of %d bytes, want DATA of %d", t, len(got), len(body))
		}
	}
}

// BenchmarkWriteFrameParts measures writing one DATA frame of 1 MiB as the
// server sends a block: its head and the payload apart, through a Writer
// of the server's buffer size, flushed to io.Discard.
func BenchmarkWriteFrameParts(b *testing.B) {
	_, head, payload := benchData(lnp.DefaultBlockSize)
	w := lnp.NewWriter(io.Discard, 256<<10)
	b.ReportAllocs()
	b.SetBytes(int64(lnp.HeaderSize + len(head) + len(payload)))
	for b.Loop() {
		if err := w.WriteFrameParts(lnp.TypeData, head, payload); err != nil {
			b.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseData measures parsing a DATA body of 1 MiB: its shape
// only, as the payload is not copied.
func BenchmarkParseData(b *testing.B) {
	body, _, _ := benchData(lnp.DefaultBlockSize)
	b.ReportAllocs()
	for b.Loop() {
		d, err := lnp.ParseData(body)
		if err != nil {
			b.Fatal(err)
		}
		if len(d.Payload) != lnp.DefaultBlockSize {
			b.Fatalf("got a payload of %d bytes, want %d", len(d.Payload), lnp.DefaultBlockSize)
		}
	}
}

// BenchmarkControl measures a request's round trip: "body" is AppendBody
// into a reused buffer and ParseRequest, as the client encodes it and the
// server decodes it; "frame" adds the framing, Writer.Write and Flush
// into a buffer and Reader.Next out of it.
func BenchmarkControl(b *testing.B) {
	for _, m := range []lnp.Message{
		lnp.Stat{Path: "projects/larder/docs/PROTOCOL.md"},
		lnp.Get{Path: "projects/larder/docs/PROTOCOL.md", Offset: 3 << 20},
	} {
		b.Run(m.Type().String()+"/body", func(b *testing.B) {
			buf := make([]byte, 0, 512)
			b.ReportAllocs()
			for b.Loop() {
				buf = m.AppendBody(buf[:0])
				got, err := lnp.ParseRequest(m.Type(), buf)
				if err != nil {
					b.Fatal(err)
				}
				if got != m {
					b.Fatalf("got %#v, want %#v", got, m)
				}
			}
			b.SetBytes(int64(len(buf)))
		})
		b.Run(m.Type().String()+"/frame", func(b *testing.B) {
			var conn bytes.Buffer
			w, r := lnp.NewWriter(&conn, 0), lnp.NewReader(&conn)
			b.ReportAllocs()
			for b.Loop() {
				if err := w.Write(m); err != nil {
					b.Fatal(err)
				}
				if err := w.Flush(); err != nil {
					b.Fatal(err)
				}
				t, body, err := r.Next()
				if err != nil {
					b.Fatal(err)
				}
				got, err := lnp.ParseRequest(t, body)
				if err != nil {
					b.Fatal(err)
				}
				if got != m {
					b.Fatalf("got %#v, want %#v", got, m)
				}
			}
		})
	}
}

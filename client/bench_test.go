package client

import (
	"context"
	"io"
	"net"
	"os"
	"testing"

	"github.com/larderfs/larder/course"
)

// BenchmarkRetrieve measures a 16 MiB reply in order over a real loopback
// socket, into io.Discard (the in-order writer path) and into a file (the
// offset path, including its fsync-free writes).
func BenchmarkRetrieve(b *testing.B) {
	const size = 16 << 20
	reply := encode(split(course.StatusOK, randomBytes(size, 30)))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				if _, err := course.ReadRequest(conn); err != nil {
					return
				}
				conn.Write(reply)
			}()
		}
	}()
	run := func(b *testing.B, dst func() io.Writer) {
		b.SetBytes(size)
		for b.Loop() {
			c, err := Dial(context.Background(), ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			res, err := c.Retrieve(context.Background(), "bench", testSig, "f", dst())
			c.Close()
			if err != nil || res.Size != size {
				b.Fatalf("got %+v, %v", res, err)
			}
		}
	}
	b.Run("discard", func(b *testing.B) { run(b, func() io.Writer { return io.Discard }) })
	b.Run("file", func(b *testing.B) {
		f, err := os.CreateTemp(b.TempDir(), "bench")
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		run(b, func() io.Writer { return f })
	})
}

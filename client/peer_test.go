package client

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"testing"
	"time"

	"github.com/larderfs/larder/course"
)

// This file holds the scripted servers that the tests talk to. Only a
// scripted peer can send corrupt or out-of-order blocks, so these build
// replies from the real codec (course.BlockHeader, course.Writer) and then
// break them as each test needs.

// block is one block of a reply before encoding. Its header is written
// as is, so a test can make it lie.
type block struct {
	h course.BlockHeader
	p []byte
}

// split cuts payload into correct blocks with the given status.
func split(status course.Status, payload []byte) []block {
	count, err := course.BlockCount(int64(len(payload)))
	if err != nil {
		panic(err)
	}
	total := sha256.Sum256(payload)
	bs := make([]block, count)
	for i := range bs {
		p := payload[min(i*course.MaxBlockPayload, len(payload)):min((i+1)*course.MaxBlockPayload, len(payload))]
		bs[i] = block{
			h: course.BlockHeader{Length: uint32(len(p)), Status: status, Index: uint32(i), Count: count,
				BlockHash: sha256.Sum256(p), TotalHash: total},
			p: p,
		}
	}
	return bs
}

// encode writes blocks back to back, headers exactly as given.
func encode(bs []block) []byte {
	var b []byte
	for _, x := range bs {
		b, _ = x.h.AppendBinary(b)
		b = append(b, x.p...)
	}
	return b
}

// reversed and shuffled return reordered copies of bs.
func reversed(bs []block) []block {
	out := make([]block, len(bs))
	for i, x := range bs {
		out[len(bs)-1-i] = x
	}
	return out
}

func shuffled(bs []block, seed uint64) []block {
	out := append([]block(nil), bs...)
	r := rand.New(rand.NewPCG(seed, 1))
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// randomBytes returns n reproducible pseudo-random bytes.
func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, 2))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// peer is a scripted server at the far end of a net.Pipe.
type peer struct {
	req  chan *course.Request // the request it read, or nil if it could not
	done chan struct{}        // closed when the script has finished
}

// pipePeer starts script on the server end of a net.Pipe after reading the
// request, and returns a Client on the other end. The server end is closed
// when the script returns.
func pipePeer(t *testing.T, script func(conn net.Conn)) (*Client, *peer) {
	t.Helper()
	cc, sc := net.Pipe()
	c := NewClient(cc)
	p := startPeer(t, sc, script)
	// Cleanups run last-in first-out: hang up before waiting for the peer,
	// which may be blocked writing what the client chose not to read.
	t.Cleanup(func() { c.Close() })
	return c, p
}

func startPeer(t *testing.T, sc net.Conn, script func(conn net.Conn)) *peer {
	p := &peer{req: make(chan *course.Request, 1), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		defer sc.Close()
		req, err := course.ReadRequest(sc)
		p.req <- req
		if err != nil {
			return
		}
		script(sc)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			t.Error("scripted server did not finish")
		}
	})
	return p
}

// replyWith returns a script that writes b and hangs up. Write errors are
// ignored: the client may stop reading early on purpose.
func replyWith(b []byte) func(net.Conn) {
	return func(conn net.Conn) { conn.Write(b) }
}

// request returns the request that the peer read.
func (p *peer) request(t *testing.T) *course.Request {
	t.Helper()
	select {
	case r := <-p.req:
		if r == nil {
			t.Fatal("scripted server could not read a request")
		}
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("no request reached the scripted server")
		return nil
	}
}

// memFile is an in-memory io.WriterAt and io.ReaderAt, bounded so that a
// hostile offset fails instead of allocating.
type memFile struct {
	b   []byte
	max int64
}

var errTooBig = errors.New("memFile: offset beyond the test's bound")

func (m *memFile) Write(p []byte) (int, error) { return m.WriteAt(p, int64(len(m.b))) }

func (m *memFile) WriteAt(p []byte, off int64) (int, error) {
	end := off + int64(len(p))
	if m.max > 0 && end > m.max {
		return 0, errTooBig
	}
	if end > int64(len(m.b)) {
		m.b = append(m.b, make([]byte, end-int64(len(m.b)))...)
	}
	return copy(m.b[off:], p), nil
}

func (m *memFile) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(m.b)) {
		return 0, io.EOF
	}
	n := copy(p, m.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// destination is a kind of dst for Retrieve and a way to read it back.
type destination struct {
	name string
	open func(t *testing.T) (io.Writer, func() []byte)
}

func destinations() []destination {
	return []destination{
		{"file", func(t *testing.T) (io.Writer, func() []byte) {
			f, err := os.CreateTemp(t.TempDir(), "dst")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { f.Close() })
			return f, func() []byte {
				b, err := os.ReadFile(f.Name())
				if err != nil {
					t.Fatal(err)
				}
				return b
			}
		}},
		{"buffer", func(t *testing.T) (io.Writer, func() []byte) {
			var b bytes.Buffer
			return &b, b.Bytes
		}},
	}
}

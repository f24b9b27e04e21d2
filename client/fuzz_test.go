package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/larderfs/larder/course"
)

// replayConn is a net.Conn whose peer replays fixed bytes in reads of at
// most chunk bytes, so that the fuzzer also splits frames across reads.
// It stands in for a scripted server where a goroutine per input would
// slow fuzzing down.
type replayConn struct {
	r     *bytes.Reader
	chunk int
}

func (c *replayConn) Read(p []byte) (int, error) {
	if c.chunk > 0 && len(p) > c.chunk {
		p = p[:c.chunk]
	}
	return c.r.Read(p)
}
func (c *replayConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c *replayConn) Close() error                     { return nil }
func (c *replayConn) LocalAddr() net.Addr              { return nil }
func (c *replayConn) RemoteAddr() net.Addr             { return nil }
func (c *replayConn) SetDeadline(time.Time) error      { return nil }
func (c *replayConn) SetReadDeadline(time.Time) error  { return nil }
func (c *replayConn) SetWriteDeadline(time.Time) error { return nil }

func FuzzRetrieve(f *testing.F) {
	payload := randomBytes(5*944+17, 20)
	good := split(course.StatusOK, payload)
	f.Add(encode(good), false, uint16(0))
	f.Add(encode(reversed(good)), true, uint16(100))
	f.Add(encode(shuffled(good, 3)), false, uint16(1))
	f.Add(encode(split(course.StatusOK, nil)), true, uint16(0))
	f.Add(encode(split(course.StatusBadRequest, []byte("Requested content x does not exist"))), false, uint16(7))
	f.Add(encode(good[:3]), true, uint16(0))
	dup := append(append([]block(nil), good...), good[2])
	f.Add(encode(dup[1:]), false, uint16(0))
	f.Add([]byte{}, false, uint16(0))

	f.Fuzz(func(t *testing.T, data []byte, toFile bool, chunk uint16) {
		c := NewClient(&replayConn{r: bytes.NewReader(data), chunk: int(chunk)})
		c.MaxBuffer = 1 << 20
		var dst io.Writer
		var out func() []byte
		if toFile {
			m := &memFile{max: 1 << 22}
			dst, out = m, func() []byte { return m.b }
		} else {
			var b bytes.Buffer
			dst, out = &b, b.Bytes
		}
		res, err := c.Retrieve(context.Background(), "fuzz", testSig, "f", dst)
		if err != nil {
			var se *StatusError
			if !errors.As(err, &se) && !errors.Is(err, ErrIntegrity) && !errors.Is(err, ErrBufferLimit) && !errors.Is(err, errTooBig) {
				t.Fatalf("unexpected kind of error %T: %v", err, err)
			}
			return
		}
		got := out()
		if res.NoReply {
			if len(data) != 0 || len(got) != 0 || res.Size != 0 {
				t.Fatalf("NoReply with %d input bytes and %d output bytes", len(data), len(got))
			}
			return
		}
		if int64(len(got)) != res.Size {
			t.Fatalf("wrote %d bytes, Result says %d", len(got), res.Size)
		}
		if sha256.Sum256(got) != res.Total {
			t.Fatal("success with data whose hash is not the total hash")
		}
	})
}

package check

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/course"
)

// sendMode says how a request goes on the wire.
type sendMode struct {
	byteDelay  time.Duration // > 0: one byte per write, this long apart
	closeWrite bool          // shut down the sending side after the request
}

// exchange sends req on a new connection to addr and reads until the
// server closes, the timeout passes or maxReply bytes arrived. Only a
// failure to connect is an error; everything the server does
// is in the reply.
func exchange(ctx context.Context, addr string, req []byte, mode sendMode, timeout time.Duration) (*reply, error) {
	d := net.Dialer{Timeout: timeout}
	dialed := time.Now()
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("check: connecting to %s: %w", addr, err)
	}
	defer conn.Close()
	start := time.Now()
	connect := start.Sub(dialed)
	deadline := start.Add(timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	conn.SetDeadline(deadline)
	// A server may answer and close before the request is all sent (a
	// single recv of the first piece): the reply is what matters, so a
	// failed write stops the sending and the reading goes on.
	var sendErr error
	if mode.byteDelay > 0 {
		for i := range req {
			if _, sendErr = conn.Write(req[i : i+1]); sendErr != nil {
				sendErr = fmt.Errorf("sending byte %d of %d: %w", i+1, len(req), sendErr)
				break
			}
			if i+1 < len(req) {
				select {
				case <-time.After(mode.byteDelay):
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			}
		}
	} else if len(req) > 0 {
		if _, sendErr = conn.Write(req); sendErr != nil {
			sendErr = fmt.Errorf("sending %d bytes: %w", len(req), sendErr)
		}
	}
	if mode.closeWrite && sendErr == nil {
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
	}
	raw, readErr := readAll(conn)
	r := parseReply(raw)
	r.elapsed, r.connect = time.Since(start), connect
	r.sendErr = sendErr
	if readErr == nil {
		r.closed = true
	} else {
		r.readErr = readErr
	}
	return r, nil
}

// readAll reads until EOF (nil error), another error, or maxReply bytes.
func readAll(r io.Reader) ([]byte, error) {
	buf := make([]byte, 0, 4096)
	for len(buf) < maxReply {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
	return buf, errors.New("reply longer than the checker keeps")
}

// rawRequest builds a request's bytes field by field, without the codec's
// checks, so that malformed requests can be built too: name is the raw
// 16-byte field (shorter is NUL-padded), length the declared body length.
func rawRequest(name []byte, sig larder.Signature, length uint32, body []byte) []byte {
	b := make([]byte, course.UsernameSize, course.RequestHeaderSize+len(body))
	copy(b, name)
	b = append(b, sig[:]...)
	b = binary.BigEndian.AppendUint32(b, length)
	return append(b, body...)
}

// request builds a well-formed request with the codec.
func request(user string, sig larder.Signature, body string) []byte {
	b, err := (&course.Request{Username: user, Signature: sig, Body: []byte(body)}).AppendBinary(nil)
	if err != nil {
		panic("check: building a request: " + err.Error()) // the checker's own names and paths fit
	}
	return b
}

// describeRequest says what a request is, for the report: what it asks,
// its size and its first bytes in hex.
func describeRequest(req []byte) string {
	if len(req) < course.RequestHeaderSize {
		return fmt.Sprintf("%d bytes, less than a header: %s", len(req), hexPrefix(req, 52))
	}
	name := strings.TrimRight(string(req[:course.UsernameSize]), "\x00")
	length := binary.BigEndian.Uint32(req[course.UsernameSize+course.SignatureSize:])
	body := req[course.RequestHeaderSize:]
	var what string
	if length == 0 {
		what = fmt.Sprintf("register %q", name)
	} else {
		shown := body[:min(len(body), int(length), 80)]
		what = fmt.Sprintf("retrieve %q as %q", shown, name)
	}
	s := fmt.Sprintf("%s: declared body length %d, %d body bytes sent", what, length, len(body))
	return s + "; header " + hexPrefix(req[:course.RequestHeaderSize], 20)
}

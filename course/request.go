package course

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/larderfs/larder"
)

// Request is one request of the course protocol.
type Request struct {
	// Username is the username field with its NUL padding removed. The
	// codec does not judge its content; larder.ValidateUsername does.
	Username string

	Signature larder.Signature

	// Body is empty for a registration, and otherwise the path of the file
	// to retrieve, without a NUL terminator.
	Body []byte
}

// IsRegister reports whether r registers its user (an empty body) rather
// than retrieving a file.
func (r *Request) IsRegister() bool { return len(r.Body) == 0 }

// ReadRequest reads one request from r: exactly the 52-byte header, then
// exactly the number of body bytes that the header declares, however the
// bytes are split over TCP segments. Bytes after the body are left unread.
//
// The declared length is checked against MaxBodySize before anything is
// allocated for the body, so a peer cannot make the server reserve memory by
// declaring a large body. Anything that is not a whole, well-formed request
// is a *ProtocolError, which wraps the underlying I/O error when there is
// one (io.ErrUnexpectedEOF, a deadline). A peer that closes before sending a
// single byte yields io.EOF.
func ReadRequest(r io.Reader) (*Request, error) {
	var hdr [RequestHeaderSize]byte
	if n, err := io.ReadFull(r, hdr[:]); err != nil {
		if err == io.EOF {
			return nil, io.EOF
		}
		return nil, &ProtocolError{
			Msg: fmt.Sprintf("request header cut short after %d of %d bytes", n, RequestHeaderSize),
			Err: err,
		}
	}

	name, err := parseUsername(hdr[:UsernameSize])
	if err != nil {
		return nil, err
	}
	req := &Request{Username: name}
	copy(req.Signature[:], hdr[UsernameSize:UsernameSize+SignatureSize])

	length := binary.BigEndian.Uint32(hdr[UsernameSize+SignatureSize:])
	if length > MaxBodySize {
		return nil, &ProtocolError{Msg: fmt.Sprintf(
			"declared body length %d exceeds the maximum of %d bytes", length, MaxBodySize)}
	}
	if length == 0 {
		return req, nil
	}
	req.Body = make([]byte, length)
	if n, err := io.ReadFull(r, req.Body); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, &ProtocolError{
			Msg: fmt.Sprintf("length of request does not match given length: received %d of %d declared body bytes", n, length),
			Err: err,
		}
	}
	return req, nil
}

// parseUsername strips the NUL padding of the username field. The reference
// server treated "bob\x00x" as a user distinct from "bob"; larder refuses a
// field with anything but NUL bytes after its first NUL.
func parseUsername(field []byte) (string, error) {
	n := bytes.IndexByte(field, 0)
	if n < 0 {
		return string(field), nil
	}
	for _, b := range field[n:] {
		if b != 0 {
			return "", &ProtocolError{Msg: "username field has bytes after its NUL padding"}
		}
	}
	return string(field[:n]), nil
}

// AppendBinary appends the encoding of r to b, header and body together, as
// the reference clients send them in a single write. It fails if the
// username is longer than 16 bytes or contains a NUL byte, or if the body is
// longer than MaxBodySize.
func (r *Request) AppendBinary(b []byte) ([]byte, error) {
	if len(r.Username) > UsernameSize {
		return b, fmt.Errorf("course: username is %d bytes long; the field holds %d", len(r.Username), UsernameSize)
	}
	if bytes.IndexByte([]byte(r.Username), 0) >= 0 {
		return b, errors.New("course: username contains a NUL byte")
	}
	if len(r.Body) > MaxBodySize {
		return b, fmt.Errorf("course: body is %d bytes long; the maximum is %d", len(r.Body), MaxBodySize)
	}
	var name [UsernameSize]byte
	copy(name[:], r.Username)
	b = append(b, name[:]...)
	b = append(b, r.Signature[:]...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(r.Body)))
	return append(b, r.Body...), nil
}

// WriteTo writes the encoding of r to w in a single Write.
func (r *Request) WriteTo(w io.Writer) (int64, error) {
	b, err := r.AppendBinary(make([]byte, 0, RequestHeaderSize+len(r.Body)))
	if err != nil {
		return 0, err
	}
	n, err := w.Write(b)
	return int64(n), err
}

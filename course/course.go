// Package course encodes and decodes the frames of the course protocol ("V1"),
// the file-retrieval protocol of the DIKU CompSys course that larder speaks
// byte for byte. docs/PROTOCOL.md describes it in full.
//
// A request is a fixed 52-byte header (username, signature, body length)
// followed by the body; an empty body registers the user, any other body is
// the path of a file to retrieve. A reply is one or more blocks, each an
// 80-byte header followed by at most 944 bytes of payload. Every integer is
// an unsigned 32-bit big-endian number and every hash a raw SHA-256 digest.
//
// The package holds no policy: it frames bytes, enforces the size limits and
// reports anything that cannot be parsed as a *ProtocolError.
package course

import (
	"crypto/sha256"
	"fmt"

	"github.com/larderfs/larder"
)

// Sizes of the course protocol, in bytes.
const (
	UsernameSize      = 16                                 // the username field, NUL-padded
	SignatureSize     = larder.SignatureSize               // the signature field
	RequestHeaderSize = UsernameSize + SignatureSize + 4   // 52: username, signature, length
	MaxMessageSize    = 1024                               // MSG_MAX: the largest request or block
	MaxBodySize       = MaxMessageSize - RequestHeaderSize // 972
	BlockHeaderSize   = 4 + 4 + 4 + 4 + 2*sha256.Size      // 80: length, status, index, count, hashes
	MaxBlockPayload   = MaxMessageSize - BlockHeaderSize   // 944
)

// Status is the status code carried by every block of a reply.
type Status uint32

// The seven status codes of the course protocol.
const (
	StatusOK           Status = 1 // registered, or the file follows
	StatusUserExists   Status = 2 // register: the name is taken
	StatusUserMissing  Status = 3 // retrieve: no such user
	StatusInvalidLogin Status = 4 // retrieve: the signature does not match
	StatusBadRequest   Status = 5 // coherent, but refused (no such file, bad name, ...)
	StatusOther        Status = 6 // any other server-side failure
	StatusMalformed    Status = 7 // the request cannot be parsed
)

var statusNames = [...]string{
	StatusOK:           "OK",
	StatusUserExists:   "USER_EXISTS",
	StatusUserMissing:  "USER_MISSING",
	StatusInvalidLogin: "INVALID_LOGIN",
	StatusBadRequest:   "BAD_REQUEST",
	StatusOther:        "OTHER",
	StatusMalformed:    "MALFORMED",
}

// String returns the status's name as the protocol reference spells it.
func (s Status) String() string {
	if s >= StatusOK && int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("STATUS(%d)", uint32(s))
}

// Valid reports whether s is one of the seven defined codes.
func (s Status) Valid() bool { return s >= StatusOK && s <= StatusMalformed }

// CourseSalt is the fixed client salt of the course's Python client. Using
// it lets one account be used from that client and from larder's.
const CourseSalt = "0123456789012345678901234567890123456789012345678901234567890123"

// ProtocolError reports bytes that do not form a valid frame. The server
// answers it with StatusMalformed; a client gives up on the reply.
type ProtocolError struct {
	Msg string // what was wrong, in words fit for the peer
	Err error  // the underlying I/O error, if any (io.ErrUnexpectedEOF, a timeout)
}

func (e *ProtocolError) Error() string {
	if e.Err != nil {
		return "course: " + e.Msg + ": " + e.Err.Error()
	}
	return "course: " + e.Msg
}

// Unwrap returns the underlying I/O error, so that callers can tell a
// deadline from a peer that hung up.
func (e *ProtocolError) Unwrap() error { return e.Err }

// BlockCount returns the number of blocks that carry a payload of size
// bytes: ceil(size/944), and 1 for an empty payload, which larder sends as a
// single empty block. It fails if the count does not fit the 32-bit field,
// that is for payloads above about 3.7 TiB.
func BlockCount(size int64) (uint32, error) {
	if size < 0 {
		return 0, fmt.Errorf("course: negative payload size %d", size)
	}
	n := (size + MaxBlockPayload - 1) / MaxBlockPayload
	if n == 0 {
		return 1, nil
	}
	if n > 1<<32-1 {
		return 0, fmt.Errorf("course: a payload of %d bytes needs %d blocks; the protocol allows at most %d", size, n, uint32(1<<32-1))
	}
	return uint32(n), nil
}

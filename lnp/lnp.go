// Package lnp encodes and decodes the frames of LNP/1, larder's native
// protocol: one login per connection, then any number of requests, with
// 64-bit sizes and offsets and large blocks, each with its SHA-256.
// docs/PROTOCOL.md describes it byte by byte.
//
// Every frame is a type byte, a 32-bit big-endian body length and the
// body. A Reader refuses a length above its limit before it reads or
// reserves anything for the body; message types append their bodies to a
// slice and parse them back, refusing a body that is short or has bytes
// left over. The package holds no policy; anything that cannot be parsed
// is a *ProtocolError.
package lnp

import (
	"crypto/sha256"
	"fmt"
)

// Magic opens every HELLO: the protocol and its version.
const Magic = "LNP1"

// Sizes, in bytes.
const (
	HeaderSize       = 5        // type and body length
	MaxControlBody   = 64 << 10 // the largest body of a frame other than DATA
	MaxHelloBody     = 1 << 10  // the largest body of any frame before the login (a HELLO is at most 127, an ENROLL 138)
	MinBlockSize     = 4 << 10
	MaxBlockSize     = 4 << 20
	DefaultBlockSize = 1 << 20
	DataOverhead     = 8 + sha256.Size // a DATA body's offset and hash
	MaxPathSize      = 4096
	MaxNameSize      = 255
	MaxListLimit     = 10_000
	// MaxSumsCount is the most sums a SUMS asks for: as many as fit in a
	// REPLY (status, empty message, count, then 32 bytes each).
	MaxSumsCount = (MaxControlBody - (2 + 2) - 4) / sha256.Size
)

// Type is a frame's type.
type Type uint8

// The frame types.
const (
	TypeHello   Type = 0x01
	TypeWelcome Type = 0x02
	// The channel-bound login's (login.go).
	TypeChallenge Type = 0x03
	TypeProof     Type = 0x04
	TypeVerified  Type = 0x05
	TypeEnroll    Type = 0x06
	TypeWhoami    Type = 0x10
	TypeStat      Type = 0x11
	TypeList      Type = 0x12
	TypeMkdir     Type = 0x13
	TypeDelete    Type = 0x14
	TypeRename    Type = 0x15
	TypePasswd    Type = 0x16
	TypeSums      Type = 0x17
	TypeParts     Type = 0x18
	TypeCancel    Type = 0x19
	// Device credentials' (devices.go).
	TypeDeviceAdd    Type = 0x1A
	TypeDevices      Type = 0x1B
	TypeDeviceRevoke Type = 0x1C
	TypeGet          Type = 0x20
	TypePut          Type = 0x30
	TypeData         Type = 0x40
	TypeEnd          Type = 0x41
	TypeReply        Type = 0x7F
)

var typeNames = map[Type]string{
	TypeHello: "HELLO", TypeWelcome: "WELCOME", TypeWhoami: "WHOAMI", TypeStat: "STAT",
	TypeList: "LIST", TypeMkdir: "MKDIR", TypeDelete: "DELETE", TypeRename: "RENAME",
	TypePasswd: "PASSWD", TypeSums: "SUMS", TypeGet: "GET", TypePut: "PUT",
	TypeData: "DATA", TypeEnd: "END", TypeReply: "REPLY",
	TypeParts: "PARTS", TypeCancel: "CANCEL",
	TypeChallenge: "CHALLENGE", TypeProof: "PROOF", TypeVerified: "VERIFIED", TypeEnroll: "ENROLL",
	TypeDeviceAdd: "DEVICE_ADD", TypeDevices: "DEVICES", TypeDeviceRevoke: "DEVICE_REVOKE",
}

func (t Type) String() string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("TYPE(0x%02x)", uint8(t))
}

// Status is the status of a WELCOME, a REPLY or an END.
type Status uint16

// The status codes. 1 to 7 mean what they mean in the course protocol.
const (
	StatusOK            Status = 1
	StatusInvalidLogin  Status = 4
	StatusBadRequest    Status = 5
	StatusOther         Status = 6
	StatusMalformed     Status = 7
	StatusNotFound      Status = 8
	StatusDenied        Status = 9
	StatusConflict      Status = 10
	StatusQuotaExceeded Status = 11
	StatusThrottled     Status = 12
	StatusHashMismatch  Status = 13
	StatusBusy          Status = 14
	StatusVersion       Status = 15
	StatusNoSpace       Status = 16
)

var statusNames = map[Status]string{
	StatusOK: "OK", StatusInvalidLogin: "INVALID_LOGIN", StatusBadRequest: "BAD_REQUEST",
	StatusOther: "OTHER", StatusMalformed: "MALFORMED", StatusNotFound: "NOT_FOUND",
	StatusDenied: "DENIED", StatusConflict: "CONFLICT", StatusQuotaExceeded: "QUOTA_EXCEEDED",
	StatusThrottled: "THROTTLED", StatusHashMismatch: "HASH_MISMATCH", StatusBusy: "BUSY",
	StatusVersion: "VERSION", StatusNoSpace: "NO_SPACE",
}

// Known reports whether s is a status LNP/1 defines.
func (s Status) Known() bool {
	_, ok := statusNames[s]
	return ok
}

func (s Status) String() string {
	if n, ok := statusNames[s]; ok {
		return n
	}
	return fmt.Sprintf("STATUS(%d)", uint16(s))
}

// ProtocolError is a frame that cannot be parsed.
type ProtocolError struct {
	Msg string
	Err error // the I/O error behind it, if any
}

func (e *ProtocolError) Error() string {
	if e.Err != nil {
		return "lnp: " + e.Msg + ": " + e.Err.Error()
	}
	return "lnp: " + e.Msg
}

func (e *ProtocolError) Unwrap() error { return e.Err }

func malformed(format string, args ...any) error {
	return &ProtocolError{Msg: fmt.Sprintf(format, args...)}
}

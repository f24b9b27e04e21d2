package client

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/larderfs/larder/course"
)

// ErrClientUsed is returned by a second request on one Client. The protocol
// allows one request per connection; dial again for another.
var ErrClientUsed = errors.New("client: a Client serves one request; dial again for the next")

// ErrIntegrity matches every *IntegrityError with errors.Is.
var ErrIntegrity = errors.New("client: the reply failed an integrity check")

// ErrBufferLimit reports that blocks arrived so far out of order that
// writing them in order to a plain io.Writer would take more memory than
// Client.MaxBuffer allows. A destination that can be written at offsets
// (a regular *os.File) takes blocks in any order without buffering.
var ErrBufferLimit = errors.New("client: blocks arrived out of order beyond the memory buffer; retrieve into a file, which takes blocks in any order")

// StatusError is a reply whose status is not OK. Message is the server's
// text, reassembled and checked like a file, with invalid UTF-8 and control
// characters replaced so that it is safe to print on a terminal.
type StatusError struct {
	Status  course.Status
	Message string
}

func (e *StatusError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("client: the server replied %v", e.Status)
	}
	return fmt.Sprintf("client: the server replied %v: %s", e.Status, e.Message)
}

// IntegrityError reports a reply that cannot be trusted: a block whose
// hash, header or length is wrong, a block missing or repeated, a payload
// whose total hash does not match, or a reply cut short. Nothing a Client
// returns as a success ever failed one of these checks.
type IntegrityError struct {
	// Block is the index of the offending block, or -1 when the failure
	// concerns the reply as a whole.
	Block int64

	// Reason says what failed, e.g. "hash mismatch".
	Reason string

	// Err is the underlying cause, if any: io.ErrUnexpectedEOF for a reply
	// cut short, a *course.ProtocolError for a frame that cannot be parsed.
	Err error
}

func (e *IntegrityError) Error() string {
	var b strings.Builder
	b.WriteString("client: bad reply: ")
	if e.Block >= 0 {
		fmt.Fprintf(&b, "block %d: ", e.Block)
	}
	b.WriteString(e.Reason)
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying cause.
func (e *IntegrityError) Unwrap() error { return e.Err }

// Is reports whether target is ErrIntegrity.
func (e *IntegrityError) Is(target error) bool { return target == ErrIntegrity }

func blockError(index uint32, format string, args ...any) *IntegrityError {
	return &IntegrityError{Block: int64(index), Reason: fmt.Sprintf(format, args...)}
}

func replyError(format string, args ...any) *IntegrityError {
	return &IntegrityError{Block: -1, Reason: fmt.Sprintf(format, args...)}
}

// netError marks an I/O error of the connection, which Client.do words
// with the context's reason when the context caused it.
type netError struct{ err error }

func (e *netError) Error() string { return e.err.Error() }
func (e *netError) Unwrap() error { return e.err }

// cleanText turns a server's message into a single line of printable text:
// a hostile server must not be able to move a terminal's cursor or rewrite
// what the user sees through an error message.
func cleanText(b []byte) string {
	s := strings.ToValidUTF8(string(b), string(utf8.RuneError))
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			return ' '
		case unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || unicode.Is(unicode.Bidi_Control, r):
			return utf8.RuneError
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}

// ErrNotCourse matches a reply that no course-protocol server would send:
// its first header is impossible (a length above 944, a status outside
// 1–7, a block number at or above the count). Something else answered:
// an HTTP server, a TLS port, the wrong service.
var ErrNotCourse = errors.New("client: the server's reply is not the course protocol")

// ErrNoReply matches a registration to which the server sent nothing
// before it closed the connection.
var ErrNoReply = errors.New("the server closed the connection without a reply")

// ErrPathNotUTF8 matches every *PathNotUTF8Error with errors.Is.
var ErrPathNotUTF8 = errors.New("client: a path that is not UTF-8 text")

// PathNotUTF8Error is a path refused before it is sent: LNP/1 paths are
// UTF-8 text, and a server can only answer one that is not with
// MALFORMED, which would blame the protocol rather than the name.
type PathNotUTF8Error struct{ Path string }

func (e *PathNotUTF8Error) Error() string {
	return fmt.Sprintf("client: the path %q is not UTF-8 text, which every path on an LNP/1 server is: rename the file, or write its name on the server in UTF-8", e.Path)
}

func (e *PathNotUTF8Error) Is(target error) bool { return target == ErrPathNotUTF8 }

// checkPaths refuses a path that is not UTF-8 text.
func checkPaths(paths ...string) error {
	for _, p := range paths {
		if !utf8.ValidString(p) {
			return &PathNotUTF8Error{Path: p}
		}
	}
	return nil
}

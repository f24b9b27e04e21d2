// Package client is the Go client of larder's two protocols.
//
// The course protocol ("V1", framed by package course) registers an
// account or retrieves one file, one request per connection: the server
// answers, then closes. A Client therefore serves exactly one request;
// dial again for the next. Dial is a thin wrapper over NewClient, so tests
// and callers with their own transport can pass any net.Conn. A server,
// malicious or buggy, can never make a Client write unverified data
// without an error, crash it, or make it allocate memory out of proportion
// to what it actually sent: see Retrieve for the rules.
//
// LNP/1 (framed by package lnp) logs in once per connection and then
// serves any number of requests on it: NewSession logs in over a
// connection the caller dialled (TLS, normally), and a Session lists,
// uploads (Put, resuming an interrupted upload), downloads (Get, and
// Download into a local file, resuming from a part file), renames,
// deletes and changes the password. Every block and every whole file
// travels with its SHA-256: a download is checked by the Session, an
// upload by the server before it commits.
package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/course"
)

// DefaultMaxBuffer is the memory that Retrieve may use, when MaxBuffer is
// zero, to hold blocks that arrive ahead of their turn for a destination
// that can only be written in order.
const DefaultMaxBuffer = 64 << 20

// maxMessage bounds the text of a registration or error reply. Servers send
// one sentence; anything longer is refused rather than buffered.
const maxMessage = 64 << 10

// A Client sends one request over one connection and reads the reply.
// Set its fields before the request; a Client is not meant to be shared
// between goroutines, but a second request (from any goroutine) is refused
// with ErrClientUsed rather than sent.
type Client struct {
	// MaxBuffer bounds the memory, in bytes, that Retrieve may use to hold
	// blocks that arrive before their predecessors when the destination
	// cannot be written at an offset (a pipe, a bytes.Buffer). Zero means
	// DefaultMaxBuffer; a destination that is an io.WriterAt and
	// io.ReaderAt (a regular *os.File) needs no buffer at all.
	MaxBuffer int64

	// Progress, if set, is called from Retrieve's goroutine with the payload
	// bytes received so far and the expected total: count×944 until the
	// last block has arrived, the exact size after. It is called on the
	// first block, then at most about ten times a second, and once at the
	// end with received == expected.
	Progress func(received, expected int64)

	// IdleTimeout, if positive, fails the request when the server sends or
	// accepts nothing for that long, so that a stalled server cannot hang a
	// transfer that has no overall deadline. Zero means no idle limit; the
	// context's deadline applies either way.
	IdleTimeout time.Duration

	conn net.Conn
	used atomic.Bool
}

// Result describes a payload that Retrieve received and verified.
type Result struct {
	Size   int64    // payload bytes written to dst
	Total  [32]byte // SHA-256 of the payload, as the server announced and Retrieve checked
	Blocks uint32   // number of blocks received

	// NoReply reports that the server closed the connection without sending
	// a single block. The course's reference server does this for an empty
	// file; Size is then 0 and nothing was checked.
	NoReply bool
}

// Dial connects to the server at addr ("host:port") over TCP and returns a
// Client for one request. ctx bounds the connection attempt only; pass it
// again to the request.
func Dial(ctx context.Context, addr string) (*Client, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	return NewClient(conn), nil
}

// NewClient returns a Client that sends its request over conn. The Client
// owns conn: Close closes it.
func NewClient(conn net.Conn) *Client {
	return &Client{conn: conn}
}

// Close closes the connection.
func (c *Client) Close() error {
	return c.conn.Close()
}

// Register registers username with signature sig (see larder.NewSignature)
// and returns the server's message. A reply other than OK, such as
// USER_EXISTS, is a *StatusError carrying the server's message.
func (c *Client) Register(ctx context.Context, username string, sig larder.Signature) (message string, err error) {
	req := &course.Request{Username: username, Signature: sig}
	var msg bytesSink
	rep, err := c.do(ctx, fmt.Sprintf("register %q", username), req, func(course.Status) sink {
		return newStreamSink(&msg, maxMessage)
	}, nil)
	if err != nil {
		return "", err
	}
	if rep.noReply {
		return "", fmt.Errorf("client: register %q: %w: %w", username, ErrNoReply, io.ErrUnexpectedEOF)
	}
	text := cleanText(msg.b)
	if rep.status != course.StatusOK {
		return "", &StatusError{Status: rep.status, Message: text}
	}
	return text, nil
}

// Retrieve asks for the file at path as username, signed with sig, and
// writes the payload to dst. It returns once every block has arrived and
// the payload has matched its total hash; the server's connection close is
// not awaited, so trailing bytes after a complete reply (the reference
// server sends a second reply after some errors) are ignored.
//
// Blocks may arrive in any order. Each is checked before it is written: its
// hash, its status, count and total hash against the first block, its index
// against the count and against every block seen, its length (944 bytes for
// all but the last). The block count comes from the server and is never
// used to size anything, so a hostile count costs nothing.
//
// How dst is written depends on what it can do:
//   - An io.WriterAt that is also an io.ReaderAt, such as a regular
//     *os.File, gets each block at its offset (index×944 from offset 0, so
//     pass an empty file) as it arrives; blocks that arrived out of order
//     are read back to check the total hash. If dst has a Truncate method
//     it is truncated to the payload size after the check, so that stale
//     bytes beyond it cannot survive.
//   - Any other io.Writer (stdout, a pipe, a bytes.Buffer) gets the payload
//     in order: blocks that arrive early wait in memory, up to MaxBuffer
//     bytes, beyond which Retrieve fails with ErrBufferLimit. Such a writer
//     receives data checked block by block before the whole payload has
//     been checked: if the total hash then fails, Retrieve returns an
//     *IntegrityError and the caller must discard what was written.
//
// A reply other than OK is a *StatusError carrying the server's message,
// and nothing is written to dst. A reply that breaks any of the rules above
// is an *IntegrityError (errors.Is(err, ErrIntegrity)). A connection that
// closes before the first block is not an error: the Result has NoReply set.
// If ctx is cancelled or its deadline passes, the request is abandoned and
// the error wraps ctx.Err().
func (c *Client) Retrieve(ctx context.Context, username string, sig larder.Signature, path string, dst io.Writer) (*Result, error) {
	op := fmt.Sprintf("retrieve %q", path)
	if path == "" {
		// An empty body would turn the request into a registration.
		return nil, errors.New("client: retrieve: empty path")
	}
	req := &course.Request{Username: username, Signature: sig, Body: []byte(path)}
	var msg bytesSink
	rep, err := c.do(ctx, op, req, func(status course.Status) sink {
		if status != course.StatusOK {
			return newStreamSink(&msg, maxMessage)
		}
		return c.dataSink(dst)
	}, c.Progress)
	if err != nil {
		return nil, err
	}
	if rep.noReply {
		return &Result{NoReply: true}, nil
	}
	if rep.status != course.StatusOK {
		return nil, &StatusError{Status: rep.status, Message: cleanText(msg.b)}
	}
	return &Result{Size: rep.size, Total: rep.total, Blocks: rep.blocks}, nil
}

// dataSink chooses how Retrieve writes a payload to dst.
func (c *Client) dataSink(dst io.Writer) sink {
	if f, ok := dst.(*os.File); ok {
		// Stdout is an *os.File even when it is a pipe or a terminal, on
		// which WriteAt fails; only a regular file takes blocks at offsets.
		if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
			return newStreamSink(dst, c.maxBuffer())
		}
	}
	wa, okW := dst.(io.WriterAt)
	ra, okR := dst.(io.ReaderAt)
	if okW && okR {
		return newFileSink(wa, ra, dst)
	}
	return newStreamSink(dst, c.maxBuffer())
}

func (c *Client) maxBuffer() int64 {
	if c.MaxBuffer > 0 {
		return c.MaxBuffer
	}
	return DefaultMaxBuffer
}

// do sends req and reads the reply into the sink that pick chooses once the
// first block has told the status. It enforces the one-request rule and
// applies ctx to the connection.
func (c *Client) do(ctx context.Context, op string, req *course.Request,
	pick func(course.Status) sink, progress func(int64, int64)) (reply, error) {
	if !c.used.CompareAndSwap(false, true) {
		return reply{}, ErrClientUsed
	}
	if err := ctx.Err(); err != nil {
		return reply{}, fmt.Errorf("client: %s: %w", op, err)
	}
	dc := newDeadlineConn(c.conn, ctx, c.IdleTimeout)
	stop := context.AfterFunc(ctx, dc.abort)
	defer stop()

	if _, err := req.WriteTo(dc); err != nil {
		return reply{}, c.ioError(ctx, op, "sending the request", err)
	}
	head := &headReader{r: dc}
	rep, err := readReply(course.NewBlockReader(head), head, pick, progress)
	var ne *netError
	if errors.As(err, &ne) {
		return reply{}, c.ioError(ctx, op, "reading the reply", ne.err)
	}
	return rep, err
}

// ioError words a network error, preferring the context's reason when the
// context is what cut the connection short: an aborted read reports a
// timeout, not the cancellation that caused it.
func (c *Client) ioError(ctx context.Context, op, doing string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("client: %s: %w", op, ctxErr)
	}
	// The connection's deadline and the context's timer fire independently;
	// if the deadline won the race, the context is done in all but name.
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) && errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("client: %s: %w", op, context.DeadlineExceeded)
	}
	if c.IdleTimeout > 0 && errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("client: %s: the server was silent for %v while %s: %w", op, c.IdleTimeout, doing, err)
	}
	return fmt.Errorf("client: %s: %s: %w", op, doing, err)
}

// bytesSink is a minimal growable buffer for reply messages.
type bytesSink struct{ b []byte }

func (s *bytesSink) Write(p []byte) (int, error) {
	s.b = append(s.b, p...)
	return len(p), nil
}

package lnp

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"sync"
)

// Reader reads frames. The body it returns is valid until the next call.
type Reader struct {
	hdr        [HeaderSize]byte // a field, so that reading it allocates nothing
	src        io.Reader
	size       int           // of r
	r          *bufio.Reader // nil until a frame's header is in, and after Release
	maxControl int           // the largest body of a frame other than DATA
	maxData    int           // the largest DATA body: the block size and its overhead
	buf        []byte
}

// smallBody is the largest body buffer a Reader keeps through Release:
// any request but an upload's DATA fits.
const smallBody = 4 << 10

// NewReader returns a Reader with a 64 KiB buffer that takes DATA frames
// of up to DefaultBlockSize until SetBlockSize says otherwise.
func NewReader(r io.Reader) *Reader { return NewReaderSize(r, 64<<10) }

// NewReaderSize is NewReader with a buffer of size bytes. A large body is
// read straight into its own buffer whatever the size, so a server gives a
// connection a small one. The buffer is taken once a frame's header is in
// and given back by Release: a Reader waiting for a frame holds none.
func NewReaderSize(r io.Reader, size int) *Reader {
	return &Reader{src: r, size: size, maxControl: MaxControlBody, maxData: DefaultBlockSize + DataOverhead}
}

// readers holds the buffers Release gave back, of any size.
var readers sync.Pool

// Limit caps the body of every frame, DATA frames included, at n bytes
// until SetBlockSize: a server that has not seen a login yet reads
// nothing larger than a HELLO (MaxHelloBody), and refuses a larger frame
// from its header alone, before reading or making room for its body.
func (r *Reader) Limit(n int) { r.maxControl, r.maxData = n, n }

// SetBlockSize sets the largest DATA payload the Reader takes, the
// session's block size, and lifts a Limit: other frames may have up to
// MaxControlBody bytes again.
func (r *Reader) SetBlockSize(n int) { r.maxControl, r.maxData = MaxControlBody, n+DataOverhead }

// Release gives back the read buffer if it holds no byte of the next
// frame, and drops the buffer of the last frame's body if it is larger
// than a small request needs, so that a connection waiting for its next
// request holds neither. The body Next returned is then no longer valid.
func (r *Reader) Release() {
	if cap(r.buf) > smallBody {
		r.buf = nil
	}
	if r.r != nil && r.r.Buffered() == 0 {
		r.r.Reset(nil) // the pool keeps no connection alive
		readers.Put(r.r)
		r.r = nil
	}
}

// header reads a frame's header: straight from the stream when the Reader
// holds no buffer, which it then takes for the body and the frames after.
func (r *Reader) header() error {
	if r.r != nil {
		_, err := io.ReadFull(r.r, r.hdr[:])
		return err
	}
	if _, err := io.ReadFull(r.src, r.hdr[:]); err != nil {
		return err
	}
	if br, _ := readers.Get().(*bufio.Reader); br != nil && br.Size() == r.size {
		br.Reset(r.src)
		r.r = br
	} else {
		r.r = bufio.NewReaderSize(r.src, r.size)
	}
	return nil
}

// Next reads the next frame. A clean end of the stream before a frame is
// io.EOF; anything else that goes wrong is a *ProtocolError, wrapping the
// I/O error if there is one.
func (r *Reader) Next() (Type, []byte, error) {
	h := r.hdr[:]
	if err := r.header(); err != nil {
		if err == io.EOF {
			return 0, nil, io.EOF
		}
		return 0, nil, &ProtocolError{Msg: "frame header cut short", Err: err}
	}
	t, n := Type(h[0]), binary.BigEndian.Uint32(h[1:])
	limit := r.maxControl
	if t == TypeData {
		limit = r.maxData
	}
	if n > uint32(limit) {
		return t, nil, malformed("%v frame of %d bytes: the most is %d", t, n, limit)
	}
	if cap(r.buf) < int(n) {
		r.buf = make([]byte, n, max(int(n), min(2*cap(r.buf), r.maxData)))
	}
	body := r.buf[:n]
	if _, err := io.ReadFull(r.r, body); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return t, nil, &ProtocolError{Msg: "frame body cut short", Err: err}
	}
	return t, body, nil
}

// SwapBuffer returns the buffer holding the last frame's body, which is
// then the caller's, and makes buf (which may be nil) the buffer for the
// frames that follow: a block received can be handed on to be written
// while the next one is read, without a copy.
func (r *Reader) SwapBuffer(buf []byte) []byte {
	old := r.buf
	r.buf = buf[:0:cap(buf)]
	return old
}

// Writer writes frames through a buffer: Flush sends them.
type Writer struct {
	w    *bufio.Writer
	hdr  [HeaderSize]byte
	body []byte // a control message's body, kept for the next
}

// NewWriter returns a Writer with a buffer of size bytes (at least 4
// KiB). A frame larger than the buffer goes to w in as few writes as it
// can: the buffer only gathers small frames and frames' heads.
func NewWriter(w io.Writer, size int) *Writer {
	return &Writer{w: bufio.NewWriterSize(w, max(size, 4<<10))}
}

// WriteFrame writes a frame of type t with body.
func (w *Writer) WriteFrame(t Type, body []byte) error {
	return w.WriteFrameParts(t, body, nil)
}

// WriteFrameParts writes a frame whose body is head followed by tail, so
// that a DATA frame's payload is never copied into a body first.
func (w *Writer) WriteFrameParts(t Type, head, tail []byte) error {
	if err := w.WriteFrameHead(t, head, len(tail)); err != nil {
		return err
	}
	_, err := w.w.Write(tail)
	return err
}

// WriteFrameHead writes the header of a frame of type t whose body is
// head followed by n more bytes, and head: the caller writes those n
// bytes to the stream itself, after a Flush (with sendfile, say).
func (w *Writer) WriteFrameHead(t Type, head []byte, n int) error {
	w.hdr[0] = byte(t)
	binary.BigEndian.PutUint32(w.hdr[1:], uint32(len(head)+n))
	if _, err := w.w.Write(w.hdr[:]); err != nil {
		return err
	}
	_, err := w.w.Write(head)
	return err
}

// Write writes a message as a frame of its type.
func (w *Writer) Write(m Message) error {
	w.body = m.AppendBody(w.body[:0])
	err := w.WriteFrame(m.Type(), w.body)
	if cap(w.body) > 4<<10 {
		w.body = nil // a large listing's: not kept for the life of the session
	}
	return err
}

// Flush sends what is buffered.
func (w *Writer) Flush() error { return w.w.Flush() }

// Reset makes w write to dst, dropping what is buffered.
func (w *Writer) Reset(dst io.Writer) { w.w.Reset(dst) }

package native

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
)

// Reader reads frames. The body it returns is valid until the next call.
type Reader struct {
	hdr     [HeaderSize]byte // a field, so that reading it allocates nothing
	r       *bufio.Reader
	maxData int // the largest DATA body: the block size and its overhead
	buf     []byte
}

// NewReader returns a Reader that takes DATA frames of up to
// DefaultBlockSize until SetBlockSize says otherwise.
func NewReader(r io.Reader) *Reader {
	return &Reader{r: bufio.NewReaderSize(r, 64<<10), maxData: DefaultBlockSize + DataOverhead}
}

// SetBlockSize sets the largest DATA payload the Reader takes: the
// session's block size.
func (r *Reader) SetBlockSize(n int) { r.maxData = n + DataOverhead }

// Next reads the next frame. A clean end of the stream before a frame is
// io.EOF; anything else that goes wrong is a *ProtocolError, wrapping the
// I/O error if there is one.
func (r *Reader) Next() (Type, []byte, error) {
	h := r.hdr[:]
	if _, err := io.ReadFull(r.r, h); err != nil {
		if err == io.EOF {
			return 0, nil, io.EOF
		}
		return 0, nil, &ProtocolError{Msg: "frame header cut short", Err: err}
	}
	t, n := Type(h[0]), binary.BigEndian.Uint32(h[1:])
	limit := MaxControlBody
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

// NewWriter returns a Writer with a buffer of size bytes (at least 64 KiB).
func NewWriter(w io.Writer, size int) *Writer {
	return &Writer{w: bufio.NewWriterSize(w, max(size, 64<<10))}
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

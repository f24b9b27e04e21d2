package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/files"
)

// object is a file open for reading. A read from where the last one
// ended is served by a stream: one goroutine GETs the file a span at a
// time and reads each answer's body into chunks, at most ReadAhead bytes
// of them ahead of the reader, so that the store sends while the reader
// sends on. A read elsewhere starts a stream there. Each GET asks for
// the ETag the file had when opened, so a file replaced meanwhile gives
// an error, never a mix of two contents.
type object struct {
	b     *Backend
	key   string
	shown string
	etag  string
	info  files.Info

	mu    sync.Mutex
	first []byte  // the file's first bytes, from Open's GET, until read past
	st    *stream // the stream being read, or nil
}

// chunkSize is the size of the chunks a stream reads a body into: as
// LNP/1 sends blocks of 1 MiB, a chunk is let go of as soon as its block
// is sent.
const chunkSize = 1 << 20

// spanSize is the most bytes one GET of a stream asks for. Each request
// costs the store a few milliseconds whatever its size (versitygw: 3 ms
// of CPU and 7 to 14 ms of waiting for a ranged GET of one byte, on this
// machine), which windows of 4 MiB paid 256 times per GiB; a stream holds
// only ReadAhead bytes of a span at a time, so spans can be long.
const spanSize = 256 << 20

// chunkPool holds chunks let go of, for the next ones: a download would
// otherwise allocate (and zero) its whole size again.
var chunkPool = sync.Pool{New: func() any { return new([chunkSize]byte) }}

// stream is the read-ahead of an object from one offset on.
type stream struct {
	chunks chan chunk    // read from the store, in order; closed at the end or on error
	cancel func()        // stops the goroutine's GET
	done   chan struct{} // closed when the goroutine has returned
	cur    chunk         // the chunk being read, if any
	next   int64         // where the chunk after cur starts
}

// chunk is n bytes at off, or the error that ended the stream there.
type chunk struct {
	off int64
	buf *[chunkSize]byte
	n   int
	err error
}

func (c chunk) data() []byte { return c.buf[:c.n] }

// errStalled ends a GET of a stream whose store sent nothing for the
// Backend's timeout.
var errStalled = fmt.Errorf("s3: the store sent nothing in time: %w", context.DeadlineExceeded)

// start starts a stream at off.
func (o *object) start(off int64) *stream {
	ctx, cancel := context.WithCancel(context.Background())
	ahead := max(1, int(o.b.readAhead/chunkSize))
	st := &stream{chunks: make(chan chunk, ahead-1), cancel: cancel, done: make(chan struct{}), next: off}
	go func() {
		defer close(st.done)
		defer close(st.chunks)
		o.produce(ctx, st.chunks, off)
	}()
	return st
}

// produce sends the chunks of the file from off to ch, until its end,
// an error (sent as the last chunk), or ctx is done.
func (o *object) produce(ctx context.Context, ch chan<- chunk, off int64) {
	for off < o.info.Size {
		n := min(spanSize, o.info.Size-off)
		next, err := o.span(ctx, ch, off, n)
		if ctx.Err() != nil {
			return
		}
		if err != nil && next > off && (larder.ErrorCode(err) == larder.EUNAVAILABLE || errors.Is(err, io.ErrUnexpectedEOF)) {
			// The answer broke off after some chunks: while the reader
			// was slow, the store may have closed a connection it took
			// for idle, or stalled. A GET from there again; one that
			// brings nothing ends the stream.
			off = next
			continue
		}
		if err != nil {
			select {
			case ch <- chunk{off: next, err: err}:
			case <-ctx.Done():
			}
			return
		}
		off = next
	}
}

// span sends the chunks of the n bytes at off to ch, from one GET, and
// returns where it stopped. The store must send each chunk within the
// Backend's timeout: the time the reader takes is not counted.
func (o *object) span(ctx context.Context, ch chan<- chunk, off, n int64) (int64, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stall := time.AfterFunc(o.b.timeout, func() { cancel(errStalled) })
	defer stall.Stop()
	out, err := o.b.client.GetObject(ctx, &awss3.GetObjectInput{
		Bucket: &o.b.bucket, Key: &o.key, IfMatch: aws.String(o.etag),
		Range: aws.String(fmt.Sprintf("bytes=%d-%d", off, off+n-1)),
	})
	if isPrecondition(err) || isNotFound(err) {
		return off, larder.Errorf(larder.ECONFLICT, "%s changed or went while it was read; read it again", quote(o.shown))
	}
	if err != nil {
		return off, o.b.fail(stalled(ctx, err), "cannot read "+quote(o.shown))
	}
	defer out.Body.Close()
	for end := off + n; off < end; {
		c := chunk{off: off, buf: chunkPool.Get().(*[chunkSize]byte), n: int(min(chunkSize, end-off))}
		stall.Reset(o.b.timeout)
		if _, err := io.ReadFull(out.Body, c.data()); err != nil {
			chunkPool.Put(c.buf)
			return off, o.b.fail(stalled(ctx, err), "cannot read "+quote(o.shown))
		}
		if !stall.Stop() {
			chunkPool.Put(c.buf)
			return off, o.b.fail(errStalled, "cannot read "+quote(o.shown))
		}
		select {
		case ch <- c:
		case <-ctx.Done():
			chunkPool.Put(c.buf)
			return off, ctx.Err()
		}
		off += int64(c.n)
	}
	return off, nil
}

// stalled returns errStalled for an error of a request that the stall
// timer cancelled, so that it reads as the store's time-out it is.
func stalled(ctx context.Context, err error) error {
	if context.Cause(ctx) == errStalled {
		return errStalled
	}
	return err
}

// stop stops the stream, waits for its goroutine, and lets go of its
// chunks.
func (st *stream) stop() {
	st.cancel()
	<-st.done
	for c := range st.chunks {
		if c.buf != nil {
			chunkPool.Put(c.buf)
		}
	}
	if st.cur.buf != nil {
		chunkPool.Put(st.cur.buf)
	}
}

// at returns the bytes from off on that are at hand, at least one (off
// is within the file), reading on or starting a stream if need be. They
// are valid until the next call; o.mu is held.
func (o *object) at(off int64) ([]byte, error) {
	if off < int64(len(o.first)) {
		if o.st == nil && int64(len(o.first)) < o.info.Size {
			// The stream starts while the first bytes are read.
			o.st = o.start(int64(len(o.first)))
		}
		return o.first[off:], nil
	}
	o.first = nil
	st := o.st
	if st != nil && st.cur.buf != nil && off >= st.cur.off && off < st.next {
		return st.cur.data()[off-st.cur.off:], nil
	}
	if st == nil || off != st.next {
		o.stop()
		st = o.start(off)
		o.st = st
	}
	if st.cur.buf != nil {
		chunkPool.Put(st.cur.buf)
		st.cur = chunk{}
	}
	c, ok := <-st.chunks
	if !ok {
		o.stop()
		return nil, larder.Errorf(larder.EINTERNAL, "cannot read %s: the read ended early", quote(o.shown))
	}
	if c.err != nil {
		o.stop()
		return nil, c.err
	}
	st.cur, st.next = c, c.off+int64(c.n)
	return c.data(), nil
}

// stop stops the stream, if any.
func (o *object) stop() {
	if o.st != nil {
		o.st.stop()
		o.st = nil
	}
}

func (o *object) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, larder.Errorf(larder.EINVALID, "a negative offset")
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for n < len(p) {
		at := off + int64(n)
		if at >= o.info.Size {
			return n, io.EOF
		}
		data, err := o.at(at)
		if err != nil {
			return n, err
		}
		n += copy(p[n:], data)
	}
	return n, nil
}

func (o *object) Info() files.Info { return o.info }

// WriteRangeTo copies n bytes from off to w, as the stream has them.
func (o *object) WriteRangeTo(w io.Writer, off, n int64) (int64, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var written int64
	for written < n {
		at := off + written
		if at >= o.info.Size {
			return written, io.ErrUnexpectedEOF
		}
		chunk, err := o.at(at)
		if err != nil {
			return written, err
		}
		if int64(len(chunk)) > n-written {
			chunk = chunk[:n-written]
		}
		k, err := w.Write(chunk)
		written += int64(k)
		if err != nil {
			return written, err
		}
	}
	return written, nil
}

// Close stops the stream, its GET and its goroutine with it, and lets go
// of what was read ahead.
func (o *object) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.stop()
	o.first = nil
	return nil
}

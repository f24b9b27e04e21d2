package xfer

import (
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"sync"
)

// MismatchError is a block whose SHA-256 is not the one it came with.
// Nothing from it on is written.
type MismatchError struct {
	Offset int64 // the block's
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("xfer: the block at offset %d does not match its SHA-256", e.Offset)
}

// WriteOptions tunes a Writer.
type WriteOptions struct {
	Depth  int       // the most blocks held; 0 means Depth
	Whole  hash.Hash // if set, written every byte written, in order
	Verify bool      // check each block's SHA-256 before it is written
}

// Writer writes blocks to a destination in the background, in order, in
// writes of at most ChunkSize bytes, on goroutines of its own: one checks
// each block's SHA-256 (with Verify), one writes it, and one then adds it
// to the whole file's hash (with Whole), each on its own block. On a
// machine with a core to spare, each of those takes about as long as
// receiving the block, so none need wait for the others. A Writer is for
// one goroutine's use.
type Writer struct {
	work  chan job
	free  chan []byte
	done  chan struct{}
	depth int
	taken int // buffers handed out by Buffer and not yet back

	mu  sync.Mutex
	err error // the first error: a mismatch, or writing
}

type job struct {
	buf, data []byte
	off       int64
	sum       [32]byte
}

// NewWriter starts a Writer to dst.
func NewWriter(dst io.Writer, o WriteOptions) *Writer {
	depth := cmpOr(o.Depth, Depth)
	w := &Writer{
		work:  make(chan job, depth),
		free:  make(chan []byte, depth),
		done:  make(chan struct{}),
		depth: depth,
	}
	toWrite := w.work
	if o.Verify {
		toWrite = make(chan job, depth)
		go w.verify(toWrite)
	}
	go w.run(dst, o.Whole, toWrite)
	return w
}

func (w *Writer) verify(out chan<- job) {
	defer close(out)
	for j := range w.work {
		if w.failed() == nil && sha256.Sum256(j.data) != j.sum {
			w.fail(&MismatchError{Offset: j.off})
		}
		if w.failed() != nil {
			w.release(j.buf)
			continue
		}
		out <- j
	}
}

func (w *Writer) run(dst io.Writer, whole hash.Hash, work <-chan job) {
	defer close(w.done)
	// The whole file's hash runs behind the writing, a block or more
	// apart, each at its own pace: in step, each block would take as
	// long as the slower of the two on it.
	var hashing chan job
	hashed := make(chan struct{})
	if whole != nil {
		hashing = make(chan job, w.depth)
		go func() {
			defer close(hashed)
			for j := range hashing {
				whole.Write(j.data)
				w.release(j.buf)
			}
		}()
		defer func() {
			close(hashing)
			<-hashed // the hashing goroutine has ended
		}()
	}
	// Blocks verified before a mismatch are written all the same: only
	// an error writing stops the writing.
	var werr error
	for j := range work {
		if werr == nil {
			if werr = writeChunks(dst, j.data); werr != nil {
				w.fail(werr)
			} else if hashing != nil {
				hashing <- j
				continue
			}
		}
		w.release(j.buf)
	}
}

func writeChunks(dst io.Writer, p []byte) error {
	for len(p) > 0 {
		n := min(len(p), ChunkSize)
		if _, err := dst.Write(p[:n]); err != nil {
			return err
		}
		p = p[n:]
	}
	return nil
}

func (w *Writer) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
	}
}

func (w *Writer) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// release gives buf back for Buffer to hand out again.
func (w *Writer) release(buf []byte) {
	select {
	case w.free <- buf:
	default: // more than the Writer may hold: let it go
	}
}

// Buffer returns a buffer for the next block: one the Writer is done
// with, waiting for one while depth blocks are in hand, or nil while
// fewer have been made (the caller makes its own). It returns the
// Writer's error, if there was one: nothing more will be written.
func (w *Writer) Buffer() ([]byte, error) {
	if err := w.failed(); err != nil {
		return nil, err
	}
	if w.taken < w.depth {
		select {
		case buf := <-w.free:
			return buf, nil
		default:
			w.taken++ // a new buffer, made by the caller
			return nil, nil
		}
	}
	buf := <-w.free
	return buf, w.failed()
}

// Write queues data, which lies in buf, to be written: the block at
// offset off of the file, whose SHA-256 is sum (checked with Verify,
// else unused). buf comes back through Buffer once it is written.
func (w *Writer) Write(buf []byte, off int64, data []byte, sum [32]byte) {
	w.work <- job{buf: buf, data: data, off: off, sum: sum}
}

// Close writes what is queued and returns the Writer's first error. It
// may be called more than once.
func (w *Writer) Close() error {
	select {
	case <-w.done:
	default:
		close(w.work)
		<-w.done
	}
	return w.failed()
}

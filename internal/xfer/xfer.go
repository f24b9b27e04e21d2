// Package xfer runs a transfer's blocks through goroutines, so that
// reading, hashing, the network and the disk keep both cores busy at once
// instead of taking turns on one.
//
// A Reader reads a file ahead of its consumer and hashes each block; a
// Writer writes verified blocks behind its producer and hashes the whole
// file. Both hold at most a fixed number of blocks, allocated as they are
// first needed (a small file never costs a full block), so a transfer's
// memory is bounded before it starts.
package xfer

import (
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"sync"
)

// ChunkSize is the most the Writer hands to one Write of its destination.
// Large writes into a file's page cache were several times slower than
// the same bytes written a quarter-MiB at a time on the machines larder
// was measured on (docs/BENCHMARKS.md); below that size the
// difference disappears.
const ChunkSize = 256 << 10

// Depth is the number of blocks a transfer's pipeline holds by default:
// one being read or received, one being hashed, one being sent or written.
const Depth = 3

// Block is a block read by a Reader: Data from Offset, with its SHA-256.
type Block struct {
	Offset int64
	Data   []byte
	SHA256 [32]byte
	buf    []byte
}

// ShortError is a source that ended before the size it was read to: a
// file that shrank, or a source smaller than announced.
type ShortError struct {
	At int64 // where the source ended
}

func (e *ShortError) Error() string {
	return fmt.Sprintf("xfer: the source ended at byte %d", e.At)
}

// Reader reads a source from an offset to an end in blocks, ahead of its
// consumer: one goroutine reads each block (and adds it to the whole
// file's hash, if one is given), another computes the block's SHA-256
// (unless the caller knows it).
// Next returns the blocks in order. It is for one goroutine's use.
type Reader struct {
	out  chan result
	free chan *Block
	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
	err  error
}

type result struct {
	b   *Block
	err error
}

// ReadOptions tunes a Reader.
type ReadOptions struct {
	BlockSize int
	Depth     int       // the most blocks held; 0 means Depth
	Whole     hash.Hash // if set, written every byte read, in order
	Unhashed  bool      // leave each Block's SHA256 zero: the caller knows them
}

// NewReader starts reading src from off to end in blocks. Close the
// Reader when done with it.
func NewReader(src io.ReaderAt, off, end int64, o ReadOptions) *Reader {
	depth := cmpOr(o.Depth, Depth)
	r := &Reader{
		out:  make(chan result, depth),
		free: make(chan *Block, depth),
		stop: make(chan struct{}),
	}
	if o.Unhashed {
		r.wg.Add(1)
		go r.read(src, off, end, o.BlockSize, depth, o.Whole, r.out)
		return r
	}
	read := make(chan result, depth)
	r.wg.Add(2)
	go r.read(src, off, end, o.BlockSize, depth, o.Whole, read)
	go r.hash(read)
	return r
}

func cmpOr(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

func (r *Reader) read(src io.ReaderAt, off, end int64, blockSize, depth int, whole hash.Hash, read chan<- result) {
	defer r.wg.Done()
	defer close(read)
	made := 0
	for off < end {
		n := int(min(int64(blockSize), end-off))
		var b *Block
		select {
		case b = <-r.free:
		case <-r.stop:
			return
		default:
			if made < depth {
				made++
				b = new(Block)
				break
			}
			select {
			case b = <-r.free:
			case <-r.stop:
				return
			}
		}
		if cap(b.buf) < n {
			b.buf = make([]byte, min(int64(blockSize), end-off))
		}
		p := b.buf[:n]
		got, err := src.ReadAt(p, off)
		if got < n {
			// ReadAt may report io.EOF with a full block at the end; a
			// short one is a source that ended early, never stale bytes.
			if err == nil || err == io.EOF {
				err = &ShortError{At: off + int64(got)}
			}
			select {
			case read <- result{err: err}:
			case <-r.stop:
			}
			return
		}
		if whole != nil {
			whole.Write(p)
		}
		b.Offset, b.Data, b.SHA256 = off, p, [32]byte{}
		select {
		case read <- result{b: b}:
		case <-r.stop:
			return
		}
		off += int64(n)
	}
}

func (r *Reader) hash(read <-chan result) {
	defer r.wg.Done()
	defer close(r.out)
	for res := range read {
		if res.b != nil {
			res.b.SHA256 = sha256.Sum256(res.b.Data)
		}
		select {
		case r.out <- res:
		case <-r.stop:
			return
		}
	}
}

// Next returns the next block, io.EOF after the last, a *ShortError if
// the source ended early, or the error reading it. The block's Data is
// the Reader's until Release.
func (r *Reader) Next() (*Block, error) {
	if r.err != nil {
		return nil, r.err
	}
	res, ok := <-r.out
	switch {
	case !ok:
		r.err = io.EOF
	case res.err != nil:
		r.err = res.err
	}
	return res.b, r.err
}

// Release gives a block back for reading further: b is not to be used
// after.
func (r *Reader) Release(b *Block) {
	select {
	case r.free <- b:
	default: // the Reader holds as many as it may
	}
}

// Close stops the reading and waits for its goroutines.
func (r *Reader) Close() {
	r.once.Do(func() { close(r.stop) })
	r.wg.Wait()
}

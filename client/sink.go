package client

import (
	"bufio"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/larderfs/larder/course"
)

// A sink receives the checked blocks of one payload and, once all have
// arrived, checks the payload's total hash. Blocks come in any order, each
// once; put must copy p if it keeps it, since p aliases the reader's
// buffer.
type sink interface {
	put(index uint32, p []byte) error
	finish(size int64, total [32]byte) error
}

// sinkError words a failure of the destination, not of the server; the
// sink's own verdicts (a total hash mismatch, a full buffer) pass as they
// are.
func sinkError(err error) error {
	if errors.Is(err, ErrBufferLimit) || errors.Is(err, ErrIntegrity) {
		return err
	}
	return fmt.Errorf("client: writing the payload: %w", err)
}

// streamSink writes a payload in order to a plain io.Writer, holding blocks
// that arrive early in memory up to a bound, and hashes it as it goes.
type streamSink struct {
	w       io.Writer
	flush   func() error
	h       hash.Hash
	next    uint32            // the block the writer expects next
	pending map[uint32][]byte // blocks that came early, by index
	held    int64             // payload bytes in pending
	max     int64
}

func newStreamSink(w io.Writer, max int64) *streamSink {
	s := &streamSink{w: w, h: sha256.New(), max: max}
	if _, ok := w.(*bytesSink); !ok {
		// One write per 944-byte block would be a system call per block on
		// stdout; batch them.
		bw := bufio.NewWriterSize(w, 64<<10)
		s.w, s.flush = bw, bw.Flush
	}
	return s
}

func (s *streamSink) put(i uint32, p []byte) error {
	if i != s.next {
		if s.held+int64(len(p)) > s.max {
			return fmt.Errorf("%w (waiting for block %d with %d bytes held, and the limit is %d)",
				ErrBufferLimit, s.next, s.held, s.max)
		}
		if s.pending == nil {
			s.pending = make(map[uint32][]byte)
		}
		s.pending[i] = append([]byte(nil), p...)
		s.held += int64(len(p))
		return nil
	}
	if err := s.write(p); err != nil {
		return err
	}
	for {
		p, ok := s.pending[s.next]
		if !ok {
			return nil
		}
		delete(s.pending, s.next)
		s.held -= int64(len(p))
		if err := s.write(p); err != nil {
			return err
		}
	}
}

func (s *streamSink) write(p []byte) error {
	s.h.Write(p)
	s.next++
	_, err := s.w.Write(p)
	return err
}

func (s *streamSink) finish(size int64, total [32]byte) error {
	if s.flush != nil {
		if err := s.flush(); err != nil {
			return err
		}
	}
	if [32]byte(s.h.Sum(nil)) != total {
		return replyError("total hash mismatch")
	}
	return nil
}

// fileRun is how many bytes of consecutive blocks a fileSink gathers before
// one WriteAt: 64 blocks.
const fileRun = 64 * course.MaxBlockPayload

// fileSink writes each block at its offset in a destination that can also
// be read back. It hashes the payload while blocks come in order; once one
// does not, the rest of the payload is read back from the destination at
// the end, so that out-of-order blocks cost no memory.
type fileSink struct {
	w      io.WriterAt
	r      io.ReaderAt
	dst    io.Writer
	h      hash.Hash
	hashed uint32 // blocks [0, hashed) have been hashed
	run    []byte // consecutive blocks not yet written, starting at runOff
	runOff int64
}

func newFileSink(w io.WriterAt, r io.ReaderAt, dst io.Writer) *fileSink {
	return &fileSink{w: w, r: r, dst: dst, h: sha256.New(), run: make([]byte, 0, fileRun)}
}

func (s *fileSink) put(i uint32, p []byte) error {
	off := int64(i) * course.MaxBlockPayload
	if len(s.run) > 0 && (off != s.runOff+int64(len(s.run)) || len(s.run)+len(p) > cap(s.run)) {
		if err := s.writeRun(); err != nil {
			return err
		}
	}
	if len(s.run) == 0 {
		s.runOff = off
	}
	s.run = append(s.run, p...)
	if i == s.hashed {
		s.h.Write(p)
		s.hashed++
	}
	return nil
}

func (s *fileSink) writeRun() error {
	_, err := s.w.WriteAt(s.run, s.runOff)
	s.run = s.run[:0]
	return err
}

func (s *fileSink) finish(size int64, total [32]byte) error {
	if len(s.run) > 0 {
		if err := s.writeRun(); err != nil {
			return err
		}
	}
	if off := int64(s.hashed) * course.MaxBlockPayload; off < size {
		n, err := io.Copy(s.h, io.NewSectionReader(s.r, off, size-off))
		if err != nil {
			return fmt.Errorf("reading back the payload to check it: %w", err)
		}
		if n != size-off {
			return fmt.Errorf("reading back the payload to check it: got %d of %d bytes: %w", n, size-off, io.ErrUnexpectedEOF)
		}
	}
	if [32]byte(s.h.Sum(nil)) != total {
		return replyError("total hash mismatch")
	}
	if t, ok := s.dst.(interface{ Truncate(int64) error }); ok {
		if err := t.Truncate(size); err != nil {
			return err
		}
	}
	return nil
}

package client

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/larderfs/larder/course"
)

// progressEvery is how often, at most, Client.Progress is called; the clock
// is read only every progressCheck blocks, since reading it per 944-byte
// block would cost measurably at loopback speeds.
const (
	progressEvery = 100 * time.Millisecond
	progressCheck = 64
)

// reply is what readReply learnt from a complete, checked reply.
type reply struct {
	noReply bool
	status  course.Status
	total   [32]byte
	size    int64
	blocks  uint32
}

// assembly checks the blocks of one reply against each other and against
// the protocol's rules, and hands each good block to the sink.
type assembly struct {
	first  course.BlockHeader // the first block's header; the reference for the others
	blocks uint32             // blocks expected: the count
	seen   blockSet
	got    uint32 // blocks received
	bytes  int64  // payload bytes received
	size   int64  // exact payload size, once the last block has arrived; else -1
	sink   sink
}

// readReply reads and checks the blocks of a reply from br until all have
// arrived. pick chooses the sink once the first block has told the
// status. Connection failures come back as *netError; a reply that breaks
// the rules as *IntegrityError.
//
// A first header that no course server would send is ErrNotCourse, worded
// with the first bytes, which head holds.
func readReply(br *course.BlockReader, head *headReader, pick func(course.Status) sink,
	progress func(received, expected int64)) (reply, error) {
	var a assembly
	var lastReport time.Time
	for {
		h, p, err := br.ReadBlock()
		if a.sink == nil && (err == nil || h.Length > course.MaxBlockPayload || errors.Is(err, io.ErrUnexpectedEOF)) {
			if why := notCourse(h, head.b); why != "" {
				return reply{}, &notCourseError{head: head.b, why: why}
			}
		}
		if err != nil {
			return reply{noReply: err == io.EOF && a.sink == nil}, a.readError(err)
		}
		if a.sink == nil {
			if err := a.start(h, pick); err != nil {
				return reply{}, err
			}
		}
		if err := a.add(h, p); err != nil {
			return reply{}, err
		}
		done := a.got == a.blocks
		// Progress concerns payloads, not the text of an error reply.
		if progress != nil && a.first.Status == course.StatusOK &&
			(a.got == 1 || done || a.got%progressCheck == 0 && time.Since(lastReport) >= progressEvery) {
			progress(a.bytes, a.expected())
			lastReport = time.Now()
		}
		if done {
			if err := a.sink.finish(a.size, a.first.TotalHash); err != nil {
				return reply{}, sinkError(err)
			}
			return reply{status: a.first.Status, total: a.first.TotalHash, size: a.size, blocks: a.got}, nil
		}
	}
}

// readError classifies an error of ReadBlock.
func (a *assembly) readError(err error) error {
	var pe *course.ProtocolError
	switch {
	case err == io.EOF && a.sink == nil:
		return nil // no reply at all: the caller decides what that means
	case err == io.EOF:
		return &IntegrityError{Block: -1, Err: io.ErrUnexpectedEOF,
			Reason: fmt.Sprintf("reply ended after %d of %d blocks", a.got, a.blocks)}
	case errors.As(err, &pe) && (pe.Err == nil || errors.Is(pe.Err, io.ErrUnexpectedEOF)):
		// A frame that cannot be parsed, or one cut short by a clean close,
		// is the server's fault; anything else (a reset, a deadline) is the
		// network's.
		where := "in its first block"
		if a.sink != nil {
			where = fmt.Sprintf("after %d of %d blocks", a.got, a.blocks)
		}
		return &IntegrityError{Block: -1, Err: err, Reason: where}
	default:
		return &netError{err}
	}
}

// start takes the first block's header as the reference for the reply and
// chooses its sink.
func (a *assembly) start(h course.BlockHeader, pick func(course.Status) sink) error {
	if h.Count == 0 {
		// Even an empty file is one block, of length 0.
		return replyError("the reply declares 0 blocks; even an empty payload is one block")
	}
	a.first = h
	a.blocks = h.Count
	a.size = -1
	if h.Status != course.StatusOK && int64(a.blocks-1)*course.MaxBlockPayload >= maxMessage {
		return replyError("a %v reply of %d blocks is longer than the %d bytes allowed for a message",
			h.Status, h.Count, maxMessage)
	}
	a.sink = pick(h.Status)
	return nil
}

// add checks one block and hands it to the sink.
func (a *assembly) add(h course.BlockHeader, p []byte) error {
	i, f := h.Index, &a.first
	switch {
	case h.Status != f.Status:
		return blockError(i, "status %v differs from the first block's %v", h.Status, f.Status)
	case h.Count != f.Count:
		return blockError(i, "block count %d differs from the first block's %d", h.Count, f.Count)
	case h.TotalHash != f.TotalHash:
		return blockError(i, "total hash differs from the first block's")
	case i >= a.blocks:
		return blockError(i, "index out of range for a count of %d", h.Count)
	case i < a.blocks-1 && len(p) != course.MaxBlockPayload:
		return blockError(i, "%d payload bytes; every block but the last carries %d", len(p), course.MaxBlockPayload)
	case i == a.blocks-1 && a.blocks > 1 && len(p) == 0:
		return blockError(i, "the last of %d blocks is empty", a.blocks)
	case sha256.Sum256(p) != h.BlockHash:
		return blockError(i, "hash mismatch")
	case !a.seen.add(i):
		return blockError(i, "received twice")
	}
	if i == a.blocks-1 {
		a.size = int64(i)*course.MaxBlockPayload + int64(len(p))
	}
	a.got++
	a.bytes += int64(len(p))
	if err := a.sink.put(i, p); err != nil {
		return sinkError(err)
	}
	return nil
}

// expected is the payload size as far as it is known.
func (a *assembly) expected() int64 {
	if a.size >= 0 {
		return a.size
	}
	return int64(a.blocks) * course.MaxBlockPayload
}

// notCourse says why a first block header, whose first bytes are head,
// cannot come from a course server, or returns "". head may be shorter
// than a header, for a reply cut short: only its length field is judged
// then.
func notCourse(h course.BlockHeader, head []byte) string {
	if len(head) >= 4 && len(head) < course.BlockHeaderSize {
		h.Length = binary.BigEndian.Uint32(head)
	}
	switch {
	case len(head) >= 4 && h.Length > course.MaxBlockPayload:
		return fmt.Sprintf("a block of %d bytes, above %d", h.Length, course.MaxBlockPayload)
	case len(head) < course.BlockHeaderSize:
		return ""
	case !h.Status.Valid():
		return fmt.Sprintf("status %d, outside 1–7", uint32(h.Status))
	case h.Count > 0 && h.Index >= h.Count:
		return fmt.Sprintf("block %d of %d", h.Index, h.Count)
	}
	return ""
}

// notCourseError is a reply that no course server would send.
type notCourseError struct {
	head []byte // its first bytes
	why  string
}

func (e *notCourseError) Error() string {
	if bytes.HasPrefix(e.head, []byte("HTTP/")) {
		return fmt.Sprintf("client: an HTTP server answered, not a course-protocol server: its reply is not the course protocol (it starts with %s): is this the right port?",
			quoteHead(e.head))
	}
	return fmt.Sprintf("client: the server's reply is not the course protocol (it starts with %s: %s): is this the right port?",
		quoteHead(e.head), e.why)
}

func (e *notCourseError) Is(target error) bool { return target == ErrNotCourse }

// quoteHead quotes the first bytes of a reply for a message: up to 32 of
// them, as Go quotes a string, with "…" if there were more.
func quoteHead(b []byte) string {
	const most = 32
	more := ""
	if len(b) > most {
		b, more = b[:most], "…"
	}
	return strconv.Quote(string(b) + more)
}

// headReader keeps the first bytes read through it, up to a block header,
// for the message of a reply that is not the course protocol.
type headReader struct {
	r io.Reader
	b []byte
}

func (h *headReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	if keep := course.BlockHeaderSize - len(h.b); keep > 0 && n > 0 {
		h.b = append(h.b, p[:min(n, keep)]...)
	}
	return n, err
}

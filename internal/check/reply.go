package check

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/larderfs/larder/course"
)

// maxReply bounds what one exchange keeps of a reply, so that a server
// that never stops sending cannot exhaust the checker's memory, even with
// many clients at once: the largest reply the suite expects (large.txt)
// takes about 2.2 MiB.
const maxReply = 8 << 20

// block is one block of a reply as it came off the wire.
type block struct {
	h       course.BlockHeader
	payload []byte
}

// reply is a server's answer to one request, judged against the
// protocol's framing rules only; what each check expects of the status and
// the payload is the check's business.
type reply struct {
	raw      []byte        // every byte received, up to maxReply
	closed   bool          // the server closed the connection (EOF)
	readErr  error         // a read error other than EOF: a reset, the deadline
	sendErr  error         // the request could not be sent whole
	elapsed  time.Duration // from the first byte sent to the end of reading
	connect  time.Duration // how long the connection took to open
	blocks   []block       // in arrival order
	status   course.Status // the first block's status
	payload  []byte        // the blocks reassembled by number; nil unless complete
	trailing []byte        // bytes after the last block of a complete reply
	problems []string      // framing faults, in words
}

// complete reports whether every block of the reply arrived and was
// framed as the protocol says, whatever happened after it.
func (r *reply) complete() bool { return r.payload != nil && len(r.problems) == 0 }

// parseReply splits raw into blocks with the codec's block reader and
// checks everything the protocol says of a reply: the same status, count
// and total hash in every block, numbers below the count and each once,
// every block full but the last, each block's hash and the total hash of
// the payload reassembled by number, and nothing after the last block.
func parseReply(raw []byte) *reply {
	r := &reply{raw: raw}
	if len(raw) == 0 {
		return r
	}
	br := course.NewBlockReader(bytes.NewReader(raw))
	consumed := 0
	seen := map[uint32]int{} // block number -> position in r.blocks
	for {
		h, p, err := br.ReadBlock()
		if err == io.EOF {
			break
		}
		if err != nil {
			r.problems = append(r.problems, fmt.Sprintf("after %d whole blocks: %v", len(r.blocks), err))
			return r
		}
		consumed += course.BlockHeaderSize + len(p)
		b := block{h: h, payload: bytes.Clone(p)}
		if len(r.blocks) == 0 {
			r.status = h.Status
		} else {
			first := r.blocks[0].h
			switch {
			case h.Status != first.Status:
				r.problems = append(r.problems, fmt.Sprintf("block %d has status %d, the first block %d", h.Index, h.Status, first.Status))
			case h.Count != first.Count:
				r.problems = append(r.problems, fmt.Sprintf("block %d says %d blocks, the first block %d", h.Index, h.Count, first.Count))
			case h.TotalHash != first.TotalHash:
				r.problems = append(r.problems, fmt.Sprintf("block %d carries a total hash different from the first block's", h.Index))
			}
		}
		if sha256.Sum256(p) != h.BlockHash {
			r.problems = append(r.problems, fmt.Sprintf("block %d's hash is not the SHA-256 of its %d payload bytes", h.Index, len(p)))
		}
		if h.Index >= h.Count {
			r.problems = append(r.problems, fmt.Sprintf("block number %d is not below the block count %d", h.Index, h.Count))
		}
		if _, dup := seen[h.Index]; dup {
			r.problems = append(r.problems, fmt.Sprintf("block %d arrived twice", h.Index))
		}
		seen[h.Index] = len(r.blocks)
		r.blocks = append(r.blocks, b)
		if len(r.problems) > 0 {
			return r
		}
		if uint32(len(seen)) == r.blocks[0].h.Count {
			break
		}
	}
	if len(r.blocks) == 0 {
		return r
	}
	count := r.blocks[0].h.Count
	if uint32(len(seen)) < count {
		r.problems = append(r.problems, fmt.Sprintf("only %d of %d blocks arrived before the connection ended", len(seen), count))
		return r
	}
	var payload []byte
	for i := range count {
		b := r.blocks[seen[i]]
		if i+1 < count && len(b.payload) != course.MaxBlockPayload {
			r.problems = append(r.problems, fmt.Sprintf("block %d of %d carries %d bytes; every block but the last must carry %d", i, count, len(b.payload), course.MaxBlockPayload))
		}
		payload = append(payload, b.payload...)
	}
	if payload == nil {
		payload = []byte{}
	}
	if want, _ := course.BlockCount(int64(len(payload))); count != want {
		r.problems = append(r.problems, fmt.Sprintf("%d blocks for %d bytes; the count must be ceil(%d/944) = %d (1 for an empty payload)", count, len(payload), len(payload), want))
	}
	if sha256.Sum256(payload) != r.blocks[0].h.TotalHash {
		r.problems = append(r.problems, fmt.Sprintf("the total hash is not the SHA-256 of the %d bytes reassembled from the blocks", len(payload)))
	}
	r.payload = payload
	r.trailing = raw[consumed:]
	return r
}

// afterProblems lists what went wrong once the reply was complete or the
// reading stopped: bytes after the last block (a second reply), a reset,
// a connection never closed.
func (r *reply) afterProblems() []string {
	var p []string
	if r.sendErr != nil {
		p = append(p, "the server stopped reading before the request was all sent ("+r.sendErr.Error()+")")
	}
	if len(r.trailing) > 0 {
		p = append(p, fmt.Sprintf("%d bytes followed the last block (a second reply?): %s", len(r.trailing), hexPrefix(r.trailing, 32)))
	}
	switch {
	case r.readErr == nil:
	case errors.Is(r.readErr, syscall.ECONNRESET):
		p = append(p, "the connection was reset (the server closed with unread input; a client can lose the reply)")
	case errors.Is(r.readErr, os.ErrDeadlineExceeded):
		if r.payload != nil {
			p = append(p, "the server did not close the connection after the reply; clients read until the close")
		}
	default:
		p = append(p, "reading: "+r.readErr.Error())
	}
	return p
}

// faults is every framing problem of the reply, and what happened after it.
func (r *reply) faults() []string {
	return append(append([]string(nil), r.problems...), r.afterProblems()...)
}

// describe says in a line or two what came back.
func (r *reply) describe() string {
	var b strings.Builder
	switch {
	case len(r.raw) == 0 && errors.Is(r.readErr, os.ErrDeadlineExceeded):
		fmt.Fprintf(&b, "nothing within %v", r.elapsed.Round(time.Millisecond))
	case len(r.raw) == 0 && errors.Is(r.readErr, syscall.ECONNRESET):
		b.WriteString("no reply: the connection was reset")
	case len(r.raw) == 0:
		b.WriteString("no reply: the server closed the connection without a block")
	case len(r.blocks) == 0:
		fmt.Fprintf(&b, "%d bytes that are not a block: %s", len(r.raw), hexPrefix(r.raw, 48))
	default:
		fmt.Fprintf(&b, "status %d %s in %d block(s)", uint32(r.status), r.status, len(r.blocks))
		if len(r.blocks) > 1 {
			fmt.Fprintf(&b, " (arrival order %s)", arrivalOrder(r.blocks))
		}
		if r.payload != nil {
			if r.status == course.StatusOK {
				fmt.Fprintf(&b, ", %d payload bytes, sha256 %s", len(r.payload), shortHash(r.payload))
			} else {
				fmt.Fprintf(&b, ", message %s", quoteMessage(r.payload))
			}
		}
		fmt.Fprintf(&b, "; first bytes %s", hexPrefix(r.raw, 16))
	}
	if f := r.faults(); len(f) > 0 {
		b.WriteString("; " + strings.Join(f, "; "))
	}
	return b.String()
}

// fault says in a few words what is wrong with the reply, the same words
// for the same fault, so that many replies can be counted by kind.
func (r *reply) fault() string {
	switch {
	case len(r.blocks) == 0 && len(r.raw) > 0:
		return "bytes that are not a block"
	case len(r.blocks) == 0:
		return r.describe()
	case r.status != course.StatusOK && r.payload != nil:
		return fmt.Sprintf("status %d %s, message %s", uint32(r.status), r.status, quoteMessage(r.payload))
	case len(r.faults()) > 0:
		return r.faults()[0]
	}
	return fmt.Sprintf("status %d %s with a payload other than the file", uint32(r.status), r.status)
}

// arrivalOrder lists the block numbers in the order they came, shortened.
func arrivalOrder(bs []block) string {
	var s []string
	for i, b := range bs {
		if i == 8 {
			s = append(s, "…")
			break
		}
		s = append(s, fmt.Sprint(b.h.Index))
	}
	sorted := sort.SliceIsSorted(bs, func(i, j int) bool { return bs[i].h.Index < bs[j].h.Index })
	if sorted {
		return "in order"
	}
	return strings.Join(s, ",")
}

// hexPrefix returns the first n bytes of b in hex, with the total length
// when more follow.
func hexPrefix(b []byte, n int) string {
	if len(b) <= n {
		return spacedHex(b)
	}
	return fmt.Sprintf("%s … (%d bytes)", spacedHex(b[:n]), len(b))
}

func spacedHex(b []byte) string {
	s := hex.EncodeToString(b)
	var out strings.Builder
	for i := 0; i < len(s); i += 2 {
		if i > 0 {
			out.WriteByte(' ')
		}
		out.WriteString(s[i : i+2])
	}
	return out.String()
}

// shortHash is the first 16 hex digits of the SHA-256 of b.
func shortHash(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:8])
}

// quoteMessage quotes an error message, or shows it in hex if it is not
// text.
func quoteMessage(b []byte) string {
	if !utf8.Valid(b) {
		return hexPrefix(b, 32)
	}
	if len(b) > 120 {
		return fmt.Sprintf("%q…", b[:120])
	}
	return fmt.Sprintf("%q", b)
}

package course

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// BlockHeader is the 80-byte header in front of every block of a reply.
type BlockHeader struct {
	Length    uint32   // payload bytes in this block, at most MaxBlockPayload
	Status    Status   // the reply's status, the same in every block
	Index     uint32   // zero-based block number; the payload belongs at Index*944
	Count     uint32   // number of blocks in the reply
	BlockHash [32]byte // SHA-256 of this block's payload
	TotalHash [32]byte // SHA-256 of the whole payload, all blocks joined in order
}

// AppendBinary appends the 80-byte encoding of h to b.
func (h *BlockHeader) AppendBinary(b []byte) ([]byte, error) {
	b = binary.BigEndian.AppendUint32(b, h.Length)
	b = binary.BigEndian.AppendUint32(b, uint32(h.Status))
	b = binary.BigEndian.AppendUint32(b, h.Index)
	b = binary.BigEndian.AppendUint32(b, h.Count)
	b = append(b, h.BlockHash[:]...)
	return append(b, h.TotalHash[:]...), nil
}

// parseBlockHeader decodes the first BlockHeaderSize bytes of b.
func parseBlockHeader(b []byte) BlockHeader {
	h := BlockHeader{
		Length: binary.BigEndian.Uint32(b[0:]),
		Status: Status(binary.BigEndian.Uint32(b[4:])),
		Index:  binary.BigEndian.Uint32(b[8:]),
		Count:  binary.BigEndian.Uint32(b[12:]),
	}
	copy(h.BlockHash[:], b[16:48])
	copy(h.TotalHash[:], b[48:80])
	return h
}

// A BlockReader reads the blocks of a reply, as a client does.
type BlockReader struct {
	r   *bufio.Reader
	buf [MaxMessageSize]byte
}

// NewBlockReader returns a BlockReader that reads from r through a buffer
// large enough for 64 full blocks, so that a large reply costs few reads.
func NewBlockReader(r io.Reader) *BlockReader {
	return &BlockReader{r: bufio.NewReaderSize(r, 64*MaxMessageSize)}
}

// ReadBlock reads the next block. The payload aliases the reader's buffer
// and is valid until the next call. At the end of the reply (the server
// closed the connection between blocks) it returns io.EOF.
//
// A declared length above MaxBlockPayload, or a block cut short, is a
// *ProtocolError. ReadBlock does not check the hashes, nor that blocks agree
// with each other: that is the job of whoever reassembles the payload.
func (r *BlockReader) ReadBlock() (BlockHeader, []byte, error) {
	hdr := r.buf[:BlockHeaderSize]
	if n, err := io.ReadFull(r.r, hdr); err != nil {
		if err == io.EOF {
			return BlockHeader{}, nil, io.EOF
		}
		return BlockHeader{}, nil, &ProtocolError{
			Msg: fmt.Sprintf("block header cut short after %d of %d bytes", n, BlockHeaderSize),
			Err: err,
		}
	}
	h := parseBlockHeader(hdr)
	if err := checkLength(h); err != nil {
		return h, nil, err
	}
	payload := r.buf[BlockHeaderSize : BlockHeaderSize+int(h.Length)]
	if n, err := io.ReadFull(r.r, payload); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return h, nil, payloadShort(h, n, err)
	}
	return h, payload, nil
}

// CutBlock splits the first block off b, a reply held in memory or what
// remains of one: it returns the block's header, its payload (a slice of b)
// and the bytes after the block. It decodes and checks as ReadBlock does,
// with the same *ProtocolError for a length above MaxBlockPayload or a
// block cut short, for a client that has the whole reply already and
// wants no BlockReader with its 64 KiB buffer. An empty b is io.EOF.
func CutBlock(b []byte) (h BlockHeader, payload, rest []byte, err error) {
	if len(b) == 0 {
		return BlockHeader{}, nil, nil, io.EOF
	}
	if len(b) < BlockHeaderSize {
		return BlockHeader{}, nil, nil, &ProtocolError{
			Msg: fmt.Sprintf("block header cut short after %d of %d bytes", len(b), BlockHeaderSize),
			Err: io.ErrUnexpectedEOF,
		}
	}
	h = parseBlockHeader(b)
	if err := checkLength(h); err != nil {
		return h, nil, nil, err
	}
	b = b[BlockHeaderSize:]
	if len(b) < int(h.Length) {
		return h, nil, nil, payloadShort(h, len(b), io.ErrUnexpectedEOF)
	}
	return h, b[:h.Length], b[h.Length:], nil
}

// checkLength refuses a block that declares more payload than a block can
// carry, before any of it is read.
func checkLength(h BlockHeader) error {
	if h.Length > MaxBlockPayload {
		return &ProtocolError{Msg: fmt.Sprintf(
			"block %d declares %d payload bytes; the maximum is %d", h.Index, h.Length, MaxBlockPayload)}
	}
	return nil
}

// payloadShort is the error of a block whose payload ends after n bytes.
func payloadShort(h BlockHeader, n int, err error) error {
	return &ProtocolError{
		Msg: fmt.Sprintf("block %d cut short after %d of %d payload bytes", h.Index, n, h.Length),
		Err: err,
	}
}

// A Writer writes the blocks of a reply, as a server does. It gathers whole
// blocks, up to 64 of them (WriterBufferSize bytes), and hands them to the
// underlying writer together: every Write it makes holds whole blocks only,
// never part of one, so that a server can keep blocks whole on the wire
// (see SetBlocksPerWrite). Call Flush when the reply is complete.
type Writer struct {
	w          io.Writer
	batch      []byte // whole blocks not yet written, cap WriterBufferSize
	blocks     int    // how many blocks batch holds
	perWrite   int    // the most blocks per Write, 1 to 64
	err        error  // the first write error; every later call returns it
	hdr        [BlockHeaderSize]byte
	buf        []byte       // payload chunk for WritePayload, allocated on first use
	beforeLast func() error // see SetBeforeLast
}

// WriterBufferSize is the size of a Writer's buffer: 64 whole blocks.
const WriterBufferSize = 64 * MaxMessageSize

// NewWriter returns a Writer that writes to w, 64 blocks per Write.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: w, batch: make([]byte, 0, WriterBufferSize), perWrite: WriterBufferSize / MaxMessageSize}
}

// Reset discards anything buffered and makes the Writer write to w, so that
// a Writer can be reused from a pool. It restores 64 blocks per Write and
// clears SetBeforeLast.
func (w *Writer) Reset(dst io.Writer) {
	w.w, w.batch, w.blocks, w.err, w.beforeLast = dst, w.batch[:0], 0, nil, nil
	w.perWrite = WriterBufferSize / MaxMessageSize
}

// SetBlocksPerWrite sets the most blocks that one Write to the underlying
// writer carries, from 1 to 64 (the default). One block per Write is how the
// course's reference server sends (one sendall per block); a client that
// reads each block with a single recv, as the course's handout client does,
// depends on it where nothing else keeps blocks whole on the wire.
func (w *Writer) SetBlocksPerWrite(n int) {
	w.perWrite = min(max(n, 1), WriterBufferSize/MaxMessageSize)
}

// SetBeforeLast makes the next WritePayload or WritePayloadSums call fn
// once every block but the last one it sends has been written to the
// underlying writer, before the last is: the reply is complete only with
// its last block, so whatever must precede a complete reply (a durable
// audit record of the download) can go there. If fn returns an error, the
// last block is not written and the call returns that error. Reset clears
// fn, and so does the call that used it.
func (w *Writer) SetBeforeLast(fn func() error) { w.beforeLast = fn }

// Flush writes any buffered blocks to the underlying writer.
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	if len(w.batch) == 0 {
		return nil
	}
	_, err := w.w.Write(w.batch)
	w.batch, w.blocks = w.batch[:0], 0
	if err != nil {
		w.err = err
	}
	return err
}

// WriteBlock writes one block. It sets h.Length and h.BlockHash from payload,
// which must be at most MaxBlockPayload bytes long.
func (w *Writer) WriteBlock(h *BlockHeader, payload []byte) error {
	if len(payload) > MaxBlockPayload {
		return fmt.Errorf("course: block payload of %d bytes exceeds %d", len(payload), MaxBlockPayload)
	}
	h.BlockHash = sha256.Sum256(payload)
	return w.writeBlock(h, payload)
}

// writeBlock writes one block whose h.BlockHash is set; it sets h.Length.
// The block joins the batch, which is written when it holds perWrite
// blocks or has no room for another.
func (w *Writer) writeBlock(h *BlockHeader, payload []byte) error {
	if w.err != nil {
		return w.err
	}
	h.Length = uint32(len(payload))
	w.batch, _ = h.AppendBinary(w.batch)
	w.batch = append(w.batch, payload...)
	w.blocks++
	if w.blocks >= w.perWrite || cap(w.batch)-len(w.batch) < MaxMessageSize {
		return w.Flush()
	}
	return nil
}

// WriteMessage writes a whole reply whose payload is the text msg, split
// into blocks like a file. It does not flush.
func (w *Writer) WriteMessage(status Status, msg string) error {
	count, err := BlockCount(int64(len(msg)))
	if err != nil {
		return err
	}
	h := BlockHeader{Status: status, Count: count, TotalHash: sha256.Sum256([]byte(msg))}
	for i := range count {
		p := msg[:min(len(msg), MaxBlockPayload)]
		msg = msg[len(p):]
		h.Index = i
		if err := w.WriteBlock(&h, []byte(p)); err != nil {
			return err
		}
	}
	return nil
}

// AppendMessage appends to b a whole reply whose payload is the text msg,
// split into blocks like a file. A one-block message (most are) takes
// 80 bytes plus the text, so a caller can encode it without a Writer and
// its 64 KiB buffer.
func AppendMessage(b []byte, status Status, msg string) ([]byte, error) {
	count, err := BlockCount(int64(len(msg)))
	if err != nil {
		return b, err
	}
	h := BlockHeader{Status: status, Count: count, TotalHash: sha256.Sum256([]byte(msg))}
	for i := range count {
		p := msg[:min(len(msg), MaxBlockPayload)]
		msg = msg[len(p):]
		h.Index, h.Length, h.BlockHash = i, uint32(len(p)), sha256.Sum256([]byte(p))
		b, _ = h.AppendBinary(b)
		b = append(b, p...)
	}
	return b, nil
}

// chunkBlocks is how many blocks WritePayload reads from its source at once.
const chunkBlocks = 64

// WritePayload writes a whole reply whose payload is the first size bytes
// of src, with the given status and total hash (SHA-256 of those bytes, which
// the caller knows because the protocol puts it in front of the first block).
// An empty payload is sent as one empty block.
//
// Blocks go in order unless order is non-nil, in which case the i-th block
// written is block order(i); order must be a permutation of [0, count). In
// order, the source is read 64 blocks at a time. WritePayload does not flush.
// It returns the number of payload bytes written.
func (w *Writer) WritePayload(status Status, src io.ReaderAt, size int64, total [32]byte, order func(i uint32) uint32) (int64, error) {
	return w.WritePayloadSums(status, src, size, total, nil, order)
}

// WritePayloadSums is WritePayload with the blocks' SHA-256 known
// beforehand: sums[i] is sent as block i's hash, and no block is hashed.
// A nil sums means hashing each block as it goes, as WritePayload does;
// otherwise it must hold one hash per block. The hashes are trusted: a
// wrong one reaches the client, whose check of the block catches it.
func (w *Writer) WritePayloadSums(status Status, src io.ReaderAt, size int64, total [32]byte, sums [][32]byte, order func(i uint32) uint32) (int64, error) {
	before := w.beforeLast
	w.beforeLast = nil
	count, err := BlockCount(size)
	if err != nil {
		return 0, err
	}
	if sums != nil && len(sums) != int(count) {
		return 0, fmt.Errorf("course: %d block hashes for %d blocks", len(sums), count)
	}

	if w.buf == nil {
		w.buf = make([]byte, chunkBlocks*MaxBlockPayload)
	}
	h := BlockHeader{Status: status, Count: count, TotalHash: total}
	// last reports whether the next block is the last sent, and if so
	// flushes the others and asks before: a reply completes only with its
	// last block.
	last := func(i uint32) error {
		if i+1 != count || before == nil {
			return nil
		}
		if err := w.Flush(); err != nil {
			return err
		}
		return before()
	}
	var sent int64
	if size == 0 {
		if err := last(0); err != nil {
			return 0, err
		}
		return 0, w.writeBlockSum(&h, nil, sums)
	}
	if order != nil {
		for i := range count {
			h.Index = order(i)
			off := int64(h.Index) * MaxBlockPayload
			p := w.buf[:min(int64(MaxBlockPayload), size-off)]
			if err := readFullAt(src, p, off); err != nil {
				return sent, err
			}
			if err := last(i); err != nil {
				return sent, err
			}
			if err := w.writeBlockSum(&h, p, sums); err != nil {
				return sent, err
			}
			sent += int64(len(p))
		}
		return sent, nil
	}
	for off := int64(0); off < size; {
		chunk := w.buf[:min(int64(len(w.buf)), size-off)]
		if err := readFullAt(src, chunk, off); err != nil {
			return sent, err
		}
		for p := chunk; len(p) > 0; h.Index++ {
			n := min(len(p), MaxBlockPayload)
			if err := last(h.Index); err != nil {
				return sent, err
			}
			if err := w.writeBlockSum(&h, p[:n], sums); err != nil {
				return sent, err
			}
			sent += int64(n)
			p = p[n:]
		}
		off += int64(len(chunk))
	}
	return sent, nil
}

// writeBlockSum writes one block with its hash from sums, or hashed here
// if sums is nil.
func (w *Writer) writeBlockSum(h *BlockHeader, payload []byte, sums [][32]byte) error {
	if sums == nil {
		return w.WriteBlock(h, payload)
	}
	h.BlockHash = sums[h.Index]
	return w.writeBlock(h, payload)
}

// readFullAt fills p from src at off, treating a short read as the source
// having shrunk under us.
func readFullAt(src io.ReaderAt, p []byte, off int64) error {
	n, err := src.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("course: reading payload at offset %d: %w", off, err)
}

package audit

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"

	"github.com/larderfs/larder"
)

// A segment file holds spooled events:
//
//	header  "LDRAUDIT" (8 bytes), u32 format version (1), u32 CRC-32C of
//	        the 12 bytes before it
//	records u32 payload length, u32 CRC-32C (Castagnoli) of the payload,
//	        then the payload: one event in the codec.go form
//
// Integers are little-endian. A writer only appends whole batches of
// records and fdatasyncs each batch before it counts as durable, so after a
// crash only the tail after the last sync can be damaged.
const (
	segMagic      = "LDRAUDIT"
	segVersion    = 1
	headerSize    = 16
	recHeaderSize = 8
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errBadRecord reports a record that is cut short, has an impossible
// length or fails its checksum: a torn write, or damage.
var errBadRecord = errors.New("audit: damaged spool record")

// errBadHeader reports a segment whose header is missing or wrong.
var errBadHeader = errors.New("audit: not a spool segment (bad header)")

func segHeader() []byte {
	b := make([]byte, headerSize)
	copy(b, segMagic)
	binary.LittleEndian.PutUint32(b[8:], segVersion)
	binary.LittleEndian.PutUint32(b[12:], crc32.Checksum(b[:12], castagnoli))
	return b
}

func checkHeader(b []byte) error {
	if len(b) < headerSize || string(b[:8]) != segMagic ||
		binary.LittleEndian.Uint32(b[12:]) != crc32.Checksum(b[:12], castagnoli) {
		return errBadHeader
	}
	if v := binary.LittleEndian.Uint32(b[8:]); v != segVersion {
		return fmt.Errorf("audit: spool segment of format version %d; this build reads version %d", v, segVersion)
	}
	return nil
}

// readHeader checks the header of segment f.
func readHeader(f *os.File) error {
	var b [headerSize]byte
	if _, err := f.ReadAt(b[:], 0); err != nil {
		if errors.Is(err, io.EOF) {
			return errBadHeader
		}
		return err
	}
	return checkHeader(b[:])
}

// appendRecord appends one record holding e to b, and reports whether a
// field of e had to be cut (see maxField).
func appendRecord(b []byte, e *larder.Event) ([]byte, bool) {
	start := len(b)
	b = append(b, 0, 0, 0, 0, 0, 0, 0, 0)
	b, cut := appendEvent(b, e)
	p := b[start+recHeaderSize:]
	binary.LittleEndian.PutUint32(b[start:], uint32(len(p)))
	binary.LittleEndian.PutUint32(b[start+4:], crc32.Checksum(p, castagnoli))
	return b, cut
}

// recordReader reads the records of one segment in order, between two
// offsets.
type recordReader struct {
	br  *bufio.Reader
	off int64 // the offset of the next record
	end int64
	hdr [recHeaderSize]byte
	buf []byte
}

func newRecordReader() *recordReader {
	return &recordReader{br: bufio.NewReaderSize(nil, 128<<10)}
}

// reset starts reading f at off, a record boundary, up to end.
func (r *recordReader) reset(f io.ReaderAt, off, end int64) {
	r.br.Reset(io.NewSectionReader(f, off, end-off))
	r.off, r.end = off, end
}

// next returns the payload of the next record, valid until the next call.
// It returns io.EOF exactly at the end, errBadRecord for a record that is
// short, of impossible length or of a wrong checksum (r.off stays at its
// start), and other errors from reading.
func (r *recordReader) next() ([]byte, error) {
	if r.off == r.end {
		return nil, io.EOF
	}
	if _, err := io.ReadFull(r.br, r.hdr[:]); err != nil {
		return nil, short(err)
	}
	n := binary.LittleEndian.Uint32(r.hdr[:])
	// A zero length is refused: the CRC-32C of nothing is 0, so a run
	// of zero bytes (a file extended by a crash but never written) would
	// otherwise read as valid empty records.
	if n == 0 || n > maxPayload {
		return nil, errBadRecord
	}
	if cap(r.buf) < int(n) {
		r.buf = make([]byte, n, max(n, 4096))
	}
	p := r.buf[:n]
	if _, err := io.ReadFull(r.br, p); err != nil {
		return nil, short(err)
	}
	if crc32.Checksum(p, castagnoli) != binary.LittleEndian.Uint32(r.hdr[4:]) {
		return nil, errBadRecord
	}
	r.off += recHeaderSize + int64(n)
	return p, nil
}

// short turns the end of the section inside a record into errBadRecord.
func short(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errBadRecord
	}
	return err
}

// goodEnd returns the end of the last whole, valid record of segment f
// whose size is size, reading from the header on: where a torn tail
// starts, or size if there is none.
func goodEnd(f *os.File, size int64) (int64, error) {
	r := newRecordReader()
	r.reset(f, headerSize, size)
	for {
		_, err := r.next()
		switch {
		case err == io.EOF, errors.Is(err, errBadRecord):
			return r.off, nil
		case err != nil:
			return 0, err
		}
	}
}

package audit

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/larderfs/larder"
)

// The payload of a spool record is one larder.Event in a compact binary
// form, version 1:
//
//	byte      version (1)
//	uvarint   flags: which optional fields follow (fTime, fBytes, ...)
//	[16]byte  ID
//	varint    Time: seconds since 1970 (fTime)
//	uvarint   Time: nanoseconds within the second, < 1e9 (fTime)
//	varint    Bytes (fBytes)
//	varint    Status (fStatus)
//	varint    Duration in nanoseconds (fDuration)
//	varint    Seq (fSeq)
//	[32]byte  SHA256 (fSHA256)
//	uvarint   the length of each present string, in the order Kind,
//	          Server, User, Remote, Path, Reason
//	bytes     those strings, back to back
//
// Absent fields are zero. The strings come last so that a decoder makes
// one string of them all and slices it: one allocation per event. A field
// longer than maxField bytes is cut to maxField when encoded (an audit
// record must fit in a spool record; the protocol's own limits are far
// lower), and a decoder refuses everything it does not know: another
// version, unknown flags, lengths that overrun, trailing bytes.
const (
	codecVersion = 1
	maxField     = 16 << 10 // the longest string field kept, in bytes
)

const (
	fTime = 1 << iota
	fBytes
	fStatus
	fDuration
	fSeq
	fSHA256
	fKind
	fServer
	fUser
	fRemote
	fPath
	fReason

	fAll = fReason<<1 - 1
)

// maxPayload bounds an encoded event: the fixed part and its varints, plus
// six strings of at most maxField bytes with their lengths.
const maxPayload = 1 + 2 + 16 + 10 + 5 + 4*10 + 32 + 6*(3+maxField)

var errCodec = errors.New("audit: malformed event record")

// appendEvent appends the encoding of e to b. It does not allocate when b
// has room, and reports whether a string field had to be cut.
func appendEvent(b []byte, e *larder.Event) ([]byte, bool) {
	strs := [6]string{string(e.Kind), e.Server, e.User, e.Remote, e.Path, e.Reason}
	cut := false
	flags := uint64(0)
	for i, s := range strs {
		if len(s) > maxField {
			strs[i], cut = s[:maxField], true
		}
		if s != "" {
			flags |= fKind << i
		}
	}
	if !e.Time.IsZero() {
		flags |= fTime
	}
	if e.Bytes != 0 {
		flags |= fBytes
	}
	if e.Status != 0 {
		flags |= fStatus
	}
	if e.Duration != 0 {
		flags |= fDuration
	}
	if e.Seq != 0 {
		flags |= fSeq
	}
	if e.HasSHA256() {
		flags |= fSHA256
	}
	b = append(b, codecVersion)
	b = binary.AppendUvarint(b, flags)
	b = append(b, e.ID[:]...)
	if flags&fTime != 0 {
		b = binary.AppendVarint(b, e.Time.Unix())
		b = binary.AppendUvarint(b, uint64(e.Time.Nanosecond()))
	}
	if flags&fBytes != 0 {
		b = binary.AppendVarint(b, e.Bytes)
	}
	if flags&fStatus != 0 {
		b = binary.AppendVarint(b, int64(e.Status))
	}
	if flags&fDuration != 0 {
		b = binary.AppendVarint(b, int64(e.Duration))
	}
	if flags&fSeq != 0 {
		b = binary.AppendVarint(b, e.Seq)
	}
	if flags&fSHA256 != 0 {
		b = append(b, e.SHA256[:]...)
	}
	for _, s := range strs {
		if s != "" {
			b = binary.AppendUvarint(b, uint64(len(s)))
		}
	}
	for _, s := range strs {
		b = append(b, s...)
	}
	return b, cut
}

// decodeEvent decodes a payload that appendEvent wrote.
func decodeEvent(p []byte) (larder.Event, error) {
	var e larder.Event
	d := decoder{p: p}
	if v := d.byte(); v != codecVersion {
		if d.err != nil {
			return e, d.err
		}
		return e, fmt.Errorf("audit: event record of version %d; this build reads version %d", v, codecVersion)
	}
	flags := d.uvarint()
	if flags&^fAll != 0 {
		return e, errCodec
	}
	d.bytes(e.ID[:])
	if flags&fTime != 0 {
		sec, nsec := d.varint(), d.uvarint()
		if nsec >= 1e9 {
			return e, errCodec
		}
		e.Time = time.Unix(sec, int64(nsec)).UTC()
	}
	if flags&fBytes != 0 {
		e.Bytes = d.varint()
	}
	if flags&fStatus != 0 {
		e.Status = int(d.varint())
	}
	if flags&fDuration != 0 {
		e.Duration = time.Duration(d.varint())
	}
	if flags&fSeq != 0 {
		e.Seq = d.varint()
	}
	if flags&fSHA256 != 0 {
		d.bytes(e.SHA256[:])
	}
	var lens [6]uint64
	total := uint64(0)
	for i := range lens {
		if flags&(fKind<<i) != 0 {
			lens[i] = d.uvarint()
			if lens[i] == 0 || lens[i] > maxField {
				return e, errCodec
			}
			total += lens[i]
		}
	}
	if d.err != nil {
		return e, d.err
	}
	if total != uint64(len(d.p)) {
		return e, errCodec
	}
	all := string(d.p) // the one allocation: every string field slices it
	var strs [6]string
	at := uint64(0)
	for i, n := range lens {
		strs[i] = all[at : at+n]
		at += n
	}
	e.Kind = internKind(strs[0])
	e.Server, e.User, e.Remote, e.Path, e.Reason = strs[1], strs[2], strs[3], strs[4], strs[5]
	return e, nil
}

// internKind returns the constant for a known kind, so that decoded
// events share it.
func internKind(s string) larder.EventKind {
	for _, k := range larder.EventKinds {
		if string(k) == s {
			return k
		}
	}
	return larder.EventKind(s)
}

// decoder reads the fields of a payload, remembering the first error.
type decoder struct {
	p   []byte
	err error
}

func (d *decoder) byte() byte {
	if d.err != nil || len(d.p) < 1 {
		d.err = errCodec
		return 0
	}
	c := d.p[0]
	d.p = d.p[1:]
	return c
}

func (d *decoder) bytes(dst []byte) {
	if d.err != nil || len(d.p) < len(dst) {
		d.err = errCodec
		return
	}
	copy(dst, d.p)
	d.p = d.p[len(dst):]
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.p)
	if n <= 0 {
		d.err = errCodec
		return 0
	}
	d.p = d.p[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.p)
	if n <= 0 {
		d.err = errCodec
		return 0
	}
	d.p = d.p[n:]
	return v
}

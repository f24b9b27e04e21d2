package lnp

import (
	"encoding/binary"
	"time"
)

// Parts asks for the account's unfinished uploads whose ids sort after
// After ("" from the first).
type Parts struct{ After string }

// Cancel removes the unfinished uploads of Path, or every one not being
// written now if Path is "".
type Cancel struct{ Path string }

func (Parts) Type() Type  { return TypeParts }
func (Cancel) Type() Type { return TypeCancel }

func (m Parts) AppendBody(b []byte) []byte  { return appendStr(b, m.After) }
func (m Cancel) AppendBody(b []byte) []byte { return appendStr(b, m.Path) }

// Part is an unfinished upload, in the reply to PARTS.
type Part struct {
	ID       string    // the server's name for it, the key of PARTS' paging
	Path     string    // where the file goes; "" if the server does not know
	Size     uint64    // the file's announced size, which the part holds against the quota
	Received uint64    // the bytes received so far (verified, unless sent without block hashes)
	Modified time.Time // its last write
	Active   bool      // a session is writing it now
}

// PartsReply is the body of an OK reply to PARTS.
type PartsReply struct {
	Parts []Part
	More  bool
}

// MaxPartsReply is the most parts a reply to PARTS holds; a server sends
// fewer when they would not fit in a frame.
const MaxPartsReply = 1000

func (m *PartsReply) AppendBody(b []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(m.Parts)))
	for i := range m.Parts {
		b = AppendPart(b, &m.Parts[i])
	}
	return appendBool(b, m.More)
}

// AppendPart appends p's fields.
func AppendPart(b []byte, p *Part) []byte {
	b = appendStr(appendStr(b, p.ID), p.Path)
	b = binary.BigEndian.AppendUint64(b, p.Size)
	b = binary.BigEndian.AppendUint64(b, p.Received)
	return appendBool(appendTime(b, p.Modified), p.Active)
}

// ParsePartsReply parses the body of an OK reply to PARTS.
func ParsePartsReply(body []byte) (PartsReply, error) {
	d := decoder{b: body}
	n := d.u32()
	if n > MaxPartsReply {
		d.fail("a list of more than 1,000 parts")
	}
	var m PartsReply
	for i := uint32(0); i < n && d.err == nil; i++ {
		m.Parts = append(m.Parts, Part{ID: d.str(MaxNameSize), Path: d.path(), Size: d.u64(), Received: d.u64(), Modified: d.time(), Active: d.bool()})
	}
	m.More = d.bool()
	return m, d.done(TypeReply)
}

// CancelReply is the body of an OK reply to CANCEL: how many unfinished
// uploads were removed, and the bytes they held on the server's disk.
type CancelReply struct{ Count, Bytes uint64 }

func (m *CancelReply) AppendBody(b []byte) []byte {
	return binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(b, m.Count), m.Bytes)
}

// ParseCancelReply parses the body of an OK reply to CANCEL.
func ParseCancelReply(body []byte) (CancelReply, error) {
	d := decoder{b: body}
	m := CancelReply{Count: d.u64(), Bytes: d.u64()}
	return m, d.done(TypeReply)
}

package lnp

import (
	"encoding/binary"
	"math"
	"time"
	"unicode/utf8"

	"github.com/larderfs/larder"
)

// Message is a frame's body with its type: every request, and the
// server's WELCOME, REPLY and END.
type Message interface {
	Type() Type
	AppendBody(b []byte) []byte
}

// Hello opens a session.
type Hello struct {
	User      string
	Signature larder.Signature
	MaxBlock  uint32
	// Features are those the client offers; 0 sends none, as a client
	// from before features did.
	Features Features
}

// Welcome answers a Hello.
type Welcome struct {
	Status    Status
	Message   string
	BlockSize uint32
	Server    string
	// Features are those of the client's offer the server grants; 0
	// sends none, and a server answers none to a HELLO that offered
	// none, as a server from before features did.
	Features Features
}

// Features are optional parts of LNP/1 that a session uses: the client
// offers them in its HELLO, as a trailing `features u32`, and the server
// grants, in WELCOME, those of them it supports. A bit neither side knows
// is never granted, so a new bit never changes what an older peer sees.
type Features uint32

// The features.
const (
	// FeaturePutTime: a PUT carries the file's modification time, which
	// the server keeps.
	FeaturePutTime Features = 1 << 0
	// FeatureNoBlockHashes: DATA frames carry no block hash (the field
	// is all zeros and not checked), in both directions; a transfer is
	// verified by the whole file's SHA-256 at its end, so that each side
	// hashes each byte once instead of twice.
	FeatureNoBlockHashes Features = 1 << 1
	// FeatureTreeDelete: a DELETE may carry `recursive u8`; 1 removes a
	// folder and everything below it in one request.
	FeatureTreeDelete Features = 1 << 2
	// FeatureReasons: a REPLY that is not OK may end with `reason u8`
	// (see Reason), which tells apart refusals of one status that a
	// client answers differently.
	FeatureReasons Features = 1 << 3
)

// Reason tells apart, in a REPLY of a session granted FeatureReasons,
// refusals of one status that call for different remedies, so that a
// client need not read the message's text to choose its advice.
type Reason uint8

// The reasons. A client takes one it does not know as ReasonNone.
const (
	// ReasonNone: the status says all there is (the REPLY has no
	// reason field).
	ReasonNone Reason = 0
	// ReasonBeingRemoved: CONFLICT, because the path is in a tree, or
	// is one, whose removal (a recursive DELETE) is not finished. The
	// DELETE again finishes it; overwriting does not help.
	ReasonBeingRemoved Reason = 1
)

// appendFeatures appends f as a trailing field, or nothing for none.
func appendFeatures(b []byte, f Features) []byte {
	if f == 0 {
		return b
	}
	return binary.BigEndian.AppendUint32(b, uint32(f))
}

// features reads a trailing features field, if the body has one.
func (d *decoder) features() Features {
	if d.err != nil || len(d.b) == 0 {
		return 0
	}
	return Features(d.u32())
}

// Whoami asks who the session is, and the account's usage.
type Whoami struct{}

// Stat asks for the entry at Path.
type Stat struct{ Path string }

// List asks for the entries of the folder at Path after After.
type List struct {
	Path, After string
	// Limit is the most entries of the page, up to MaxListLimit; 0 asks
	// for the server's default (larder's is 1,000).
	Limit uint32
}

// Mkdir makes a folder.
type Mkdir struct{ Path string }

// Delete removes a file or an empty folder; with Recursive, a folder and
// everything below it. Only a session granted FeatureTreeDelete may send
// Recursive: the field is sent only when it is set, so that a DELETE
// without it is the DELETE of before.
type Delete struct {
	Path      string
	Recursive bool
}

// Rename moves From to To.
type Rename struct {
	From, To  string
	Overwrite bool
}

// Passwd replaces the account's signature and, with Credential, its
// LNP/1 credential too, made from the new password: both change in one
// request, with no enrollment on another connection.
type Passwd struct {
	Old, New   [32]byte
	Credential *Enroll
}

// Sums asks for the hashes of Count blocks from block First.
type Sums struct {
	Path  string
	First uint64
	Count uint32
}

// Get asks for the file at Path from Offset.
type Get struct {
	Path   string
	Offset uint64
}

// Put starts an upload of Size bytes to Path.
type Put struct {
	Path              string
	Size              uint64
	Overwrite, Resume bool
	// Modified is the file's modification time, which the server keeps;
	// the zero Time sends none (the server then takes the time of the
	// commit). Only a session granted FeaturePutTime may send one.
	Modified time.Time
}

// Reply answers a request: Status, Message, and for StatusOK the fields of
// the request's reply in Body, to be parsed by the type that the request
// calls for (WhoamiReply, Entry, ListReply, SumsReply, GetReply, PutReply).
type Reply struct {
	Status  Status
	Message string
	Body    []byte
	// Reason, for a status other than OK, in a session granted
	// FeatureReasons; ReasonNone sends no field.
	Reason Reason
}

// EndStatus ends a GET's DATA frames: the server says whether every byte
// was sent.
type EndStatus struct {
	Status  Status
	Message string
}

// EndHash ends a PUT's DATA frames: the client gives the whole file's
// SHA-256.
type EndHash struct{ SHA256 [32]byte }

// Data is a DATA frame's body. Payload points into the frame it was
// parsed from.
type Data struct {
	Offset uint64
	// SHA256 is the payload's, or zeros in a session granted
	// FeatureNoBlockHashes.
	SHA256  [32]byte
	Payload []byte
}

func (Hello) Type() Type     { return TypeHello }
func (Welcome) Type() Type   { return TypeWelcome }
func (Whoami) Type() Type    { return TypeWhoami }
func (Stat) Type() Type      { return TypeStat }
func (List) Type() Type      { return TypeList }
func (Mkdir) Type() Type     { return TypeMkdir }
func (Delete) Type() Type    { return TypeDelete }
func (Rename) Type() Type    { return TypeRename }
func (Passwd) Type() Type    { return TypePasswd }
func (Sums) Type() Type      { return TypeSums }
func (Get) Type() Type       { return TypeGet }
func (Put) Type() Type       { return TypePut }
func (Reply) Type() Type     { return TypeReply }
func (EndStatus) Type() Type { return TypeEnd }
func (EndHash) Type() Type   { return TypeEnd }

func (m Hello) AppendBody(b []byte) []byte {
	b = append(b, Magic...)
	b = appendStr(b, m.User)
	b = append(b, m.Signature[:]...)
	return appendFeatures(binary.BigEndian.AppendUint32(b, m.MaxBlock), m.Features)
}

func (m Welcome) AppendBody(b []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(m.Status))
	b = appendStr(b, m.Message)
	b = binary.BigEndian.AppendUint32(b, m.BlockSize)
	return appendFeatures(appendStr(b, m.Server), m.Features)
}

func (Whoami) AppendBody(b []byte) []byte  { return b }
func (m Stat) AppendBody(b []byte) []byte  { return appendStr(b, m.Path) }
func (m Mkdir) AppendBody(b []byte) []byte { return appendStr(b, m.Path) }

func (m Delete) AppendBody(b []byte) []byte {
	b = appendStr(b, m.Path)
	if m.Recursive {
		b = appendBool(b, true)
	}
	return b
}

func (m List) AppendBody(b []byte) []byte {
	b = appendStr(appendStr(b, m.Path), m.After)
	return binary.BigEndian.AppendUint32(b, m.Limit)
}

func (m Rename) AppendBody(b []byte) []byte {
	return appendBool(appendStr(appendStr(b, m.From), m.To), m.Overwrite)
}

func (m Passwd) AppendBody(b []byte) []byte {
	b = append(append(b, m.Old[:]...), m.New[:]...)
	if m.Credential != nil {
		b = m.Credential.AppendBody(b)
	}
	return b
}

func (m Sums) AppendBody(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(appendStr(b, m.Path), m.First)
	return binary.BigEndian.AppendUint32(b, m.Count)
}

func (m Get) AppendBody(b []byte) []byte {
	return binary.BigEndian.AppendUint64(appendStr(b, m.Path), m.Offset)
}

func (m Put) AppendBody(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(appendStr(b, m.Path), m.Size)
	b = appendBool(appendBool(b, m.Overwrite), m.Resume)
	if !m.Modified.IsZero() {
		b = binary.BigEndian.AppendUint64(b, uint64(unixNano(m.Modified)))
	}
	return b
}

// unixNano returns t in nanoseconds since 1970, the times before 1678 and
// after 2262, which an int64 cannot hold, as its least and greatest:
// UnixNano wraps them round to another time, which a server would keep
// as if the client had sent it.
func unixNano(t time.Time) int64 {
	switch {
	case t.Before(time.Unix(0, math.MinInt64)):
		return math.MinInt64
	case t.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64
	}
	return t.UnixNano()
}

func (m Reply) AppendBody(b []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(m.Status))
	b = append(appendStr(b, m.Message), m.Body...)
	if m.Status != StatusOK && m.Reason != ReasonNone {
		b = append(b, byte(m.Reason))
	}
	return b
}

func (m EndStatus) AppendBody(b []byte) []byte {
	return appendStr(binary.BigEndian.AppendUint16(b, uint16(m.Status)), m.Message)
}

func (m EndHash) AppendBody(b []byte) []byte { return append(b, m.SHA256[:]...) }

// AppendHead appends a DATA body's offset and hash: the payload follows
// (see Writer.WriteFrameParts).
func (m *Data) AppendHead(b []byte) []byte {
	return append(binary.BigEndian.AppendUint64(b, m.Offset), m.SHA256[:]...)
}

// ParseRequest parses the body of a request frame of type t, as the
// server reads it. A type that is not a request is a *ProtocolError.
func ParseRequest(t Type, body []byte) (Message, error) {
	d := decoder{b: body}
	var m Message
	switch t {
	case TypeWhoami:
		m = Whoami{}
	case TypeStat:
		m = Stat{Path: d.path()}
	case TypeList:
		m = List{Path: d.path(), After: d.str(MaxNameSize), Limit: d.u32()}
	case TypeMkdir:
		m = Mkdir{Path: d.path()}
	case TypeDelete:
		del := Delete{Path: d.path()}
		if d.err == nil && len(d.b) > 0 {
			// One encoding of each DELETE: not recursive is no field.
			if d.u8() != 1 {
				d.fail("a recursive flag that is not 1 (a DELETE that is not recursive has no such field)")
			}
			del.Recursive = true
		}
		m = del
	case TypeRename:
		m = Rename{From: d.path(), To: d.path(), Overwrite: d.bool()}
	case TypePasswd:
		p := Passwd{Old: d.hash(), New: d.hash()}
		if d.err == nil && len(d.b) > 0 {
			p.Credential = &Enroll{Salt: d.salt(), KDF: d.kdf(), StoredKey: d.hash(), ServerKey: d.hash()}
		}
		m = p
	case TypeSums:
		m = Sums{Path: d.path(), First: d.u64(), Count: d.u32()}
	case TypeGet:
		m = Get{Path: d.path(), Offset: d.u64()}
	case TypePut:
		p := Put{Path: d.path(), Size: d.u64(), Overwrite: d.bool(), Resume: d.bool()}
		if d.err == nil && len(d.b) > 0 {
			// Any time, 0 and before 1970 included, is the client's:
			// the server judges it.
			p.Modified = time.Unix(0, int64(d.u64())).UTC()
		}
		m = p
	case TypeParts:
		m = Parts{After: d.str(MaxNameSize)}
	case TypeCancel:
		m = Cancel{Path: d.path()}
	case TypeDeviceAdd, TypeDevices, TypeDeviceRevoke:
		m = d.deviceRequest(t)
	default:
		return nil, malformed("%v is not a request", t)
	}
	if err := d.done(t); err != nil {
		return nil, err
	}
	return m, nil
}

// ParseHello parses a HELLO body.
func ParseHello(body []byte) (Hello, error) {
	d := decoder{b: body}
	if magic := d.bytes(len(Magic)); d.err == nil && string(magic) != Magic {
		return Hello{}, &ProtocolError{Msg: "not LNP/1: the HELLO does not start with " + Magic}
	}
	m := Hello{User: d.str(64), Signature: d.hash(), MaxBlock: d.u32()}
	m.Features = d.features()
	return m, d.done(TypeHello)
}

// ParseWelcome parses a WELCOME body.
func ParseWelcome(body []byte) (Welcome, error) {
	d := decoder{b: body}
	m := Welcome{Status: Status(d.u16()), Message: d.str(MaxControlBody), BlockSize: d.u32(), Server: d.str(MaxControlBody)}
	m.Features = d.features()
	return m, d.done(TypeWelcome)
}

// ParseReply parses a REPLY body; Body points into body. A REPLY that is
// not OK has no body, only its optional reason.
func ParseReply(body []byte) (Reply, error) {
	d := decoder{b: body}
	m := Reply{Status: Status(d.u16()), Message: d.str(MaxControlBody)}
	if d.err != nil || m.Status == StatusOK {
		m.Body = d.b
		return m, d.err
	}
	if len(d.b) > 0 {
		m.Reason = Reason(d.u8())
	}
	return m, d.done(TypeReply)
}

// ParseEndStatus parses the END of a GET.
func ParseEndStatus(body []byte) (EndStatus, error) {
	d := decoder{b: body}
	m := EndStatus{Status: Status(d.u16()), Message: d.str(MaxControlBody)}
	return m, d.done(TypeEnd)
}

// ParseEndHash parses the END of a PUT.
func ParseEndHash(body []byte) (EndHash, error) {
	d := decoder{b: body}
	m := EndHash{SHA256: d.hash()}
	return m, d.done(TypeEnd)
}

// ParseData parses a DATA body, checking only its shape: the payload is
// 1 byte or more; its hash is the reader's to check.
func ParseData(body []byte) (Data, error) {
	if len(body) <= DataOverhead {
		return Data{}, malformed("DATA frame of %d bytes: no payload", len(body))
	}
	return Data{
		Offset:  binary.BigEndian.Uint64(body),
		SHA256:  [32]byte(body[8:DataOverhead]),
		Payload: body[DataOverhead:],
	}, nil
}

// Entry is a file or folder, in the replies of STAT, LIST and PUT.
type Entry struct {
	Name     string
	Dir      bool
	Size     uint64
	Modified time.Time
	SHA256   [32]byte // all zeros for a folder
}

// Entry kinds on the wire.
const (
	kindFile = 1
	kindDir  = 2
)

// AppendEntry appends e's fields.
func AppendEntry(b []byte, e *Entry) []byte {
	kind := byte(kindFile)
	if e.Dir {
		kind = kindDir
	}
	b = append(appendStr(b, e.Name), kind)
	b = binary.BigEndian.AppendUint64(b, e.Size)
	b = appendTime(b, e.Modified)
	return append(b, e.SHA256[:]...)
}

func (d *decoder) entry() Entry {
	e := Entry{Name: d.str(MaxNameSize)}
	switch d.u8() {
	case kindFile:
	case kindDir:
		e.Dir = true
	default:
		d.fail("an entry of unknown kind")
	}
	e.Size, e.Modified, e.SHA256 = d.u64(), d.time(), d.hash()
	return e
}

// ParseEntry parses the body of an OK reply to STAT or PUT.
func ParseEntry(body []byte) (Entry, error) {
	d := decoder{b: body}
	e := d.entry()
	return e, d.done(TypeReply)
}

// WhoamiReply is the body of an OK reply to WHOAMI.
type WhoamiReply struct {
	User                  string
	BytesUsed, BytesQuota uint64
	FilesUsed, FilesQuota uint64
}

func (m *WhoamiReply) AppendBody(b []byte) []byte {
	b = appendStr(b, m.User)
	for _, v := range []uint64{m.BytesUsed, m.BytesQuota, m.FilesUsed, m.FilesQuota} {
		b = binary.BigEndian.AppendUint64(b, v)
	}
	return b
}

// ParseWhoamiReply parses the body of an OK reply to WHOAMI.
func ParseWhoamiReply(body []byte) (WhoamiReply, error) {
	d := decoder{b: body}
	m := WhoamiReply{User: d.str(64), BytesUsed: d.u64(), BytesQuota: d.u64(), FilesUsed: d.u64(), FilesQuota: d.u64()}
	return m, d.done(TypeReply)
}

// EntrySize returns the bytes that an entry named name takes in a reply.
func EntrySize(name string) int { return 2 + len(name) + 1 + 8 + 8 + 32 }

// MaxListBytes is the most that a LIST reply's entries may take, so that
// its REPLY (status, empty message, count, entries, more) fits in a frame
// of MaxControlBody bytes. A server fills a page until the next entry
// would pass it.
const MaxListBytes = MaxControlBody - (2 + 2) - (4 + 1)

// ListReply is the body of an OK reply to LIST.
type ListReply struct {
	Entries []Entry
	More    bool
}

func (m *ListReply) AppendBody(b []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(m.Entries)))
	for i := range m.Entries {
		b = AppendEntry(b, &m.Entries[i])
	}
	return appendBool(b, m.More)
}

// ParseListReply parses the body of an OK reply to LIST.
func ParseListReply(body []byte) (ListReply, error) {
	d := decoder{b: body}
	n := d.u32()
	if n > MaxListLimit {
		d.fail("a list of more than 10,000 entries")
	}
	var m ListReply
	for i := uint32(0); i < n && d.err == nil; i++ {
		m.Entries = append(m.Entries, d.entry())
	}
	m.More = d.bool()
	return m, d.done(TypeReply)
}

// SumsReply is the body of an OK reply to SUMS.
type SumsReply struct{ Sums [][32]byte }

func (m *SumsReply) AppendBody(b []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(m.Sums)))
	for i := range m.Sums {
		b = append(b, m.Sums[i][:]...)
	}
	return b
}

// ParseSumsReply parses the body of an OK reply to SUMS.
func ParseSumsReply(body []byte) (SumsReply, error) {
	d := decoder{b: body}
	n := d.u32()
	if n > MaxSumsCount {
		d.fail("more sums than a SUMS may ask for")
	}
	var m SumsReply
	for i := uint32(0); i < n && d.err == nil; i++ {
		m.Sums = append(m.Sums, d.hash())
	}
	return m, d.done(TypeReply)
}

// GetReply is the body of an OK reply to GET.
type GetReply struct {
	Size     uint64
	Modified time.Time
	SHA256   [32]byte
}

func (m *GetReply) AppendBody(b []byte) []byte {
	b = appendTime(binary.BigEndian.AppendUint64(b, m.Size), m.Modified)
	return append(b, m.SHA256[:]...)
}

// ParseGetReply parses the body of an OK reply to GET.
func ParseGetReply(body []byte) (GetReply, error) {
	d := decoder{b: body}
	m := GetReply{Size: d.u64(), Modified: d.time(), SHA256: d.hash()}
	return m, d.done(TypeReply)
}

// PutReply is the body of the OK reply that starts an upload.
type PutReply struct{ Offset uint64 }

func (m *PutReply) AppendBody(b []byte) []byte { return binary.BigEndian.AppendUint64(b, m.Offset) }

// ParsePutReply parses the body of the OK reply that starts an upload.
func ParsePutReply(body []byte) (PutReply, error) {
	d := decoder{b: body}
	m := PutReply{Offset: d.u64()}
	return m, d.done(TypeReply)
}

func appendStr(b []byte, s string) []byte {
	return append(binary.BigEndian.AppendUint16(b, uint16(len(s))), s...)
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

func appendTime(b []byte, t time.Time) []byte {
	var ns int64
	if !t.IsZero() {
		ns = unixNano(t)
	}
	return binary.BigEndian.AppendUint64(b, uint64(ns))
}

// decoder reads fields from a body; the first failure sticks, and later
// reads return zero values.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = malformed("%s", what)
	}
}

func (d *decoder) bytes(n int) []byte {
	if d.err != nil {
		return nil
	}
	if len(d.b) < n {
		d.fail("a frame body cut short")
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) u8() uint8 {
	if p := d.bytes(1); p != nil {
		return p[0]
	}
	return 0
}

func (d *decoder) u16() uint16 {
	if p := d.bytes(2); p != nil {
		return binary.BigEndian.Uint16(p)
	}
	return 0
}

func (d *decoder) u32() uint32 {
	if p := d.bytes(4); p != nil {
		return binary.BigEndian.Uint32(p)
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if p := d.bytes(8); p != nil {
		return binary.BigEndian.Uint64(p)
	}
	return 0
}

func (d *decoder) time() time.Time {
	ns := int64(d.u64())
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

func (d *decoder) bool() bool {
	switch d.u8() {
	case 0:
		return false
	case 1:
		return true
	}
	d.fail("a flag that is neither 0 nor 1")
	return false
}

func (d *decoder) hash() (h [32]byte) {
	if p := d.bytes(32); p != nil {
		h = [32]byte(p)
	}
	return h
}

// str reads a string of at most limit bytes of UTF-8.
func (d *decoder) str(limit int) string {
	n := int(d.u16())
	if d.err == nil && n > limit {
		d.fail("a string longer than its field allows")
		return ""
	}
	p := d.bytes(n)
	if p != nil && !utf8.Valid(p) {
		d.fail("a string that is not UTF-8")
		return ""
	}
	return string(p)
}

// path reads a path; its rules beyond its length are the server's.
func (d *decoder) path() string { return d.str(MaxPathSize) }

// done reports the first failure, or bytes left over.
func (d *decoder) done(t Type) error {
	if d.err == nil && len(d.b) > 0 {
		d.err = malformed("%v body with %d bytes left over", t, len(d.b))
	}
	return d.err
}

// DeleteReply is the body of an OK reply to a recursive DELETE: what the
// server removed, the folder itself among the folders, and More: the
// server stopped before the end, so as not to hold the account's other
// changes long, and the same DELETE again goes on. A DELETE that is not
// recursive has an empty reply.
type DeleteReply struct {
	Files, Folders, Bytes uint64
	More                  bool
}

// Add counts in m what o removed; More is left as it is.
func (m *DeleteReply) Add(o DeleteReply) {
	m.Files, m.Folders, m.Bytes = m.Files+o.Files, m.Folders+o.Folders, m.Bytes+o.Bytes
}

func (m *DeleteReply) AppendBody(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(b, m.Files), m.Folders)
	return appendBool(binary.BigEndian.AppendUint64(b, m.Bytes), m.More)
}

// ParseDeleteReply parses the body of an OK reply to a recursive DELETE.
func ParseDeleteReply(body []byte) (DeleteReply, error) {
	d := decoder{b: body}
	m := DeleteReply{Files: d.u64(), Folders: d.u64(), Bytes: d.u64(), More: d.bool()}
	return m, d.done(TypeReply)
}

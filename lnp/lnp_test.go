package lnp

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
)

// requests are one of each request, with every field set.
var requests = []Message{
	Whoami{},
	Stat{Path: "a/b.txt"},
	List{Path: "/shared", After: "m", Limit: 100},
	Mkdir{Path: "new"},
	Delete{Path: "old.bin"},
	Rename{From: "a", To: "b/c", Overwrite: true},
	Passwd{Old: sha256.Sum256([]byte("old")), New: sha256.Sum256([]byte("new"))},
	Sums{Path: "big.iso", First: 1 << 33, Count: 4096},
	Get{Path: "big.iso", Offset: 1<<40 + 7},
	Put{Path: "up/load.bin", Size: 20 << 30, Overwrite: true, Resume: true},
	Parts{After: "0a1b-20.part"},
	Cancel{Path: "up/load.bin"},
}

func TestRequestsRoundTrip(t *testing.T) {
	for _, m := range requests {
		body := m.AppendBody(nil)
		got, err := ParseRequest(m.Type(), body)
		if err != nil {
			t.Errorf("%v: %v", m.Type(), err)
			continue
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("%v: got %+v, want %+v", m.Type(), got, m)
		}
		// Every shorter body is cut short, every longer one has bytes left.
		for n := range len(body) {
			if _, err := ParseRequest(m.Type(), body[:n]); !isProtocolError(err) {
				t.Errorf("%v cut to %d of %d bytes: %v", m.Type(), n, len(body), err)
			}
		}
		if _, err := ParseRequest(m.Type(), append(body, 0)); !isProtocolError(err) {
			t.Errorf("%v with a byte left over: %v", m.Type(), err)
		}
	}
}

func isProtocolError(err error) bool {
	var pe *ProtocolError
	return errors.As(err, &pe)
}

func TestParseRequestRefuses(t *testing.T) {
	for _, c := range []struct {
		name string
		t    Type
		body []byte
	}{
		{"not a request", TypeReply, nil},
		{"a flag of 2", TypeRename, append(Rename{From: "a", To: "b"}.AppendBody(nil)[:8], 2)},
		{"a path that is not UTF-8", TypeStat, []byte{0, 2, 0xff, 0xfe}},
		{"a path too long", TypeStat, Stat{Path: strings.Repeat("a", MaxPathSize+1)}.AppendBody(nil)},
		{"an after too long", TypeList, List{Path: "x", After: strings.Repeat("a", MaxNameSize+1)}.AppendBody(nil)},
	} {
		if _, err := ParseRequest(c.t, c.body); !isProtocolError(err) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

func TestSessionMessagesRoundTrip(t *testing.T) {
	h := Hello{User: "alice", Signature: sha256.Sum256([]byte("pw")), MaxBlock: 1 << 20}
	if got, err := ParseHello(h.AppendBody(nil)); err != nil || got != h {
		t.Errorf("HELLO: %+v, %v", got, err)
	}
	bad := h.AppendBody(nil)
	bad[0] = 'X'
	if _, err := ParseHello(bad); !isProtocolError(err) || !strings.Contains(err.Error(), "LNP1") {
		t.Errorf("HELLO without the magic: %v", err)
	}
	w := Welcome{Status: StatusOK, Message: "hi", BlockSize: 1 << 20, Server: "larder test"}
	if got, err := ParseWelcome(w.AppendBody(nil)); err != nil || got != w {
		t.Errorf("WELCOME: %+v, %v", got, err)
	}
	es := EndStatus{Status: StatusOther, Message: "disk failed"}
	if got, err := ParseEndStatus(es.AppendBody(nil)); err != nil || got != es {
		t.Errorf("END: %+v, %v", got, err)
	}
	eh := EndHash{SHA256: sha256.Sum256([]byte("file"))}
	if got, err := ParseEndHash(eh.AppendBody(nil)); err != nil || got != eh {
		t.Errorf("END: %+v, %v", got, err)
	}
}

func TestRepliesRoundTrip(t *testing.T) {
	when := time.Date(2026, 11, 22, 20, 0, 0, 123456789, time.UTC)
	file := Entry{Name: "a.bin", Size: 1 << 40, Modified: when, SHA256: sha256.Sum256([]byte("a"))}
	dir := Entry{Name: "sub", Dir: true, Modified: when}

	reply := func(body []byte) []byte {
		r, err := ParseReply(Reply{Status: StatusOK, Message: "", Body: body}.AppendBody(nil))
		if err != nil || r.Status != StatusOK {
			t.Fatalf("REPLY: %+v, %v", r, err)
		}
		return r.Body
	}
	if got, err := ParseEntry(reply(AppendEntry(nil, &file))); err != nil || !reflect.DeepEqual(got, file) {
		t.Errorf("entry: %+v, %v", got, err)
	}
	lr := ListReply{Entries: []Entry{dir, file}, More: true}
	if got, err := ParseListReply(reply(lr.AppendBody(nil))); err != nil || !reflect.DeepEqual(got, lr) {
		t.Errorf("list: %+v, %v", got, err)
	}
	wr := WhoamiReply{User: "alice", BytesUsed: 1, BytesQuota: 2, FilesUsed: 3, FilesQuota: 4}
	if got, err := ParseWhoamiReply(reply(wr.AppendBody(nil))); err != nil || got != wr {
		t.Errorf("whoami: %+v, %v", got, err)
	}
	sr := SumsReply{Sums: [][32]byte{sha256.Sum256([]byte("1")), sha256.Sum256([]byte("2"))}}
	if got, err := ParseSumsReply(reply(sr.AppendBody(nil))); err != nil || !reflect.DeepEqual(got, sr) {
		t.Errorf("sums: %+v, %v", got, err)
	}
	gr := GetReply{Size: 5, Modified: when, SHA256: sha256.Sum256([]byte("hello"))}
	if got, err := ParseGetReply(reply(gr.AppendBody(nil))); err != nil || got != gr {
		t.Errorf("get: %+v, %v", got, err)
	}
	pr := PutReply{Offset: 1 << 30}
	if got, err := ParsePutReply(reply(pr.AppendBody(nil))); err != nil || got != pr {
		t.Errorf("put: %+v, %v", got, err)
	}
	// A count the body cannot hold is refused, not allocated.
	if _, err := ParseListReply([]byte{0xff, 0xff, 0xff, 0xff}); !isProtocolError(err) {
		t.Errorf("a list of 4 billion entries: %v", err)
	}
	if _, err := ParseSumsReply([]byte{0, 0, 0x10, 1}); !isProtocolError(err) {
		t.Errorf("4,097 sums: %v", err)
	}
}

func TestFrames(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf, 0)
	payload := bytes.Repeat([]byte("x"), MinBlockSize)
	d := Data{Offset: 4096, SHA256: sha256.Sum256(payload)}
	must(t, w.Write(Stat{Path: "a"}))
	must(t, w.WriteFrameParts(TypeData, d.AppendHead(nil), payload))
	// The same frame with its payload written by the caller after the
	// head, as a sendfile would.
	must(t, w.WriteFrameHead(TypeData, d.AppendHead(nil), len(payload)))
	must(t, w.Flush())
	buf.Write(payload)

	r := NewReader(&buf)
	typ, body, err := r.Next()
	if err != nil || typ != TypeStat || string(body) != "\x00\x01a" {
		t.Fatalf("first frame: %v %q %v", typ, body, err)
	}
	var kept []byte
	for i := range 2 {
		typ, body, err = r.Next()
		if err != nil || typ != TypeData {
			t.Fatalf("DATA frame %d: %v %v", i, typ, err)
		}
		got, err := ParseData(body)
		if err != nil || got.Offset != d.Offset || got.SHA256 != d.SHA256 || !bytes.Equal(got.Payload, payload) {
			t.Fatalf("DATA frame %d: %+v %v", i, got.Offset, err)
		}
		// The body of the first is taken from the reader, and must stay
		// as it is while the second is read.
		if i == 0 {
			kept = r.SwapBuffer(nil)
			if &kept[:len(body)][0] != &body[0] {
				t.Fatal("SwapBuffer did not return the buffer holding the last body")
			}
		}
	}
	if got, err := ParseData(kept[:len(body)]); err != nil || !bytes.Equal(got.Payload, payload) {
		t.Fatal("the body taken with SwapBuffer changed while the next frame was read")
	}
	if _, _, err := r.Next(); err != io.EOF {
		t.Fatalf("at the end: %v, want io.EOF", err)
	}
}

func TestReaderLimits(t *testing.T) {
	header := func(typ Type, n uint32) []byte {
		return []byte{byte(typ), byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
	}
	for _, c := range []struct {
		name  string
		input []byte
	}{
		{"a control frame over 64 KiB", header(TypeStat, MaxControlBody+1)},
		{"a DATA frame over the block size", header(TypeData, MinBlockSize+DataOverhead+1)},
		{"a length of 4 GiB", header(TypePut, 0xffffffff)},
		{"a header cut short", []byte{byte(TypeStat), 0}},
		{"a body cut short", append(header(TypeStat, 10), 1, 2, 3)},
	} {
		r := NewReader(bytes.NewReader(c.input))
		r.SetBlockSize(MinBlockSize)
		if _, _, err := r.Next(); !isProtocolError(err) {
			t.Errorf("%s: %v", c.name, err)
		}
		// Nothing was reserved for a body that was refused.
		if cap(r.buf) > 16 {
			t.Errorf("%s: the reader reserved %d bytes", c.name, cap(r.buf))
		}
	}
	if _, err := ParseData(make([]byte, DataOverhead)); !isProtocolError(err) {
		t.Errorf("DATA without payload: %v", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// FuzzParseRequest: any body either fails with a ProtocolError or parses
// to a request that encodes back to the same bytes.
func FuzzParseRequest(f *testing.F) {
	for _, m := range requests {
		f.Add(byte(m.Type()), m.AppendBody(nil))
	}
	f.Fuzz(func(t *testing.T, typ byte, body []byte) {
		m, err := ParseRequest(Type(typ), body)
		if err != nil {
			if !isProtocolError(err) {
				t.Fatalf("not a ProtocolError: %v", err)
			}
			return
		}
		if again := m.AppendBody(nil); !bytes.Equal(again, body) {
			t.Fatalf("%v re-encodes to %x, read from %x", m.Type(), again, body)
		}
	})
}

// FuzzReader: frames split at every position read the same as whole.
func FuzzReader(f *testing.F) {
	var b bytes.Buffer
	w := NewWriter(&b, 0)
	for _, m := range requests {
		w.Write(m)
	}
	w.Flush()
	f.Add(b.Bytes())
	f.Fuzz(func(t *testing.T, input []byte) {
		type frame struct {
			typ  Type
			body string
			err  bool
		}
		read := func(r io.Reader) (out []frame) {
			fr := NewReader(r)
			for {
				typ, body, err := fr.Next()
				if err == io.EOF {
					return out
				}
				out = append(out, frame{typ, string(body), err != nil})
				if err != nil {
					return out
				}
			}
		}
		whole := read(bytes.NewReader(input))
		for i := 1; i < len(input); i++ {
			split := read(io.MultiReader(bytes.NewReader(input[:i]), bytes.NewReader(input[i:])))
			if !reflect.DeepEqual(split, whole) {
				t.Fatalf("split at %d: %v, whole: %v", i, split, whole)
			}
		}
	})
}

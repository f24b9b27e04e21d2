package course

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/larderfs/larder"
)

// rawRequest builds request bytes by hand, so that tests can send what
// AppendBinary refuses to produce.
func rawRequest(name string, sig larder.Signature, declared uint32, body string) []byte {
	var b bytes.Buffer
	var field [UsernameSize]byte
	copy(field[:], name)
	b.Write(field[:])
	b.Write(sig[:])
	binary.Write(&b, binary.BigEndian, declared)
	b.WriteString(body)
	return b.Bytes()
}

func TestReadRequest(t *testing.T) {
	sig := larder.NewSignature("hunter2", "0123456789")
	tests := []struct {
		name     string
		in       []byte
		wantUser string
		wantBody string
		wantErr  string // substring of the ProtocolError; "" for success
	}{
		{"register", rawRequest("alice", sig, 0, ""), "alice", "", ""},
		{"retrieve", rawRequest("alice", sig, 9, "notes.txt"), "alice", "notes.txt", ""},
		{"name fills the field", rawRequest("0123456789abcdef", sig, 1, "x"), "0123456789abcdef", "x", ""},
		{"largest body", rawRequest("a", sig, MaxBodySize, strings.Repeat("p", MaxBodySize)), "a", strings.Repeat("p", MaxBodySize), ""},
		{"bytes after the body are ignored", rawRequest("a", sig, 3, "abc/padding-of-a-fixed-buffer"), "a", "abc", ""},
		{"empty username is the server's business", rawRequest("", sig, 1, "x"), "", "x", ""},
		{"body longer than the limit", rawRequest("a", sig, MaxBodySize+1, "x"), "", "", "exceeds the maximum of 972"},
		{"huge declared length", rawRequest("a", sig, 0xffffffff, ""), "", "", "declared body length 4294967295"},
		{"body cut short", rawRequest("a", sig, 10, "abc"), "", "", "received 3 of 10"},
		{"header cut short", rawRequest("a", sig, 0, "")[:20], "", "", "cut short after 20 of 52"},
		{"bytes after NUL padding", rawRequest("bob\x00x", sig, 1, "x"), "", "", "after its NUL padding"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, split := range []struct {
				name string
				r    func(io.Reader) io.Reader
			}{
				{"whole", func(r io.Reader) io.Reader { return r }},
				{"one byte at a time", iotest.OneByteReader},
			} {
				req, err := ReadRequest(split.r(bytes.NewReader(tt.in)))
				if tt.wantErr != "" {
					var pe *ProtocolError
					if !errors.As(err, &pe) || !strings.Contains(err.Error(), tt.wantErr) {
						t.Fatalf("%s: got error %v, want a ProtocolError containing %q", split.name, err, tt.wantErr)
					}
					continue
				}
				if err != nil {
					t.Fatalf("%s: got error %v", split.name, err)
				}
				if req.Username != tt.wantUser || string(req.Body) != tt.wantBody || req.Signature != sig {
					t.Fatalf("%s: got %q %q, want %q %q", split.name, req.Username, req.Body, tt.wantUser, tt.wantBody)
				}
				if req.IsRegister() != (tt.wantBody == "") {
					t.Fatalf("%s: IsRegister = %v for body %q", split.name, req.IsRegister(), tt.wantBody)
				}
			}
		})
	}
}

func TestReadRequestEOF(t *testing.T) {
	if _, err := ReadRequest(bytes.NewReader(nil)); err != io.EOF {
		t.Fatalf("got %v, want io.EOF for a peer that sent nothing", err)
	}
}

func TestReadRequestBodyEOFWrapsUnexpectedEOF(t *testing.T) {
	_, err := ReadRequest(bytes.NewReader(rawRequest("a", larder.Signature{}, 5, "ab")))
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("got %v, want it to wrap io.ErrUnexpectedEOF", err)
	}
}

// A body that declares more than the limit must be refused before the
// reader allocates or reads anything for it.
func TestReadRequestDoesNotReadOversizeBody(t *testing.T) {
	in := bytes.NewReader(append(rawRequest("a", larder.Signature{}, 1<<30, ""), make([]byte, 4096)...))
	if _, err := ReadRequest(in); err == nil {
		t.Fatal("got nil error for an oversize body")
	}
	if rest := in.Len(); rest != 4096 {
		t.Fatalf("reader consumed %d body bytes after an oversize length; want none", 4096-rest)
	}
}

func TestRequestRoundTrip(t *testing.T) {
	req := &Request{Username: "ålice", Signature: larder.NewSignature("pw", "salt"), Body: []byte("dir/file.bin")}
	var b bytes.Buffer
	if _, err := req.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	if b.Len() != RequestHeaderSize+len(req.Body) {
		t.Fatalf("encoded %d bytes, want %d", b.Len(), RequestHeaderSize+len(req.Body))
	}
	got, err := ReadRequest(&b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Username != req.Username || got.Signature != req.Signature || !bytes.Equal(got.Body, req.Body) {
		t.Fatalf("got %+v, want %+v", got, req)
	}
}

func TestRequestAppendBinaryRefuses(t *testing.T) {
	for _, req := range []*Request{
		{Username: "seventeen-bytes!!"},
		{Username: "nul\x00name"},
		{Username: "a", Body: make([]byte, MaxBodySize+1)},
	} {
		if _, err := req.AppendBinary(nil); err == nil {
			t.Errorf("AppendBinary(%q, %d-byte body) succeeded; want an error", req.Username, len(req.Body))
		}
	}
}

func TestNewSignature(t *testing.T) {
	// Expected values computed independently with coreutils:
	//	printf '%s' "$password$salt" | sha256sum
	tests := []struct{ password, want string }{
		{"password", "bf08ba3b6c18117f4474450615f6109937e7dcef7e7549473d58c3243d51a136"},
		{"pässwörd", "40e8df5212777caccce21fa44a5eef251f06934bdd4c1988a726c0ea474a3be1"},
	}
	for _, tt := range tests {
		got := larder.NewSignature(tt.password, CourseSalt)
		if hex.EncodeToString(got[:]) != tt.want {
			t.Errorf("larder.NewSignature(%q, CourseSalt) = %x, want %s", tt.password, got, tt.want)
		}
	}
}

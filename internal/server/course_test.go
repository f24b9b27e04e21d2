package server_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/course"
	"github.com/larderfs/larder/internal/server"
)

func TestRegisterAndRetrieve(t *testing.T) {
	h := newHarness(t)
	h.write(t, "hello.txt", []byte("hello, world\n"))

	r := h.exchange(t, request("alice", testSig, ""))
	if r.status != course.StatusOK || string(r.payload) != "New user alice registered." {
		t.Fatalf("register: got %v %q", r.status, r.payload)
	}
	r = h.exchange(t, request("alice", testSig, "hello.txt"))
	if r.status != course.StatusOK || string(r.payload) != "hello, world\n" {
		t.Fatalf("retrieve: got %v %q", r.status, r.payload)
	}
	// A leading slash means the served folder, as in the reference server.
	r = h.exchange(t, request("alice", testSig, "/hello.txt"))
	if r.status != course.StatusOK || string(r.payload) != "hello, world\n" {
		t.Fatalf("retrieve /hello.txt: got %v %q", r.status, r.payload)
	}
}

func TestStatuses(t *testing.T) {
	h := newHarness(t)
	h.write(t, "f.txt", []byte("content"))
	h.write(t, "dir/inner.txt", []byte("inner"))
	h.register(t, "alice")
	other := larder.NewSignature("wrong password", "battery staple salt")

	tests := []struct {
		name    string
		raw     []byte
		status  course.Status
		message string // substring of the reply's message
	}{
		{"name taken", request("alice", other, ""), course.StatusUserExists, "already exists"},
		{"unknown user", request("bob", testSig, "f.txt"), course.StatusUserMissing, "non-registered user 'bob'"},
		{"wrong signature", request("alice", other, "f.txt"), course.StatusInvalidLogin, "do not match for alice"},
		{"missing file", request("alice", testSig, "nope.txt"), course.StatusBadRequest, `"nope.txt" does not exist`},
		{"directory", request("alice", testSig, "dir"), course.StatusBadRequest, "is a directory"},
		{"served folder itself", request("alice", testSig, "/"), course.StatusBadRequest, "directory"},
		{"empty username", request("", testSig, "f.txt"), course.StatusBadRequest, "username is empty"},
		{"empty username registering", request("", testSig, ""), course.StatusBadRequest, "username is empty"},
		{"invalid UTF-8 name", request("al\xffce", testSig, ""), course.StatusBadRequest, "not valid UTF-8"},
		{"control character in name", request("al\x1bce", testSig, ""), course.StatusBadRequest, "control character"},
		{"bytes after NUL in name", rawHeader("bob\x00evil", testSig, 1, "f.txt"), course.StatusMalformed, "NUL padding"},
		{"length above limit", rawHeader("alice", testSig, 5000, "f.txt"), course.StatusMalformed, "exceeds the maximum of 972"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.exchange(t, tt.raw)
			if r.status != tt.status || !strings.Contains(string(r.payload), tt.message) {
				t.Fatalf("got %v %q, want %v containing %q", r.status, r.payload, tt.status, tt.message)
			}
		})
	}
}

// rawHeader builds a request whose header says what the test wants,
// whatever the body.
func rawHeader(name string, sig larder.Signature, length uint32, body string) []byte {
	var b bytes.Buffer
	var field [course.UsernameSize]byte
	copy(field[:], name)
	b.Write(field[:])
	b.Write(sig[:])
	binary.Write(&b, binary.BigEndian, length)
	b.WriteString(body)
	return b.Bytes()
}

func TestClosedRegistration(t *testing.T) {
	h := newHarness(t, func(s *server.Server) { s.ClosedRegistration = true })
	r := h.exchange(t, request("alice", testSig, ""))
	if r.status != course.StatusBadRequest || !strings.Contains(string(r.payload), "registration is closed") {
		t.Fatalf("got %v %q", r.status, r.payload)
	}
}

// Every way out of the served folder is refused, and nothing of the
// secret beside it is ever sent.
func TestTraversalRefused(t *testing.T) {
	h := newHarness(t)
	h.register(t, "alice")
	h.write(t, "sub/ok.txt", []byte("ok"))
	must(t, symlink(h, "../secret.txt", "rel-link"))
	must(t, symlink(h, h.outer+"/secret.txt", "abs-link"))
	must(t, symlink(h, "..", "up"))
	for _, path := range []string{
		"../secret.txt", "/../secret.txt", "sub/../../secret.txt", "./../secret.txt",
		"//" + h.outer + "/secret.txt", "/" + h.outer + "/secret.txt", "///etc/passwd",
		"rel-link", "abs-link", "up/secret.txt", "sub/../sub/../../secret.txt",
		"sub/ok.txt\x00/../../secret.txt", "\x00", "..", "/..", "sub/..",
		"%2e%2e/secret.txt", "..\\secret.txt",
	} {
		r := h.exchange(t, request("alice", testSig, path))
		if r.status != course.StatusBadRequest {
			t.Errorf("path %q: got %v %q, want BAD_REQUEST", path, r.status, r.payload)
		}
		if bytes.Contains(r.raw, []byte("TOP SECRET")) {
			t.Errorf("path %q: the secret outside the served folder was sent", path)
		}
	}
}

func TestBinaryFileExact(t *testing.T) {
	h := newHarness(t)
	h.register(t, "alice")
	var data []byte
	for range 10 {
		for i := range 256 {
			data = append(data, byte(i))
		}
		data = append(data, "\r\n\r\r\n\n\x00\x1a"...)
	}
	h.write(t, "all-bytes.bin", data)
	r := h.exchange(t, request("alice", testSig, "all-bytes.bin"))
	if r.status != course.StatusOK || !bytes.Equal(r.payload, data) {
		t.Fatalf("got %v and %d bytes; want the %d bytes unchanged", r.status, len(r.payload), len(data))
	}
}

// The reference server sends no reply at all for an empty file; larder
// sends one empty block whose hashes are both SHA-256 of nothing.
func TestEmptyFileOneEmptyBlock(t *testing.T) {
	h := newHarness(t)
	h.register(t, "alice")
	h.write(t, "empty", nil)
	r := h.exchange(t, request("alice", testSig, "empty"))
	if r.status != course.StatusOK || len(r.blocks) != 1 || len(r.payload) != 0 {
		t.Fatalf("got %v, %d blocks, %d bytes; want OK, 1 block, 0 bytes", r.status, len(r.blocks), len(r.payload))
	}
	if len(r.raw) != course.BlockHeaderSize {
		t.Fatalf("reply is %d bytes, want one bare %d-byte header", len(r.raw), course.BlockHeaderSize)
	}
	hdr := r.raw
	empty := sha256.Sum256(nil)
	if !bytes.Equal(hdr[16:48], empty[:]) || !bytes.Equal(hdr[48:80], empty[:]) {
		t.Fatal("hashes of the empty block are not SHA-256 of nothing")
	}
}

// Clients that pad the path with a fixed buffer after a length that counts
// only the path are served; the padding is ignored.
func TestBytesAfterBodyIgnored(t *testing.T) {
	h := newHarness(t)
	h.register(t, "alice")
	h.write(t, "a.txt", []byte("A"))
	raw := rawHeader("alice", testSig, 5, "a.txt"+strings.Repeat("\x00", 123))
	if r := h.exchange(t, raw); r.status != course.StatusOK || string(r.payload) != "A" {
		t.Fatalf("got %v %q", r.status, r.payload)
	}
}

func TestShuffledBlocks(t *testing.T) {
	h := newHarness(t, func(s *server.Server) { s.ShuffleBlocks = true })
	h.register(t, "alice")
	data := bytes.Repeat([]byte("0123456789abcdef"), 944) // 16 blocks
	h.write(t, "f", data)
	r := h.exchange(t, request("alice", testSig, "f"))
	if r.status != course.StatusOK || !bytes.Equal(r.payload, data) {
		t.Fatalf("got %v and %d bytes", r.status, len(r.payload))
	}
	inOrder := true
	for i, b := range r.blocks {
		inOrder = inOrder && b == uint32(i)
	}
	if inOrder {
		t.Fatalf("16 blocks arrived in order with --shuffle-blocks (chance 1 in 16!)")
	}
}

func symlink(h *harness, target, name string) error {
	return os.Symlink(target, filepath.Join(h.files, name))
}

// TestShuffledShortBlockLast: shuffled, a short last block is sent last
// (in the middle, its odd length would shift every later block off the
// segment boundaries that keep blocks whole on the wire); the others
// still come in any order.
func TestShuffledShortBlockLast(t *testing.T) {
	h := newHarness(t, func(s *server.Server) { s.ShuffleBlocks = true })
	h.register(t, "alice")
	data := bytes.Repeat([]byte("0123456789abcdef"), 944+1) // 16 full blocks and 16 bytes
	h.write(t, "f", data)
	for range 5 {
		r := h.exchange(t, request("alice", testSig, "f"))
		if r.status != course.StatusOK || !bytes.Equal(r.payload, data) {
			t.Fatalf("got %v and %d bytes", r.status, len(r.payload))
		}
		if last := r.blocks[len(r.blocks)-1]; last != 16 {
			t.Fatalf("blocks arrived in the order %v; want the short block 16 last", r.blocks)
		}
		if slices.IsSorted(r.blocks) {
			t.Fatalf("17 blocks arrived in order with --shuffle-blocks")
		}
	}
}

package client

import (
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"

	"github.com/larderfs/larder/course"
)

// TestCountZeroRefused: the course protocol always sends at least one
// block (an empty file is one block of length 0); a header that declares
// 0 blocks is malformed, and nothing is written.
func TestCountZeroRefused(t *testing.T) {
	empty := sha256.Sum256(nil)
	reply := encode([]block{{h: course.BlockHeader{Status: course.StatusOK, BlockHash: empty, TotalHash: empty}}})
	for _, dst := range destinations() {
		t.Run(dst.name, func(t *testing.T) {
			c, _ := pipePeer(t, replyWith(reply))
			w, contents := dst.open(t)
			_, err := c.Retrieve(context.Background(), "alice", testSig, "empty", w)
			if !errors.Is(err, ErrIntegrity) || !strings.Contains(err.Error(), "declares 0 blocks") {
				t.Errorf("got %v, want an integrity error for a count of 0", err)
			}
			if n := len(contents()); n != 0 {
				t.Errorf("wrote %d bytes", n)
			}
		})
	}
}

// TestNotCourseReply: a first header that no course server would send
// (an HTTP reply, a status out of range, an index beyond the count) is
// not the course protocol, said with the bytes it starts with.
func TestNotCourseReply(t *testing.T) {
	good := func() []byte { return encode(split(course.StatusOK, []byte("hello"))) }
	tests := []struct {
		name  string
		reply []byte
		want  string
	}{
		{"http", []byte("HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request"),
			`it starts with "HTTP/1.1 400 Bad Request`},
		{"short http", []byte("HTTP/1.0 400\r\n\r\n"), `it starts with "HTTP/1.0 400`},
		{"status 0", func() []byte { b := good(); b[7] = 0; return b }(), "status 0"},
		{"status 9", func() []byte { b := good(); b[7] = 9; return b }(), "status 9"},
		{"index beyond count", func() []byte { b := good(); b[11] = 3; return b }(), "block 3 of 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := pipePeer(t, replyWith(tt.reply))
			w, contents := destinations()[0].open(t)
			_, err := c.Retrieve(context.Background(), "alice", testSig, "f", w)
			if !errors.Is(err, ErrNotCourse) || errors.Is(err, ErrIntegrity) ||
				!strings.Contains(err.Error(), "not the course protocol") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("retrieve: got %v, want ErrNotCourse mentioning %q", err, tt.want)
			}
			if n := len(contents()); n != 0 {
				t.Errorf("wrote %d bytes", n)
			}
			c, _ = pipePeer(t, replyWith(tt.reply))
			if _, err := c.Register(context.Background(), "alice", testSig); !errors.Is(err, ErrNotCourse) {
				t.Errorf("register: got %v, want ErrNotCourse", err)
			}
		})
	}
}

// TestRegisterNoReply: a registration that gets no reply is ErrNoReply,
// which the caller can tell apart.
func TestRegisterNoReply(t *testing.T) {
	c, _ := pipePeer(t, replyWith(nil))
	if _, err := c.Register(context.Background(), "alice", testSig); !errors.Is(err, ErrNoReply) {
		t.Errorf("got %v, want ErrNoReply", err)
	}
}

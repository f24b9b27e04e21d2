package check

// A course-protocol server for the checker's tests, correct unless told to
// have one of the faults that students' servers (and the course's own) are
// known to have. Without faults every check passes against it; with one,
// the check for that fault must fail. It answers blocks shuffled, as the
// reference server does, so that reassembly by number is always tested.

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/course"
)

type faultyServer struct {
	ln     net.Listener
	root   string
	fault  string
	mu     sync.Mutex
	users  map[string][32]byte
	active int
	wg     sync.WaitGroup
}

// startFaulty serves root on 127.0.0.1:0 with the named fault ("" for
// none) until the test ends.
func startFaulty(t *testing.T, root, fault string) *faultyServer {
	t.Helper()
	var ln net.Listener
	if fault == "backlog-1" {
		ln = listenBacklog(t, 1)
	} else {
		var err error
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	s := &faultyServer{ln: ln, root: root, fault: fault, users: map[string][32]byte{}}
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

func (s *faultyServer) addr() string { return s.ln.Addr().String() }

func (s *faultyServer) has(f string) bool { return s.fault == f }

func (s *faultyServer) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		if s.has("backlog-1") {
			time.Sleep(100 * time.Millisecond) // slow to accept: the backlog fills
		}
		if s.has("single-threaded") {
			s.handle(c)
			continue
		}
		s.wg.Add(1)
		go func() { defer s.wg.Done(); s.handle(c) }()
	}
}

func (s *faultyServer) reply(c net.Conn, status course.Status, payload []byte) {
	s.send(c, status, payload, false)
}

// send writes a reply; file says that payload is a file's content.
func (s *faultyServer) send(c net.Conn, status course.Status, payload []byte, file bool) {
	count := (len(payload) + course.MaxBlockPayload - 1) / course.MaxBlockPayload
	if count == 0 && !s.has("empty-no-block") {
		count = 1
	}
	if len(payload) > 0 && len(payload)%course.MaxBlockPayload == 0 && s.has("extra-block") {
		count++ // the off-by-one of ceil written as size/944+1
	}
	total := sha256.Sum256(payload)
	var blocks [][]byte
	for i := range count {
		p := payload[min(i*course.MaxBlockPayload, len(payload)):min((i+1)*course.MaxBlockPayload, len(payload))]
		h := course.BlockHeader{Length: uint32(len(p)), Status: status, Index: uint32(i), Count: uint32(count), TotalHash: total}
		h.BlockHash = sha256.Sum256(p)
		if s.has("hash-full-buffer") && file && len(p) < course.MaxBlockPayload {
			// A C server hashing its whole block buffer, not the payload.
			var buf [course.MaxBlockPayload]byte
			copy(buf[:], p)
			h.BlockHash = sha256.Sum256(buf[:])
		}
		b, _ := h.AppendBinary(nil)
		blocks = append(blocks, append(b, p...))
	}
	rand.Shuffle(len(blocks), func(i, j int) { blocks[i], blocks[j] = blocks[j], blocks[i] })
	for _, b := range blocks {
		c.Write(b)
	}
}

func (s *faultyServer) handle(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	defer func() {
		if s.has("no-drain") {
			return // close with unread input: a reset
		}
		c.(*net.TCPConn).CloseWrite()
		c.SetReadDeadline(time.Now().Add(time.Second))
		io.Copy(io.Discard, io.LimitReader(c, 1<<16))
	}()
	if s.has("cap-4") {
		s.mu.Lock()
		s.active++
		busy := s.active > 4
		s.mu.Unlock()
		defer func() { s.mu.Lock(); s.active--; s.mu.Unlock() }()
		if busy {
			s.reply(c, course.StatusOther, []byte("busy"))
			return
		}
		time.Sleep(50 * time.Millisecond) // long enough for the others to pile up
	}
	var msg []byte
	if s.has("one-recv") {
		buf := make([]byte, course.MaxMessageSize)
		n, _ := c.Read(buf)
		msg = buf[:n]
	} else {
		hdr := make([]byte, course.RequestHeaderSize)
		n, err := io.ReadFull(c, hdr)
		if n == 0 {
			if s.has("exit-on-empty") {
				s.ln.Close() // a C server whose loop ends when recv returns 0
			}
			return
		}
		if err != nil {
			if !s.has("silent-short") {
				s.malformed(c)
			}
			return
		}
		msg = hdr
	}
	if len(msg) < course.RequestHeaderSize {
		s.malformed(c)
		return
	}
	field, sig := msg[:16], [32]byte(msg[16:48])
	length := binary.BigEndian.Uint32(msg[48:52])
	maxBody := uint32(course.MaxBodySize)
	if s.has("max-1024") {
		maxBody = 1024
	}
	var body []byte
	if s.has("one-recv") {
		body = msg[52:]
		if uint32(len(body)) > length {
			body = body[:length]
		}
		if uint32(len(body)) != length {
			s.malformed(c)
			return
		}
	} else {
		if length > maxBody {
			if s.has("read-declared") {
				io.Copy(io.Discard, c) // waits for a body that never comes
			}
			s.malformed(c)
			if !s.has("second-reply") {
				return
			}
			length = 0 // and on with what arrived, as the reference server does
			c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			more := make([]byte, course.MaxBodySize)
			n, _ := c.Read(more)
			body = more[:n]
			c.SetDeadline(time.Now().Add(5 * time.Second))
		}
		body = append(body, make([]byte, length)...)
		if n, err := io.ReadFull(c, body); err != nil {
			s.malformed(c)
			if !s.has("second-reply") {
				return
			}
			body = body[:n]
		}
	}
	if s.has("whole-recv") {
		// What else has arrived is taken for the body too.
		c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		more := make([]byte, 1024)
		n, _ := c.Read(more)
		body = append(body, more[:n]...)
		c.SetDeadline(time.Now().Add(5 * time.Second))
	}
	s.request(c, field, sig, body)
}

func (s *faultyServer) malformed(c net.Conn) {
	s.reply(c, course.StatusMalformed, []byte("malformed request"))
	if s.has("exit-on-malformed") {
		s.ln.Close()
	}
}

var emptyPasswordSig = larder.NewSignature("", course.CourseSalt)

func (s *faultyServer) request(c net.Conn, field []byte, sig [32]byte, body []byte) {
	name := string(field)
	if i := bytes.IndexByte(field, 0); i >= 0 {
		switch {
		case s.has("name-rstrip"):
			name = strings.TrimRight(name, "\x00")
		case len(bytes.Trim(field[i:], "\x00")) > 0:
			s.reply(c, course.StatusMalformed, []byte("bytes after the NUL padding"))
			return
		default:
			name = name[:i]
		}
	} else if s.has("need-nul") {
		s.reply(c, course.StatusMalformed, []byte("no NUL in the name"))
		return
	}
	switch {
	case !utf8.ValidString(name) && s.has("utf8-other"):
		s.reply(c, course.StatusOther, []byte("decoding error"))
		return
	case !utf8.ValidString(name):
		s.reply(c, course.StatusBadRequest, []byte("name is not UTF-8"))
		return
	case s.has("ascii-names") && strings.ContainsFunc(name, func(r rune) bool { return r > 127 }):
		s.reply(c, course.StatusBadRequest, []byte("ASCII names only"))
		return
	case s.has("word-names") && strings.ContainsAny(name, " .!"):
		s.reply(c, course.StatusBadRequest, []byte("letters, digits and - only"))
		return
	}
	s.mu.Lock()
	stored, known := s.users[name]
	if len(body) == 0 {
		var status course.Status
		switch {
		case s.has("register-closed"), name == "" && !s.has("empty-name-ok"),
			sig == emptyPasswordSig && s.has("no-empty-password"):
			status = course.StatusBadRequest
		case known && !s.has("reregister"):
			status = course.StatusUserExists
		default:
			s.users[name] = sig
			status = course.StatusOK
		}
		s.mu.Unlock()
		s.reply(c, status, []byte("registration: "+status.String()))
		return
	}
	s.mu.Unlock()
	switch {
	case !known && s.has("missing-as-invalid"):
		s.reply(c, course.StatusInvalidLogin, []byte("no"))
		return
	case !known:
		s.reply(c, course.StatusUserMissing, []byte("no such user"))
		return
	case stored != sig && !s.has("any-signature"):
		s.reply(c, course.StatusInvalidLogin, []byte("wrong signature"))
		return
	}
	data, status := s.file(string(body))
	s.send(c, status, data, status == course.StatusOK)
}

// file reads the file at path, or says why not.
func (s *faultyServer) file(path string) ([]byte, course.Status) {
	if i := strings.IndexByte(path, 0); i >= 0 {
		if !s.has("cut-nul") {
			return []byte("NUL in path"), course.StatusBadRequest
		}
		path = path[:i]
	}
	if !s.has("keep-slash") {
		path = strings.TrimPrefix(path, "/")
	}
	var full string
	if s.has("follow-dotdot") {
		full = path
		if !filepath.IsAbs(path) {
			full = filepath.Join(s.root, path)
		}
	} else {
		if filepath.IsAbs(path) || !filepath.IsLocal(path) {
			return []byte("path leaves the folder"), course.StatusBadRequest
		}
		full = filepath.Join(s.root, path)
		if !s.has("follow-links") {
			real, err := filepath.EvalSymlinks(full)
			root, _ := filepath.EvalSymlinks(s.root)
			if err == nil {
				if rel, _ := filepath.Rel(root, real); !filepath.IsLocal(rel) {
					return []byte("link leaves the folder"), course.StatusBadRequest
				}
			}
		}
	}
	fi, err := os.Stat(full)
	switch {
	case errors.Is(err, os.ErrNotExist) && s.has("missing-other"):
		return []byte(err.Error()), course.StatusOther
	case err != nil:
		return []byte("no such file"), course.StatusBadRequest
	case fi.IsDir() && !s.has("folder-other"):
		return []byte("not a file"), course.StatusBadRequest
	}
	data, err := os.ReadFile(full)
	if err != nil {
		return []byte(err.Error()), course.StatusOther
	}
	if i := bytes.IndexByte(data, 0); i >= 0 && s.has("cstring") {
		data = data[:i]
	}
	return data, course.StatusOK
}

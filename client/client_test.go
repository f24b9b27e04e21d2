package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/course"
)

var testSig = larder.NewSignature("hunter2", "0123456789012345678901234567890123456789012345678901234567890123")

func TestRetrieveOrders(t *testing.T) {
	orders := []struct {
		name  string
		order func([]block) []block
	}{
		{"in-order", func(bs []block) []block { return bs }},
		{"reverse", reversed},
		{"random", func(bs []block) []block { return shuffled(bs, 7) }},
	}
	sizes := []int{1, 943, 944, 945, 3 * 944, 100_000, 1<<20 + 7}
	for _, dst := range destinations() {
		for _, o := range orders {
			for _, size := range sizes {
				t.Run(fmt.Sprintf("%s/%s/%d", dst.name, o.name, size), func(t *testing.T) {
					payload := randomBytes(size, uint64(size))
					c, p := pipePeer(t, replyWith(encode(o.order(split(course.StatusOK, payload)))))
					w, contents := dst.open(t)
					res, err := c.Retrieve(context.Background(), "alice", testSig, "/notes.txt", w)
					if err != nil {
						t.Fatalf("Retrieve: %v", err)
					}
					if got := contents(); !bytes.Equal(got, payload) {
						t.Fatalf("got %d bytes, want %d bytes; equal prefix %d", len(got), len(payload), commonPrefix(got, payload))
					}
					want := Result{Size: int64(size), Total: sha256.Sum256(payload), Blocks: uint32((size + 943) / 944)}
					if *res != want {
						t.Errorf("got %+v, want %+v", *res, want)
					}
					req := p.request(t)
					if req.Username != "alice" || req.Signature != testSig || string(req.Body) != "/notes.txt" {
						t.Errorf("server got request %q %x %q", req.Username, req.Signature, req.Body)
					}
				})
			}
		}
	}
}

func commonPrefix(a, b []byte) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// TestRetrieveTruncatesStaleFile checks that a file destination holding
// older, longer content ends up with exactly the payload.
func TestRetrieveTruncatesStaleFile(t *testing.T) {
	payload := randomBytes(2000, 1)
	name := t.TempDir() + "/out"
	if err := os.WriteFile(name, bytes.Repeat([]byte("x"), 10_000), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, _ := pipePeer(t, replyWith(encode(reversed(split(course.StatusOK, payload)))))
	if _, err := c.Retrieve(context.Background(), "alice", testSig, "f", f); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(name); !bytes.Equal(got, payload) {
		t.Errorf("got %d bytes, want the %d-byte payload", len(got), len(payload))
	}
}

// TestRetrieveToPipe checks that an *os.File that is not a regular file
// (stdout in a pipeline) is written in order rather than at offsets.
func TestRetrieveToPipe(t *testing.T) {
	payload := randomBytes(50_000, 2)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := make(chan []byte)
	go func() { b, _ := io.ReadAll(r); got <- b }()
	c, _ := pipePeer(t, replyWith(encode(shuffled(split(course.StatusOK, payload), 3))))
	_, err = c.Retrieve(context.Background(), "alice", testSig, "f", w)
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	if b := <-got; !bytes.Equal(b, payload) {
		t.Errorf("pipe got %d bytes, want %d", len(b), len(payload))
	}
}

func TestRetrieveEmpty(t *testing.T) {
	empty := sha256.Sum256(nil)
	tests := []struct {
		name  string
		reply []byte
		want  Result
	}{
		{"one empty block", encode(split(course.StatusOK, nil)), Result{Total: empty, Blocks: 1}},
		{"no reply", nil, Result{NoReply: true}},
	}
	for _, dst := range destinations() {
		for _, tt := range tests {
			t.Run(dst.name+"/"+tt.name, func(t *testing.T) {
				c, _ := pipePeer(t, replyWith(tt.reply))
				w, contents := dst.open(t)
				res, err := c.Retrieve(context.Background(), "alice", testSig, "empty", w)
				if err != nil {
					t.Fatal(err)
				}
				if *res != tt.want {
					t.Errorf("got %+v, want %+v", *res, tt.want)
				}
				if n := len(contents()); n != 0 {
					t.Errorf("wrote %d bytes, want 0", n)
				}
			})
		}
	}
}

func TestRetrieveBufferLimit(t *testing.T) {
	payload := randomBytes(100_000, 4)
	reply := encode(reversed(split(course.StatusOK, payload)))

	c, _ := pipePeer(t, replyWith(reply))
	c.MaxBuffer = 10_000
	var buf bytes.Buffer
	_, err := c.Retrieve(context.Background(), "alice", testSig, "big", &buf)
	if !errors.Is(err, ErrBufferLimit) {
		t.Fatalf("to a buffer: got %v, want ErrBufferLimit", err)
	}
	if !strings.Contains(err.Error(), "retrieve into a file") {
		t.Errorf("error %q does not suggest a file", err)
	}
	if buf.Len() != 0 {
		t.Errorf("wrote %d bytes before the first block arrived", buf.Len())
	}

	// A file takes the same reply without any buffer.
	c, _ = pipePeer(t, replyWith(reply))
	c.MaxBuffer = 10_000
	f, err := os.CreateTemp(t.TempDir(), "dst")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := c.Retrieve(context.Background(), "alice", testSig, "big", f); err != nil {
		t.Fatalf("to a file: %v", err)
	}
}

// TestRetrieveIntegrity breaks a good reply in every way the client must
// notice, and checks the error says which.
func TestRetrieveIntegrity(t *testing.T) {
	payload := randomBytes(5*944+100, 5)
	good := func() []block { return split(course.StatusOK, payload) }
	tests := []struct {
		name  string
		reply func() []byte
		want  string
	}{
		{"block hash", func() []byte {
			bs := good()
			bs[2].p = append([]byte(nil), bs[2].p...)
			bs[2].p[10] ^= 1
			return encode(bs)
		}, "block 2: hash mismatch"},
		{"total hash", func() []byte {
			bs := good()
			for i := range bs {
				bs[i].h.TotalHash[0] ^= 1
			}
			return encode(shuffled(bs, 1))
		}, "total hash mismatch"},
		{"total hash differs", func() []byte {
			bs := good()
			bs[3].h.TotalHash[0] ^= 1
			return encode(bs)
		}, "block 3: total hash differs"},
		{"count differs", func() []byte {
			bs := good()
			bs[1].h.Count++
			return encode(bs)
		}, "block 1: block count 7 differs from the first block's 6"},
		{"status differs", func() []byte {
			bs := good()
			bs[4].h.Status = course.StatusOther
			return encode(bs)
		}, "block 4: status OTHER differs from the first block's OK"},
		{"duplicate", func() []byte {
			bs := good()
			return encode(append(bs[:3:3], bs[1], bs[3]))
		}, "block 1: received twice"},
		{"missing", func() []byte {
			bs := good()
			return encode(append(bs[:2:2], bs[3:]...))
		}, "reply ended after 5 of 6 blocks"},
		{"short block not last", func() []byte {
			bs := good()
			bs[1].p = bs[1].p[:900]
			bs[1].h.Length, bs[1].h.BlockHash = 900, sha256.Sum256(bs[1].p)
			return encode(bs)
		}, "block 1: 900 payload bytes; every block but the last carries 944"},
		{"empty last block", func() []byte {
			p := randomBytes(944, 6)
			bs := split(course.StatusOK, p)
			last := block{h: bs[0].h, p: nil}
			last.h.Index, last.h.Length, last.h.BlockHash = 1, 0, sha256.Sum256(nil)
			bs = append(bs, last)
			for i := range bs {
				bs[i].h.Count = 2
			}
			return encode(bs)
		}, "block 1: the last of 2 blocks is empty"},
		{"index out of range", func() []byte {
			bs := good()
			bs[2].h.Index = 6
			return encode(bs)
		}, "block 6: index out of range for a count of 6"},
		{"count 0 with payload", func() []byte {
			p := []byte("hello")
			h := sha256.Sum256(p)
			return encode([]block{{h: course.BlockHeader{Length: 5, Status: course.StatusOK, BlockHash: h, TotalHash: h}, p: p}})
		}, "the reply declares 0 blocks"},
		{"oversize length", func() []byte {
			// In the first block, it is not the course protocol at all
			// (TestNotCourseReply).
			b := encode(good()[:2])
			b[1024], b[1025], b[1026], b[1027] = 0, 0, 0x07, 0xd0 // 2000
			return b
		}, "block 1 declares 2000 payload bytes"},
		{"cut in a payload", func() []byte {
			b := encode(good())
			return b[:len(b)-50]
		}, "block 5 cut short after 50 of 100 payload bytes"},
		{"cut in a header", func() []byte {
			b := encode(good())
			return b[:1024+30]
		}, "after 1 of 6 blocks: course: block header cut short after 30 of 80 bytes"},
		{"empty payload, wrong total", func() []byte {
			bs := split(course.StatusOK, nil)
			bs[0].h.TotalHash[5] ^= 1
			return encode(bs)
		}, "total hash mismatch"},
	}
	for _, dst := range destinations() {
		for _, tt := range tests {
			t.Run(dst.name+"/"+tt.name, func(t *testing.T) {
				c, _ := pipePeer(t, replyWith(tt.reply()))
				w, _ := dst.open(t)
				res, err := c.Retrieve(context.Background(), "alice", testSig, "f", w)
				if err == nil {
					t.Fatalf("got %+v, want an error containing %q", res, tt.want)
				}
				var ie *IntegrityError
				if !errors.Is(err, ErrIntegrity) || !errors.As(err, &ie) {
					t.Errorf("got %T %v, want an *IntegrityError", err, err)
				}
				if !strings.Contains(err.Error(), tt.want) {
					t.Errorf("got %q, want it to contain %q", err, tt.want)
				}
			})
		}
	}
}

// TestHostileCount sends one block of a reply that claims 4e9 blocks: the
// client must fail on the missing blocks without allocating for them.
func TestHostileCount(t *testing.T) {
	const count = 4_000_000_000
	payload := randomBytes(944, 8)
	mk := func(index uint32, p []byte) []byte {
		h := sha256.Sum256(p)
		return encode([]block{{h: course.BlockHeader{Length: uint32(len(p)), Status: course.StatusOK,
			Index: index, Count: count, BlockHash: h, TotalHash: h}, p: p}})
	}
	tests := []struct {
		name  string
		reply []byte
		dst   func() io.Writer
	}{
		{"first block to buffer", mk(0, payload), func() io.Writer { return new(bytes.Buffer) }},
		{"last block to buffer", mk(count-1, payload[:10]), func() io.Writer { return new(bytes.Buffer) }},
		{"last block to file", mk(count-1, payload[:10]), func() io.Writer { return &memFile{max: 1 << 20} }},
		{"first block to file", mk(0, payload), func() io.Writer { return &memFile{max: 1 << 20} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := pipePeer(t, replyWith(tt.reply))
			c.Progress = func(int64, int64) {}
			dst := tt.dst()
			var before, after runtimeMem
			before.read()
			_, err := c.Retrieve(context.Background(), "alice", testSig, "f", dst)
			after.read()
			if err == nil {
				t.Fatal("got success, want an error")
			}
			if m, ok := dst.(*memFile); ok && errors.Is(err, errTooBig) {
				_ = m // the sparse write was refused by the test's file: fine
			} else if !strings.Contains(err.Error(), "of 4000000000 blocks") {
				t.Errorf("got %v, want a reply ended after 1 of 4000000000 blocks", err)
			}
			if d := after.total - before.total; d > 2<<20 {
				t.Errorf("allocated %d bytes for one block", d)
			}
		})
	}
}

func TestStatusError(t *testing.T) {
	long := strings.Repeat("no such file, really. ", 150) // 3300 bytes: 4 blocks
	for _, dst := range destinations() {
		t.Run(dst.name, func(t *testing.T) {
			reply := encode(shuffled(split(course.StatusBadRequest, []byte(long)), 9))
			c, _ := pipePeer(t, replyWith(reply))
			w, contents := dst.open(t)
			_, err := c.Retrieve(context.Background(), "alice", testSig, "nope", w)
			var se *StatusError
			if !errors.As(err, &se) {
				t.Fatalf("got %v, want a *StatusError", err)
			}
			if se.Status != course.StatusBadRequest || se.Message != strings.TrimSpace(long) {
				t.Errorf("got status %v message %d bytes, want BAD_REQUEST and %d bytes", se.Status, len(se.Message), len(long))
			}
			if n := len(contents()); n != 0 {
				t.Errorf("wrote %d bytes of an error reply to dst", n)
			}
		})
	}
	t.Run("corrupt message", func(t *testing.T) {
		bs := split(course.StatusBadRequest, []byte(long))
		bs[1].h.BlockHash[0] ^= 1
		c, _ := pipePeer(t, replyWith(encode(bs)))
		_, err := c.Retrieve(context.Background(), "alice", testSig, "nope", io.Discard)
		if !errors.Is(err, ErrIntegrity) {
			t.Errorf("got %v, want an integrity error", err)
		}
	})
	t.Run("message too long", func(t *testing.T) {
		c, _ := pipePeer(t, replyWith(encode(split(course.StatusOther, make([]byte, 100_000)))))
		_, err := c.Retrieve(context.Background(), "alice", testSig, "nope", io.Discard)
		if !errors.Is(err, ErrIntegrity) || !strings.Contains(err.Error(), "longer than") {
			t.Errorf("got %v, want a message too long", err)
		}
	})
	t.Run("control characters", func(t *testing.T) {
		c, _ := pipePeer(t, replyWith(encode(split(course.StatusInvalidLogin, []byte("bad\x1b[2J\nlogin\xff\u202e")))))
		_, err := c.Retrieve(context.Background(), "alice", testSig, "x", io.Discard)
		var se *StatusError
		if !errors.As(err, &se) || se.Message != "bad\uFFFD[2J login\uFFFD\uFFFD" {
			t.Errorf("got %#v, want the message cleaned", err)
		}
	})
}

func TestRegister(t *testing.T) {
	c, p := pipePeer(t, replyWith(encode(split(course.StatusOK, []byte("New user alice registered.")))))
	msg, err := c.Register(context.Background(), "alice", testSig)
	if err != nil || msg != "New user alice registered." {
		t.Fatalf("got %q, %v", msg, err)
	}
	if req := p.request(t); !req.IsRegister() || req.Username != "alice" || req.Signature != testSig {
		t.Errorf("server got %+v", req)
	}

	c, _ = pipePeer(t, replyWith(encode(split(course.StatusUserExists, []byte("Cannot register user under name 'alice', already exists")))))
	_, err = c.Register(context.Background(), "alice", testSig)
	var se *StatusError
	if !errors.As(err, &se) || se.Status != course.StatusUserExists || !strings.Contains(se.Message, "already exists") {
		t.Errorf("got %v, want USER_EXISTS", err)
	}

	c, _ = pipePeer(t, replyWith(nil))
	if _, err = c.Register(context.Background(), "alice", testSig); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("no reply: got %v, want an error wrapping io.ErrUnexpectedEOF", err)
	}
}

func TestSecondRequestRefused(t *testing.T) {
	c, _ := pipePeer(t, replyWith(encode(split(course.StatusOK, []byte("hi")))))
	if _, err := c.Retrieve(context.Background(), "alice", testSig, "f", io.Discard); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Retrieve(context.Background(), "alice", testSig, "f", io.Discard); !errors.Is(err, ErrClientUsed) {
		t.Errorf("second Retrieve: got %v, want ErrClientUsed", err)
	}
	if _, err := c.Register(context.Background(), "alice", testSig); !errors.Is(err, ErrClientUsed) {
		t.Errorf("Register after Retrieve: got %v, want ErrClientUsed", err)
	}
}

func TestEmptyPathRefused(t *testing.T) {
	cc, sc := net.Pipe()
	defer sc.Close()
	c := NewClient(cc)
	defer c.Close()
	if _, err := c.Retrieve(context.Background(), "alice", testSig, "", io.Discard); err == nil {
		t.Error("an empty path was sent, which would register the user")
	}
}

// TestTrailingBytesIgnored checks that a complete reply is accepted without
// waiting for the close, and that what follows it (the reference server's
// second reply after a MALFORMED one) does not matter.
func TestTrailingBytesIgnored(t *testing.T) {
	first := encode(split(course.StatusMalformed, []byte("Malformed request.")))
	second := encode(split(course.StatusUserMissing, []byte("Cannot serve non-registered user ''")))
	c, _ := pipePeer(t, func(conn net.Conn) {
		conn.Write(first)
		conn.Write(second) // fails once the client has closed: fine
	})
	_, err := c.Retrieve(context.Background(), "alice", testSig, "f", io.Discard)
	c.Close()
	var se *StatusError
	if !errors.As(err, &se) || se.Status != course.StatusMalformed {
		t.Errorf("got %v, want MALFORMED", err)
	}
}

// halfThenWait is a script that sends half of a reply and then waits for
// the client to hang up.
func halfThenWait(reply []byte) func(net.Conn) {
	return func(conn net.Conn) {
		conn.Write(reply[:len(reply)/2])
		io.Copy(io.Discard, conn)
	}
}

func TestContext(t *testing.T) {
	reply := encode(split(course.StatusOK, randomBytes(100_000, 10)))

	t.Run("cancel mid-transfer", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			c, _ := pipePeer(t, halfThenWait(reply))
			ctx, cancel := context.WithCancel(context.Background())
			c.Progress = func(int64, int64) { cancel() } // on the first block
			_, err := c.Retrieve(ctx, "alice", testSig, "f", io.Discard)
			if !errors.Is(err, context.Canceled) {
				t.Errorf("got %v, want context.Canceled", err)
			}
			c.Close()
		})
	})
	// The timeouts run in a synctest bubble: its clock moves only when
	// every goroutine is blocked, so they take no real time and cannot be
	// flaky on a slow machine.
	t.Run("deadline", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			c, _ := pipePeer(t, halfThenWait(reply))
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			start := time.Now()
			_, err := c.Retrieve(ctx, "alice", testSig, "f", io.Discard)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("got %v, want context.DeadlineExceeded", err)
			}
			if d := time.Since(start); d != time.Minute {
				t.Errorf("gave up after %v, want 1m", d)
			}
			c.Close()
		})
	})
	t.Run("idle timeout", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			c, _ := pipePeer(t, halfThenWait(reply))
			c.IdleTimeout = 30 * time.Second
			_, err := c.Retrieve(context.Background(), "alice", testSig, "f", io.Discard)
			if !errors.Is(err, os.ErrDeadlineExceeded) || !strings.Contains(err.Error(), "silent for 30s") {
				t.Errorf("got %v, want an idle timeout", err)
			}
			c.Close()
		})
	})
	t.Run("idle timeout does not cut a slow steady reply", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			c, _ := pipePeer(t, func(conn net.Conn) {
				for b := reply; len(b) > 0; b = b[min(len(b), 20_000):] {
					time.Sleep(20 * time.Second)
					conn.Write(b[:min(len(b), 20_000)])
				}
			})
			c.IdleTimeout = 30 * time.Second
			ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
			defer cancel()
			if _, err := c.Retrieve(ctx, "alice", testSig, "f", io.Discard); err != nil {
				t.Errorf("got %v", err)
			}
		})
	})
	t.Run("idle timeout capped by the deadline", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			c, _ := pipePeer(t, halfThenWait(reply))
			c.IdleTimeout = time.Hour
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if _, err := c.Retrieve(ctx, "alice", testSig, "f", io.Discard); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("got %v, want context.DeadlineExceeded", err)
			}
			c.Close()
		})
	})
	t.Run("already cancelled", func(t *testing.T) {
		cc, sc := net.Pipe()
		defer sc.Close()
		c := NewClient(cc)
		defer c.Close()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := c.Register(ctx, "alice", testSig); !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want context.Canceled", err)
		}
	})
}

func TestProgress(t *testing.T) {
	payload := randomBytes(3<<20, 11)
	c, _ := pipePeer(t, replyWith(encode(shuffled(split(course.StatusOK, payload), 12))))
	type call struct{ received, expected int64 }
	var calls []call
	c.Progress = func(r, e int64) { calls = append(calls, call{r, e}) }
	if _, err := c.Retrieve(context.Background(), "alice", testSig, "f", &memFile{}); err != nil {
		t.Fatal(err)
	}
	blocks := (len(payload) + 943) / 944
	if len(calls) < 2 || len(calls) > blocks/progressCheck+2 {
		t.Fatalf("got %d calls for %d blocks", len(calls), blocks)
	}
	if last := calls[len(calls)-1]; last.received != int64(len(payload)) || last.expected != int64(len(payload)) {
		t.Errorf("last call %+v, want both %d", last, len(payload))
	}
	for i := 1; i < len(calls); i++ {
		if calls[i].received < calls[i-1].received {
			t.Errorf("received went back from %d to %d", calls[i-1].received, calls[i].received)
		}
	}
	if first := calls[0]; first.expected != int64(blocks)*944 && first.expected != int64(len(payload)) {
		t.Errorf("first call expected %d, want %d", first.expected, blocks*944)
	}
}

func TestDial(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	payload := randomBytes(70_000, 13)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		startPeer(t, conn, replyWith(encode(shuffled(split(course.StatusOK, payload), 14))))
	}()
	c, err := Dial(context.Background(), ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var buf bytes.Buffer
	if _, err := c.Retrieve(context.Background(), "alice", testSig, "f", &buf); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), payload) {
		t.Error("payload differs")
	}

	addr := ln.Addr().String()
	ln.Close()
	if _, err := Dial(context.Background(), addr); err == nil || !strings.HasPrefix(err.Error(), "client: ") {
		t.Errorf("dial to a closed port: got %v", err)
	}
}

func TestCleanText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"New user bob registered.", "New user bob registered."},
		{"two\nlines\r\n", "two lines"},
		{"bell\a", "bell\uFFFD"},
		{"\xff\xfe", "\uFFFD"},
		{"rtl\u202eevil", "rtl\uFFFDevil"},
		{"æøå ok", "æøå ok"},
	}
	for _, tt := range tests {
		if got := cleanText([]byte(tt.in)); got != tt.want {
			t.Errorf("cleanText(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

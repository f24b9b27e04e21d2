package main

// Interoperability tests: larder against the peers it must work
// with unchanged, the course's Python client and server and students' C
// clients. The course's code is not available to us, so the peers under
// testdata/interop are independent re-creations written from the course
// protocol reference; testdata/interop/README.md says what each reproduces,
// defects included. These tests skip when python3 or a C compiler is
// missing.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/client"
	"github.com/larderfs/larder/course"
)

// dialGoClient dials addr for one request, bounded by peerTimeout.
func dialGoClient(t *testing.T, addr string) (context.Context, *client.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), peerTimeout)
	t.Cleanup(cancel)
	c, err := client.Dial(ctx, addr)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return ctx, c
}

var courseSig = larder.NewSignature("s3cret", course.CourseSalt)

// lateBodyConn sends a request in two writes, as some student clients do:
// the header, then the body only once the server has answered the header
// alone and closed. The reference server's single recv is then certain to
// see the header alone, and the body cannot reach a closed socket while
// the reply is still in flight, which would reset the connection. Reads
// replay what the server sent.
type lateBodyConn struct {
	net.Conn
	reply    *bytes.Reader
	replyLen int
}

func (c *lateBodyConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p[:min(len(p), course.RequestHeaderSize)])
	if err != nil || n == len(p) {
		return n, err
	}
	reply, err := io.ReadAll(c.Conn)
	if err != nil {
		return n, err
	}
	c.reply, c.replyLen = bytes.NewReader(reply), len(reply)
	c.Conn.Write(p[n:]) // too late: the server has closed
	return len(p), nil
}

func (c *lateBodyConn) Read(p []byte) (int, error) {
	if c.reply == nil {
		return c.Conn.Read(p)
	}
	return c.reply.Read(p)
}

// wantStatusError checks that err is a *client.StatusError with status
// want, and returns its message.
func wantStatusError(t *testing.T, err error, want course.Status) string {
	t.Helper()
	var se *client.StatusError
	if !errors.As(err, &se) || se.Status != want {
		t.Fatalf("got error %v, want a StatusError with status %v", err, want)
	}
	return se.Message
}

// TestInteropGoClientCourseServer runs larder's Go client against the
// course's reference server, as re-created from the reference with its
// defects: shuffled blocks, no reply at all for an empty file, status 6 for
// a binary file, CRLF turned into LF. The client must deliver what the
// server sent, surface the server's statuses and messages, and report the
// empty file's silence as NoReply rather than fail.
func TestInteropGoClientCourseServer(t *testing.T) {
	s := startCourseServer(t)
	text := interopText(90) // 4,950 bytes: 6 blocks, shuffled by the server
	s.put(t, "big.txt", text)
	s.put(t, "crlf.txt", []byte("one\r\ntwo\r\n"))
	s.put(t, "empty.txt", nil)
	s.put(t, "binary.bin", interopBinary())
	s.put(t, "sub/dir/x.txt", []byte("x"))

	t.Run("register", func(t *testing.T) {
		ctx, c := dialGoClient(t, s.addr)
		msg, err := c.Register(ctx, "alice", courseSig)
		if err != nil || msg != "New user alice registered." {
			t.Fatalf("got %q, %v; want the reference's message", msg, err)
		}
	})
	t.Run("name-taken", func(t *testing.T) {
		ctx, c := dialGoClient(t, s.addr)
		_, err := c.Register(ctx, "alice", larder.NewSignature("other", course.CourseSalt))
		msg := wantStatusError(t, err, course.StatusUserExists)
		if want := "Cannot register user under name 'alice', already exists"; msg != want {
			t.Errorf("got message %q, want %q", msg, want)
		}
	})
	t.Run("shuffled-multi-block/stream", func(t *testing.T) {
		ctx, c := dialGoClient(t, s.addr)
		var got bytes.Buffer
		res, err := c.Retrieve(ctx, "alice", courseSig, "big.txt", &got)
		if err != nil {
			t.Fatalf("Retrieve: %v", err)
		}
		if !bytes.Equal(got.Bytes(), text) || res.Size != int64(len(text)) || res.Blocks != 6 || res.NoReply {
			t.Errorf("got %d bytes, %+v; want the file's %d bytes in 6 blocks", got.Len(), res, len(text))
		}
	})
	t.Run("shuffled-multi-block/file", func(t *testing.T) {
		ctx, c := dialGoClient(t, s.addr)
		f, err := os.Create(filepath.Join(t.TempDir(), "big.txt"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := c.Retrieve(ctx, "alice", courseSig, "/big.txt", f); err != nil {
			t.Fatalf("Retrieve: %v", err)
		}
		if got, err := os.ReadFile(f.Name()); err != nil || !bytes.Equal(got, text) {
			t.Errorf("got %d bytes (%v), want the file's %d bytes", len(got), err, len(text))
		}
	})
	t.Run("crlf-becomes-lf", func(t *testing.T) {
		// The reference server's text-mode defect: the client delivers
		// what the server sent, which is not what is on its disk.
		ctx, c := dialGoClient(t, s.addr)
		var got bytes.Buffer
		if _, err := c.Retrieve(ctx, "alice", courseSig, "crlf.txt", &got); err != nil {
			t.Fatalf("Retrieve: %v", err)
		}
		if got.String() != "one\ntwo\n" {
			t.Errorf("got %q, want %q", got.String(), "one\ntwo\n")
		}
	})
	t.Run("empty-file-no-reply", func(t *testing.T) {
		ctx, c := dialGoClient(t, s.addr)
		var got bytes.Buffer
		res, err := c.Retrieve(ctx, "alice", courseSig, "empty.txt", &got)
		if err != nil || !res.NoReply || res.Size != 0 || got.Len() != 0 {
			t.Errorf("got %+v, %v, %d bytes; want NoReply and nothing written", res, err, got.Len())
		}
	})
	t.Run("malformed-then-second-reply", func(t *testing.T) {
		// The reference server answers a request split over two writes
		// with status 7 and then a second reply on the same connection.
		// The client must report the first and ignore the rest.
		conn, err := net.DialTimeout("tcp", s.addr, peerTimeout)
		if err != nil {
			t.Fatal(err)
		}
		split := &lateBodyConn{Conn: conn}
		c := client.NewClient(split)
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), peerTimeout)
		defer cancel()
		var got bytes.Buffer
		_, err = c.Retrieve(ctx, "alice", courseSig, "big.txt", &got)
		msg := wantStatusError(t, err, course.StatusMalformed)
		if want := "Malformed request. Length of request does not match given length"; msg != want {
			t.Errorf("got message %q, want %q", msg, want)
		}
		if first := course.BlockHeaderSize + len(msg); split.replyLen <= first {
			t.Errorf("the server sent %d bytes, no more than its first reply's %d: no second reply to ignore", split.replyLen, first)
		}
		if got.Len() != 0 {
			t.Errorf("%d bytes written to the destination, want none", got.Len())
		}
	})
	refusals := []struct {
		name, user, path string
		sig              larder.Signature
		want             course.Status
		message          string // "" means any non-empty message
	}{
		{"missing-file", "alice", "nope.txt", courseSig, course.StatusBadRequest, "Requested content nope.txt does not exist"},
		{"directory", "alice", "/sub/dir", courseSig, course.StatusBadRequest, "Request URI sub/dir is not a file"},
		{"wrong-password", "alice", "big.txt", larder.NewSignature("S3cret", course.CourseSalt), course.StatusInvalidLogin, "Signature hashes do not match for alice."},
		{"unknown-user", "mallory", "big.txt", courseSig, course.StatusUserMissing, "Cannot serve non-registered user 'mallory'"},
		// The reference server's text-mode defect.
		{"binary-file", "alice", "binary.bin", courseSig, course.StatusOther, ""},
	}
	for _, c := range refusals {
		t.Run(c.name, func(t *testing.T) {
			ctx, cl := dialGoClient(t, s.addr)
			var got bytes.Buffer
			_, err := cl.Retrieve(ctx, c.user, c.sig, c.path, &got)
			msg := wantStatusError(t, err, c.want)
			switch {
			case c.message == "" && msg == "":
				t.Errorf("got an empty message, want the server's")
			case c.message != "" && msg != c.message:
				t.Errorf("got message %q, want %q", msg, c.message)
			}
			if got.Len() != 0 {
				t.Errorf("%d bytes written to the destination, want none", got.Len())
			}
		})
	}
}

// TestInteropCourseServerDefects checks that course_server.py reproduces
// the reference's defects that the other tests rely on, so that larder's
// client is tested against the real behaviour: blocks arrive shuffled, and
// a request split over two writes gets status 7 and then a second reply.
func TestInteropCourseServerDefects(t *testing.T) {
	s := startCourseServer(t)
	s.put(t, "long.txt", interopText(600)) // 33,000 bytes: 35 blocks
	ctx, c := dialGoClient(t, s.addr)
	if _, err := c.Register(ctx, "alice", courseSig); err != nil {
		t.Fatal(err)
	}

	// exchange sends req, in two writes if split (see lateBodyConn), and
	// returns the status and index of every block received until the
	// server closes.
	exchange := func(t *testing.T, req []byte, split bool) (statuses []course.Status, indexes []uint32) {
		t.Helper()
		conn, err := net.DialTimeout("tcp", s.addr, peerTimeout)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(peerTimeout))
		if split {
			conn = &lateBodyConn{Conn: conn}
		}
		if _, err := conn.Write(req); err != nil {
			t.Fatal(err)
		}
		br := course.NewBlockReader(conn)
		for {
			h, _, err := br.ReadBlock()
			if err == io.EOF {
				return statuses, indexes
			}
			if err != nil {
				t.Fatalf("after %d blocks: %v", len(indexes), err)
			}
			statuses = append(statuses, h.Status)
			indexes = append(indexes, h.Index)
		}
	}
	request := func(path string) []byte {
		b, err := (&course.Request{Username: "alice", Signature: courseSig, Body: []byte(path)}).AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	t.Run("shuffled", func(t *testing.T) {
		statuses, indexes := exchange(t, request("long.txt"), false)
		if len(indexes) != 35 || statuses[0] != course.StatusOK {
			t.Fatalf("got %d blocks with statuses %v, want 35 with OK", len(indexes), statuses)
		}
		inOrder := true
		for i, x := range indexes {
			inOrder = inOrder && x == uint32(i)
		}
		if inOrder {
			t.Errorf("35 blocks arrived in order (chance 1 in 35!): the server does not shuffle")
		}
	})
	t.Run("split-request", func(t *testing.T) {
		statuses, _ := exchange(t, request("long.txt"), true)
		// Status 7, then the fall-through treats the missing body as a
		// registration of a name already taken.
		want := []course.Status{course.StatusMalformed, course.StatusUserExists}
		if fmt.Sprint(statuses) != fmt.Sprint(want) {
			t.Errorf("got block statuses %v, want %v", statuses, want)
		}
	})
}

// interopCLI runs the larder command in-process through Run, against
// server, with the password in LARDER_PASSWORD and the salt store in a
// private folder, configDir.
type interopCLI struct {
	server    string
	configDir string
}

func newInteropCLI(t *testing.T, server string) *interopCLI {
	return &interopCLI{server: server, configDir: filepath.Join(t.TempDir(), "config")}
}

// run runs "larder args..." with the given password and returns its
// standard output, standard error and error.
func (c *interopCLI) run(t *testing.T, password string, args ...string) (stdout []byte, stderr string, err error) {
	t.Helper()
	vars := map[string]string{
		"LARDER_SERVER":     c.server,
		"LARDER_CONFIG_DIR": c.configDir,
		"LARDER_PASSWORD":   password,
	}
	var out, errb bytes.Buffer
	env := &Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return vars[k] }}
	ctx, cancel := context.WithTimeout(context.Background(), peerTimeout)
	defer cancel()
	err = Run(ctx, env, args)
	if ctx.Err() != nil {
		t.Fatalf("larder %q: no result within %v: %v", args, peerTimeout, err)
	}
	return out.Bytes(), errb.String(), err
}

// TestInteropCLICourseServer runs the larder command against the course's
// reference server, as re-created from the reference: an account
// registered with the course client's salt (--salt) and one with a random
// salt kept in the configuration folder, as the assignment asks of
// clients, then files fetched to a file and to stdout, and the server's
// refusals and defects turned into exit codes.
func TestInteropCLICourseServer(t *testing.T) {
	s := startCourseServer(t)
	text := interopText(90)
	s.put(t, "big.txt", text)
	s.put(t, "empty.txt", nil)
	s.put(t, "binary.bin", interopBinary())
	cli := newInteropCLI(t, s.addr)
	courseArgs := []string{"--user", "carol", "--salt", course.CourseSalt}
	out := t.TempDir()

	t.Run("register/course-salt", func(t *testing.T) {
		stdout, stderr, err := cli.run(t, "s3cret", append([]string{"register"}, courseArgs...)...)
		if err != nil || string(stdout) != "New user carol registered.\n" {
			t.Fatalf("got %v, stdout %q, stderr %q; want the server's message", err, stdout, stderr)
		}
		if _, err := os.Stat(cli.configDir); !os.IsNotExist(err) {
			t.Errorf("register --salt touched the salt store: %v", err)
		}
	})
	t.Run("get/file", func(t *testing.T) {
		dst := filepath.Join(out, "big.txt")
		_, stderr, err := cli.run(t, "s3cret", append([]string{"get", "big.txt", "-o", dst}, courseArgs...)...)
		if err != nil {
			t.Fatalf("get: %v (stderr %q)", err, stderr)
		}
		if got, err := os.ReadFile(dst); err != nil || !bytes.Equal(got, text) {
			t.Errorf("got %d bytes (%v), want the file's %d bytes", len(got), err, len(text))
		}
	})
	t.Run("get/stdout", func(t *testing.T) {
		stdout, stderr, err := cli.run(t, "s3cret", append([]string{"get", "/big.txt"}, courseArgs...)...)
		if err != nil || !bytes.Equal(stdout, text) {
			t.Errorf("got %v, %d bytes (stderr %q); want the file's %d bytes", err, len(stdout), stderr, len(text))
		}
	})
	t.Run("get/empty-file-no-reply", func(t *testing.T) {
		// The reference server sends nothing for an empty file, and so does
		// anything that is not a course server: the command cannot tell
		// them apart, so it fails with the network's exit code and leaves an
		// existing file as it was.
		dst := filepath.Join(out, "empty.txt")
		keep := []byte("kept")
		if err := os.WriteFile(dst, keep, 0o644); err != nil {
			t.Fatal(err)
		}
		_, stderr, err := cli.run(t, "s3cret", append([]string{"get", "empty.txt", "-o", dst}, courseArgs...)...)
		if code := ExitCode(err); code != exitNetwork || err == nil || !strings.Contains(err.Error(), "no reply") {
			t.Fatalf("got exit %d (%v), stderr %q; want exit %d naming the missing reply", code, err, stderr, exitNetwork)
		}
		if got, err := os.ReadFile(dst); err != nil || !bytes.Equal(got, keep) {
			t.Errorf("got %q (%v), want the existing file untouched", got, err)
		}
	})
	for _, c := range []struct {
		name, user, password, path string
		want                       course.Status
		code                       int
	}{
		{"missing-file", "carol", "s3cret", "nope.txt", course.StatusBadRequest, exitNotFound},
		{"wrong-password", "carol", "S3cret", "big.txt", course.StatusInvalidLogin, exitDenied},
		{"unknown-user", "mallory", "s3cret", "big.txt", course.StatusUserMissing, exitDenied},
		// The reference server's text-mode defect.
		{"binary-file", "carol", "s3cret", "binary.bin", course.StatusOther, exitFailure},
	} {
		t.Run("get/"+c.name, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "out")
			_, _, err := cli.run(t, c.password, "get", c.path, "-o", dst, "--user", c.user, "--salt", course.CourseSalt)
			wantStatusError(t, err, c.want)
			if got := ExitCode(err); got != c.code {
				t.Errorf("exit code %d, want %d", got, c.code)
			}
			if entries, _ := os.ReadDir(filepath.Dir(dst)); len(entries) != 0 {
				t.Errorf("left %d files behind, want none", len(entries))
			}
		})
	}
	t.Run("stored-salt", func(t *testing.T) {
		// larder's own way: a random salt per account, kept locally.
		_, stderr, err := cli.run(t, "pw", "register", "--user", "dora")
		if err != nil {
			t.Fatalf("register: %v (stderr %q)", err, stderr)
		}
		stdout, stderr, err := cli.run(t, "pw", "get", "big.txt", "--user", "dora")
		if err != nil || !bytes.Equal(stdout, text) {
			t.Errorf("get: %v, %d bytes (stderr %q); want the file's %d bytes", err, len(stdout), stderr, len(text))
		}
		// The course salt is not dora's: the server must refuse it.
		_, _, err = cli.run(t, "pw", "get", "big.txt", "--user", "dora", "--salt", course.CourseSalt)
		wantStatusError(t, err, course.StatusInvalidLogin)
	})
}

package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/course"
)

// These tests run the subcommands in-process against a scripted server on
// 127.0.0.1:0 that answers with the real codec. The end-to-end test
// against the real server lives with "larder serve".

// fakeServer answers every connection with what reply returns for its
// request, then hangs up.
type fakeServer struct {
	addr string
	reqs chan *course.Request
}

func startServer(t *testing.T, reply func(req *course.Request) []byte) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s := &fakeServer{addr: ln.Addr().String(), reqs: make(chan *course.Request, 16)}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(10 * time.Second))
				req, err := course.ReadRequest(conn)
				if err != nil {
					return
				}
				s.reqs <- req
				conn.Write(reply(req))
			}()
		}
	}()
	return s
}

// request returns the next request the server received.
func (s *fakeServer) request(t *testing.T) *course.Request {
	t.Helper()
	select {
	case r := <-s.reqs:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("the server received no request")
		return nil
	}
}

// messageReply encodes a reply whose payload is text.
func messageReply(status course.Status, text string) []byte {
	var b bytes.Buffer
	w := course.NewWriter(&b)
	w.WriteMessage(status, text)
	w.Flush()
	return b.Bytes()
}

// payloadReply encodes an OK reply carrying data, its blocks in reverse
// order, as a shuffling server might send them.
func payloadReply(data []byte) []byte {
	var b bytes.Buffer
	w := course.NewWriter(&b)
	count, _ := course.BlockCount(int64(len(data)))
	w.WritePayload(course.StatusOK, bytes.NewReader(data), int64(len(data)), sha256.Sum256(data),
		func(i uint32) uint32 { return count - 1 - i })
	w.Flush()
	return b.Bytes()
}

// testEnv returns an Env whose variables point at server, a private
// config folder, user alice and password "pw", overridden by vars.
func testEnv(t *testing.T, server string, vars ...string) (env *Env, stdout, stderr *bytes.Buffer) {
	m := map[string]string{
		"LARDER_SERVER":     server,
		"LARDER_CONFIG_DIR": filepath.Join(t.TempDir(), "config"),
		"LARDER_USER":       "alice",
		"LARDER_PASSWORD":   "pw",
		// The test servers' policy is far below what a client takes.
		"LARDER_MIN_KDF": "m=8,t=1,p=1",
	}
	for i := 0; i+1 < len(vars); i += 2 {
		m[vars[i]] = vars[i+1]
	}
	stdout, stderr = new(bytes.Buffer), new(bytes.Buffer)
	return &Env{Stdin: strings.NewReader(""), Stdout: stdout, Stderr: stderr, Getenv: func(k string) string { return m[k] }},
		stdout, stderr
}

func run(env *Env, args ...string) error {
	return Run(context.Background(), env, args)
}

func TestRegister(t *testing.T) {
	srv := startServer(t, func(req *course.Request) []byte {
		return messageReply(course.StatusOK, "New user "+req.Username+" registered.")
	})
	env, stdout, stderr := testEnv(t, srv.addr)
	if err := run(env, "register"); err != nil {
		t.Fatalf("register: %v\n%s", err, stderr)
	}
	if got := stdout.String(); got != "New user alice registered.\n" {
		t.Errorf("stdout %q", got)
	}
	req := srv.request(t)
	if !req.IsRegister() || req.Username != "alice" {
		t.Errorf("server got %+v", req)
	}
	s, err := storedSalt(env, srv.addr, "alice")
	if err != nil {
		t.Fatalf("salt not stored: %v", err)
	}
	if len(s) != larder.SaltLen {
		t.Errorf("stored salt has %d characters, want %d", len(s), larder.SaltLen)
	}
	if req.Signature != larder.NewSignature("pw", s) {
		t.Error("the signature is not SHA-256(password + stored salt)")
	}
	if strings.Contains(stderr.String()+stdout.String(), s) {
		t.Error("the salt was printed although it was stored")
	}
}

func TestRegisterWithSalt(t *testing.T) {
	const courseSalt = "0123456789012345678901234567890123456789012345678901234567890123"
	srv := startServer(t, func(*course.Request) []byte { return messageReply(course.StatusOK, "ok") })
	env, _, stderr := testEnv(t, srv.addr, "LARDER_PASSWORD", "")
	env.Stdin = strings.NewReader("secret\r\nignored\n")
	if err := run(env, "register", "--salt", courseSalt, "--password-stdin", "--user", "bob"); err != nil {
		t.Fatalf("register: %v\n%s", err, stderr)
	}
	req := srv.request(t)
	if req.Username != "bob" || req.Signature != larder.NewSignature("secret", courseSalt) {
		t.Errorf("server got user %q and a signature not made from the given salt", req.Username)
	}
	if _, err := os.Stat(env.Getenv("LARDER_CONFIG_DIR")); !os.IsNotExist(err) {
		t.Errorf("--salt touched the store: %v", err)
	}
}

func TestRegisterUserExists(t *testing.T) {
	srv := startServer(t, func(*course.Request) []byte {
		return messageReply(course.StatusUserExists, "Cannot register user under name 'alice', already exists")
	})
	env, _, _ := testEnv(t, srv.addr)
	err := run(env, "register")
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("got %v, want the server's message", err)
	}
	if code := ExitCode(err); code != exitDenied {
		t.Errorf("exit code %d, want %d", code, exitDenied)
	}
	if _, err := storedSalt(env, srv.addr, "alice"); err == nil {
		t.Error("a salt was stored for a refused registration")
	}
}

// TestRegisterStoreFailsAfterwards makes the store fail only after the
// server has registered the account: the salt must then be shown, or the
// account is lost.
func TestRegisterStoreFailsAfterwards(t *testing.T) {
	srv := startServer(t, func(*course.Request) []byte { return messageReply(course.StatusOK, "registered") })
	env, _, stderr := testEnv(t, srv.addr)
	dir := env.Getenv("LARDER_CONFIG_DIR")
	// A folder where the salts file should be: the lock works, the read
	// inside Put does not.
	if err := os.MkdirAll(filepath.Join(dir, "salts.json"), 0o700); err != nil {
		t.Fatal(err)
	}
	err := run(env, "register")
	if err == nil {
		t.Fatal("register succeeded although the salt could not be stored")
	}
	req := srv.request(t)
	var shown string
	for _, f := range strings.Fields(stderr.String()) {
		if len(f) == larder.SaltLen && req.Signature == larder.NewSignature("pw", f) {
			shown = f
		}
	}
	if shown == "" {
		t.Errorf("stderr does not show the salt the account was registered with:\n%s", stderr)
	}
}

func TestRegisterStoreUnusable(t *testing.T) {
	srv := startServer(t, func(*course.Request) []byte { return messageReply(course.StatusOK, "registered") })
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	env, _, _ := testEnv(t, srv.addr, "LARDER_CONFIG_DIR", filepath.Join(file, "larder"))
	if err := run(env, "register"); err == nil {
		t.Fatal("register succeeded with an unusable salt store")
	}
	select {
	case <-srv.reqs:
		t.Error("the account was registered although its salt could not have been stored")
	case <-time.After(100 * time.Millisecond):
	}
}

func TestRegisterUsage(t *testing.T) {
	env, _, _ := testEnv(t, "127.0.0.1:1")
	tests := []struct {
		args []string
		want int
	}{
		{[]string{"register", "extra"}, exitUsage},
		{[]string{"register", "--bogus"}, exitUsage},
		{[]string{"register", "--user", "a-name-much-too-long"}, exitUsage},
		{[]string{"register", "--user", "tab\there"}, exitUsage},
		{[]string{"register", "-h"}, exitOK},
		{[]string{"register"}, exitNetwork}, // nothing listens on port 1
	}
	for _, tt := range tests {
		if code := ExitCode(run(env, tt.args...)); code != tt.want {
			t.Errorf("%q: exit code %d, want %d", tt.args, code, tt.want)
		}
	}
}

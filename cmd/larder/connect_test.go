package main

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// closedAddr returns a loopback address on which nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestConnectionErrorsFirst: a server that cannot be reached is said
// before a missing salt or a missing password.
func TestConnectionErrorsFirst(t *testing.T) {
	addr := closedAddr(t)
	env, _, _ := testEnv(t, addr, "LARDER_PASSWORD", "")
	// No salt stored, no password: the connection fails first.
	wantExit(t, env, exitNetwork, []string{"connection refused"}, "get", "--course", "f")
	wantExit(t, env, exitNetwork, []string{"connection refused"}, "ls", "--server", addr)
	wantExit(t, env, exitNetwork, []string{"connection refused"}, "login", "--server", addr)
	wantExit(t, env, exitNetwork, []string{"connection refused"}, "register")
	err := run(env, "get", "--course", "f")
	if msg := Message(err); !strings.Contains(msg, "is the server running") {
		t.Errorf("message %q does not say what to check", msg)
	}
	// A running server and no salt: the salt is what is missing.
	l := startLarder(t)
	env, _, _ = testEnv(t, l.addr())
	wantExit(t, env, exitFailure, []string{"no salt"}, "get", "--course", "f")
	// The course port given to a native command: the wrong port, a
	// network failure.
	wantExit(t, env, exitNetwork, []string{"does not speak TLS"}, "login", "--server", l.addr())
}

func TestServerAddr(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"example.org:80", "example.org:80"},
		{"example.org", "example.org:23456"},
		{"::1", "[::1]:23456"},
		{"[::1]", "[::1]:23456"},
		{"[::1]:9", "[::1]:9"},
		{"localhost", "localhost:23456"},
	} {
		if got, err := serverAddr(tt.in, defaultServer); err != nil || got != tt.want {
			t.Errorf("serverAddr(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", ":80", "example.org:", "example.org:0", "example.org:99999", "example.org:x", "a b:1", "[::1"} {
		if got, err := serverAddr(bad, defaultServer); ExitCode(err) != exitUsage {
			t.Errorf("serverAddr(%q) = %q, %v; want a usage error", bad, got, err)
		}
	}
}

// TestEarlyConnStale: a connection made before a prompt that took longer
// than freshFor is replaced by a new one, which the server then serves.
func TestEarlyConnStale(t *testing.T) {
	l := startLarder(t)
	l.put(t, "f", []byte("hello"))
	env, stdout, stderr := testEnv(t, l.addr())
	must(t, run(env, "register"))
	f := clientFlags{server: l.addr(), connectTimeout: 5 * time.Second}
	e, err := f.dialFirst(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer e.close()
	first := e.c
	e.at = e.at.Add(-freshFor)
	_, c, err := e.get(context.Background())
	if err != nil || c == first {
		t.Fatalf("get after freshFor: %v, same client %v; want a new connection", err, c == first)
	}
	// And a get through the command works as ever.
	stdout.Reset()
	if err := run(env, "get", "f"); err != nil || stdout.String() != "hello" {
		t.Errorf("get: %v, %q\n%s", err, stdout, stderr)
	}
}

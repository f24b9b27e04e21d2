package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/larderfs/larder/client"
	"github.com/larderfs/larder/course"
	"github.com/larderfs/larder/lnp"
)

// TestREADMEExitCodes: the README's exit-code table is the one the code
// has (exitCodeTable, made from failures).
func TestREADMEExitCodes(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- exit codes: made by exitCodeTable in cmd/larder/failures.go -->\n", "<!-- end of exit codes -->"
	_, rest, ok := strings.Cut(string(b), begin)
	table, _, ok2 := strings.Cut(rest, end)
	if !ok || !ok2 {
		t.Fatalf("README.md has no exit-code table between %q and %q", begin, end)
	}
	if want := exitCodeTable(); table != want {
		t.Errorf("README.md's exit-code table differs from the code's; replace it with:\n%s", want)
	}
}

// TestMessages: what main prints for the server's statuses and the
// client's own failures is plain language with what to do, without the
// client package's wording.
func TestMessages(t *testing.T) {
	tests := []struct {
		err     error
		want    []string
		notWant []string
	}{
		{&client.LNPError{Status: lnp.StatusNotFound, Message: `requested content "x" does not exist`},
			[]string{`requested content "x" does not exist`, "'larder ls'"}, []string{"client:", "NOT_FOUND", "replied"}},
		{&client.StatusError{Status: course.StatusInvalidLogin, Message: "Signature hashes do not match for alice."},
			[]string{"refused the password", "--salt"}, []string{"Signature hashes", "INVALID_LOGIN"}},
		{&client.StatusError{Status: course.StatusUserMissing, Message: "Cannot serve non-registered user 'bob'"},
			[]string{"no account of that name", "larder register"}, []string{"non-registered"}},
		{fmt.Errorf("client: retrieve: %w", context.Canceled), []string{"interrupted"}, []string{"context canceled"}},
		{&hintError{err: &client.LNPError{Status: lnp.StatusConflict, Message: `"f" exists`}, hint: "-f replaces it"},
			[]string{`"f" exists (-f replaces it)`}, []string{"CONFLICT"}},
		{&client.LNPError{Status: lnp.StatusBusy}, []string{"the server is busy", "retry"}, []string{"BUSY"}},
		{&localError{what: "put: cannot read the local file", err: os.ErrNotExist}, []string{"put: cannot read the local file"}, nil},
	}
	for _, tt := range tests {
		got := Message(tt.err)
		for _, w := range tt.want {
			if !strings.Contains(got, w) {
				t.Errorf("Message(%v) = %q, want it to mention %q", tt.err, got, w)
			}
		}
		for _, w := range tt.notWant {
			if strings.Contains(got, w) {
				t.Errorf("Message(%v) = %q, want no %q", tt.err, got, w)
			}
		}
	}
}

// TestExitCodesAsUsed: the exit codes of mistakes users make, run
// against a real server.
func TestExitCodesAsUsed(t *testing.T) {
	l := startLarder(t, func(c *ServeConfig) { c.Registration = "closed"; c.MetricsListen = "127.0.0.1:0" })
	env, _, _ := testEnv(t, l.addr())

	// Registration closed is a refusal, on both protocols.
	wantExit(t, env, exitDenied, []string{"registration is closed"}, "register")
	wantExit(t, env, exitDenied, []string{"registration is closed"}, "register", "--native", "--server", l.lnpAddr())
	// An unknown user is a refused login, as LNP/1 (which cannot tell
	// it from a wrong password) says it.
	wantExit(t, env, exitDenied, nil, "get", "f", "--salt", "s")

	// What main prints for them.
	env2, _, _ := withVars(env)
	err := run(env2, "register")
	if msg := Message(err); !strings.Contains(msg, "ask the server's administrator") || strings.Contains(msg, "BAD_REQUEST") {
		t.Errorf("registration closed: message %q", msg)
	}

	// A course get pointed at the metrics port says it met an HTTP
	// server.
	err = run(env2, "get", "f", "--salt", "s", "--server", l.main.MetricsAddr().String())
	if ExitCode(err) != exitNetwork || !strings.Contains(Message(err), "an HTTP server answered") {
		t.Errorf("get from the metrics port: exit %d, %q; want %d saying it is an HTTP server", ExitCode(err), Message(err), exitNetwork)
	}
}

// TestExitCodePutMissingLocal: put of a local file that does not exist is
// "not found", 3, before anything is asked or sent.
func TestExitCodePutMissingLocal(t *testing.T) {
	env, _, _ := testEnv(t, "127.0.0.1:1")
	wantExit(t, env, exitNotFound, []string{"nope.txt"}, "put", filepath.Join(t.TempDir(), "nope.txt"), "--server", "127.0.0.1:1")
}

// TestServeBadListen: a --listen that is no address is a usage error, not
// a network failure.
func TestServeBadListen(t *testing.T) {
	for _, flag := range []string{"--listen", "--native-listen", "--metrics-listen"} {
		for _, addr := range []string{"foo", "127.0.0.1:http2x", "127.0.0.1"} {
			_, _, err := runLarder(t, "", "serve", flag, addr, "--data", t.TempDir())
			if got := ExitCode(err); got != exitUsage || !strings.Contains(err.Error(), flag) {
				t.Errorf("serve %s %s: exit %d (%v), want %d naming the flag", flag, addr, got, err, exitUsage)
			}
		}
	}
}

// TestMkdirMissingParent: mkdir without -p of a folder whose parent is
// missing names the parent, and -p.
func TestMkdirMissingParent(t *testing.T) {
	l := startLarder(t)
	env := loggedIn(t, l)
	env, _, _ = withVars(env)
	err := run(env, "mkdir", "a/b/c")
	msg := Message(err)
	if ExitCode(err) != exitNotFound || !strings.Contains(msg, `parent folder a/b does not exist`) || !strings.Contains(msg, "-p") {
		t.Errorf("mkdir a/b/c: exit %d, %q; want %d naming a/b and -p", ExitCode(err), msg, exitNotFound)
	}
	if errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}

// TestUnknownUserLNP: an unknown user on LNP/1, which the client then
// tries to enroll and has no salt for, is a refused login (4), as on the
// course protocol, not a missing salt (1).
func TestUnknownUserLNP(t *testing.T) {
	l := startLarder(t)
	env := loggedIn(t, l)
	env, _, _ = withVars(env, "LARDER_PASSWORD", "x")
	err := run(env, "ls", "--user", "bob")
	if ExitCode(err) != exitDenied || !strings.Contains(Message(err), "unknown user or wrong password") {
		t.Errorf("ls as an unknown user: exit %d, %q; want %d", ExitCode(err), Message(err), exitDenied)
	}
}

// TestREADMECommands: the README's layout row for cmd/larder names every
// command of the program, and no other.
func TestREADMECommands(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, row, ok := strings.Cut(string(b), "| `cmd/larder/` | the one binary: ")
	row, _, _ = strings.Cut(row, "\n")
	if !ok {
		t.Fatal("README.md has no layout row for cmd/larder/")
	}
	var listed []string
	for _, f := range strings.Split(strings.TrimSuffix(strings.TrimSpace(row), "|"), ",") {
		listed = append(listed, strings.Trim(strings.TrimSpace(f), "`"))
	}
	want := []string{"help"}
	for _, c := range commands() {
		want = append(want, c.name)
	}
	slices.Sort(listed)
	slices.Sort(want)
	if !slices.Equal(listed, want) {
		t.Errorf("README.md lists the commands %q, the program has %q", listed, want)
	}
}

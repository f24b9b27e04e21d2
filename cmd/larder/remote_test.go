package main

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestSplitRemote: scp's rule, a ':' before any '/' ends the server part.
func TestSplitRemote(t *testing.T) {
	for _, c := range []struct {
		arg, prefix, path string
		ok                bool
	}{
		{"work:notes.txt", "work", "notes.txt", true},
		{"work:", "work", "", true},
		{"work:/a/b:c", "work", "/a/b:c", true},
		{"/a:b", "", "/a:b", false},
		{"./a:b", "", "./a:b", false},
		{"dir/a:b", "", "dir/a:b", false},
		{"notes.txt", "", "notes.txt", false},
		{":x", "", "x", true},
		{"alice@host:23457:/x", "alice@host", "23457:/x", true},
		{"alice@[::1]:23457:/x", "alice@[::1]", "23457:/x", true},
		{"alice@[::1]", "", "alice@[::1]", false},
		{"[::1]:23457:/x", "[::1]", "23457:/x", true},
		{"[::1]", "", "[::1]", false},
	} {
		prefix, path, ok := splitRemote(c.arg)
		if prefix != c.prefix || path != c.path || ok != c.ok {
			t.Errorf("splitRemote(%q) = %q, %q, %v; want %q, %q, %v", c.arg, prefix, path, ok, c.prefix, c.path, c.ok)
		}
	}
}

// TestRemoteAddressing: a remote saved with another spelling of the
// server's address than the login's finds its salt, pin and device
// credential, and NAME:PATH works in every command that takes a path on
// the server, without a profile; the mistakes people make are refused
// with what to do.
func TestRemoteAddressing(t *testing.T) {
	l := startLarder(t)
	l.put(t, "hello.txt", []byte("hello"))
	env := loggedIn(t, l)
	// Another spelling of the server: the one identity of the stores.
	_, port, _ := net.SplitHostPort(l.lnpAddr())
	spelled := net.JoinHostPort("LOCALHOST", port)
	out, _ := runOK(t, env, "remote", "add", "work", spelled, "--user", "alice", "--course-server", l.addr())
	if !strings.Contains(out, "Remote work") {
		t.Errorf("remote add printed %q", out)
	}
	conf := env.Getenv("LARDER_CONFIG_DIR")
	// No profile: only the remote says where to go. No password either:
	// the device credential that login saved must be found.
	must(t, os.Remove(filepath.Join(conf, "profile.json")))
	env, _, _ = withVars(env, "LARDER_PASSWORD", "", "LARDER_USER", "")

	dir := t.TempDir()
	local := writeLocal(t, dir, "n.txt", []byte("notes"))
	runOK(t, env, "mkdir", "work:docs")
	runOK(t, env, "put", local, "work:docs/")
	if out, _ := runOK(t, env, "ls", "work:docs"); out != "n.txt\n" {
		t.Errorf("ls work:docs printed %q", out)
	}
	if out, _ := runOK(t, env, "ls", "work:"); !strings.Contains(out, "docs/") {
		t.Errorf("ls work: printed %q", out)
	}
	var st entryJSON
	out, _ = runOK(t, env, "stat", "work:docs/n.txt", "--json")
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.Path != "docs/n.txt" || st.Size != 5 {
		t.Errorf("stat work:docs/n.txt --json: %q (%v)", out, err)
	}
	runOK(t, env, "mv", "work:docs/n.txt", "work:docs/m.txt")
	back := filepath.Join(dir, "back.txt")
	runOK(t, env, "get", "work:docs/m.txt", "-o", back)
	if b, _ := os.ReadFile(back); string(b) != "notes" {
		t.Errorf("get work:docs/m.txt wrote %q", b)
	}
	// The course protocol, on the remote's course server, with the salt
	// that register stored there.
	if out, _ := runOK(t, withPassword(env), "get", "--course", "work:hello.txt"); out != "hello" {
		t.Errorf("get --course work:hello.txt printed %q", out)
	}
	if out, _ := runOK(t, env, "whoami", "--remote", "work"); !strings.Contains(out, "alice") {
		t.Errorf("whoami --remote work printed %q", out)
	}
	// The server typed out: USER@HOST:PORT:PATH.
	if out, _ := runOK(t, env, "ls", "alice@127.0.0.1:"+port+":/docs"); out != "m.txt\n" {
		t.Errorf("ls alice@127.0.0.1:%s:/docs printed %q", port, out)
	}
	runOK(t, env, "rm", "work:docs/m.txt", "work:docs")

	// Mistakes.
	wantExit(t, env, exitUsage, []string{`unknown remote "wrok"`, "work"}, "ls", "wrok:docs")
	wantExit(t, env, exitUsage, []string{"unknown remote", "work"}, "whoami", "--remote", "nope")
	wantExit(t, env, exitUsage, []string{"two servers"}, "mv", "work:a", "bob@example.com:23457:/b")
	// The remote and its server typed out, under another spelling, are one.
	runOK(t, env, "mkdir", "work:same")
	runOK(t, env, "mv", "work:same", "alice@127.0.0.1:"+port+":/same2")
	runOK(t, env, "rm", "alice@localhost:"+port+":same2")
	wantExit(t, env, exitUsage, []string{"--server", "work"}, "ls", "work:", "--server", l.lnpAddr())
	wantExit(t, env, exitUsage, []string{"leading '/'"}, "stat", ":x")
	wantExit(t, env, exitUsage, []string{"on the remote work", "./work:n.txt"}, "put", "work:n.txt")
	wantExit(t, env, exitUsage, []string{"on the remote work"}, "put", "work:n.txt", "/x")
	wantExit(t, env, exitUsage, []string{"USER@HOST:PORT:PATH"}, "ls", "@host:1:/x")
	// A server typed out without its user is not a remote called "[".
	wantExit(t, env, exitUsage, []string{"needs the user", "USER@[::1]:" + port + ":/docs"}, "ls", "[::1]:"+port+":/docs")
	wantExit(t, env, exitUsage, []string{"needs the user", "USER@127.0.0.1:" + port + ":/docs"}, "ls", "127.0.0.1:"+port+":/docs")

	// A local file whose name has a ':' is still a local file.
	colon := writeLocal(t, dir, "work:c.txt", []byte("c"))
	t.Chdir(dir)
	runOK(t, env, "put", "work:c.txt", "work:/c.txt")
	if out, _ := runOK(t, env, "stat", "work:c.txt", "--json"); !strings.Contains(out, `"size": 1`) {
		t.Errorf("stat after put of %s: %q", colon, out)
	}
	// And a server path with a ':' before any '/' needs the leading '/'.
	runOK(t, env, "put", "./work:c.txt", "work:/a:b")
	if out, _ := runOK(t, env, "ls", "work:/"); !strings.Contains(out, "a:b\n") {
		t.Errorf("ls work:/ after put to /a:b: %q", out)
	}
}

// withPassword returns env with LARDER_PASSWORD set, for the course
// protocol, which has no device credential.
func withPassword(env *Env) *Env {
	e, _, _ := withVars(env, "LARDER_PASSWORD", "pw")
	return e
}

// TestRemoteCommand: add, list (text, --json, --names) and rm, and their
// refusals.
func TestRemoteCommand(t *testing.T) {
	env, _, _ := testEnv(t, "127.0.0.1:1")
	wantExit(t, env, exitUsage, []string{"no HOST:PORT and no profile"}, "remote", "add", "home")
	runOK(t, env, "remote", "add", "home", "example.com", "--user", "bob")
	runOK(t, env, "remote", "add", "lab", "[::1]:9000", "--insecure-plaintext", "--course-server", "[::1]:9001")
	wantExit(t, env, exitUsage, []string{"already the remote", "-f"}, "remote", "add", "home", "example.org:1")
	runOK(t, env, "remote", "add", "home", "example.org:1", "-f", "--user", "bob")
	for _, bad := range []string{"1abc", "a:b", "a/b", "a@b", "", strings.Repeat("a", 65)} {
		wantExit(t, env, exitUsage, []string{"bad NAME"}, "remote", "add", bad, "example.com:1")
	}
	wantExit(t, env, exitUsage, []string{"bad --user"}, "remote", "add", "x", "example.com:1", "--user", "bad\x01name")
	wantExit(t, env, exitUsage, []string{"remote add: bad address", "want HOST:PORT"}, "remote", "add", "x", "a b:1")
	wantExit(t, env, exitUsage, []string{"bad --course-server"}, "remote", "add", "x", "a:1", "--course-server", "a:99999")
	wantExit(t, env, exitNotFound, []string{"--ca-file"}, "remote", "add", "x", "a:1", "--ca-file", filepath.Join(t.TempDir(), "nope.pem"))

	out, _ := runOK(t, env, "remote", "list", "--json")
	var list []remoteJSON
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 2 {
		t.Fatalf("remote list --json: %q (%v)", out, err)
	}
	want := []remoteJSON{
		{Name: "home", Server: "example.org:1", CourseServer: "example.org:23456", User: "bob", Trust: "pin"},
		{Name: "lab", Server: "[::1]:9000", CourseServer: "[::1]:9001", Trust: "plaintext"},
	}
	for i := range want {
		if list[i] != want[i] {
			t.Errorf("remote list --json [%d] = %+v, want %+v", i, list[i], want[i])
		}
	}
	if out, _ := runOK(t, env, "remote", "list", "--names"); out != "home\nlab\n" {
		t.Errorf("remote list --names printed %q", out)
	}
	if out, _ := runOK(t, env, "remote", "list"); !regexp.MustCompile(`(?m)^home +example\.org:1 +bob +certificate pinned`).MatchString(out) || !strings.Contains(out, "no TLS") {
		t.Errorf("remote list printed %q", out)
	}
	runOK(t, env, "remote", "rm", "lab")
	wantExit(t, env, exitUsage, []string{`unknown remote "lab"`, "home"}, "remote", "rm", "lab")
	if out, _ := runOK(t, env, "remote", "list", "--names"); out != "home\n" {
		t.Errorf("after rm, remote list --names printed %q", out)
	}
	// A file others may change is refused, as the profile is.
	path := filepath.Join(env.Getenv("LARDER_CONFIG_DIR"), "remotes.json")
	must(t, os.Chmod(path, 0o666))
	wantExit(t, env, exitFailure, []string{"chmod 600"}, "ls", "home:")
}

// TestRemoteCourseSalt: an account registered on the course port logs in
// to the native protocol through a remote, with no 'larder login' first:
// its first native login enrolls it with the course signature, signed
// with the salt stored for the remote's course server.
func TestRemoteCourseSalt(t *testing.T) {
	l := startLarder(t)
	env, _, _ := testEnv(t, l.addr())
	runOK(t, env, "register")
	runOK(t, env, "remote", "add", "work", l.lnpAddr(), "--course-server", l.addr())
	if out, _ := runOK(t, env, "ls", "work:"); !strings.Contains(out, "shared/") {
		t.Errorf("ls work: printed %q", out)
	}
	// Without a course server that holds a salt, the error says how to
	// log in to the remote.
	runOK(t, env, "remote", "add", "other", l.lnpAddr(), "--user", "bob", "--course-server", "127.0.0.1:1")
	// The remote's user wins over LARDER_USER (alice here).
	wantExit(t, env, exitDenied, []string{"larder login --remote other", `user "bob"`}, "ls", "other:")
}

// TestTamperedRemoteNoEscapes: a remotes.json changed by hand, or by
// another program, whose ca_file holds escape sequences, makes an error
// that names the file; the message printed escapes them rather than
// sending them to the terminal.
func TestTamperedRemoteNoEscapes(t *testing.T) {
	env, _, _ := testEnv(t, "127.0.0.1:1")
	path := filepath.Join(env.Getenv("LARDER_CONFIG_DIR"), "remotes.json")
	must(t, os.MkdirAll(filepath.Dir(path), 0o700))
	must(t, os.WriteFile(path, []byte(`{"version":1,"remotes":{"y":{"server":"127.0.0.1:1","user":"alice","trust":"ca","ca_file":"\u001b]0;pwned\u0007\u202ex.pem"}}}`), 0o600))
	err := run(env, "ls", "y:")
	if err == nil {
		t.Fatal("ls y: with a ca_file that does not exist succeeded")
	}
	msg := Message(err)
	if strings.ContainsAny(msg, "\x1b\x07\u202e") || !strings.Contains(msg, `\x1b]0;pwned\a\u202ex.pem`) {
		t.Errorf("the message printed is %q, want the ca_file's escapes escaped", msg)
	}
}

func TestTerminalSafe(t *testing.T) {
	for in, want := range map[string]string{
		"plain é 日本":          "plain é 日本",
		"two\nlines\tand tab": "two\nlines\tand tab",
		"\x1b[2J\r\x7f\u009b": `\x1b[2J\r\x7f\u009b`,
		"rtl\u202eoverride":   `rtl\u202eoverride`,
		"bad\xffutf8\u2028":   `bad\xffutf8\u2028`,
	} {
		if got := terminalSafe(in); got != want {
			t.Errorf("terminalSafe(%q) = %q, want %q", in, got, want)
		}
	}
}

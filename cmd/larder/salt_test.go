package main

import (
	"regexp"
	"strings"
	"testing"
)

// TestAdminSaltHandover follows an account an administrator makes for
// the course protocol, from the administrator's output to the user's
// machine, and through two password resets: the printed command stores
// the salt, 'larder get' then works, and a reset never changes the salt
// behind the user's back.
func TestAdminSaltHandover(t *testing.T) {
	l := startLarder(t)
	l.put(t, "f.txt", []byte("for dave"))

	out := adminOK(t, l, "first\n", "user", "add", "dave", "--course", "--server-address", l.addr(), "--password-stdin")
	cmdRE := regexp.MustCompile(`(?m)^    larder (salt set .*)$`)
	m := cmdRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("user add --course printed %q, want the command that stores the salt", out)
	}
	salt := regexp.MustCompile(`(?m)^dave's client salt, to hand over with the password: (\S+)$`).FindStringSubmatch(out)[1]
	if want := "salt set --server " + l.addr() + " --user dave " + salt; m[1] != want {
		t.Errorf("the command printed: got %q, want %q", m[1], want)
	}

	// dave's machine, a clean configuration folder.
	dave, _, _ := testEnv(t, l.addr(), "LARDER_USER", "dave", "LARDER_PASSWORD", "first")
	wantExit(t, dave, exitFailure, []string{"no salt", "larder salt set --server " + l.addr() + " --user dave SALT"}, "get", "f.txt")
	runOK(t, dave, strings.Fields(m[1])...)
	if got, _ := runOK(t, dave, "get", "f.txt"); got != "for dave" {
		t.Fatalf("get after salt set: got %q", got)
	}
	// Any spelling of the server finds it.
	if got, _ := runOK(t, dave, "salt", "show", "--server", strings.Replace(l.addr(), "127.0.0.1", "localhost", 1)); got != salt+"\n" {
		t.Errorf("salt show: got %q, want %q", got, salt)
	}
	if got, _ := runOK(t, dave, strings.Fields(m[1])...); !strings.Contains(got, "already stored") {
		t.Errorf("the same salt set again printed %q, want it said to be stored already", got)
	}

	// A reset without a word about the salt is refused: the server cannot
	// know dave's salt, and a new one would lock dave's client out.
	_, _, err := l.admin(t, "second\n", "user", "passwd", "dave", "--password-stdin")
	if ExitCode(err) != exitUsage || err == nil || !strings.Contains(err.Error(), "--salt SALT") || !strings.Contains(err.Error(), "--new-salt") {
		t.Errorf("user passwd of a course account without --salt: got %v (exit %d), want a usage error naming --salt and --new-salt", err, ExitCode(err))
	}
	if got, _ := runOK(t, dave, "get", "f.txt"); got != "for dave" {
		t.Errorf("get after a refused reset: got %q, want the old password to work", got)
	}

	// Keeping dave's salt: only the password changes.
	out = adminOK(t, l, "second\n", "user", "passwd", "dave", "--salt", salt, "--password-stdin")
	if !strings.Contains(out, "keeps the salt given with --salt") || strings.Contains(out, "salt set") {
		t.Errorf("user passwd --salt printed %q, want the salt kept and nothing to store", out)
	}
	second, _, _ := withVars(dave, "LARDER_PASSWORD", "second")
	if got, _ := runOK(t, second, "get", "f.txt"); got != "for dave" {
		t.Errorf("get with the new password and the salt dave had: got %q", got)
	}

	// A new salt on purpose: the printed command replaces the old one.
	out = adminOK(t, l, "third\n", "user", "passwd", "dave", "--new-salt", "--server-address", l.addr(), "--password-stdin")
	m = cmdRE.FindStringSubmatch(out)
	if m == nil || !strings.Contains(m[1], " --replace ") {
		t.Fatalf("user passwd --new-salt printed %q, want a salt set --replace command", out)
	}
	third, _, _ := withVars(dave, "LARDER_PASSWORD", "third")
	args := strings.Fields(strings.Replace(m[1], " --replace", "", 1))
	wantExit(t, third, exitFailure, []string{"a different salt is stored", "--replace"}, args...)
	if _, errOut := runOK(t, third, strings.Fields(m[1])...); !strings.Contains(errOut, salt) {
		t.Errorf("salt set --replace said %q on stderr, want the salt it replaced", errOut)
	}
	if got, _ := runOK(t, third, "get", "f.txt"); got != "for dave" {
		t.Errorf("get after the new salt was stored: got %q", got)
	}
}

// TestSaltSetMistakes: what people get wrong when they store a salt.
func TestSaltSetMistakes(t *testing.T) {
	env, _, _ := testEnv(t, "127.0.0.1:23456", "LARDER_USER", "erin")
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"salt", "set"}, "one SALT"},
		{[]string{"salt", "set", "abc", "def"}, "one SALT, got 2"},
		{[]string{"salt", "set", ""}, "the salt is empty"},
		{[]string{"salt", "set", " abc"}, "begins or ends with a space"},
		{[]string{"salt", "set", "abc\tdef"}, "control character"},
		{[]string{"salt", "set", "abc\n"}, "begins or ends with a space"},
		{[]string{"salt", "set", "--server", "host:0", "abc"}, "port"},
		{[]string{"salt", "show", "extra"}, "no arguments"},
	} {
		wantExit(t, env, exitUsage, []string{c.msg}, c.args...)
	}
	wantExit(t, env, exitFailure, []string{"no salt for user \"erin\""}, "salt", "show")

	// From stdin, the line's end cut.
	in, out, _ := withVars(env)
	in.Stdin = strings.NewReader("s3cretSalt\r\n")
	if err := run(in, "salt", "set", "-"); err != nil || !strings.Contains(out.String(), "stored") {
		t.Fatalf("salt set - : %v, %q", err, out)
	}
	if got, _ := runOK(t, env, "salt", "show"); got != "s3cretSalt\n" {
		t.Errorf("salt show after salt set -: got %q", got)
	}
}

// TestAdminPasswdKeepsSalt: a password reset of an account that signs on
// the course protocol with a salt the administrator handed over does not
// give it a new salt unasked, which would leave the salt the user stored
// signing nothing; the old password still works after the refusal.
func TestAdminPasswdKeepsSalt(t *testing.T) {
	l := startLarder(t)
	l.put(t, "f.txt", []byte("data"))
	out := adminOK(t, l, "first\n", "user", "add", "dave", "--course", "--password-stdin")
	salt := regexp.MustCompile(`(?m)^dave's client salt, to hand over with the password: (\S+)$`).FindStringSubmatch(out)[1]
	dave, _, _ := testEnv(t, l.addr(), "LARDER_USER", "dave", "LARDER_PASSWORD", "first")
	runOK(t, dave, "get", "f.txt", "--salt", salt)

	_, _, err := l.admin(t, "second\n", "user", "passwd", "dave", "--password-stdin")
	if ExitCode(err) != exitUsage {
		t.Errorf("user passwd without --salt or --new-salt: got %v (exit %d), want a usage error", err, ExitCode(err))
	}
	runOK(t, dave, "get", "f.txt", "--salt", salt)
}

// TestAdminSaltPlaceholder: without --server-address the printed command
// holds a placeholder that 'larder salt set' refuses as it is, rather
// than store the salt for a server of that name.
func TestAdminSaltPlaceholder(t *testing.T) {
	l := startLarder(t)
	out := adminOK(t, l, "pw\n", "user", "add", "dave", "--course", "--password-stdin")
	m := regexp.MustCompile(`(?m)^    larder (salt set .*)$`).FindStringSubmatch(out)
	if m == nil || !strings.Contains(m[1], "--server HOST:PORT ") || !strings.Contains(out, "--server-address puts it in") {
		t.Fatalf("user add --course without --server-address printed %q, want a HOST:PORT placeholder, explained", out)
	}
	dave, _, _ := testEnv(t, l.addr(), "LARDER_USER", "dave")
	wantExit(t, dave, exitUsage, []string{`bad --server "HOST:PORT"`}, strings.Fields(m[1])...)
}

// TestSaltSetNamesTheServerAsTyped: salt set says it stored the salt for
// the server as the user typed it, not under another spelling of it.
func TestSaltSetNamesTheServerAsTyped(t *testing.T) {
	env, _, _ := testEnv(t, "127.0.0.1:23456", "LARDER_USER", "erin")
	out, _ := runOK(t, env, "salt", "set", "--server", "127.0.0.1:23456", "abc")
	if !strings.Contains(out, "on 127.0.0.1:23456 stored") {
		t.Errorf("salt set printed %q, want the server as typed, 127.0.0.1:23456", out)
	}
}

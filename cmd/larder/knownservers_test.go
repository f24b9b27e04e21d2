package main

import (
	"strings"
	"testing"
)

// TestKnownServersForget: a pin made at 127.0.0.1:PORT is listed, and
// forgotten under another spelling (localhost:PORT); the next login pins
// again instead of refusing.
func TestKnownServersForget(t *testing.T) {
	l := startLarder(t)
	env := loggedIn(t, l)
	addr, fp := l.lnpAddr(), l.main.identity.Fingerprint
	_, port, _ := strings.Cut(addr, ":")

	out, _ := runOK(t, env, "known-servers")
	if out != addr+" "+fp+"\n" {
		t.Errorf("known-servers printed %q, want %q", out, addr+" "+fp+"\n")
	}
	out, _ = runOK(t, env, "known-servers", "rm", "localhost:"+port)
	if !strings.Contains(out, "Forgot the certificate pinned for "+addr) {
		t.Errorf("known-servers rm printed %q", out)
	}
	if out, _ = runOK(t, env, "known-servers", "list"); out != "" {
		t.Errorf("after rm, known-servers printed %q", out)
	}
	_, errOut := runOK(t, env, "login")
	if !strings.Contains(errOut, "first connection to "+addr) {
		t.Errorf("login after rm: stderr %q, want a first connection", errOut)
	}
	wantExit(t, env, exitUsage, []string{"HOST:PORT"}, "known-servers", "rm", "nohost")
}

// TestLoginOtherSpelling: after a login at 127.0.0.1:PORT, the native
// commands find the salt, the pin and the device credential at
// localhost:PORT too: one server, however spelled.
func TestLoginOtherSpelling(t *testing.T) {
	l := startLarder(t)
	env := loggedIn(t, l)
	_, port, _ := strings.Cut(l.lnpAddr(), ":")
	env, _, stderr := withVars(env, "LARDER_PASSWORD", "")
	if err := run(env, "whoami", "--server", "localhost:"+port); err != nil {
		t.Fatalf("whoami at localhost:%s: %v\n%s", port, err, stderr)
	}
	if strings.Contains(stderr.String(), "first connection") {
		t.Errorf("localhost:%s was pinned again: %s", port, stderr)
	}
	// And the course get finds the salt register stored for 127.0.0.1.
	_, cport, _ := strings.Cut(l.addr(), ":")
	l.put(t, "f", []byte("hello"))
	env2, stdout, stderr2 := withVars(env, "LARDER_PASSWORD", "pw")
	if err := run(env2, "get", "--course", "--server", "localhost:"+cport, "f"); err != nil || stdout.String() != "hello" {
		t.Errorf("course get at localhost:%s: %v, %q\n%s", cport, err, stdout, stderr2)
	}
}

package main

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// openPTY returns the two ends of a new pseudo-terminal, for a command
// that asks for its password on a terminal.
func openPTY(t *testing.T) (master, tty *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal to ask on: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	fd := int(master.Fd())
	must(t, unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0))
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	must(t, err)
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	must(t, err)
	t.Cleanup(func() { tty.Close() })
	return master, tty
}

// TestRevokedDeviceForgottenAtPasswordLogin: a device refused by the
// server is forgotten once the password, asked for on the terminal, logs
// in (the account takes the password, so the device was revoked or has
// expired), and the next command asks for the password again.
func TestRevokedDeviceForgottenAtPasswordLogin(t *testing.T) {
	l := startLarder(t)
	env := loggedIn(t, l)
	bare := noPassword(env)
	runOK(t, bare, "whoami")
	adminOK(t, l, "", "user", "devices", "alice", "--revoke-all")

	master, tty := openPTY(t)
	e, _, stderr := withVars(bare)
	e.Stdin = tty
	_, err := master.WriteString("pw\n")
	must(t, err)
	if err := run(e, "whoami"); err != nil {
		t.Fatalf("whoami with the password typed: %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr.String(), "refused the device credential") || !strings.Contains(stderr.String(), "forgotten") {
		t.Errorf("stderr %q: want it to say the device was refused, then forgotten", stderr)
	}
	if d, ok := storedDevice(bare, lnpTarget{server: l.lnpAddr(), user: "alice"}); ok {
		t.Errorf("the revoked device %x is still stored after the password logged in", d.ID)
	}
}

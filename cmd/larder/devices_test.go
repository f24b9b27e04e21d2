package main

import (
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// noPassword is env with no password anywhere: a command that needs one
// fails (no terminal to prompt on).
func noPassword(env *Env) *Env {
	e, _, _ := withVars(env, "LARDER_PASSWORD", "")
	return e
}

// TestLoginOnce: 'larder login' asks for the password once and saves a
// device credential (0600); later commands need no password; 'larder
// logout' revokes it, and a copy of the file taken before then logs in
// no more.
func TestLoginOnce(t *testing.T) {
	l := startLarder(t)
	env := loggedIn(t, l)
	bare := noPassword(env)
	out, _ := runOK(t, bare, "whoami")
	if !strings.Contains(out, "user:   alice") {
		t.Fatalf("whoami with the device credential printed %q", out)
	}
	path := filepath.Join(env.Getenv("LARDER_CONFIG_DIR"), "lnp_devices")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %04o, want 0600", path, fi.Mode().Perm())
	}
	stolen, err := os.ReadFile(path)
	must(t, err)
	if out, _ := runOK(t, bare, "devices"); !strings.Contains(out, "*") || strings.Count(out, "\n") != 2 {
		t.Errorf("devices printed %q: want one device, marked as this machine's", out)
	}

	runOK(t, bare, "logout")
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); len(strings.TrimSpace(string(b))) != 0 {
		t.Errorf("after logout the file still holds %q", b)
	}
	wantExit(t, bare, exitFailure, []string{"no password"}, "whoami") // asks for the password: no terminal

	// The stolen copy of the file is refused.
	must(t, os.WriteFile(path, stolen, 0o600))
	e, _, stderr := withVars(env, "LARDER_PASSWORD", "")
	if err := run(e, "whoami"); err == nil {
		t.Fatal("whoami with a revoked device credential succeeded")
	}
	if !strings.Contains(stderr.String(), "refused the device credential") {
		t.Errorf("stderr %q: want it to say the device credential was refused", stderr)
	}
}

// TestAdminRevokesDevices: an administrator lists and revokes an
// account's devices; the device's next command is refused.
func TestAdminRevokesDevices(t *testing.T) {
	l := startLarder(t)
	env := loggedIn(t, l)
	bare := noPassword(env)
	runOK(t, bare, "whoami")
	out, _, err := runLarder(t, "", "admin", "user", "devices", "alice", "--data", l.data)
	if err != nil || strings.Count(out, "\n") != 2 {
		t.Fatalf("admin user devices: %v\n%s", err, out)
	}
	if _, _, err := runLarder(t, "", "admin", "user", "devices", "alice", "--revoke-all", "--data", l.data); err != nil {
		t.Fatal(err)
	}
	e, _, stderr := withVars(env, "LARDER_PASSWORD", "")
	if err := run(e, "whoami"); err == nil {
		t.Fatal("whoami after the administrator revoked the device succeeded")
	}
	if !strings.Contains(stderr.String(), "refused the device credential") {
		t.Errorf("stderr %q: want it to say the device credential was refused", stderr)
	}
}

// TestPasswdRevokesOtherDevices: a password change revokes the account's
// devices on other machines, keeps this one's, and --keep-devices keeps
// them all.
func TestPasswdRevokesOtherDevices(t *testing.T) {
	l := startLarder(t)
	env := loggedIn(t, l)
	// Another machine: its own configuration folder.
	other, _, _ := withVars(env, "LARDER_CONFIG_DIR", filepath.Join(t.TempDir(), "other"))
	runOK(t, other, "login", "--server", l.lnpAddr())
	runOK(t, noPassword(other), "whoami")

	stdin, stdout, stderr := withVars(env)
	stdin.Stdin = strings.NewReader("pw\nnew secret\n")
	if err := run(stdin, "passwd", "--password-stdin"); err != nil {
		t.Fatalf("passwd: %v\n%s", err, stderr)
	}
	if !strings.Contains(stdout.String(), "Revoked 1 device credentials") {
		t.Errorf("passwd printed %q: want it to say it revoked the other machine's device", stdout)
	}
	if err := run(noPassword(other), "whoami"); err == nil {
		t.Error("the other machine's device logged in after the password change")
	}
	runOK(t, noPassword(env), "whoami")

	// --keep-devices.
	changed, _, _ := withVars(env, "LARDER_PASSWORD", "new secret")
	other2, _, _ := withVars(changed, "LARDER_CONFIG_DIR", filepath.Join(t.TempDir(), "other2"))
	runOK(t, other2, "login", "--server", l.lnpAddr())
	keep, _, _ := withVars(changed, "LARDER_NEW_PASSWORD", "third")
	runOK(t, keep, "passwd", "--keep-devices")
	time.Sleep(10 * time.Millisecond)
	runOK(t, noPassword(other2), "whoami")
}

// TestPepperRetireCountsDevices: a device credential sealed with a pepper
// is a use of it, so 'pepper retire' refuses that pepper while one is
// left (retiring it would lock the device out), and names the account.
func TestPepperRetireCountsDevices(t *testing.T) {
	l := startLarder(t)
	loggedIn(t, l) // alice: her hash, LNP/1 credential and device on p1
	adminOK(t, l, "", "pepper", "rotate")
	// A reset moves her hash and LNP/1 credential to p2; her device,
	// kept, stays sealed with p1.
	adminOK(t, l, "new pw\n", "user", "passwd", "alice", "--salt", "course", "--keep-devices", "--password-stdin")
	_, _, err := l.admin(t, "", "pepper", "retire", "p1")
	wantErrorSaying(t, "pepper retire p1 while alice's device uses it", err, "still used by 1 accounts (alice)")
	adminOK(t, l, "", "user", "devices", "alice", "--revoke-all")
	adminOK(t, l, "", "pepper", "retire", "p1")
}

// TestDeviceKeptWhileAccountDisabled: a device refused because its
// account is disabled (the server's answer does not say why) is kept, and
// logs in again once the account is enabled.
func TestDeviceKeptWhileAccountDisabled(t *testing.T) {
	l := startLarder(t)
	env := loggedIn(t, l)
	bare := noPassword(env)
	runOK(t, bare, "whoami")
	adminOK(t, l, "", "user", "disable", "alice")
	e, _, stderr := withVars(bare)
	if err := run(e, "whoami"); err == nil {
		t.Fatal("whoami of a disabled account succeeded")
	}
	if !strings.Contains(stderr.String(), "refused the device credential") {
		t.Errorf("stderr %q: want it to say the device credential was refused", stderr)
	}
	adminOK(t, l, "", "user", "enable", "alice")
	runOK(t, bare, "whoami") // by the same device credential
}

// refuseRevocations makes the store refuse to delete device credentials,
// as a store failing between two steps would.
func refuseRevocations(t *testing.T, l *testLarder) {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(l.data, "larder.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TRIGGER refuse_revocations BEFORE DELETE ON devices
		BEGIN SELECT RAISE(ABORT, 'revocations refused by the test'); END`); err != nil {
		t.Fatal(err)
	}
}

// TestPasswordChangeRevokesDevicesFirst: 'larder passwd' and an
// administrator's reset revoke the devices before they change the
// password, so that a failure (or a kill) between the two steps never
// leaves a new password beside the devices made with the old one: the
// password is unchanged, and the command says so.
func TestPasswordChangeRevokesDevicesFirst(t *testing.T) {
	l := startLarder(t)
	env := nativeOnly(t, l)
	runOK(t, env, "login")
	other, _, _ := withVars(env, "LARDER_CONFIG_DIR", t.TempDir())
	runOK(t, other, "login") // a device on another machine
	refuseRevocations(t, l)

	in, _, _ := withVars(env)
	in.Stdin = strings.NewReader("pw\nnew pw\n")
	err := run(in, "passwd", "--password-stdin")
	if err == nil || !strings.Contains(Message(err), "password is unchanged") {
		t.Errorf("passwd with revocations refused: %v, want an error saying the password is unchanged", err)
	}
	if _, stderr, err := l.admin(t, "reset\n", "user", "passwd", "alice", "--password-stdin"); err == nil || !strings.Contains(Message(err), "password is unchanged") {
		t.Errorf("admin user passwd with revocations refused: %v\n%s\nwant an error saying the password is unchanged", err, stderr)
	}
	fresh, _, _ := withVars(env, "LARDER_CONFIG_DIR", t.TempDir()) // no device: the password logs in
	runOK(t, fresh, "whoami")                                      // LARDER_PASSWORD=pw: the old one still works
}

package main

import (
	"bytes"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/course"
)

// nativeOnly registers alice over the native protocol, with no course
// password, and returns her environment (password "pw").
func nativeOnly(t *testing.T, l *testLarder) *Env {
	t.Helper()
	env, _, stderr := testEnv(t, "127.0.0.1:1", "LARDER_NATIVE_SERVER", l.lnpAddr())
	if err := run(env, "register", "--native"); err != nil {
		t.Fatalf("register --native: %v\n%s", err, stderr)
	}
	return env
}

// TestServeNativeOnly: with --listen off the server serves the native
// protocol alone; with both protocols off it refuses to start, saying why.
func TestServeNativeOnly(t *testing.T) {
	l := startLarder(t, func(c *ServeConfig) { c.Listen = "off" })
	if l.main.Addr() != nil {
		t.Fatalf("Addr with --listen off: %v, want none", l.main.Addr())
	}
	if line := l.main.courseLine(); !strings.Contains(line, "native protocol only") {
		t.Errorf("the start line %q: want it to say the course protocol is off", line)
	}
	env := nativeOnly(t, l)
	if out, _ := runOK(t, env, "whoami"); !strings.Contains(out, "alice") {
		t.Errorf("whoami: %q", out)
	}

	cfg := testServeConfig(t)
	cfg.Listen, cfg.LNPListen = "off", "off"
	m := &Main{Config: cfg, Logger: slog.New(slog.DiscardHandler)}
	err := m.Open(t.Context())
	m.Close()
	if err == nil || ExitCode(err) != exitUsage || !strings.Contains(err.Error(), "both off") {
		t.Errorf("Open with both protocols off: %v (exit %d), want a usage error saying both are off", err, ExitCode(err))
	}
}

// TestPasswdNativeOnly: 'larder passwd' changes the password of an
// account that has no course password, with no salt stored for it.
func TestPasswdNativeOnly(t *testing.T) {
	l := startLarder(t)
	env := nativeOnly(t, l)
	in, _, stderr := withVars(env)
	in.Stdin = strings.NewReader("pw\nnew pw\n")
	if err := run(in, "passwd", "--password-stdin"); err != nil {
		t.Fatalf("passwd of a native-only account: %v\n%s", err, stderr)
	}
	changed, _, _ := withVars(env, "LARDER_PASSWORD", "new pw")
	runOK(t, changed, "whoami")
	wantExit(t, env, exitDenied, []string{"INVALID_LOGIN"}, "whoami")
}

// TestPasswdCourseAccountWithoutSalt: an account that also has a course
// password needs its salt to change the password; without one stored, the
// command says what is missing, and nothing changes.
func TestPasswdCourseAccountWithoutSalt(t *testing.T) {
	l := startLarder(t)
	env := loggedIn(t, l)                                          // registered on the course port, salt stored there
	other, _, _ := withVars(env, "LARDER_CONFIG_DIR", t.TempDir()) // another machine: no salt
	in, _, _ := withVars(other, "LARDER_NATIVE_SERVER", l.lnpAddr())
	in.Stdin = strings.NewReader("pw\nnew pw\n")
	err := run(in, "passwd", "--password-stdin")
	if err == nil || !strings.Contains(err.Error(), "also has a password for the course protocol") || !strings.Contains(err.Error(), "no salt") {
		t.Errorf("passwd with no salt for a course account: %v, want the server's reason and the missing salt", err)
	}
	runOK(t, env, "whoami") // the old password still works
}

// TestAdminPasswdKeepsKind: an administrator's reset keeps an account's
// protocols (--course adds the course password, --native-only takes it
// away), gives the new password its native credential at once, and
// revokes the account's devices.
func TestAdminPasswdKeepsKind(t *testing.T) {
	l := startLarder(t)
	l.put(t, "f.txt", []byte("data"))
	env := nativeOnly(t, l)
	runOK(t, env, "login")
	runOK(t, noPassword(env), "whoami") // by the device credential

	out := adminOK(t, l, "reset\n", "user", "passwd", "alice", "--password-stdin")
	if !strings.Contains(out, "alice logs in over the native protocol only") || !strings.Contains(out, "1 devices of alice revoked") {
		t.Errorf("user passwd printed %q: want native only, and the device revoked", out)
	}
	if err := run(noPassword(env), "whoami"); err == nil {
		t.Error("the device logged in after the administrator's reset")
	}
	reset, _, _ := withVars(env, "LARDER_PASSWORD", "reset")
	runOK(t, reset, "whoami")
	sig := larder.NewSignature("reset", course.CourseSalt)
	if r := rawExchangeFrom(t, "", l.addr(), "alice", sig, "f.txt"); r.status != course.StatusInvalidLogin {
		t.Errorf("course retrieval after a native-only reset: status %d, want INVALID_LOGIN", r.status)
	}

	adminOK(t, l, "reset\n", "user", "passwd", "alice", "--course", "--salt", "course", "--password-stdin")
	if r := rawExchangeFrom(t, "", l.addr(), "alice", sig, "f.txt"); r.status != course.StatusOK {
		t.Errorf("course retrieval after --course: status %d", r.status)
	}
	adminOK(t, l, "again\n", "user", "passwd", "alice", "--salt", "course", "--password-stdin")
	if r := rawExchangeFrom(t, "", l.addr(), "alice", larder.NewSignature("again", course.CourseSalt), "f.txt"); r.status != course.StatusOK {
		t.Errorf("course retrieval after a reset that kept the course password: status %d", r.status)
	}
	adminOK(t, l, "third\n", "user", "passwd", "alice", "--native-only", "--password-stdin")
	if r := rawExchangeFrom(t, "", l.addr(), "alice", larder.NewSignature("third", course.CourseSalt), "f.txt"); r.status != course.StatusInvalidLogin {
		t.Errorf("course retrieval after --native-only: status %d, want INVALID_LOGIN", r.status)
	}
	third, _, _ := withVars(env, "LARDER_PASSWORD", "third")
	runOK(t, third, "whoami")
	if _, _, err := l.admin(t, "x\n", "user", "passwd", "alice", "--native-only", "--course", "--password-stdin"); ExitCode(err) != exitUsage {
		t.Errorf("--native-only with --course: %v, want a usage error", err)
	}
}

// TestPepperRetireNativeOnly: after a rotation, an account that logs in
// over the native protocol only moves to the new pepper at its next login
// (its credential sealed again), so the old pepper can then be retired.
func TestPepperRetireNativeOnly(t *testing.T) {
	l := startLarder(t)
	env := nativeOnly(t, l)
	adminOK(t, l, "", "pepper", "rotate")
	_, _, err := l.admin(t, "", "pepper", "retire", "p1")
	wantErrorSaying(t, "pepper retire p1 before alice logged in again", err, "still used by 1 accounts (alice)")
	runOK(t, env, "whoami")
	adminOK(t, l, "", "pepper", "retire", "p1")
	runOK(t, env, "whoami")
}

// readFunc is an io.Reader that runs a function at its first read.
type readFunc struct {
	first func()
	r     io.Reader
}

func (f *readFunc) Read(p []byte) (int, error) {
	if f.first != nil {
		f.first()
		f.first = nil
	}
	return f.r.Read(p)
}

// TestAdminPasswdAcrossReregistration: an administrator resets alice's
// password; while the new password is being typed, alice is deleted and
// someone else registers the name. The reset must not land on the new
// account (which starts at the same credential generation): it would
// hand the stranger's account to alice's owner. It is refused, saying so.
func TestAdminPasswdAcrossReregistration(t *testing.T) {
	l := startLarder(t)
	nativeOnly(t, l)
	stranger, _, _ := testEnv(t, "127.0.0.1:1", "LARDER_NATIVE_SERVER", l.lnpAddr(), "LARDER_PASSWORD", "theirs")
	var out, errOut bytes.Buffer
	env := &Env{Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" }}
	env.Stdin = &readFunc{r: strings.NewReader("reset\n"), first: func() {
		adminOK(t, l, "", "user", "delete", "alice")
		runOK(t, stranger, "register", "--native")
	}}
	args := append([]string{"admin", "user", "passwd", "alice", "--password-stdin"}, accountFlags(l.cfg.AccountConfig)...)
	err := Run(t.Context(), env, args)
	if err == nil || !strings.Contains(err.Error(), "deleted") {
		t.Errorf("the reset of an account deleted and made again meanwhile: %v (%s), want a refusal saying so", err, out.String())
	}
	runOK(t, stranger, "whoami") // the stranger's password still opens the new account
	reset, _, _ := withVars(stranger, "LARDER_PASSWORD", "reset")
	wantExit(t, reset, exitDenied, []string{"INVALID_LOGIN"}, "whoami")
}

// TestPepperRetireNativeOnlyDevice: after a rotation, an account that logs
// in over the native protocol only, with a device credential (no password
// typed since 'larder login'), moves to the new pepper at its next login
// too, its credential and its device's, so the old pepper can be retired.
func TestPepperRetireNativeOnlyDevice(t *testing.T) {
	l := startLarder(t)
	env := nativeOnly(t, l)
	runOK(t, env, "login")
	adminOK(t, l, "", "pepper", "rotate")
	bare := noPassword(env)
	runOK(t, bare, "whoami") // by the device credential
	if _, _, err := l.admin(t, "", "pepper", "retire", "p1"); err != nil {
		t.Fatalf("pepper retire p1 after alice's device login: %v", err)
	}
	runOK(t, bare, "whoami")
	reset, _, _ := withVars(env, "LARDER_PASSWORD", "pw")
	runOK(t, reset, "whoami") // and by the password
}

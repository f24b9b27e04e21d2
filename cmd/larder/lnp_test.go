package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/clientconf"

	"github.com/larderfs/larder/course"
)

// lnpAddr returns the address of l's native protocol.
func (l *testLarder) lnpAddr() string { return l.main.LNPAddr().String() }

// withVars returns env with its own stdout and stderr, and vars (name,
// value, ...) set on top of env's: the same configuration folder (salts,
// pins, profile) unless vars change it.
func withVars(env *Env, vars ...string) (*Env, *bytes.Buffer, *bytes.Buffer) {
	m := make(map[string]string)
	for i := 0; i+1 < len(vars); i += 2 {
		m[vars[i]] = vars[i+1]
	}
	e := *env
	e.Getenv = func(k string) string {
		if v, ok := m[k]; ok {
			return v
		}
		return env.Getenv(k)
	}
	stdout, stderr := new(bytes.Buffer), new(bytes.Buffer)
	e.Stdin, e.Stdout, e.Stderr = strings.NewReader(""), stdout, stderr
	return &e, stdout, stderr
}

// loggedIn registers alice on l through the course protocol and logs her
// in to its native protocol, and returns her environment: from then on
// the native commands need no flags.
func loggedIn(t *testing.T, l *testLarder) *Env {
	t.Helper()
	env, _, stderr := testEnv(t, l.addr())
	if err := run(env, "register"); err != nil {
		t.Fatalf("register: %v\n%s", err, stderr)
	}
	if err := run(env, "login", "--server", l.lnpAddr()); err != nil {
		t.Fatalf("login: %v\n%s", err, stderr)
	}
	return env
}

// runOK runs larder in env and fails the test if it fails; it returns
// what it printed on stdout and stderr.
func runOK(t *testing.T, env *Env, args ...string) (stdout, stderr string) {
	t.Helper()
	env, out, errOut := withVars(env)
	if err := run(env, args...); err != nil {
		t.Fatalf("larder %q: %v\n%s", args, err, errOut)
	}
	return out.String(), errOut.String()
}

// wantExit runs larder in env and checks its exit code and that its error
// mentions each of msgs.
func wantExit(t *testing.T, env *Env, code int, msgs []string, args ...string) {
	t.Helper()
	env, _, _ = withVars(env)
	err := run(env, args...)
	if got := ExitCode(err); got != code {
		t.Errorf("larder %q: exit %d (%v), want %d", args, got, err, code)
	}
	for _, m := range msgs {
		if err == nil || !strings.Contains(err.Error(), m) {
			t.Errorf("larder %q: got %v, want it to mention %q", args, err, m)
		}
	}
}

func writeLocal(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	must(t, os.WriteFile(p, data, 0o644))
	return p
}

func TestLoginPinsThenVerifies(t *testing.T) {
	l := startLarder(t)
	env, stdout, stderr := testEnv(t, l.addr())
	must(t, run(env, "register"))
	stdout.Reset()
	stderr.Reset()
	addr, fp := l.lnpAddr(), l.main.identity.Fingerprint

	if err := run(env, "login", "--server", addr); err != nil {
		t.Fatalf("login: %v\n%s", err, stderr)
	}
	if want := "first connection to " + addr + ": pinned its certificate " + fp; !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr %q, want it to say %q", stderr, want)
	}
	if !strings.Contains(stdout.String(), "Server certificate "+fp+", pinned in") {
		t.Errorf("stdout %q, want the fingerprint %s", stdout, fp)
	}
	config := env.Getenv("LARDER_CONFIG_DIR")
	if known, _ := os.ReadFile(filepath.Join(config, "known_servers")); !strings.Contains(string(known), addr+" "+fp+"\n") {
		t.Errorf("known_servers holds %q, want the pin %s %s", known, addr, fp)
	}

	// The profile: private, and without the password or its signature.
	path := filepath.Join(config, "profile.json")
	fi, err := os.Stat(path)
	must(t, err)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %04o, want 0600", path, fi.Mode().Perm())
	}
	raw, _ := os.ReadFile(path)
	var p clientconf.Settings
	must(t, json.Unmarshal(raw, &p))
	if p.Server != addr || p.User != "alice" || p.Mode != clientconf.TrustPin {
		t.Errorf("profile %+v, want server %s, user alice, trust pin", p, addr)
	}
	// The salt now stored for the native address is the one register made.
	s, err := storedSalt(env, addr, "alice")
	must(t, err)
	if course, _ := storedSalt(env, l.addr(), "alice"); s != course {
		t.Errorf("salt for %s is %q, want the course server's %q", addr, s, course)
	}
	sig := larder.NewSignature("pw", s)
	if bytes.Contains(raw, []byte(`"pw"`)) || bytes.Contains(raw, []byte(hex.EncodeToString(sig[:]))) {
		t.Errorf("the profile holds the password or its signature:\n%s", raw)
	}

	// A second login, without flags, verifies the pin silently.
	out, errOut := runOK(t, env, "login")
	if strings.Contains(errOut, "first connection") || !strings.Contains(out, fp) {
		t.Errorf("second login: stdout %q, stderr %q", out, errOut)
	}
	// LARDER_SERVER names the course server, which the native commands
	// ignore: the profile names the native one.
	out, _ = runOK(t, env, "whoami")
	if !strings.Contains(out, "alice") || !strings.Contains(out, addr) {
		t.Errorf("whoami printed %q", out)
	}
}

func TestLoginRefusesChangedCertificate(t *testing.T) {
	l := startLarder(t)
	env := loggedIn(t, l)
	addr, pinned := l.lnpAddr(), l.main.identity.Fingerprint
	config := env.Getenv("LARDER_CONFIG_DIR")
	known, _ := os.ReadFile(filepath.Join(config, "known_servers"))

	// The same server at the same address, with a new key.
	l.shutdown()
	must(t, os.RemoveAll(filepath.Join(l.data, "tls")))
	l = l.restart(t, func(c *ServeConfig) { c.LNPListen = addr })
	now := l.main.identity.Fingerprint
	if now == pinned {
		t.Fatal("the restarted server kept its certificate")
	}
	for _, args := range [][]string{{"login"}, {"whoami"}, {"get", "/x"}} {
		wantExit(t, env, exitDenied, []string{"has changed", pinned, now, "man-in-the-middle"}, args...)
	}
	if after, _ := os.ReadFile(filepath.Join(config, "known_servers")); !bytes.Equal(after, known) {
		t.Errorf("known_servers changed from %q to %q", known, after)
	}
}

func TestLNPPutGetRoundTrip(t *testing.T) {
	l := startLarder(t)
	env := loggedIn(t, l)
	data := randomData(3<<20+12345, 7)
	dir := t.TempDir()
	local := writeLocal(t, dir, "data.bin", data)

	runOK(t, env, "put", local)
	out, _ := runOK(t, env, "stat", "/data.bin", "--json")
	var e entryJSON
	must(t, json.Unmarshal([]byte(out), &e))
	sum := sha256.Sum256(data)
	if e.Type != "file" || e.Size != uint64(len(data)) || e.SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("stat after put: %+v", e)
	}

	got := filepath.Join(dir, "got.bin")
	runOK(t, env, "get", "/data.bin", "-o", got)
	if b, _ := os.ReadFile(got); !bytes.Equal(b, data) {
		t.Fatalf("got %d bytes back, want the %d put", len(b), len(data))
	}
	// By default, into the current folder under the remote name.
	cwd := t.TempDir()
	t.Chdir(cwd)
	runOK(t, env, "get", "data.bin")
	if b, _ := os.ReadFile(filepath.Join(cwd, "data.bin")); !bytes.Equal(b, data) {
		t.Fatalf("get into the current folder: %d bytes, want %d", len(b), len(data))
	}
	// And to stdout.
	if out, _ := runOK(t, env, "get", "data.bin", "-o", "-"); out != string(data) {
		t.Fatalf("get to stdout: %d bytes, want %d", len(out), len(data))
	}

	// Replacing takes --overwrite.
	other := writeLocal(t, dir, "data.bin", randomData(1000, 8))
	wantExit(t, env, exitFailure, []string{"CONFLICT", "--overwrite"}, "put", other)
	runOK(t, env, "put", "-f", other, "/")
	// And replacing got, which is not a partial copy of the new file, -f.
	wantExit(t, env, exitFailure, []string{"-f"}, "get", "/data.bin", "-o", got)
	runOK(t, env, "get", "-f", "/data.bin", "-o", got)
	if b, _ := os.ReadFile(got); len(b) != 1000 {
		t.Errorf("after put -f, got %d bytes, want 1000", len(b))
	}
}

// resumedLine is what get says when it kept part of a local file.
var resumedLine = regexp.MustCompile(`kept the first (\d+) bytes of .*, and fetched the other (\d+)`)

func TestLNPGetResumes(t *testing.T) {
	l := startLarder(t)
	env := loggedIn(t, l)
	const block = 1 << 20 // the session's block size
	data := randomData(3*block+5000, 9)
	dir := t.TempDir()
	runOK(t, env, "put", writeLocal(t, dir, "big.bin", data), "/big.bin")
	out := filepath.Join(dir, "out.bin")

	tests := []struct {
		name    string
		partial []byte
		args    []string
		kept    int  // bytes kept: -1 for none, and nothing said
		refused bool // without -f: the file is not a partial copy
	}{
		{"half a block past two", data[:2*block+block/2], nil, 2 * block, false},
		{"a bad second block", corrupt(data[:2*block+block/2], block+7), []string{"-f"}, block, true},
		{"a first block of something else", corrupt(data[:2*block], 0), []string{"-f"}, -1, true},
		{"a bad last byte", corrupt(data[:2*block+block/2], 2*block+block/2-1), []string{"-f"}, 2 * block, true},
		{"all there", data, nil, -1, false}, // nothing to fetch: said below
		{"longer than the file", append(bytes.Clone(data), "more"...), []string{"-f"}, 3 * block, true},
		{"--no-resume", data[:2*block], []string{"--no-resume"}, -1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			must(t, os.WriteFile(out, tt.partial, 0o600))
			if tt.refused {
				wantExit(t, env, exitFailure, []string{"-f"}, "get", "/big.bin", "-o", out)
				if b, _ := os.ReadFile(out); !bytes.Equal(b, tt.partial) {
					t.Fatalf("a refused get changed %s", out)
				}
				os.Remove(out + ".larder-part") // what a refusal at the end kept
			}
			_, stderr := runOK(t, env, append([]string{"get", "/big.bin", "-o", out}, tt.args...)...)
			if b, _ := os.ReadFile(out); !bytes.Equal(b, data) {
				t.Fatalf("after get, %s holds %d bytes that differ from the %d on the server", out, len(b), len(data))
			}
			if up := strings.Contains(stderr, "is the server's file already"); up != bytes.Equal(tt.partial, data) {
				t.Errorf("stderr %q: says up to date %v, want %v", stderr, up, !up)
			}
			m := resumedLine.FindStringSubmatch(stderr)
			if tt.kept < 0 {
				if m != nil {
					t.Errorf("stderr %q, want no resume", stderr)
				}
				return
			}
			if m == nil {
				t.Fatalf("stderr %q, want a resume", stderr)
			}
			kept, _ := strconv.Atoi(m[1])
			fetched, _ := strconv.Atoi(m[2])
			if kept != tt.kept || fetched != len(data)-tt.kept {
				t.Errorf("kept %d and fetched %d bytes, want %d and %d", kept, fetched, tt.kept, len(data)-tt.kept)
			}
		})
	}
}

// corrupt returns a copy of b with the byte at i changed.
func corrupt(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0xff
	return c
}

func TestLNPFileCommands(t *testing.T) {
	l := startLarder(t)
	l.put(t, "course.txt", []byte("from the served folder"))
	env := loggedIn(t, l)
	dir := t.TempDir()
	notes := writeLocal(t, dir, "notes.txt", []byte("some notes\n"))

	runOK(t, env, "mkdir", "/docs")
	wantExit(t, env, exitFailure, []string{"CONFLICT"}, "mkdir", "/docs")
	runOK(t, env, "mkdir", "-p", "/docs/a/b")
	runOK(t, env, "put", notes, "/docs/") // into the folder, by name
	if out, _ := runOK(t, env, "ls", "/docs"); out != "a/\nnotes.txt\n" {
		t.Errorf("ls /docs printed %q", out)
	}
	if out, _ := runOK(t, env, "ls"); out != "docs/\nshared/\n" {
		t.Errorf("ls printed %q", out)
	}
	if out, _ := runOK(t, env, "ls", "/shared"); out != "course.txt\n" {
		t.Errorf("ls /shared printed %q", out)
	}
	out, _ := runOK(t, env, "ls", "-l", "/docs")
	if lines := strings.Split(out, "\n"); len(lines) != 3 || !strings.HasPrefix(lines[0], "d  - ") || !strings.HasPrefix(lines[1], "- 11 ") ||
		!strings.HasSuffix(lines[1], " notes.txt") {
		t.Errorf("ls -l printed %q", out)
	}
	out, _ = runOK(t, env, "ls", "--json", "/docs")
	var list []entryJSON
	must(t, json.Unmarshal([]byte(out), &list))
	sum := sha256.Sum256([]byte("some notes\n"))
	if len(list) != 2 || list[0].Name != "a" || list[0].Type != "folder" || list[1].Name != "notes.txt" ||
		list[1].Size != 11 || list[1].SHA256 != hex.EncodeToString(sum[:]) || time.Since(list[1].Modified) > time.Minute {
		t.Errorf("ls --json: %+v", list)
	}
	if out, _ := runOK(t, env, "ls", "--json", "/docs/a/b"); out != "[]\n" {
		t.Errorf("ls --json of an empty folder printed %q", out)
	}
	if out, _ := runOK(t, env, "ls", "/docs/notes.txt"); out != "notes.txt\n" {
		t.Errorf("ls of a file printed %q", out)
	}
	out, _ = runOK(t, env, "stat", "/docs/notes.txt")
	for _, want := range []string{"type:     file", "size:     11 (11 B)", "sha256:   " + hex.EncodeToString(sum[:])} {
		if !strings.Contains(out, want) {
			t.Errorf("stat printed %q, want %q in it", out, want)
		}
	}

	// mv into a folder, then over a file, which takes -f.
	runOK(t, env, "mv", "/docs/notes.txt", "/docs/a")
	runOK(t, env, "stat", "/docs/a/notes.txt")
	runOK(t, env, "put", notes, "/other.txt")
	wantExit(t, env, exitFailure, []string{"CONFLICT", "-f"}, "mv", "/other.txt", "/docs/a/notes.txt")
	runOK(t, env, "mv", "-f", "/other.txt", "/docs/a/notes.txt")
	wantExit(t, env, exitNotFound, []string{"NOT_FOUND"}, "stat", "/other.txt")

	// rm: files, and folders once empty.
	wantExit(t, env, exitFailure, []string{"CONFLICT", "empty"}, "rm", "/docs/a")
	runOK(t, env, "rm", "/docs/a/notes.txt", "/docs/a/b", "/docs/a")
	if out, _ := runOK(t, env, "ls", "/docs"); out != "" {
		t.Errorf("ls after rm printed %q", out)
	}

	// Exit codes.
	cwd := t.TempDir()
	t.Chdir(cwd)
	wantExit(t, env, exitNotFound, []string{"NOT_FOUND"}, "get", "/nope.txt")
	wantExit(t, env, exitNotFound, []string{"NOT_FOUND"}, "rm", "/nope.txt")
	wantExit(t, env, exitNotFound, []string{"BAD_REQUEST"}, "stat", "/a/../b")
	wantExit(t, env, exitDenied, []string{"DENIED"}, "rm", "/shared/course.txt")
	wantExit(t, env, exitDenied, []string{"DENIED"}, "put", notes, "/shared/x.txt")
	wantExit(t, env, exitUsage, nil, "mv", "/docs")
	onlyFile(t, cwd, "") // a failed get leaves nothing behind
	wrong, _, _ := withVars(env, "LARDER_PASSWORD", "wrong")
	wantExit(t, wrong, exitDenied, []string{"INVALID_LOGIN"}, "ls")
	nobody, _, _ := withVars(env, "LARDER_USER", "nobody")
	wantExit(t, nobody, exitDenied, []string{"no salt", "login"}, "ls")
	wantExit(t, nobody, exitDenied, []string{"INVALID_LOGIN"}, "ls", "--salt", testSalt)
}

func TestLNPPasswd(t *testing.T) {
	l := startLarder(t)
	env := loggedIn(t, l)
	stdin, _, stderr := withVars(env)
	stdin.Stdin = strings.NewReader("pw\nnew secret\n")
	if err := run(stdin, "passwd", "--password-stdin"); err != nil {
		t.Fatalf("passwd: %v\n%s", err, stderr)
	}
	wantExit(t, env, exitDenied, []string{"INVALID_LOGIN"}, "whoami")
	changed, _, _ := withVars(env, "LARDER_PASSWORD", "new secret", "LARDER_NEW_PASSWORD", "third")
	runOK(t, changed, "whoami")

	// From the environment; a wrong old password changes nothing.
	stale, _, _ := withVars(env, "LARDER_NEW_PASSWORD", "third")
	wantExit(t, stale, exitDenied, []string{"INVALID_LOGIN"}, "passwd")
	runOK(t, changed, "passwd")
	third, _, _ := withVars(env, "LARDER_PASSWORD", "third")
	runOK(t, third, "whoami")
	// The course protocol has the same account, and the same salt.
	l.put(t, "f.txt", []byte("f"))
	if out, _ := runOK(t, third, "get", "--course", "f.txt"); out != "f" {
		t.Errorf("get --course printed %q", out)
	}
}

// TestGetProtocol checks which protocol get speaks: the course protocol
// without a profile or with --course, the native one with a profile or
// with --native.
func TestGetProtocol(t *testing.T) {
	l := startLarder(t)
	l.put(t, "hello.txt", []byte("hello"))
	env, _, _ := testEnv(t, l.addr())
	must(t, run(env, "register"))
	s, err := storedSalt(env, l.addr(), "alice")
	must(t, err)
	if out, _ := runOK(t, env, "get", "hello.txt"); out != "hello" {
		t.Errorf("get without a profile printed %q", out)
	}
	wantExit(t, env, exitUsage, []string{"native protocol"}, "get", "hello.txt", "--no-resume")

	// --native without a profile: flags and environment only.
	native, _, _ := withVars(env, "LARDER_NATIVE_SERVER", l.lnpAddr())
	out := filepath.Join(t.TempDir(), "hello.txt")
	runOK(t, native, "get", "--native", "--salt", s, "/shared/hello.txt", "-o", out)
	if b, _ := os.ReadFile(out); string(b) != "hello" {
		t.Errorf("get --native wrote %q", b)
	}
	if _, err := os.Stat(filepath.Join(env.Getenv("LARDER_CONFIG_DIR"), "profile.json")); err == nil {
		t.Error("get --native saved a profile")
	}

	runOK(t, env, "login", "--server", l.lnpAddr())
	// The course protocol's files are in /shared; the top is alice's own.
	wantExit(t, env, exitNotFound, []string{"NOT_FOUND"}, "get", "hello.txt", "-o", "-")
	if out, _ := runOK(t, env, "get", "/shared/hello.txt", "-o", "-"); out != "hello" {
		t.Errorf("get after login printed %q", out)
	}
	if out, _ := runOK(t, env, "get", "--course", "hello.txt"); out != "hello" {
		t.Errorf("get --course printed %q", out)
	}
	wantExit(t, env, exitUsage, nil, "get", "--course", "--native", "hello.txt")
}

func TestLoginPlaintext(t *testing.T) {
	l := startLarder(t, func(c *ServeConfig) { c.InsecurePlaintextLNP = true })
	env, stdout, _ := testEnv(t, l.addr())
	must(t, run(env, "register"))
	wantExit(t, env, exitNetwork, []string{"does not speak TLS", "--insecure-plaintext"}, "login", "--server", l.lnpAddr())
	must(t, run(env, "login", "--server", l.lnpAddr(), "--insecure-plaintext"))
	if !strings.Contains(stdout.String(), "No TLS") {
		t.Errorf("login printed %q", stdout)
	}
	// The profile remembers it for this server, and only for it.
	runOK(t, env, "whoami")
	other, _, _ := withVars(env, "LARDER_NATIVE_SERVER", "127.0.0.1:1")
	tgt, err := lnpFlagsFor(t, other).target(other)
	if err != nil || tgt.Mode != clientconf.TrustPin {
		t.Errorf("another server is trusted as %q (%v), want %q", tgt.Mode, err, clientconf.TrustPin)
	}
}

// lnpFlagsFor returns the flags of a native command run with no
// arguments in env.
func lnpFlagsFor(t *testing.T, env *Env) *lnpFlags {
	var f lnpFlags
	fs := f.newFlagSet(env, "x", "x", "")
	if _, err := f.parse(fs, nil); err != nil {
		t.Fatal(err)
	}
	return &f
}

func TestLNPQuota(t *testing.T) {
	l := startLarder(t, func(c *ServeConfig) { c.Quota.Bytes = 1 << 20 })
	env := loggedIn(t, l)
	big := writeLocal(t, t.TempDir(), "big.bin", randomData(2<<20, 3))
	wantExit(t, env, exitQuota, []string{"QUOTA_EXCEEDED", "whoami"}, "put", big)
	out, _ := runOK(t, env, "whoami")
	if !strings.Contains(out, fmt.Sprintf("bytes:  0 B (0 bytes) used, quota 1.0 MiB (%d bytes)", 1<<20)) {
		t.Errorf("whoami printed %q", out)
	}
}

// TestTransferMeter checks the progress of a transfer that resumes: the
// bar counts the bytes kept, the rate does not.
func TestTransferMeter(t *testing.T) {
	now := time.Unix(1000, 0)
	var b bytes.Buffer
	bar := newProgressBar(&b, func() time.Time { return now })
	m := &transferMeter{bar: bar, total: 10 << 20, first: func(n int) int64 { return 4 << 20 }}
	now = now.Add(time.Minute)
	m.add(1 << 20)
	if !strings.Contains(b.String(), "5.0 MiB / 10.0 MiB  -") {
		t.Errorf("after the first block: %q", b.String())
	}
	b.Reset()
	now = now.Add(50 * time.Millisecond)
	m.add(1 << 20) // too soon to redraw
	if b.Len() != 0 {
		t.Errorf("redrawn after 50ms: %q", b.String())
	}
	now = now.Add(950 * time.Millisecond)
	m.add(1 << 20)
	if !strings.Contains(b.String(), "7.0 MiB / 10.0 MiB  2.0 MiB/s  2s left") {
		t.Errorf("after a second: %q", b.String())
	}
	b.Reset()
	m.add(3 << 20) // the end is always drawn
	if !strings.Contains(b.String(), "100%") {
		t.Errorf("at the end: %q", b.String())
	}
}

// TestLoginEnrollsOnce: the first native login of an account made on the
// course port enrolls it for the channel-bound login, once; later
// commands log in without the course signature. With the server's window
// for signatures closed, an account not enrolled is refused.
func TestLoginEnrollsOnce(t *testing.T) {
	l := startLarder(t)
	env, _, stderr := testEnv(t, l.addr())
	if err := run(env, "register"); err != nil {
		t.Fatalf("register: %v\n%s", err, stderr)
	}
	if err := run(env, "login", "--server", l.lnpAddr()); err != nil {
		t.Fatalf("login: %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr.String(), "now enrolled for the channel-bound login") {
		t.Errorf("login's stderr %q: want it to say the account was enrolled", stderr)
	}
	_, errOut := runOK(t, env, "whoami")
	if strings.Contains(errOut, "enrolled") {
		t.Errorf("a second command enrolled again: %q", errOut)
	}
	// The administrator sees which accounts are enrolled.
	if users := listUsers(t, l); len(users) != 1 || !strings.HasPrefix(users[0].Native, "lnp-scram m=64,t=1,p=1 pepper=p1") {
		t.Errorf("user list --json after enrolling: %+v, want alice with an lnp-scram credential", users)
	}
	// An administrator's reset gives the new password both credentials:
	// it logs in at once, with no enrollment.
	store, err := saltStore(env)
	must(t, err)
	aliceSalt, ok, err := store.Lookup(l.addr(), "alice")
	must(t, err)
	if !ok {
		t.Fatal("no salt stored for alice")
	}
	adminOK(t, l, "new pw\n", "user", "passwd", "alice", "--salt", aliceSalt, "--password-stdin")
	renewed, _, stderr := withVars(env, "LARDER_PASSWORD", "new pw")
	runOK(t, renewed, "whoami")
	if strings.Contains(stderr.String(), "enrolled") {
		t.Errorf("the reset password enrolled again: %q", stderr)
	}

	// Known to be enrolled, a wrong password is one failed attempt, not
	// two (the proof, then the course signature): five in a row stay
	// within the throttle's five per account and address.
	wrong, _, _ := withVars(env, "LARDER_PASSWORD", "wrong")
	for range 5 {
		wantExit(t, wrong, exitDenied, []string{"INVALID_LOGIN", "larder login"}, "whoami")
	}

	closed := startLarder(t, func(c *ServeConfig) { c.SignatureLogins = "closed" })
	env, _, stderr = testEnv(t, closed.addr())
	if err := run(env, "register"); err != nil {
		t.Fatalf("register: %v\n%s", err, stderr)
	}
	wantExit(t, env, exitDenied, []string{"INVALID_LOGIN"}, "login", "--server", closed.lnpAddr())
}

// TestRegisterNative: an account registered over the native protocol
// needs no course address: register --native, then login and the native
// commands. It logs in over the native protocol only; with --course the
// course protocol takes it too, with the stored salt. A taken name is
// refused with the server's message.
func TestRegisterNative(t *testing.T) {
	l := startLarder(t)
	env, stdout, stderr := testEnv(t, "127.0.0.1:1", "LARDER_NATIVE_SERVER", l.lnpAddr())
	if err := run(env, "register", "--native"); err != nil {
		t.Fatalf("register --native: %v\n%s", err, stderr)
	}
	if !strings.Contains(stdout.String(), "New user alice registered") {
		t.Errorf("register --native printed %q", stdout)
	}
	if err := run(env, "login"); err != nil {
		t.Fatalf("login: %v\n%s", err, stderr)
	}
	if strings.Contains(stderr.String(), "enrolled") {
		t.Errorf("login after register --native enrolled again: %q", stderr)
	}
	runOK(t, env, "whoami")
	store, err := saltStore(env)
	must(t, err)
	if _, ok, err := store.Lookup(l.lnpAddr(), "alice"); err != nil || ok {
		t.Errorf("register --native stored a salt (%v), want none: the account has no course password", err)
	}
	l.put(t, "hello.txt", []byte("hi"))
	if r := rawExchangeFrom(t, "", l.addr(), "alice", larder.NewSignature("pw", course.CourseSalt), "hello.txt"); r.status != course.StatusInvalidLogin {
		t.Errorf("course retrieve of an account registered natively: status %d, want INVALID_LOGIN", r.status)
	}
	wantExit(t, env, exitFailure, []string{"CONFLICT", "already exists"}, "register", "--native")

	bob, stdout, stderr := withVars(env, "LARDER_USER", "bob")
	if err := run(bob, "register", "--native", "--course"); err != nil {
		t.Fatalf("register --native --course: %v\n%s", err, stderr)
	}
	if !strings.Contains(stdout.String(), "also the course protocol") {
		t.Errorf("register --native --course printed %q", stdout)
	}
	s, ok, err := store.Lookup(l.lnpAddr(), "bob")
	must(t, err)
	if !ok {
		t.Fatal("register --native --course stored no salt")
	}
	if r := rawExchangeFrom(t, "", l.addr(), "bob", larder.NewSignature("pw", s), "hello.txt"); r.status != course.StatusOK {
		t.Errorf("course retrieve of an account registered natively with --course: status %d", r.status)
	}
}

//go:build linux

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestNegotiatedCipher(t *testing.T) {
	debug := `debug1: kex: algorithm: sntrup761x25519-sha512@openssh.com
debug1: kex: host key algorithm: ssh-ed25519
debug1: kex: server->client cipher: chacha20-poly1305@openssh.com MAC: <implicit> compression: none
debug1: kex: client->server cipher: chacha20-poly1305@openssh.com MAC: <implicit> compression: none
`
	if got, err := negotiatedCipher(debug); err != nil || got != "chacha20-poly1305@openssh.com" {
		t.Errorf("got %q, %v; want chacha20-poly1305@openssh.com", got, err)
	}
	ctr := strings.ReplaceAll(strings.ReplaceAll(debug, "chacha20-poly1305@openssh.com", "aes128-ctr"), "<implicit>", "umac-64-etm@openssh.com")
	if got, err := negotiatedCipher(ctr); err != nil || got != "aes128-ctr, MAC umac-64-etm@openssh.com" {
		t.Errorf("got %q, %v; want aes128-ctr with its MAC", got, err)
	}
	if _, err := negotiatedCipher("debug1: Connection established.\n"); err == nil {
		t.Error("no kex lines: got no error")
	}
	mixed := strings.Replace(debug, "server->client cipher: chacha20-poly1305@openssh.com", "server->client cipher: aes128-gcm@openssh.com", 1)
	if _, err := negotiatedCipher(mixed); err == nil {
		t.Error("different ciphers each way: got no error")
	}
}

func TestSSHDConfig(t *testing.T) {
	cfg := sshdConfig("/tmp/b/sshd-1", "2222")
	for _, want := range []string{"Port 2222\n", "ListenAddress 127.0.0.1\n", "HostKey /tmp/b/sshd-1/ssh_host_ed25519_key\n",
		"AuthorizedKeysFile /tmp/b/sshd-1/authorized_keys\n", "PidFile /tmp/b/sshd-1/sshd.pid\n", "UsePAM no\n",
		"StrictModes no\n", "PasswordAuthentication no\n", "Subsystem sftp internal-sftp\n"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("config lacks %q:\n%s", want, cfg)
		}
	}
	s := &sshdServer{port: "2222", user: "alice", key: "/k"}
	args := strings.Join(s.scpArgs("", false, "a", s.remote("/b")), " ")
	for _, want := range []string{"-F /dev/null", "-i /k", "-P 2222", "-o UserKnownHostsFile=/dev/null", "a alice@127.0.0.1:/b"} {
		if !strings.Contains(args, want) {
			t.Errorf("scp arguments %q lack %q", args, want)
		}
	}
	if strings.Contains(args, "-c ") {
		t.Errorf("default cipher: scp arguments %q name one", args)
	}
	if args := strings.Join(s.scpArgs("aes128-gcm@openssh.com", true, "a", "b"), " "); !strings.Contains(args, "-v -c aes128-gcm@openssh.com a b") {
		t.Errorf("scp arguments %q: want -v and the cipher", args)
	}
}

func TestCipherList(t *testing.T) {
	var l cipherList
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.Var(&l, "c", "")
	if err := fs.Parse([]string{"-c", "default, aes128-gcm@openssh.com"}); err != nil || l.String() != "default,aes128-gcm@openssh.com" {
		t.Errorf("got %q, %v", l.String(), err)
	}
	if err := l.Set("off"); err != nil || len(l) != 0 {
		t.Errorf("off: got %q, %v; want none", l.String(), err)
	}
	for _, bad := range []string{"", "a,a", "off,default", "a b"} {
		if err := l.Set(bad); err == nil {
			t.Errorf("%q: got no error", bad)
		}
	}
}

const perfSample = `# Samples: 2K of event 'cpu-clock:ppp'
#
# Overhead|Command        |Shared Object       |Symbol
 30.00% |larder         |larder              |[.] crypto/internal/fips140/sha256.blockSHANI.abi0
 20.00% |bench          |bench               |[.] crypto/internal/fips140/aes/gcm.gcmAesDec.abi0
 10.00% |swapper        |[kernel.kallsyms]   |[k] pvm_safe_halt_hc
 10.00% |bench          |[kernel.kallsyms]   |[k] _copy_to_iter
 8.00%  |larder         |larder              |[.] runtime.memmove
 6.00%  |compile        |compile             |[.] cmd/compile/internal/ssa.(*Func).Block
 5.00%  |kworker/u8:0-wr|[kernel.kallsyms]   |[k] blk_mq_submit_bio
 5.00%  |larder         |larder              |[.] runtime.mallocgc
 4.00%  |sshd           |libcrypto.so.3      |[.] 0x00000000001f2a10
 2.00%  |sshd           |sshd                |[.] 0x0000000000052511
`

func TestPerfReport(t *testing.T) {
	lines, err := parsePerfReport(strings.NewReader(perfSample))
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 10 {
		t.Fatalf("got %d lines, want 10", len(lines))
	}
	if l := lines[3]; l.pct != 10 || l.comm != "bench" || !l.kern || l.sym != "_copy_to_iter" {
		t.Errorf("line 4: got %+v", l)
	}
	wantCat := []string{catSHA, catCipher, catKernel, catCopy, catCopy, catOther, catKernel, catRuntime, catCipher, catOther}
	for i, l := range lines {
		if got := perfCategory(l); got != wantCat[i] {
			t.Errorf("%s: got %q, want %q", l.sym, got, wantCat[i])
		}
	}

	if got := perfCategory(perfLine{kern: true, sym: "copy_folio_from_iter_atomic"}); got != catWrite {
		t.Errorf("write(2)'s copy into the page cache: got %q, want %q", got, catWrite)
	}
	s := summarizePerf(lines, []string{"larder", "sshd"}, []string{"bench"})
	near := func(got, want float64) bool { return math.Abs(got-want) < 1e-9 }
	// Busy: all but swapper's 10%; the transfer's own: larder 43 + sshd 6
	// + bench 30 + kworker 5 = 84; compile's 6 is another process.
	if !near(s.busy, 90) || !near(s.server, 100*49.0/90) || !near(s.client, 100*30.0/90) || !near(s.io, 100*5.0/90) || !near(s.other, 100*6.0/90) {
		t.Errorf("processes: got busy %v, server %v, client %v, io %v, other %v", s.busy, s.server, s.client, s.io, s.other)
	}
	if !near(s.cats[catSHA], 100*30.0/84) || !near(s.cats[catCopy], 100*18.0/84) || !near(s.cats[catKernel], 100*5.0/84) {
		t.Errorf("kinds of work: got %v", s.cats)
	}
	var sum float64
	for _, v := range s.cats {
		sum += v
	}
	if !near(sum, 100) {
		t.Errorf("kinds of work add up to %v%%, want 100%%", sum)
	}
	if len(s.top) != 6 || s.top[0].sym != "crypto/internal/fips140/sha256.blockSHANI" || !near(s.top[0].pct, 100*30.0/84) {
		t.Errorf("top: got %+v", s.top)
	}

	// Lines of one function (addresses the bench named) add up.
	two := []perfLine{{pct: 20, comm: "bench", sym: "f"}, {pct: 30, comm: "bench", sym: "g"}, {pct: 15, comm: "bench", sym: "f"}}
	if top := summarizePerf(two, nil, []string{"bench"}).top; len(top) != 2 || top[0].sym != "f" || !near(top[0].pct, 100*35.0/65) {
		t.Errorf("merged top: got %+v", top)
	}
}

func TestSelfSymbols(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	syms := newSelfSymbols(exe)
	if len(syms.loads) == 0 {
		t.Skip("the test binary is not a fixed-address executable")
	}
	pc := uint64(reflect.ValueOf(hashSpeed).Pointer())
	for _, p := range syms.loads {
		if pc >= p.Vaddr && pc < p.Vaddr+p.Filesz {
			off := pc - p.Vaddr + p.Off
			if got := syms.name(fmt.Sprintf("0x%016x", off+3)); !strings.HasSuffix(got, ".hashSpeed") {
				t.Errorf("the offset of hashSpeed: got %q, want …hashSpeed", got)
			}
		}
	}
	for _, sym := range []string{"runtime.memmove", "0xnothex", "0x0000000000000001"} {
		if got := syms.name(sym); got != sym {
			t.Errorf("%q: got %q, want it unchanged", sym, got)
		}
	}
}

func TestParseStatChildren(t *testing.T) {
	// sshd (pid 7) after two connections: utime 3, stime 2, cutime 40,
	// cstime 15 ticks.
	stat := "7 (sshd) S 1 7 7 0 -1 4194560 100 200 0 0 3 2 40 15 20 0 1 0 100 1000 200"
	own, err := parseStatCPU([]byte(stat))
	if err != nil || own != 50*time.Millisecond {
		t.Errorf("own: got %v, %v; want 50ms", own, err)
	}
	kids, err := parseStatFields([]byte(stat), 13, 14)
	if err != nil || kids != 550*time.Millisecond {
		t.Errorf("children: got %v, %v; want 550ms", kids, err)
	}
	if _, err := parseStatFields([]byte("7 (sshd) S 1"), 13); err == nil {
		t.Error("short stat: got no error")
	}
}

func TestSameFilesAndLimits(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	sum, err := writeRandomFile(a, 3<<20+5, 1)
	if err != nil {
		t.Fatal(err)
	}
	content, _ := os.ReadFile(a)
	if err := os.WriteFile(b, content, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := sameFiles(a, b); err != nil {
		t.Errorf("same files: %v", err)
	}
	if err := checkDownload(b, fileSpec{Size: len(content), Sum: sum}); err != nil {
		t.Errorf("checkDownload of a good file: %v", err)
	}
	if _, err := os.Stat(b); !os.IsNotExist(err) {
		t.Errorf("checkDownload left the file: %v", err)
	}
	for _, change := range []func([]byte) []byte{
		func(c []byte) []byte { c = append([]byte(nil), c...); c[2<<20+7] ^= 1; return c },
		func(c []byte) []byte { return c[:len(c)-1] },
		func(c []byte) []byte { return append(append([]byte(nil), c...), 0) },
	} {
		if err := os.WriteFile(b, change(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := sameFiles(a, b); err == nil {
			t.Error("different files: got no error")
		}
		if err := checkDownload(b, fileSpec{Size: len(content), Sum: sum}); err == nil {
			t.Error("checkDownload of a bad file: got no error")
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, cli, err := loopbackTLS()
	if err != nil {
		t.Fatal(err)
	}
	if n, _, err := copyLoopback(ctx, a, nil, nil); err != nil || n != int64(len(content)) {
		t.Errorf("TCP copy: got %d bytes, %v; want %d", n, err, len(content))
	}
	if n, _, err := copyLoopback(ctx, a, srv, cli); err != nil || n != int64(len(content)) {
		t.Errorf("TLS copy: got %d bytes, %v; want %d", n, err, len(content))
	}
	for _, chunk := range []int{1 << 20, 256 << 10, 100_000} {
		n, times, err := writeFile(a, filepath.Join(dir, "w"), chunk)
		if err != nil || n != int64(len(content)) || len(times) != 2 || times[1] < times[0] {
			t.Errorf("writeFile in %d-byte writes: got %d, %v, %v", chunk, n, times, err)
		}
		if _, err := os.Stat(filepath.Join(dir, "w")); !os.IsNotExist(err) {
			t.Errorf("writeFile left its file: %v", err)
		}
	}
	buf := randomBuffer(1 << 20)
	if n, _, err := hashSpeed(buf, 2); err != nil || n != 2<<20 {
		t.Errorf("hashSpeed: %d, %v", n, err)
	}
	if n, _, err := sealSpeed(buf, 2); err != nil || n != 2<<20 {
		t.Errorf("sealSpeed: %d, %v", n, err)
	}
}

func TestXferTableRatios(t *testing.T) {
	var xfers []*xfer
	var samples [][]xferSample
	add := func(system, transport, dir string, mbps ...float64) {
		xfers = append(xfers, &xfer{system: system, transport: transport, direction: dir, cipher: "c"})
		var ss []xferSample
		for _, v := range mbps {
			ss = append(ss, xferSample{mbps: v})
		}
		samples = append(samples, ss)
	}
	add("larder", "LNP/1 over TLS 1.3", "upload", 400, 400)
	add("larder", "LNP/1 over TLS 1.3", "download", 600, 600)
	add("larder", "LNP/1, plaintext", "upload", 800, 800)
	add("larder", "LNP/1, plaintext", "download", 900, 1100)
	add("scp", "SSH", "upload", 200, 200)
	add("scp", "SSH", "download", 300, 300)
	add("nginx", "HTTP/1.1, plaintext", "upload", 1000, 1000)
	add("nginx", "HTTP/1.1, plaintext", "download", 1000, 1000)
	c := &lnpConfig{rounds: 2, settle: time.Second}
	tbl := c.xferTable(xfers, samples, fileSpec{Path: "f", Size: 1 << 20}, nil, peerNotes{}, peerNotes{notes: []string{"nginx note"}})

	scpCol, ngCol := slices.Index(tbl.Header, "larder ÷ scp (default cipher)"), slices.Index(tbl.Header, "larder ÷ nginx")
	if scpCol < 0 || ngCol < 0 {
		t.Fatalf("header %q lacks a ratio column", tbl.Header)
	}
	for i, want := range [][2]string{
		{"2.00× (2.00 / 2.00)", "0.40× (0.40 / 0.40)"},
		{"2.00× (2.00 / 2.00)", "0.60× (0.60 / 0.60)"},
		{"4.00× (4.00 / 4.00)", "0.80× (0.80 / 0.80)"},
		{"3.33× (3.00 / 3.67)", "1.00× (0.90 / 1.10)"},
		{"–", "–"}, {"–", "–"}, {"–", "–"}, {"–", "–"},
	} {
		if got := [2]string{tbl.Rows[i][scpCol], tbl.Rows[i][ngCol]}; got != want {
			t.Errorf("row %d (%s %s): got ratios %q, want %q", i, tbl.Rows[i][0], tbl.Rows[i][2], got, want)
		}
	}
	notes := strings.Join(tbl.Notes, "\n")
	for _, want := range []string{
		"Aim ≥ 1.0× nginx + client SHA-256, larder LNP/1 plaintext, download: met (1.00×).",
		"larder ÷ nginx, LNP/1 over TLS 1.3 upload 0.40×; LNP/1 over TLS 1.3 download 0.60×; LNP/1, plaintext upload 0.80×",
		"Aim ≥ scp (default cipher), larder LNP/1, plaintext, download: met (3.33×).",
		"nginx note",
	} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}

	// Without nginx: no ratio to it, no aim, and a row that says why.
	tbl = c.xferTable(xfers[:6], samples[:6], fileSpec{Path: "f", Size: 1 << 20}, nil, peerNotes{}, peerNotes{skipped: nginxNotFound})
	if got := tbl.Rows[3][ngCol]; got != "–" {
		t.Errorf("without nginx: got ratio %q", got)
	}
	if last := tbl.Rows[len(tbl.Rows)-1]; last[0] != "nginx" || !strings.Contains(strings.Join(last, " "), "skipped: "+nginxNotFound) {
		t.Errorf("without nginx: last row %q", last)
	}
	if notes := strings.Join(tbl.Notes, "\n"); strings.Contains(notes, "Aim ≥ 1.0× nginx") || !strings.Contains(notes, "nginx skipped: "+nginxNotFound) {
		t.Errorf("without nginx, notes:\n%s", notes)
	}
}

// loginShell returns the login shell of the user running the test, from
// /etc/passwd.
func loginShell(t *testing.T, name string) string {
	b, err := os.ReadFile("/etc/passwd")
	if err != nil {
		t.Skipf("no /etc/passwd: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, ":")
		if len(f) == 7 && f[0] == name {
			return f[6]
		}
	}
	t.Skipf("user %s is not in /etc/passwd", name)
	return ""
}

// TestSSHDRunsNoLoginShell copies a file both ways through the private
// sshd while the user's shell startup ends every session it starts, as a
// ~/.bashrc that execs another shell or exits does: scp must not depend
// on it (it used to fail with "Connection closed", exit 255).
func TestSSHDRunsNoLoginShell(t *testing.T) {
	tools, err := findSSHTools()
	if err != nil {
		t.Skipf("OpenSSH: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	env, err := newEnv(ctx, testLog{t}, testLog{t}, commonOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	// sshd's SetEnv gives the session another HOME, whose .bashrc bash
	// reads when sshd starts it to run a command.
	sd0, err := env.startSSHD(tools, "")
	if err != nil {
		t.Skipf("the private sshd does not start here: %v", err)
	}
	env.stop(sd0.proc)
	if sh := loginShell(t, sd0.user); filepath.Base(sh) != "bash" {
		t.Skipf("%s's login shell is %s, not bash, which reads ~/.bashrc under sshd", sd0.user, sh)
	}
	home, err := env.mkdir("home")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".bashrc"), []byte("echo this startup file ends the session >&2\nexit 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sd, err := env.startSSHD(tools, "SetEnv HOME="+home+"\n")
	if err != nil {
		t.Fatal(err)
	}
	dir, specs, err := env.makeFiles(1<<20 + 3)
	if err != nil {
		t.Fatal(err)
	}
	f := specs[0]
	work, err := env.mkdir("transfers")
	if err != nil {
		t.Fatal(err)
	}
	recv, err := env.mkdir("received")
	if err != nil {
		t.Fatal(err)
	}
	xs := sd.xfers(f, filepath.Join(dir, f.Path), work, recv, "", "default")
	for _, x := range xs {
		// runXfer checks the result: the upload byte for byte, the
		// download by its SHA-256.
		if err := runXfer(env, x, int64(f.Size), 30*time.Second, 0, nil); err != nil {
			t.Errorf("scp %s: %v; sshd logged:\n%s", x.direction, err, sd.proc.LogTail(10))
		}
	}

	// A copy that fails says why, as ssh -v tells it: the timed copies
	// run quiet, and scp alone says only "Connection closed".
	env.stop(sd.proc)
	err = runXfer(env, xs[0], int64(f.Size), 30*time.Second, 0, nil)
	if err == nil || !strings.Contains(err.Error(), "ssh -v") || !strings.Contains(err.Error(), "Connection refused") {
		t.Errorf("scp to a stopped sshd: got %v, want ssh's reason", err)
	}
}

// TestFailingPeerSkipped has a peer fail in the warm-up and another in a
// round: each is reported with its reason and left out, and larder is
// still measured in every round.
func TestFailingPeerSkipped(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	env, err := newEnv(ctx, testLog{t}, testLog{t}, commonOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	ok := func(context.Context) error { return nil }
	self := &Process{Name: "bench", PID: os.Getpid()} // whose CPU the samples read
	var ngRuns int
	xfers := []*xfer{
		{system: "larder", transport: "LNP/1, plaintext", direction: "download", server: self, run: ok, check: ok},
		{system: "scp", direction: "upload", cipher: "c", server: self, run: func(context.Context) error {
			return errors.New("scp: exit status 255: Connection closed")
		}, check: ok},
		{system: "nginx", direction: "download", server: self, run: func(context.Context) error {
			if ngRuns++; ngRuns > 2 { // the warm-up and round 1 pass
				return errors.New("connection refused")
			}
			return nil
		}, check: ok},
	}
	var ssh, ng peerNotes
	c := &lnpConfig{rounds: 3, timeout: 10 * time.Second}
	m := c.measure(env, xfers, nil, 1, map[string]*peerNotes{"scp": &ssh, "nginx": &ng})
	if m.err != nil {
		t.Fatalf("got %v, want the scenario to go on without its failing peers", m.err)
	}
	if len(m.xfers) != 1 || m.xfers[0].system != "larder" || len(m.samples[0]) != 3 {
		t.Errorf("got %d transfers, want larder's alone with 3 rounds", len(m.xfers))
	}
	if !strings.Contains(ssh.skipped, "in the warm-up") || !strings.Contains(ssh.skipped, "Connection closed") {
		t.Errorf("scp's reason: got %q, want the warm-up's failure", ssh.skipped)
	}
	if !strings.Contains(ng.skipped, "in round 2") || !strings.Contains(ng.skipped, "connection refused") {
		t.Errorf("nginx's reason: got %q, want round 2's failure", ng.skipped)
	}

	// larder failing ends the scenario.
	xfers[0].run = func(context.Context) error { return errors.New("larder broke") }
	if m := c.measure(env, xfers[:1], nil, 1, map[string]*peerNotes{}); m.err == nil || !strings.Contains(m.err.Error(), "larder broke") {
		t.Errorf("larder failing: got %v, want its error", m.err)
	}
}

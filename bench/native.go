//go:build linux

package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/larderfs/larder/bench/report"
	larderclient "github.com/larderfs/larder/client"
	"github.com/larderfs/larder/internal/clientconf"
	"github.com/larderfs/larder/internal/tlsconf"
	"github.com/larderfs/larder/lnp"
)

// lnpConfig configures the native scenario: the throughput of one large
// file up and down over LNP/1, with TLS and in plaintext, against scp to a
// private OpenSSH server and against a private nginx over HTTP, with the
// machine's limits for context.
type lnpConfig struct {
	size    int
	rounds  int
	timeout time.Duration
	settle  time.Duration
	ciphers cipherList  // scp's ciphers; "default" is OpenSSH's choice
	nginx   onOff       // compare with nginx
	perf    string      // a folder for perf profiles of one more transfer each, or ""
	hashes  blockHashes // which exchanges of larder's to measure
}

func newLNPConfig() scenarioConfig {
	return &lnpConfig{size: 1 << 30, rounds: 3, timeout: 2 * time.Minute, settle: 3 * time.Second,
		ciphers: cipherList{"default", "aes128-gcm@openssh.com"}, nginx: true}
}

func (c *lnpConfig) register(fs *flag.FlagSet) {
	fs.IntVar(&c.size, "size", c.size, "size of the file uploaded and downloaded, in `bytes`")
	fs.IntVar(&c.rounds, "rounds", c.rounds, "rounds, each running every transfer and limit in turn")
	fs.DurationVar(&c.timeout, "timeout", c.timeout, "deadline of each transfer")
	fs.DurationVar(&c.settle, "settle", c.settle, "pause before each timed transfer and limit, so that each finds the machine's free memory in the same state")
	fs.Var(&c.ciphers, "scp-ciphers", "comma-separated `ciphers` for scp: \"default\" (OpenSSH's choice) or names as for scp -c; \"off\" skips scp")
	fs.Var(&c.nginx, "nginx", "\"on\": compare with nginx over HTTP, its downloads checked by the client's SHA-256; \"off\" skips nginx")
	fs.StringVar(&c.perf, "perf", c.perf, "after the rounds, run each transfer once more under \"perf record -a\" and keep the profiles in `folder`")
	fs.Var(&c.hashes, "block-hashes", "larder's exchange: \"off\" offers LNP/1's feature 1, no block hashes, as larder's client does (a server from before it does not grant it); \"on\" offers none, the exchange with a block hash in every DATA frame, as a client from before it has; \"both\" measures each, side by side in every round")
}

// blockHashes is the --block-hashes flag: "off", "on" or "both".
type blockHashes string

func (b *blockHashes) String() string {
	if b == nil || *b == "" {
		return "off"
	}
	return string(*b)
}

func (b *blockHashes) Set(s string) error {
	switch s {
	case "off", "on", "both":
		*b = blockHashes(s)
		return nil
	}
	return fmt.Errorf("want off, on or both, got %q", s)
}

// features returns the features offered by each of larder's exchanges
// to measure.
func (b blockHashes) features() []lnp.Features {
	switch b {
	case "on":
		return []lnp.Features{0}
	case "both":
		return []lnp.Features{lnp.FeatureNoBlockHashes, 0}
	}
	return []lnp.Features{lnp.FeatureNoBlockHashes}
}

func (c *lnpConfig) quick() {
	c.size, c.rounds, c.ciphers = 256<<20, 2, cipherList{"default"}
}

// cipherList is a flag holding comma-separated cipher names.
type cipherList []string

func (l *cipherList) String() string { return strings.Join(*l, ",") }

func (l *cipherList) Set(s string) error {
	var out cipherList
	for v := range strings.SplitSeq(s, ",") {
		v = strings.TrimSpace(v)
		if v == "" || strings.ContainsAny(v, " \t") || slices.Contains(out, v) {
			return fmt.Errorf("want comma-separated cipher names without repeats, got %q", s)
		}
		out = append(out, v)
	}
	if slices.Contains(out, "off") {
		if len(out) > 1 {
			return fmt.Errorf("\"off\" goes alone, got %q", s)
		}
		out = nil
	}
	*l = out
	return nil
}

// onOff is a flag that is "on" or "off".
type onOff bool

func (o *onOff) String() string {
	if o != nil && *o {
		return "on"
	}
	return "off"
}

func (o *onOff) Set(s string) error {
	switch s {
	case "on":
		*o = true
	case "off":
		*o = false
	default:
		return fmt.Errorf("want on or off, got %q", s)
	}
	return nil
}

// xfer is one row of the native scenario: a system moving the file one
// way. run is timed; check, after it, is not: it verifies the result
// byte for byte and clears it away for the next round.
type xfer struct {
	system    string // "larder", "scp", "nginx"
	transport string // "LNP/1 over TLS 1.3", …
	direction string // "upload" or "download"
	verifies  string // what the system itself verifies, for the table
	server    *Process
	forks     bool // the server forks per connection: count its waited-for children
	workers   bool // the server works in long-lived children (nginx's workers): count them, running
	child     bool // the client is a child process (scp), not the bench
	cipher    string
	run       func(ctx context.Context) error
	check     func(ctx context.Context) error
}

// xferSample is one timed transfer.
type xferSample struct {
	mbps                  float64
	server, client, other float64 // CPU, % of one core over the transfer
}

func (c *lnpConfig) run(env *Env) (results, error) {
	if c.rounds < 1 || c.size < 1 {
		return nil, errors.New("need at least one round and one byte")
	}
	env.progress("writing a %d-byte random file", c.size)
	dir, specs, err := env.makeFiles(c.size)
	if err != nil {
		return nil, err
	}
	f := specs[0]
	src := filepath.Join(dir, f.Path)
	work, err := env.mkdir("transfers")
	if err != nil {
		return nil, err
	}
	acct := newAccount(0)
	known := clientconf.Open(work).KnownServers()

	var xfers []*xfer
	var suites []string
	for _, useTLS := range []bool{true, false} {
		ln, err := env.startLNPLarder(dir, useTLS, c.timeout)
		if err != nil {
			return nil, err
		}
		if err := newClient(ln.proc.Addr, c.timeout).register(env.ctx, acct); err != nil {
			return nil, err
		}
		ln.acct, ln.known = acct, known
		if useTLS {
			if suites, err = ln.cipherSuite(env.ctx); err != nil {
				return nil, err
			}
		}
		for _, features := range c.hashes.features() {
			xfers = append(xfers, ln.xfers(f, src, work, features)...)
		}
	}

	// scp to a private sshd, if OpenSSH is here.
	var ssh, ng peerNotes
	scpXfers, sshNotes, scpSkipped := c.scpXfers(env, f, src, work)
	xfers = append(xfers, scpXfers...)
	ssh = peerNotes{sshNotes, scpSkipped}
	if scpSkipped != "" {
		env.progress("scp SKIPPED: %s", scpSkipped)
	}

	// nginx over HTTP, if it is here.
	ngXfers, ngNotes, ngSkipped := c.nginxXfers(env, f, dir, src, work)
	xfers = append(xfers, ngXfers...)
	ng = peerNotes{ngNotes, ngSkipped}
	if ngSkipped != "" {
		env.progress("nginx: %s", ngSkipped)
	}

	limits, err := c.limits(env, src, work)
	if err != nil {
		return nil, err
	}

	m := c.measure(env, xfers, limits, int64(f.Size), map[string]*peerNotes{"scp": &ssh, "nginx": &ng})
	xfers, samples, limitNames, limitMBps, runErr := m.xfers, m.samples, m.limitNames, m.limitMBps, m.err
	if m.err != nil && m.samples == nil {
		return nil, m.err
	}

	var profile *perfProfile
	if c.perf != "" && runErr == nil {
		profile, runErr = c.profile(env, xfers, int64(f.Size))
	}
	res := &lnpResults{c: c, xfers: xfers, samples: samples, f: f, suites: suites,
		ssh: ssh, ng: ng,
		limitNames: limitNames, limitMBps: limitMBps, profile: profile}
	for _, x := range xfers {
		if x.system == "larder" && x.direction == "upload" {
			res.logs = append(res.logs, serverLogNote(x.server))
		}
	}
	return res, runErr
}

// measured is what measure returns: the transfers still in the tables
// (peers that failed are left out), their samples by round, the limits'.
type measured struct {
	xfers      []*xfer
	samples    [][]xferSample
	limitNames []string
	limitMBps  [][]float64
	err        error // what ended the rounds early; with no samples, the warm-up
}

// measure runs one untimed pass over the transfers, then the rounds. A
// peer (a system in peers) that fails is reported in its notes and left
// out, and the others are still measured; larder failing ends it.
func (c *lnpConfig) measure(env *Env, xfers []*xfer, limits []limit, size int64, peers map[string]*peerNotes) measured {
	// A peer that fails is reported and left out, and the scenario goes
	// on with the others; larder failing ends it.
	failed := func(x *xfer, when string, err error) error {
		p := peers[x.system]
		if p == nil || env.ctx.Err() != nil {
			return fmt.Errorf("%s, %s %s: %w", when, x.label(), x.direction, err)
		}
		p.skipped = peerFailure(x, when, err)
		env.progress("%s SKIPPED: %s", x.system, p.skipped)
		return nil
	}
	skip := func(x *xfer) bool {
		p := peers[x.system]
		return p != nil && p.skipped != ""
	}

	// One untimed pass over every transfer: the first of a fresh process
	// runs slower, and larder's first download of the file reads it whole
	// for its SHA-256, which it then records.
	for _, x := range xfers {
		if skip(x) {
			continue
		}
		if err := runXfer(env, x, size, c.timeout, 0, nil); err != nil {
			if err := failed(x, "the warm-up", err); err != nil {
				return measured{err: err}
			}
		}
	}

	samples := make([][]xferSample, len(xfers))
	var limitNames []string
	for _, l := range limits {
		limitNames = append(limitNames, l.names...)
	}
	limitMBps := make([][]float64, len(limitNames))
	var runErr error
measure:
	for r := range c.rounds {
		for i, x := range xfers {
			if skip(x) {
				continue
			}
			var s xferSample
			if err := runXfer(env, x, size, c.timeout, c.settle, &s); err != nil {
				if err := failed(x, fmt.Sprintf("round %d", r+1), err); err != nil {
					runErr = err
					break measure
				}
				continue
			}
			samples[i] = append(samples[i], s)
			env.progress("round %d/%d %-40s %-8s %6.0f MB/s  cpu server %s client %s other %s",
				r+1, c.rounds, x.label(), x.direction, s.mbps, pct(s.server), pct(s.client), pct(s.other))
		}
		row := 0
		for _, l := range limits {
			if err := sleepCtx(env.ctx, c.settle); err != nil {
				runErr = err
				break measure
			}
			n, els, err := l.run(env.ctx)
			if err == nil && len(els) != len(l.names) {
				err = fmt.Errorf("%d figures for %d names", len(els), len(l.names))
			}
			if err != nil {
				runErr = fmt.Errorf("round %d, %s: %w", r+1, l.names[0], err)
				break measure
			}
			for i, el := range els {
				mb := float64(n) / el.Seconds() / 1e6
				limitMBps[row] = append(limitMBps[row], mb)
				env.progress("round %d/%d %-50s %6.0f MB/s", r+1, c.rounds, l.names[i], mb)
				row++
			}
		}
	}
	// A peer that failed is left out of the tables whole, its rounds
	// before the failure too: its ratios would stand on fewer rounds.
	kept, keptSamples := xfers[:0:0], samples[:0:0]
	for i, x := range xfers {
		if !skip(x) {
			kept, keptSamples = append(kept, x), append(keptSamples, samples[i])
		}
	}
	return measured{xfers: kept, samples: keptSamples, limitNames: limitNames, limitMBps: limitMBps, err: runErr}

}

// lnpResults is what the native scenario measured: each transfer's
// samples by round, the machine's limits by round, the peers' notes, what
// larder logged, and perf's profile if one was asked for.
type lnpResults struct {
	c          *lnpConfig
	xfers      []*xfer        // their descriptions: system, transport, direction, …
	samples    [][]xferSample // [xfer][round]
	f          fileSpec
	suites     []string // the TLS session's cipher suite, version and key exchange
	ssh, ng    peerNotes
	limitNames []string
	limitMBps  [][]float64 // [limit][round]
	logs       []string    // larder's servers', see serverLogNote
	profile    *perfProfile
}

func (r *lnpResults) tables() []*report.Table {
	xfers, samples, limitNames, limitMBps := r.xfers, r.samples, r.limitNames, r.limitMBps
	tbl := r.c.xferTable(xfers, samples, r.f, r.suites, r.ssh, r.ng)
	for i, name := range limitNames {
		if len(limitMBps[i]) > 0 && (strings.HasPrefix(name, "TCP copy") || strings.HasPrefix(name, "SHA-256")) {
			label := "bare TCP copy"
			if strings.HasPrefix(name, "SHA-256") {
				label = "SHA-256, one core"
			}
			tbl.Charts[0].Lines = append(tbl.Charts[0].Lines, report.Line{Label: label, Y: median(limitMBps[i])})
		}
	}
	for i, name := range limitNames {
		for j, x := range xfers {
			if strings.HasPrefix(name, "TCP copy") && len(limitMBps[i]) > 0 && len(samples[j]) > 0 &&
				x.label() == "larder LNP/1, plaintext" && x.direction == "download" {
				r := median(limitMBps[i]) / median(perRound(samples[j], func(s xferSample) float64 { return s.mbps }))
				verdict := "met"
				if r > 2 {
					verdict = "NOT met"
				}
				tbl.Note("Aim (issue 6) within 2× of the bare TCP copy, larder's verified plaintext download: %s (the copy is %s faster).", verdict, fmtFactor(r))
			}
		}
	}
	tables := []*report.Table{tbl, limitTable(limitNames, limitMBps, r.c.size)}
	if r.profile != nil {
		tables = append(tables, r.profile.table())
	}
	for _, l := range r.logs {
		tables[0].Note("%s.", l)
	}
	return tables
}

// sleepCtx sleeps for d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// scpXfers starts a private sshd and returns scp's transfers, one upload
// and one download per cipher asked for, with notes for the table; or,
// if OpenSSH is missing or does not work here, why scp is skipped.
func (c *lnpConfig) scpXfers(env *Env, f fileSpec, src, work string) (xfers []*xfer, notes []string, skipped string) {
	if len(c.ciphers) == 0 {
		return nil, nil, "not asked for (--scp-ciphers off)"
	}
	tools, err := findSSHTools()
	if err != nil {
		return nil, nil, err.Error()
	}
	sd, err := env.startSSHD(tools, "")
	if err != nil {
		return nil, nil, err.Error()
	}
	notes = append(notes, fmt.Sprintf("OpenSSH: %s; sshd (pid %d) runs as %s on 127.0.0.1:%s with a configuration of its own (loopback only, keys only, `UsePAM no`, sftp subsystem internal-sftp, so that no login shell and none of the user's startup files run per copy); scp runs with `-F /dev/null`, so its defaults are OpenSSH's, not this machine's ssh_config.",
		tools.version, sd.proc.PID, sd.user, sd.port))
	probe := filepath.Join(work, "cipher-probe")
	recv, err := env.mkdir("sshd-received")
	if err == nil {
		err = os.WriteFile(probe, []byte("which cipher?\n"), 0o600)
	}
	if err != nil {
		env.stop(sd.proc)
		return nil, nil, err.Error()
	}
	for _, ci := range c.ciphers {
		flagCipher := ci
		if ci == "default" {
			flagCipher = ""
		}
		// A small copy with ssh's debug output says which cipher the
		// two sides chose.
		debug, err := sd.scp(env.ctx, flagCipher, true, probe, sd.remote(filepath.Join(recv, "cipher-probe")))
		var got string
		if err == nil {
			got, err = negotiatedCipher(debug)
		}
		if err != nil {
			env.stop(sd.proc)
			return nil, nil, fmt.Sprintf("scp -c %s to the private sshd: %v", ci, err)
		}
		name := got
		if ci == "default" {
			name += " (OpenSSH's default)"
		}
		xfers = append(xfers, sd.xfers(f, src, work, recv, flagCipher, name)...)
		if ci == c.ciphers[0] {
			notes = append(notes, "scp commands: `"+sd.scpCommand(flagCipher, src, sd.remote(filepath.Join(recv, "upload.bin")))+"` (upload), and the reverse for the download.")
		}
	}
	return xfers, notes, ""
}

// label names a row's system and transport.
func (x *xfer) label() string {
	if x.system == "scp" {
		return "scp " + x.cipher
	}
	return x.system + " " + x.transport
}

// runXfer runs one transfer, timed if s is not nil, then its check.
func runXfer(env *Env, x *xfer, size int64, timeout, settle time.Duration, s *xferSample) error {
	// Start each transfer with nothing dirty in the page cache, so that
	// none pays for the writeback of another, and after the same pause.
	syscall.Sync()
	if err := sleepCtx(env.ctx, settle); err != nil {
		return err
	}
	if err := timeXfer(env.ctx, x, size, timeout, s); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(env.ctx, timeout)
	defer cancel()
	return x.check(ctx)
}

// timeXfer runs a transfer and, if s is not nil, records its time and
// CPU in s.
func timeXfer(ctx context.Context, x *xfer, size int64, timeout time.Duration, s *xferSample) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	srv0 := procCPU(x)
	self0, kids0 := selfCPU(), childrenCPU()
	mc0 := readMachineCPU()
	start := time.Now()
	err := x.run(ctx)
	el := time.Since(start)
	if x.forks {
		waitChildren(x.server.PID, 3*time.Second)
	}
	srv1 := procCPU(x)
	self1, kids1 := selfCPU(), childrenCPU()
	mc1 := readMachineCPU()
	if err != nil || s == nil {
		return err
	}
	share := func(d time.Duration) float64 { return 100 * d.Seconds() / el.Seconds() }
	s.mbps = float64(size) / el.Seconds() / 1e6
	s.server = share(srv1 - srv0)
	if x.child {
		s.client = share(kids1 - kids0)
	} else {
		s.client = share(self1 - self0)
	}
	s.other = max(0, share(mc1.busy-mc0.busy)-s.server-s.client)
	return nil
}

func procCPU(x *xfer) time.Duration {
	if x.workers {
		d, _ := familyCPU(x.server)
		return d
	}
	if x.forks {
		d, _ := x.server.TreeCPU()
		return d
	}
	d, _ := x.server.CPU()
	return d
}

// lnpLarder is a larder serving LNP/1 on a port of its own.
type lnpLarder struct {
	proc  *Process
	data  string
	addr  string // LNP/1
	tls   bool
	acct  account
	known *clientconf.KnownServers

	cfgOnce sync.Once // makes cfg: see tlsConfig
	cfg     *tls.Config
	cfgErr  error
}

// startLNPLarder starts larder with its native listener on a free
// port, over TLS (a self-signed certificate made in its data folder) or in
// plaintext.
func (e *Env) startLNPLarder(filesDir string, useTLS bool, timeout time.Duration, more ...string) (*lnpLarder, error) {
	data, err := e.mkdir("larder-data")
	if err != nil {
		return nil, err
	}
	return e.startLNPLarderEnv(nil, filesDir, data, useTLS, timeout, more...)
}

// startLNPLarderEnv is startLNPLarder on the data folder data, with
// variables added to larder's environment.
func (e *Env) startLNPLarderEnv(environ []string, filesDir, data string, useTLS bool, timeout time.Duration, more ...string) (*lnpLarder, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	// Later flags win: this replaces startLarder's "--native-listen off".
	extra := []string{"--native-listen", addr, "--write-timeout", timeout.String(), "--request-timeout", timeout.String()}
	if !useTLS {
		extra = append(extra, "--insecure-plaintext-native")
	}
	p, err := e.startLarderEnv(environ, filesDir, data, append(extra, more...)...)
	if err != nil {
		return nil, err
	}
	// The course listener is up; the native one starts alongside.
	deadline := time.Now().Add(readyTimeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) || e.ctx.Err() != nil {
			return nil, fmt.Errorf("larder's native listener %s does not accept connections: %v; its log:\n%s", addr, err, p.LogTail(20))
		}
		time.Sleep(20 * time.Millisecond)
	}
	return &lnpLarder{proc: p, data: data, addr: addr, tls: useTLS}, nil
}

// session dials and logs in: over TLS with the certificate pinned in the
// bench's known-servers file on first use, as larder's client does. It
// offers no features.
func (ln *lnpLarder) session(ctx context.Context) (*larderclient.Session, net.Conn, error) {
	return ln.sessionFeatures(ctx, 0)
}

// sessionFeatures is session offering features: with
// lnp.FeatureNoBlockHashes, as larder's client, the exchange without
// block hashes if the server grants it.
// A server that does not grant it is an error: the transfer would not be
// the one its row names.
func (ln *lnpLarder) sessionFeatures(ctx context.Context, features lnp.Features) (*larderclient.Session, net.Conn, error) {
	d := &net.Dialer{Timeout: 10 * time.Second}
	var conn net.Conn
	var err error
	if ln.tls {
		var cfg *tls.Config
		if cfg, err = tlsconf.ClientConfig(ln.addr, ln.known, tlsconf.ClientOptions{Warn: io.Discard}); err != nil {
			return nil, nil, err
		}
		conn, err = tlsconf.Dial(ctx, d, ln.addr, cfg)
	} else {
		conn, err = d.DialContext(ctx, "tcp", ln.addr)
	}
	if err != nil {
		return nil, nil, err
	}
	s, err := larderclient.NewSession(ctx, conn, ln.acct.name, ln.acct.sig, larderclient.SessionOptions{Features: features})
	if err != nil {
		return nil, nil, err
	}
	if s.Features() != features {
		s.Close()
		return nil, nil, fmt.Errorf("the server granted LNP/1 features %b of %b: one from before feature 1 (no block hashes) is measured with --block-hashes on", s.Features(), features)
	}
	return s, conn, nil
}

// cipherSuite returns the TLS version and cipher suite the client and
// larder agree on.
func (ln *lnpLarder) cipherSuite(ctx context.Context) ([]string, error) {
	s, conn, err := ln.session(ctx)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	cs := conn.(interface{ ConnectionState() tls.ConnectionState }).ConnectionState()
	return []string{tls.VersionName(cs.Version), tls.CipherSuiteName(cs.CipherSuite), cs.CurveID.String()}, nil
}

// xfers returns larder's upload and download of the file at src (of the
// served folder, so also /shared/NAME to larder). The upload lands in the
// user's space, checked on the server's disk; the download, a fresh local
// file each time, is checked by GetFile and again by the bench.
func (ln *lnpLarder) xfers(f fileSpec, src, work string, features lnp.Features) []*xfer {
	transport := "LNP/1, plaintext"
	if ln.tls {
		transport = "LNP/1 over TLS 1.3"
	}
	upVerifies := "SHA-256 of the whole file (server, at the END; the DATA frames carry no block hashes: LNP/1's feature 1); written, fsync'd and renamed into place"
	downVerifies := "SHA-256 of the whole file, as it arrives (client, at the END; no block hashes); written and fsync'd"
	if features&lnp.FeatureNoBlockHashes == 0 {
		transport += ", block hashes"
		upVerifies = "SHA-256 of every 1 MiB block and of the whole file (server); written, fsync'd and renamed into place"
		downVerifies = "SHA-256 of every 1 MiB block and of the whole file, as they arrive (client); written and fsync'd"
	}
	// The space of the server's only account: a fresh data folder's
	// first account has id 1.
	onDisk := filepath.Join(ln.data, "spaces", "id-1", "files", "upload.bin")
	local := filepath.Join(work, fmt.Sprintf("download-larder-tls-%t-features-%d.bin", ln.tls, features))
	up := &xfer{system: "larder", transport: transport, direction: "upload", server: ln.proc,
		verifies: upVerifies,
		run: func(ctx context.Context) error {
			in, err := os.Open(src)
			if err != nil {
				return err
			}
			defer in.Close()
			s, _, err := ln.sessionFeatures(ctx, features)
			if err != nil {
				return err
			}
			defer s.Close()
			e, err := s.Put(ctx, "upload.bin", in, int64(f.Size), larderclient.PutOptions{})
			if err != nil {
				return err
			}
			if e.SHA256 != f.Sum || e.Size != uint64(f.Size) {
				return fmt.Errorf("the server recorded %d bytes with SHA-256 %x, want %d and %x", e.Size, e.SHA256, f.Size, f.Sum)
			}
			return nil
		},
		check: func(ctx context.Context) error {
			if err := sameFiles(src, onDisk); err != nil {
				return fmt.Errorf("the file on the server's disk: %w", err)
			}
			s, _, err := ln.sessionFeatures(ctx, features)
			if err != nil {
				return err
			}
			defer s.Close()
			return s.Delete(ctx, "upload.bin")
		},
	}
	down := &xfer{system: "larder", transport: transport, direction: "download", server: ln.proc,
		verifies: downVerifies,
		run: func(ctx context.Context) error {
			s, _, err := ln.sessionFeatures(ctx, features)
			if err != nil {
				return err
			}
			defer s.Close()
			head, err := s.GetFile(ctx, "/shared/"+f.Path, local, nil)
			if err == nil && head.SHA256 != f.Sum {
				err = fmt.Errorf("the server announced SHA-256 %x, want %x", head.SHA256, f.Sum)
			}
			return err
		},
		check: func(context.Context) error { return checkDownload(local, f) },
	}
	return []*xfer{up, down}
}

// xfers returns scp's upload of the file at src into recv, the private
// sshd's folder, and its download of src into a fresh local file.
func (sd *sshdServer) xfers(f fileSpec, src, work, recv, cipher, name string) []*xfer {
	onDisk := filepath.Join(recv, "upload.bin")
	local := filepath.Join(work, "download-scp.bin")
	const verifies = "nothing beyond SSH's per-packet MAC; the file is written, not fsync'd"
	base := xfer{system: "scp", transport: "SSH (SFTP protocol)", server: sd.proc, forks: true, child: true, cipher: name, verifies: verifies}
	up, down := base, base
	up.direction, down.direction = "upload", "download"
	up.run = func(ctx context.Context) error {
		_, err := sd.scp(ctx, cipher, false, src, sd.remote(onDisk))
		return sd.diagnose(ctx, err, cipher, work, recv)
	}
	up.check = func(context.Context) error { return checkUpload(src, onDisk) }
	down.run = func(ctx context.Context) error {
		_, err := sd.scp(ctx, cipher, false, sd.remote(src), local)
		return sd.diagnose(ctx, err, cipher, work, recv)
	}
	down.check = func(context.Context) error { return checkDownload(local, f) }
	return []*xfer{&up, &down}
}

// diagnose adds to err, a timed scp's failure, what ssh -v says of the
// same connection with a small file: the timed copies run quiet (-q), so
// their own message is often scp's bare "Connection closed".
func (sd *sshdServer) diagnose(ctx context.Context, err error, cipher, work, recv string) error {
	if err == nil || ctx.Err() != nil {
		return err
	}
	probe := filepath.Join(work, "diagnose-probe")
	if werr := os.WriteFile(probe, []byte("diagnose\n"), 0o600); werr != nil {
		return err
	}
	defer os.Remove(probe)
	debug, verr := sd.scp(ctx, cipher, true, probe, sd.remote(filepath.Join(recv, "diagnose-probe")))
	if verr == nil {
		return fmt.Errorf("%w (a small copy right after worked)", err)
	}
	var lines []string
	for _, l := range strings.Split(debug, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "debug") {
			lines = append(lines, l) // ssh's errors, not its trace
		}
	}
	if len(lines) == 0 {
		return fmt.Errorf("%w; ssh -v: %s", err, lastLines(debug, 3))
	}
	return fmt.Errorf("%w; ssh -v: %s", err, strings.Join(lines, " / "))
}

// checkUpload checks an uploaded file on the server's disk against its
// source, then removes it, so that the next upload starts from nothing.
func checkUpload(src, onDisk string) error {
	err := sameFiles(src, onDisk)
	if rerr := os.Remove(onDisk); err == nil {
		err = rerr
	}
	return err
}

// checkDownload checks a downloaded file's size and SHA-256, then removes
// it, so that the next download starts from nothing.
func checkDownload(path string, f fileSpec) error {
	defer os.Remove(path)
	in, err := os.Open(path)
	if err != nil {
		return err
	}
	defer in.Close()
	h := sha256.New()
	n, err := io.Copy(h, in)
	if err != nil {
		return err
	}
	if n != int64(f.Size) || [32]byte(h.Sum(nil)) != f.Sum {
		return fmt.Errorf("downloaded %d bytes with SHA-256 %x, want %d and %x", n, h.Sum(nil), f.Size, f.Sum)
	}
	return nil
}

// sameFiles reports whether the files at a and b hold the same bytes.
func sameFiles(a, b string) error {
	fa, err := os.Open(a)
	if err != nil {
		return err
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return err
	}
	defer fb.Close()
	ba, bb := make([]byte, 1<<20), make([]byte, 1<<20)
	for off := int64(0); ; {
		na, erra := io.ReadFull(fa, ba)
		nb, errb := io.ReadFull(fb, bb)
		if !bytes.Equal(ba[:na], bb[:nb]) {
			return fmt.Errorf("%s and %s differ in the MiB from byte %d", a, b, off)
		}
		off += int64(na)
		aEnd := erra == io.EOF || erra == io.ErrUnexpectedEOF
		bEnd := errb == io.EOF || errb == io.ErrUnexpectedEOF
		switch {
		case aEnd && bEnd:
			return nil
		case erra != nil && !aEnd:
			return erra
		case errb != nil && !bEnd:
			return errb
		case aEnd != bEnd:
			return fmt.Errorf("%s and %s differ in length, from byte %d", a, b, off)
		}
	}
}

// limits returns the machine's limits measured in each round.
func (c *lnpConfig) limits(env *Env, src, work string) ([]limit, error) {
	srvTLS, cliTLS, err := loopbackTLS()
	if err != nil {
		return nil, err
	}
	buf := randomBuffer(64 << 20)
	reps := min(max(c.size/len(buf), 1), 16)
	return []limit{
		oneLimit("TCP copy over loopback: sendfile → read into 1 MiB, drop", func(ctx context.Context) (int64, time.Duration, error) {
			return copyLoopback(ctx, src, nil, nil)
		}),
		oneLimit("TLS 1.3 copy over loopback (crypto/tls, AES-128-GCM): 1 MiB writes → read, drop", func(ctx context.Context) (int64, time.Duration, error) {
			return copyLoopback(ctx, src, srvTLS, cliTLS)
		}),
		oneLimit("SHA-256 (crypto/sha256), one core, 64 MiB buffer", func(context.Context) (int64, time.Duration, error) {
			return hashSpeed(buf, reps)
		}),
		oneLimit("AES-128-GCM seal (crypto/cipher), one core, 16 KiB records", func(context.Context) (int64, time.Duration, error) {
			return sealSpeed(buf, reps)
		}),
		{[]string{
			"disk: write the file into a new file in 1 MiB writes, one per block as larder does (into the page cache)",
			"disk: the same 1 MiB writes, then fsync (the time of both)",
			"disk: again at once, into the memory just freed: the 1 MiB writes",
			"disk: again at once: the 1 MiB writes, then fsync"},
			func(context.Context) (int64, []time.Duration, error) {
				syscall.Sync()
				// A file's pages freed more than a second ago may have
				// gone back to the hypervisor (free page reporting);
				// the second write shows what memory at hand costs.
				n, cold, err := writeFile(src, filepath.Join(work, "written.bin"), 1<<20)
				if err != nil {
					return n, nil, err
				}
				_, warm, err := writeFile(src, filepath.Join(work, "written.bin"), 1<<20)
				return n, append(cold, warm...), err
			}},
		{[]string{
			"disk: the same blocks, each in four 256 KiB writes (into the page cache)",
			"disk: the same 256 KiB writes, then fsync"},
			func(context.Context) (int64, []time.Duration, error) {
				syscall.Sync()
				return writeFile(src, filepath.Join(work, "written.bin"), 256<<10)
			}},
	}, nil
}

// medRange formats the median of xs with its range, "612 (590–640)".
func medRange(xs []float64) string {
	if len(xs) == 0 {
		return "–"
	}
	return fmt.Sprintf("%s (%s–%s)", report.Num(median(xs)), report.Num(slices.Min(xs)), report.Num(slices.Max(xs)))
}

// peerFailure says why a peer is left out: what failed, when, and the
// last lines its server logged, where the reason usually is.
func peerFailure(x *xfer, when string, err error) string {
	msg := fmt.Sprintf("its %s failed in %s: %v", x.direction, when, err)
	if x.server != nil && x.server.logPath != "" {
		if tail := strings.TrimSpace(x.server.LogTail(5)); tail != "" {
			msg += "; " + x.server.Name + " logged: " + strings.ReplaceAll(tail, "\n", " / ")
		}
	}
	return msg
}

// peerNotes is what the transfer table says of a system larder is
// compared with: notes on how it ran, or why it was skipped.
type peerNotes struct {
	notes   []string
	skipped string // "" if it ran
}

func (c *lnpConfig) xferTable(xfers []*xfer, samples [][]xferSample, f fileSpec, suites []string, ssh, ng peerNotes) *report.Table {
	tbl := &report.Table{
		Title: fmt.Sprintf("Native protocol: one %s MiB file up and down, MB/s of file content (1 MB = 10^6 bytes)", report.Num(float64(f.Size)/(1<<20))),
		Header: []string{"system", "transport", "direction", "what the transfer itself verifies", "MB/s: median (min–max)", "per round",
			"larder ÷ scp (default cipher)", "larder ÷ nginx", "server CPU", "client CPU", "other CPU"},
	}
	chart := &report.Chart{
		Title:  fmt.Sprintf("A %s MiB file up and down, verified", report.Num(float64(f.Size)/(1<<20))),
		YLabel: "MB/s",
		Groups: []string{"upload", "download"},
		Note:   fmt.Sprintf("median of %d rounds, min–max whiskers; larder checks the whole file's SHA-256 (and, in rows \"block hashes\", every block's) and fsyncs; nginx's client hashes the download", c.rounds),
	}
	tbl.Charts = []*report.Chart{chart}
	// The first row of scp and of nginx in each direction is the
	// reference of larder's rows in that direction.
	ref := map[string]int{}
	for i, x := range xfers {
		k := x.system + " " + x.direction
		if _, ok := ref[k]; !ok && x.system != "larder" {
			ref[k] = i
		}
	}
	// ratioTo returns the median of the per-round ratios of row i, a
	// larder row, to the reference of system, and the cell showing them.
	ratioTo := func(system string, i int) (float64, string) {
		j, ok := ref[system+" "+xfers[i].direction]
		if !ok || xfers[i].system != "larder" {
			return math.NaN(), "–"
		}
		var rr []float64
		for k := range min(len(samples[i]), len(samples[j])) {
			rr = append(rr, samples[i][k].mbps/samples[j][k].mbps)
		}
		if len(rr) == 0 {
			return math.NaN(), "–"
		}
		return median(rr), fmt.Sprintf("%s (%s)", fmtFactor(median(rr)), list(rr, func(v float64) string { return fmt.Sprintf("%.2f", v) }))
	}
	med, scpRatios, ngRatios := map[string]float64{}, map[string]float64{}, map[string]float64{}
	for i, x := range xfers {
		rs := samples[i]
		mb := perRound(rs, func(s xferSample) float64 { return s.mbps })
		key := x.label() + " " + x.direction
		scpRatio, scpCell := ratioTo("scp", i)
		ngRatio, ngCell := ratioTo("nginx", i)
		if !math.IsNaN(scpRatio) {
			scpRatios[key] = scpRatio
		}
		if !math.IsNaN(ngRatio) {
			ngRatios[key] = ngRatio
		}
		transport := x.transport
		if x.system == "scp" {
			transport += ", " + x.cipher
		}
		tbl.Add(x.system, transport, x.direction, x.verifies, medRange(mb), list(mb, report.Num), scpCell, ngCell,
			pct(median(perRound(rs, func(s xferSample) float64 { return s.server }))),
			pct(median(perRound(rs, func(s xferSample) float64 { return s.client }))),
			pct(median(perRound(rs, func(s xferSample) float64 { return s.other }))))
		med[key] = median(mb)
		chart.Put(x.label(), x.direction, mb)
	}
	if ssh.skipped != "" {
		tbl.Add("scp", "SSH", "upload, download", "–", "skipped: "+ssh.skipped)
	}
	if ng.skipped != "" {
		tbl.Add("nginx", "HTTP/1.1", "upload, download", "–", "skipped: "+ng.skipped)
	}
	tbl.Note("After one untimed pass over every transfer, %d rounds, each running every transfer in the order of the table, then the limits below; median, minimum and maximum across rounds; the ratio is the median of the per-round ratios (per round in brackets).", c.rounds)
	tbl.Note("A transfer's time runs from the dial (larder: TCP, TLS handshake, login; scp: the program's start, SSH key exchange and public-key login; nginx: the HTTP client's TCP connection, a fresh one each time) until the file is complete: for larder, until Put or GetFile returns, after the server's or the client's fsync and whole-file check; for nginx, until its answer to the upload, or until the client has written, fsync'd and checked the download. Before each transfer the bench calls sync(2) and waits %v, untimed: the previous transfer's file has just been removed, and this virtual machine hands free memory back to its host about a second or two later, so every transfer starts with the same, cold, memory (see the disk limits below).", c.settle)
	tbl.Note("After each transfer, untimed, the bench checks the result byte for byte: an upload against the file on the server's disk (larder: DATA/spaces/id-1/files/upload.bin; scp and nginx: their folders of received files), a download by its SHA-256; then it deletes it. Every check passed.")
	if len(suites) > 0 {
		tbl.Note("larder with TLS: %s, %s, key exchange %s; the certificate is larder's self-signed one, pinned by the bench on first use (tlsconf.ClientConfig with a known-servers file in the bench's folder). Plaintext: `--insecure-plaintext-native`.", suites[0], suites[1], suites[2])
	}
	tbl.Note("larder downloads /shared/%s, the served folder's copy of the file that scp and nginx download too; uploads go to the user's space as upload.bin. Block size 1 MiB (the default). The client is client.Session in the bench's process; its CPU is the bench's.", f.Path)
	for _, n := range ssh.notes {
		tbl.Note("%s", n)
	}
	if ssh.skipped == "" {
		tbl.Note("scp verifies nothing of the file itself: each SSH packet carries a MAC (with ChaCha20-Poly1305 or AES-GCM, the AEAD's tag) against corruption on the way, but no hash of the file or of its blocks is compared end to end, and the received file is not fsync'd. larder checks the SHA-256 of the whole file (and, in its rows \"block hashes\", of every block), and fsyncs before it answers.")
	} else {
		tbl.Note("scp skipped: %s.%s", ssh.skipped, sshAdvice(ssh.skipped))
	}
	for _, n := range ng.notes {
		tbl.Note("%s", n)
	}
	if ng.skipped != "" {
		advice := ""
		if ng.skipped == nginxNotFound {
			advice = " The bench installs nothing; Debian's nginx-light has the WebDAV module the uploads need."
		}
		tbl.Note("nginx skipped: %s.%s", ng.skipped, advice)
	}
	tbl.Note("CPU, in percent of one core over the transfer's wall time, medians across rounds: server, its user+system time (/proc/PID/stat; for sshd with its per-connection processes, which serve SFTP themselves (internal-sftp), counted once they end; for nginx, its master and its workers, read while they run); client, the bench's own (larder's and nginx's clients run in the bench) or scp's with its ssh (getrusage of children); other, the rest of the machine's busy time (/proc/stat): the kernel's writeback threads, interrupts, and the other processes of this shared machine.")
	tbl.Note("Client and server share the machine's %d cores.", runtime.NumCPU())
	verdict := func(name string, aim float64) {
		for _, dir := range []string{"upload", "download"} {
			v, ok := med["larder "+name+" "+dir]
			if !ok || math.IsNaN(v) {
				continue
			}
			state := "met"
			if v < aim {
				state = "NOT met"
			}
			tbl.Note("Aim ≥ %s MB/s, larder %s, %s: %s (%s MB/s).", report.Num(aim), name, dir, state, report.Num(v))
		}
	}
	verdict("LNP/1 over TLS 1.3", 500)
	verdict("LNP/1, plaintext", 1000)
	met := func(r float64) string {
		if r < 1 {
			return "NOT met"
		}
		return "met"
	}
	for _, name := range []string{"LNP/1 over TLS 1.3", "LNP/1, plaintext"} {
		for _, dir := range []string{"upload", "download"} {
			if r, ok := scpRatios["larder "+name+" "+dir]; ok {
				tbl.Note("Aim ≥ scp (default cipher), larder %s, %s: %s (%s).", name, dir, met(r), fmtFactor(r))
			}
		}
	}
	// nginx speaks plain HTTP: the aim is larder's plaintext download,
	// which carries the same whole-file SHA-256 and fsync as nginx's
	// client; the rest is for information.
	if r, ok := ngRatios["larder LNP/1, plaintext download"]; ok {
		tbl.Note("Aim ≥ 1.0× nginx + client SHA-256, larder LNP/1 plaintext, download: %s (%s).", met(r), fmtFactor(r))
	}
	if r, ok := scpRatios["larder LNP/1 over TLS 1.3 download"]; ok {
		verdict := "met"
		if r < 2 {
			verdict = "NOT met"
		}
		tbl.Note("Aim (issue 6) ≥ 2× scp, larder LNP/1 over TLS 1.3 against scp, download (the like-for-like pair: both encrypted): %s (%s).", verdict, fmtFactor(r))
	}
	var info []string
	for _, k := range []string{"LNP/1 over TLS 1.3 upload", "LNP/1 over TLS 1.3 download", "LNP/1, plaintext upload"} {
		if r, ok := ngRatios["larder "+k]; ok {
			info = append(info, fmt.Sprintf("%s %s", k, fmtFactor(r)))
		}
	}
	if len(info) > 0 {
		tbl.Note("For information, no aim: larder ÷ nginx, %s (larder with TLS against nginx without; uploads, larder's hashed and fsync'd against nginx's neither).", strings.Join(info, "; "))
	}
	return tbl
}

func limitTable(names []string, mbps [][]float64, size int) *report.Table {
	tbl := &report.Table{
		Title:  "The machine's limits, measured in the same rounds",
		Header: []string{"limit", "MB/s: median (min–max)", "per round"},
	}
	for i, name := range names {
		tbl.Add(name, medRange(mbps[i]), list(mbps[i], report.Num))
	}
	tbl.Note("The copies move the same %d-byte file between two goroutines of the bench: the ceiling of the transport alone, with and without TLS, before any hashing or disk. Hashing and sealing run over %s of a 64 MiB buffer. The disk limits are what storing a received file costs at least: durably, with fsync, as a larder upload does on the server and a GetFile download on the client, or only into the page cache, as scp does; the file is read 1 MiB at a time, as larder's blocks come; sync(2) and the pause run before, untimed, and the file is removed after. The second write, at once after the first, goes into memory the kernel has just freed: on a virtual machine that hands free memory back to its host, the first write pays for getting it back, as every transfer here does after its pause. The 256 KiB rows write the same blocks in four pieces each (the SFTP server writes 32 KiB at a time).",
		size, bytesStr(float64(min(max(size/(64<<20), 1), 16))*(64<<20)))
	return tbl
}

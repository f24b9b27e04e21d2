//go:build linux

package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"math"
	"net"
	"strings"
	"time"

	"github.com/larderfs/larder/bench/report"
)

// idleMemoryConfig configures the idle-memory scenario.
type idleMemoryConfig struct {
	conns     int
	rounds    int
	warm      int
	settleMax time.Duration
	native    bool // also larder's LNP/1 listener, over TLS
	handshake bool // the LNP/1 connections complete the TLS handshake
	x25519    bool // and offer X25519 alone, without the post-quantum key share
}

func newIdleMemoryConfig() scenarioConfig {
	return &idleMemoryConfig{conns: 10000, rounds: 3, warm: 0, settleMax: 15 * time.Second}
}

func (c *idleMemoryConfig) register(fs *flag.FlagSet) {
	fs.IntVar(&c.conns, "conns", c.conns, "idle connections to open")
	fs.IntVar(&c.rounds, "rounds", c.rounds, "rounds, each starting a fresh larder then a fresh baseline")
	fs.IntVar(&c.warm, "warm", c.warm, "small-file requests each server answers before the measurement (0: none)")
	fs.DurationVar(&c.settleMax, "settle-max", c.settleMax, "longest wait for the resident memory to stabilise")
	fs.BoolVar(&c.native, "native", c.native, "also measure larder's native protocol (LNP/1 over TLS), whose connections send nothing either")
	fs.BoolVar(&c.handshake, "tls-handshake", c.handshake, "with --native, each connection completes the TLS handshake, then sends nothing")
	fs.BoolVar(&c.x25519, "tls-x25519-only", c.x25519, "with --tls-handshake, the connections offer X25519 alone, not the post-quantum X25519MLKEM768 that Go's clients (larder's among them) offer by default: what that key share costs the server")
}

func (c *idleMemoryConfig) quick() { c.rounds = 1 }

// Resident memory is taken as settled when three samples in a row, 250 ms
// apart, each differ from the one before by at most rssSlack bytes or
// rssSlackFrac of it, whichever is more.
const (
	rssInterval  = 250 * time.Millisecond
	rssStable    = 3
	rssSlack     = 256 << 10
	rssSlackFrac = 0.002
)

// settledRSS waits for p's resident memory to stop moving, for at most
// limit, and returns it with the time waited and whether it settled.
func settledRSS(ctx context.Context, p *Process, limit time.Duration) (int64, time.Duration, bool, error) {
	start := time.Now()
	prev, err := p.RSS()
	if err != nil {
		return 0, 0, false, err
	}
	calm := 0
	for time.Since(start) < limit {
		select {
		case <-ctx.Done():
			return prev, time.Since(start), false, ctx.Err()
		case <-time.After(rssInterval):
		}
		cur, err := p.RSS()
		if err != nil {
			return 0, 0, false, err
		}
		if math.Abs(float64(cur-prev)) <= max(rssSlack, rssSlackFrac*float64(prev)) {
			calm++
		} else {
			calm = 0
		}
		prev = cur
		if calm >= rssStable {
			return cur, time.Since(start), true, nil
		}
	}
	return prev, time.Since(start), false, nil
}

// memSample is one system's memory measurement.
type memSample struct {
	before, after int64         // VmRSS, bytes
	accept        time.Duration // first dial to last accept
	settle        time.Duration // then until RSS settled
	settled       bool
}

func (s memSample) perConnKiB(n int) float64 { return float64(s.after-s.before) / float64(n) / 1024 }

func (c *idleMemoryConfig) run(env *Env) (results, error) {
	if c.rounds < 1 || c.conns < 1 {
		return nil, fmt.Errorf("need at least one round and connection")
	}
	dir, specs, err := env.makeFiles(1024)
	if err != nil {
		return nil, err
	}
	acct := newAccount(0)
	req := acct.request(specs[0].Path)
	// warm has the server answer c.warm requests first: the Go runtime
	// sizes new goroutines' stacks after the average it has seen, so a
	// server that has worked may hold idle connections differently.
	warm := func(p *Process, register bool) (*Process, error) {
		if c.warm == 0 {
			return p, nil
		}
		t := target{p.Name, p, newClient(p.Addr, 10*time.Second)}
		if register {
			if err := t.cl.register(env.ctx, acct); err != nil {
				return p, err
			}
		}
		_, err := sequential(env.ctx, t, req, specs[0], c.warm)
		return p, err
	}
	starts := []struct {
		name  string
		start func() (*Process, error)
		open  func(context.Context, net.Conn) (net.Conn, error) // run on each idle connection
	}{
		{"larder", func() (*Process, error) {
			p, err := env.startLarder(dir, "", "--max-conns", idleMaxConns, "--request-timeout", idleRequestTimeout)
			if err != nil {
				return nil, err
			}
			return warm(p, true)
		}, nil},
		{"baseline", func() (*Process, error) {
			p, err := env.startBaseline(dir)
			if err != nil {
				return nil, err
			}
			return warm(p, false)
		}, nil},
	}
	if c.native {
		var open func(context.Context, net.Conn) (net.Conn, error)
		if c.handshake {
			open = func(ctx context.Context, nc net.Conn) (net.Conn, error) {
				// The bench measures memory, not trust: the
				// self-signed certificate is not checked.
				cfg := &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}
				if c.x25519 {
					cfg.CurvePreferences = []tls.CurveID{tls.X25519}
				}
				tc := tls.Client(nc, cfg)
				return tc, tc.HandshakeContext(ctx)
			}
		}
		starts = append(starts, struct {
			name  string
			start func() (*Process, error)
			open  func(context.Context, net.Conn) (net.Conn, error)
		}{"larder LNP/1", func() (*Process, error) {
			ln, err := env.startLNPLarder(dir, true, 10*time.Minute, "--max-conns", idleMaxConns)
			if err != nil {
				return nil, err
			}
			ln.proc.Addr = ln.addr // its idle connections go to the native listener
			return ln.proc, nil
		}, open})
	}
	results := make([][]memSample, len(starts))
	var notes []string
	var runErr error
rounds:
	for r := range c.rounds {
		for si, s := range starts {
			m, note, err := c.measure(env, s.start, s.open)
			if note != "" {
				notes = append(notes, note)
			}
			if err != nil {
				runErr = fmt.Errorf("%s: %w", s.name, err)
				break rounds
			}
			results[si] = append(results[si], m)
			env.progress("round %d/%d %-8s RSS %.1f → %.1f MiB: %.2f KiB per connection (accepted in %v, settled %v after: %v)",
				r+1, c.rounds, s.name, mib(m.before), mib(m.after), m.perConnKiB(c.conns),
				m.accept.Round(time.Millisecond), m.settled, m.settle.Round(time.Millisecond))
		}
	}

	names := make([]string, len(starts))
	for si, s := range starts {
		names[si] = s.name
	}
	return &idleMemoryResults{c, names, results, notes}, runErr
}

// idleMemoryResults is what the idle-memory scenario measured: each
// system's samples by round, and anything unusual they met.
type idleMemoryResults struct {
	c       *idleMemoryConfig
	systems []string      // larder, baseline, larder LNP/1 with --native
	results [][]memSample // [system][round]
	notes   []string
}

func (r *idleMemoryResults) tables() []*report.Table {
	c, results := r.c, r.results
	tbl := &report.Table{
		Title: fmt.Sprintf("Resident memory per idle connection, %d connections", c.conns),
		Header: []string{"system", "RSS before MiB", "RSS after MiB", "KiB per connection",
			"per round", "accept s", "settle s", "larder / this"},
	}
	group := fmt.Sprintf("%d idle connections", c.conns)
	chart := &report.Chart{Title: fmt.Sprintf("Memory per idle connection, %d held open", c.conns), YLabel: "KiB per connection",
		Groups: []string{group}, Lines: []report.Line{{Label: "aim 30 KiB", Y: 30}},
		Note: fmt.Sprintf("resident memory after − before, over %d connections; median of %d rounds, min–max whiskers", c.conns, c.rounds)}
	tbl.Charts = []*report.Chart{chart}
	var larderKiB float64
	for si, name := range r.systems {
		rs := results[si]
		if len(rs) == 0 {
			continue
		}
		before, after, per, acc, set := make([]float64, len(rs)), make([]float64, len(rs)), make([]float64, len(rs)), make([]float64, len(rs)), make([]float64, len(rs))
		for i, m := range rs {
			before[i], after[i], per[i] = mib(m.before), mib(m.after), m.perConnKiB(c.conns)
			acc[i], set[i] = m.accept.Seconds(), m.settle.Seconds()
		}
		if si == 0 {
			larderKiB = median(per)
		}
		chart.Put(name, group, per)
		var rr []float64
		for i := range min(len(rs), len(results[0])) {
			rr = append(rr, results[0][i].perConnKiB(c.conns)/rs[i].perConnKiB(c.conns))
		}
		tbl.Add(name, report.Num(median(before)), report.Num(median(after)), report.Num(median(per)), list(per, report.Num),
			report.Num(median(acc)), report.Num(median(set)), fmtFactor(median(rr)))
	}
	served := "serves no request"
	if c.warm > 0 {
		served = fmt.Sprintf("has each answer %d small-file requests one after another (memory the work freed is still resident and gets reused, which can understate the figure)", c.warm)
	}
	tbl.Note("Each round starts a fresh larder and a fresh baseline, one after the other, and %s: before = VmRSS (/proc/PID/status) once it has settled after start-up; then the bench opens %d connections that send nothing, waits until the server holds a descriptor for each (/proc/PID/fd), and takes after = VmRSS once settled. Settled means %d samples in a row, %v apart, each within max(%d KiB, %.1f%%) of the one before, waiting %v at most.",
		served, c.conns, rssStable, rssInterval, rssSlack>>10, 100*rssSlackFrac, c.settleMax)
	tbl.Note("KiB per connection = (after − before) / %d, user-space memory only: the kernel's socket buffers are not in VmRSS. Medians across %d rounds.", c.conns, c.rounds)
	tbl.Note("larder runs with --max-conns %s --request-timeout %s; the baseline has no limit and a 10-minute deadline per connection.", idleMaxConns, idleRequestTimeout)
	for _, n := range r.notes {
		tbl.Note("%s", n)
	}
	if len(results[0]) > 0 {
		verdict := "met"
		if larderKiB > 30 {
			verdict = "NOT met"
		}
		tbl.Note("Target ≤ 30 KiB per connection (larder): %s (%s KiB).", verdict, report.Num(larderKiB))
	}
	if c.native && len(results) > 2 && len(results[2]) > 0 && len(results[0]) > 0 {
		var per []float64
		for _, m := range results[2] {
			per = append(per, m.perConnKiB(c.conns))
		}
		how := "send nothing (the TLS handshake not begun)"
		if c.handshake {
			how = "complete the TLS handshake, then send nothing"
		}
		if c.handshake && c.x25519 {
			how = "complete the TLS handshake offering X25519 alone (no post-quantum key share), then send nothing"
		}
		ratio := median(per) / larderKiB
		verdict := "met"
		if ratio > 2 {
			verdict = "NOT met"
		}
		tbl.Note("larder LNP/1 is larder's native listener (TLS, --max-conns %s), whose connections %s. Target ≤ 2× the course protocol's per connection: %s (%s×).", idleMaxConns, how, verdict, report.Num(ratio))
	}
	return []*report.Table{tbl}
}

// measure starts a fresh system, holds c.conns idle connections to it,
// and stops it. The note reports anything unusual.
func (c *idleMemoryConfig) measure(env *Env, start func() (*Process, error), open func(context.Context, net.Conn) (net.Conn, error)) (memSample, string, error) {
	var m memSample
	p, err := start()
	if p != nil {
		defer env.stop(p)
	}
	if err != nil {
		return m, "", err
	}
	var note string
	before, _, ok, err := settledRSS(env.ctx, p, c.settleMax)
	if err != nil {
		return m, "", err
	}
	if !ok {
		note = fmt.Sprintf("%s (pid %d): RSS before had not settled after %v", p.Name, p.PID, c.settleMax)
	}
	conns, took, err := holdIdleWith(env.ctx, p, c.conns, open)
	if err != nil {
		return m, note, err
	}
	defer closeAll(conns)
	after, settle, ok, err := settledRSS(env.ctx, p, c.settleMax)
	if err != nil {
		return m, note, err
	}
	if !ok {
		note = strings.TrimPrefix(note+"; ", "; ") + fmt.Sprintf("%s (pid %d): RSS after had not settled after %v; the last sample is used", p.Name, p.PID, c.settleMax)
	}
	if p.logRecords() > 0 {
		note = strings.TrimPrefix(note+"; "+serverLogNote(p), "; ")
	}
	if exited, werr := p.Exited(); exited {
		return m, note, fmt.Errorf("exited while holding the connections (%v); its log:\n%s", werr, p.LogTail(20))
	}
	return memSample{before: before, after: after, accept: took, settle: settle, settled: ok}, note, nil
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

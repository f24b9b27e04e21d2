//go:build linux

package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"time"

	"github.com/larderfs/larder/bench/report"
)

// This file holds the two scenarios about idle connections: clients that
// connect and send nothing, held open by the thousand.

// idleHold is the deadline the bench sets on its idle connections; larder
// runs with a request timeout longer than any scenario.
const (
	idleHold           = 10 * time.Minute
	idleRequestTimeout = "10m"
	idleMaxConns       = "12000"
)

// waitFDs polls p's open descriptors until ok accepts their number, for at
// most timeout, and returns the last count.
func waitFDs(ctx context.Context, p *Process, timeout time.Duration, ok func(int) bool) (int, error) {
	deadline := time.Now().Add(timeout)
	for {
		n, err := p.FDs()
		if err != nil {
			return n, err
		}
		if ok(n) {
			return n, nil
		}
		if time.Now().After(deadline) {
			return n, fmt.Errorf("%s holds %d descriptors after %v, still not what the bench waits for", p.Name, n, timeout)
		}
		select {
		case <-ctx.Done():
			return n, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// quietFDs returns p's descriptor count once it has stopped moving: a
// connection of the request just answered may still be closing, and
// counting it would make the bench wait for one accept too many.
func quietFDs(ctx context.Context, p *Process) (int, error) {
	prev, err := p.FDs()
	if err != nil {
		return 0, err
	}
	for same, deadline := 0, time.Now().Add(5*time.Second); same < 3 && time.Now().Before(deadline); {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		n, err := p.FDs()
		if err != nil {
			return 0, err
		}
		if n == prev {
			same++
		} else {
			same, prev = 0, n
		}
	}
	return prev, nil
}

// holdIdle opens n idle connections to p and waits until p has accepted
// them all, judged by its descriptor count. It returns the connections and
// the time from the first dial to the last accept.
func holdIdle(ctx context.Context, p *Process, n int) ([]net.Conn, time.Duration, error) {
	return holdIdleWith(ctx, p, n, nil)
}

// holdIdleWith is holdIdle with openIdleWith's start.
func holdIdleWith(ctx context.Context, p *Process, n int, open func(context.Context, net.Conn) (net.Conn, error)) ([]net.Conn, time.Duration, error) {
	before, err := quietFDs(ctx, p)
	if err != nil {
		return nil, 0, err
	}
	start := time.Now()
	conns, err := openIdleWith(ctx, p.Addr, n, idleHold, open)
	if err != nil {
		return nil, 0, err
	}
	if _, err := waitFDs(ctx, p, 30*time.Second, func(fds int) bool { return fds >= before+n }); err != nil {
		closeAll(conns)
		return nil, 0, err
	}
	return conns, time.Since(start), nil
}

// releaseIdle closes conns and waits until p has closed its ends, so that
// the next measurement starts from a quiet server.
func releaseIdle(ctx context.Context, p *Process, conns []net.Conn, baseFDs int) error {
	closeAll(conns)
	_, err := waitFDs(ctx, p, 30*time.Second, func(fds int) bool { return fds <= baseFDs+8 })
	return err
}

// idleLatencyConfig configures the idle-latency scenario.
type idleLatencyConfig struct {
	idle     int
	requests int
	rounds   int
	size     int
	timeout  time.Duration
}

func newIdleLatencyConfig() scenarioConfig {
	return &idleLatencyConfig{idle: 1000, requests: 2000, rounds: 5, size: 1024, timeout: 10 * time.Second}
}

func (c *idleLatencyConfig) register(fs *flag.FlagSet) {
	fs.IntVar(&c.idle, "idle", c.idle, "idle connections held open in the loaded state")
	fs.IntVar(&c.requests, "requests", c.requests, "sequential requests per measurement")
	fs.IntVar(&c.rounds, "rounds", c.rounds, "rounds, each measuring both states of both systems")
	fs.IntVar(&c.size, "size", c.size, "size of the file retrieved, in `bytes`")
	fs.DurationVar(&c.timeout, "timeout", c.timeout, "deadline of each request's connection")
}

func (c *idleLatencyConfig) quick() { c.requests, c.rounds = 1000, 2 }

func (c *idleLatencyConfig) run(env *Env) (results, error) {
	if c.rounds < 1 || c.requests < 1 || c.idle < 1 || c.size < 1 {
		return nil, fmt.Errorf("need at least one round, request, idle connection and byte")
	}
	dir, specs, err := env.makeFiles(c.size)
	if err != nil {
		return nil, err
	}
	f := specs[0]
	lp, err := env.startLarder(dir, "", "--max-conns", idleMaxConns, "--request-timeout", idleRequestTimeout)
	if err != nil {
		return nil, err
	}
	bp, err := env.startBaseline(dir)
	if err != nil {
		return nil, err
	}
	systems := []target{
		{"larder", lp, newClient(lp.Addr, c.timeout)},
		{"baseline", bp, newClient(bp.Addr, c.timeout)},
	}
	acct := newAccount(0)
	req := acct.request(f.Path)
	if err := systems[0].cl.register(env.ctx, acct); err != nil {
		return nil, err
	}
	// Warm up: the first retrieval pays the password hash.
	for _, t := range systems {
		if _, err := sequential(env.ctx, t, req, f, 10); err != nil {
			return nil, err
		}
	}
	baseFDs := make([]int, len(systems))
	for si, t := range systems {
		if baseFDs[si], err = t.proc.FDs(); err != nil {
			return nil, err
		}
	}

	states := []int{0, c.idle}
	// results[system][state][round]
	results := make([][][]loadResult, len(systems))
	var accepts []time.Duration
	var runErr error
	measure := func(si int, t target, state int) error {
		var conns []net.Conn
		if state > 0 {
			var took time.Duration
			var err error
			if conns, took, err = holdIdle(env.ctx, t.proc, state); err != nil {
				return err
			}
			accepts = append(accepts, took)
		}
		r, err := sequential(env.ctx, t, req, f, c.requests)
		if conns != nil {
			if rerr := releaseIdle(env.ctx, t.proc, conns, baseFDs[si]); err == nil {
				err = rerr
			}
		}
		if err != nil {
			return err
		}
		results[si][min(state, 1)] = append(results[si][min(state, 1)], r)
		env.progress("%-8s idle %5d: p50 %s ms  p99 %s ms  %v", t.name, state, ms(r.lat.p50), ms(r.lat.p99), r.cpu)
		return nil
	}
	for si := range systems {
		results[si] = make([][]loadResult, len(states))
	}
rounds:
	for range c.rounds {
		for si, t := range systems {
			for _, state := range states {
				if runErr = measure(si, t, state); runErr != nil {
					break rounds
				}
			}
		}
	}

	names := make([]string, len(systems))
	for si, t := range systems {
		names[si] = t.name
	}
	return &idleLatencyResults{c, names, states, results, accepts, [2]string{serverLogNote(lp), serverLogNote(bp)}}, runErr
}

// idleLatencyResults is what the idle-latency scenario measured: each
// system's loads with no idle connection and with them, by round, how
// long the idle connections took to open, and what the servers logged.
type idleLatencyResults struct {
	c       *idleLatencyConfig
	systems []string         // larder, baseline
	states  []int            // idle connections: none, then c.idle
	results [][][]loadResult // [system][state][round]
	accepts []time.Duration
	logs    [2]string // larder's and the baseline's, see serverLogNote
}

func (r *idleLatencyResults) tables() []*report.Table {
	c, states, results, accepts := r.c, r.states, r.results, r.accepts
	tbl := &report.Table{
		Title: fmt.Sprintf("Latency of one %d-byte retrieval with idle connections held open", c.size),
		Header: append([]string{"system", "idle connections", "p50 ms", "p99 ms", "mean ms",
			"p99 per round", "p50 ratio", "p99 ratio", "server µs/req"}, cpuHeader...),
	}
	p99ratio := make([]float64, len(r.systems))
	for si, name := range r.systems {
		none, loaded := results[si][0], results[si][1]
		for state, rs := range results[si] {
			if len(rs) == 0 {
				continue
			}
			p50, p99, mean, srvReq, cpu := make([]float64, len(rs)), make([]float64, len(rs)), make([]float64, len(rs)), make([]float64, len(rs)), make([]cpuUse, len(rs))
			for i, lr := range rs {
				p50[i], p99[i], mean[i] = msOf(lr.lat.p50), msOf(lr.lat.p99), msOf(lr.lat.mean)
				srvReq[i] = lr.perRequest(lr.cpu.server)
				cpu[i] = lr.cpu
			}
			r50, r99 := "1×", "1×"
			if state == 1 {
				// Pair the rounds: idle state of round i against the
				// no-idle state of round i, measured just before.
				var q50, q99 []float64
				for i := range min(len(none), len(loaded)) {
					q50 = append(q50, float64(loaded[i].lat.p50)/float64(none[i].lat.p50))
					q99 = append(q99, float64(loaded[i].lat.p99)/float64(none[i].lat.p99))
				}
				r50, r99 = fmtFactor(median(q50)), fmtFactor(median(q99))
				p99ratio[si] = median(q99)
			}
			tbl.Add(append([]string{name, fmt.Sprint(states[state]), msf(median(p50)), msf(median(p99)), msf(median(mean)),
				list(p99, msf), r50, r99, report.Num(median(srvReq))}, cpuCells(cpu)...)...)
		}
	}
	tbl.Note("Each measurement: %d requests one after another, each on a new connection, timed from the dial to the end of the checked reply; percentiles of the whole sample, medians across %d rounds. A round measures larder with no idle connection, then with %d, then the baseline likewise; the ratios are medians of the per-round ratios (loaded / unloaded, same process).",
		c.requests, c.rounds, c.idle)
	tbl.Note(cpuNote)
	tbl.Note("Idle connections connect and send nothing; the bench waits until the server holds a descriptor for each (from /proc/PID/fd) before measuring. Opening and accepting %d took %s (median).", c.idle, medianDuration(accepts))
	tbl.Note("larder runs with --max-conns %s --request-timeout %s, so that the idle connections are neither refused nor timed out; the cache is warm (the hash was paid before the rounds).", idleMaxConns, idleRequestTimeout)
	if len(results[0][1]) > 0 {
		verdict := "met"
		if p99ratio[0] > 2 {
			verdict = "NOT met"
		}
		tbl.Note("Target: larder's p99 with %d idle connections ≤ 2× its p99 with none: %s (%s).", c.idle, verdict, fmtFactor(p99ratio[0]))
	}
	tbl.Note("%s; %s.", r.logs[0], r.logs[1])
	return []*report.Table{tbl}
}

func msOf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func medianDuration(ds []time.Duration) string {
	xs := make([]float64, len(ds))
	for i, d := range ds {
		xs[i] = d.Seconds()
	}
	if len(xs) == 0 {
		return "–"
	}
	return (time.Duration(median(xs) * float64(time.Second))).Round(time.Millisecond).String()
}

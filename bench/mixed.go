//go:build linux

package main

import (
	"context"
	"flag"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/larderfs/larder/bench/report"
	"github.com/larderfs/larder/course"
)

// This file is the mixed scenario: many clients retrieving a
// small file, alone and then beside a few clients downloading a large one,
// to see whether the large transfers starve the small requests.

const (
	// mixedLeadIn is how long the large transfers run before the small
	// load's window opens, so that it measures them streaming rather
	// than starting; mixedTail is how long they run on after it closes,
	// so that its last requests still meet them.
	mixedLeadIn = 500 * time.Millisecond
	mixedTail   = 250 * time.Millisecond
	// largeTimeout bounds one large download outside the rounds (the
	// warm-up); in a round, the cut at the end of the run comes first.
	largeTimeout = 2 * time.Minute
)

// mixedConfig configures the mixed scenario.
type mixedConfig struct {
	clients   int
	large     int
	size      int
	largeSize int
	duration  time.Duration
	rounds    int
	timeout   time.Duration
	procs     int // GOMAXPROCS of the bench during the scenario; 0: clientProcs
}

func newMixedConfig() scenarioConfig {
	return &mixedConfig{
		clients:   16,
		large:     2,
		size:      1024,
		largeSize: 256 << 20,
		duration:  5 * time.Second,
		rounds:    3,
		timeout:   10 * time.Second,
	}
}

func (c *mixedConfig) register(fs *flag.FlagSet) {
	fs.IntVar(&c.clients, "clients", c.clients, "concurrent clients retrieving the small file")
	fs.IntVar(&c.large, "large", c.large, "concurrent clients downloading the large file in the mixed load")
	fs.IntVar(&c.size, "size", c.size, "size of the small file, in `bytes`")
	fs.IntVar(&c.largeSize, "large-size", c.largeSize, "size of the large file, in `bytes`")
	fs.DurationVar(&c.duration, "duration", c.duration, "duration of each measurement of the small load")
	fs.IntVar(&c.rounds, "rounds", c.rounds, "rounds, each measuring the small load alone, then beside the large transfers")
	fs.DurationVar(&c.timeout, "timeout", c.timeout, "deadline of each small request's connection")
	fs.IntVar(&c.procs, "client-procs", c.procs, "GOMAXPROCS of the bench while it runs the clients; 0: one per client plus one per core, so that each client can have a thread")
}

// clientProcs is the GOMAXPROCS the bench runs the clients with, unless
// told otherwise: one per client, small and large, plus one per core (see
// procsNote for why).
func (c *mixedConfig) clientProcs() int {
	if c.procs > 0 {
		return c.procs
	}
	return c.clients + c.large + runtime.NumCPU()
}

func (c *mixedConfig) quick() { c.rounds, c.duration, c.largeSize = 2, 3*time.Second, 64<<20 }

// The two loads a round measures, in this order.
const (
	stateAlone = iota // the small requests alone
	stateMixed        // the small requests beside the large transfers
)

var mixedStates = []string{"small alone", "small + large"}

// mixedLoad is one of the scenario's two loads: the client its clients
// share, the request of each, and the file they retrieve.
type mixedLoad struct {
	t    target
	reqs [][]byte
	f    fileSpec
}

// mixedSample is one measurement: the small requests, and the large
// transfers beside them (none in stateAlone).
type mixedSample struct {
	small loadResult
	p999  time.Duration // the small requests' 99.9th percentile
	large largeResult
}

// largeResult is what the large clients of one measurement did.
type largeResult struct {
	bytes    int64 // payload bytes received and checked, cut transfers included
	whole    int   // transfers received whole
	cut      int   // transfers in flight at the end of the run
	failed   int
	firstErr error
	elapsed  time.Duration // from their start to the cut
}

func (r largeResult) mbps() float64 { return float64(r.bytes) / r.elapsed.Seconds() / 1e6 }

// mixedResults is what the mixed scenario measured: the samples of each
// state (small load alone, and beside the large downloads) by round, the
// first large download, Go's default GOMAXPROCS, and what larder logged.
type mixedResults struct {
	c          *mixedConfig
	samples    [][]mixedSample // [state][round]
	firstLarge time.Duration
	goDefault  int
	log        string // see serverLogNote
}

func (r *mixedResults) tables() []*report.Table {
	return []*report.Table{r.c.table(r.samples, r.firstLarge, r.goDefault, r.log)}
}

func (c *mixedConfig) run(env *Env) (results, error) {
	if c.rounds < 1 || c.clients < 1 || c.large < 1 || c.size < 1 || c.duration <= 0 || c.procs < 0 {
		return nil, fmt.Errorf("need at least one round, small client, large client and byte, a positive duration, and --client-procs ≥ 0")
	}
	if c.largeSize <= c.size {
		return nil, fmt.Errorf("the large file (%d bytes) must be larger than the small one (%d)", c.largeSize, c.size)
	}
	if _, err := course.BlockCount(int64(c.largeSize)); err != nil {
		return nil, fmt.Errorf("--large-size: %w", err)
	}
	goDefault := runtime.GOMAXPROCS(c.clientProcs())
	defer runtime.GOMAXPROCS(goDefault)
	env.progress("writing a %d-byte and a %d-byte random file", c.size, c.largeSize)
	dir, specs, err := env.makeFiles(c.size, c.largeSize)
	if err != nil {
		return nil, err
	}
	lp, err := env.startLarder(dir, "")
	if err != nil {
		return nil, err
	}
	small := mixedLoad{target{"larder", lp, newClient(lp.Addr, c.timeout)}, make([][]byte, c.clients), specs[0]}
	large := mixedLoad{target{"larder", lp, newClient(lp.Addr, largeTimeout)}, make([][]byte, c.large), specs[1]}

	// Every client has an account of its own: the small clients the
	// first ones, the large clients the next.
	accts := newAccounts(c.clients + c.large)
	for i, a := range accts {
		if i < c.clients {
			small.reqs[i] = a.request(small.f.Path)
		} else {
			large.reqs[i-c.clients] = a.request(large.f.Path)
		}
	}
	t0 := time.Now()
	if err := small.t.cl.registerAll(env.ctx, accts); err != nil {
		return nil, err
	}
	env.progress("registered %d users in %v", len(accts), time.Since(t0).Round(time.Millisecond))

	// Warm up: registering leaves each account's signature in larder's
	// verification cache; one retrieval per account makes sure, and the
	// first large one pays larder's SHA-256 of the large file, which it
	// then caches. Neither is measured.
	for _, req := range small.reqs {
		if _, err := sequential(env.ctx, small.t, req, small.f, 1); err != nil {
			return nil, fmt.Errorf("warm-up: %w", err)
		}
	}
	var firstLarge time.Duration
	for i, req := range large.reqs {
		t0 := time.Now()
		if _, err := large.t.cl.fetchFramed(env.ctx, req, large.f); err != nil {
			return nil, fmt.Errorf("warm-up, large download %d: %w", i+1, err)
		}
		if i == 0 {
			firstLarge = time.Since(t0)
		}
	}
	env.progress("first large download (larder hashes the file): %v", firstLarge.Round(time.Millisecond))

	// results[state][round]
	results := make([][]mixedSample, len(mixedStates))
	var runErr error
measure:
	for r := range c.rounds {
		for state := range mixedStates {
			s := c.measure(env.ctx, small, large, state == stateMixed)
			if err := env.ctx.Err(); err != nil {
				runErr = err
				break measure
			}
			results[state] = append(results[state], s)
			line := fmt.Sprintf("round %d/%d %-13s %7.0f req/s  p99 %s ms  p99.9 %s ms  failed %d",
				r+1, c.rounds, mixedStates[state], s.small.rate(), ms(s.small.lat.p99), ms(s.p999), s.small.failed)
			if state == stateMixed {
				line += fmt.Sprintf("  large %.0f MB/s (%d whole, %d cut, %d failed)", s.large.mbps(), s.large.whole, s.large.cut, s.large.failed)
			}
			env.progress("%s  %v", line, s.small.cpu)
			if exited, werr := lp.Exited(); exited {
				runErr = fmt.Errorf("larder exited (%v); its log:\n%s", werr, lp.LogTail(20))
				break measure
			}
		}
	}
	return &mixedResults{c, results, firstLarge, goDefault, serverLogNote(lp)}, runErr
}

// measure runs the small load for c.duration, with the large transfers
// beside it if mixed: they start mixedLeadIn before its window and are cut
// mixedTail after it.
func (c *mixedConfig) measure(ctx context.Context, small, large mixedLoad, mixed bool) mixedSample {
	var s mixedSample
	if !mixed {
		s.small, s.p999 = c.smallLoad(ctx, small)
		return s
	}
	until := time.Now().Add(mixedLeadIn + c.duration + mixedTail)
	done := make(chan largeResult, 1)
	go func() { done <- runLarge(ctx, large.t, large.reqs, large.f, until) }()
	select {
	case <-time.After(mixedLeadIn):
	case <-ctx.Done():
	}
	s.small, s.p999 = c.smallLoad(ctx, small)
	s.large = <-done
	return s
}

// smallLoad runs the small load and returns it with its p99.9.
func (c *mixedConfig) smallLoad(ctx context.Context, l mixedLoad) (loadResult, time.Duration) {
	r := runLoad(ctx, l.t, l.reqs, l.f, c.clients, c.duration)
	return r, r.lat.p999
}

// runLarge has one client per request in reqs download f over and over
// with fetchFramed (every block checked, nothing kept) until the time
// until, when the transfers in flight are cut: their connections carry
// that deadline. A cut transfer counts the payload bytes it received and
// checked, and is not a failure.
func runLarge(ctx context.Context, t target, reqs [][]byte, f fileSpec, until time.Time) largeResult {
	ctx, cancel := context.WithDeadline(ctx, until)
	defer cancel()
	start := time.Now()
	per := make([]largeResult, len(reqs))
	var wg sync.WaitGroup
	for w, req := range reqs {
		wg.Go(func() {
			r := &per[w]
			for ctx.Err() == nil {
				n, err := t.cl.fetchFramed(ctx, req, f)
				r.bytes += n
				switch {
				case err == nil:
					r.whole++
				case !time.Now().Before(until):
					if n > 0 {
						r.cut++
					}
				default:
					r.failed++
					if r.firstErr == nil {
						r.firstErr = err
					}
					time.Sleep(time.Millisecond) // no spinning on a dead server
				}
			}
		})
	}
	wg.Wait()
	total := largeResult{elapsed: min(time.Since(start), until.Sub(start))}
	for _, r := range per {
		total.bytes += r.bytes
		total.whole += r.whole
		total.cut += r.cut
		total.failed += r.failed
		if total.firstErr == nil {
			total.firstErr = r.firstErr
		}
	}
	return total
}

// mixedRatios returns, for each round measured in both states, a figure
// of the mixed measurement over the same figure of the alone one.
func mixedRatios(results [][]mixedSample, fig func(mixedSample) time.Duration) []float64 {
	alone, mixed := results[stateAlone], results[stateMixed]
	rs := make([]float64, min(len(alone), len(mixed)))
	for i := range rs {
		rs[i] = float64(fig(mixed[i])) / float64(fig(alone[i]))
	}
	return rs
}

func (c *mixedConfig) table(results [][]mixedSample, firstLarge time.Duration, goDefault int, serverLog string) *report.Table {
	tbl := &report.Table{
		Title: fmt.Sprintf("Small requests beside large transfers: %d clients retrieving %d bytes, alone and while %d clients download %s",
			c.clients, c.size, c.large, mibStr(c.largeSize)),
		Header: append([]string{"load", "small req/s", "req/s per round", "p50 ms", "p99 ms", "p99.9 ms", "p99 per round",
			"p99 ÷ alone", "per round", "failed", "large MB/s", "large transfers"}, cpuHeader...),
	}
	chart := &report.Chart{
		Title:  fmt.Sprintf("Small requests' latency, alone and beside %d large downloads", c.large),
		YLabel: "latency (ms)",
		Groups: []string{"p50", "p99", "p99.9"},
		Note:   fmt.Sprintf("%d clients retrieving %d bytes; %d clients downloading %s; median of %d rounds, min–max whiskers", c.clients, c.size, c.large, mibStr(c.largeSize), c.rounds),
	}
	tbl.Charts = []*report.Chart{chart}
	p99 := func(s mixedSample) time.Duration { return s.small.lat.p99 }
	p99Ratios := mixedRatios(results, p99)
	for state, rs := range results {
		if len(rs) == 0 {
			continue
		}
		rates := perRound(rs, func(s mixedSample) float64 { return s.small.rate() })
		p50s := perRound(rs, func(s mixedSample) float64 { return msOf(s.small.lat.p50) })
		p99s := perRound(rs, func(s mixedSample) float64 { return msOf(s.small.lat.p99) })
		p999s := perRound(rs, func(s mixedSample) float64 { return msOf(s.p999) })
		chart.Put(mixedStates[state], "p50", p50s)
		chart.Put(mixedStates[state], "p99", p99s)
		chart.Put(mixedStates[state], "p99.9", p999s)
		cpu := make([]cpuUse, len(rs))
		failed := 0
		var lr largeResult
		for i, s := range rs {
			cpu[i] = s.small.cpu
			failed += s.small.failed
			lr.whole += s.large.whole
			lr.cut += s.large.cut
			lr.failed += s.large.failed
		}
		ratio, perRatio, mbps, xfers := "1×", "–", "–", "–"
		if state == stateMixed {
			ratio, perRatio = fmtFactor(median(p99Ratios)), list(p99Ratios, fmtFactor)
			mbps = report.Num(median(perRound(rs, func(s mixedSample) float64 { return s.large.mbps() })))
			xfers = fmt.Sprintf("%d whole, %d cut, %d failed", lr.whole, lr.cut, lr.failed)
		}
		tbl.Add(append([]string{mixedStates[state], report.Num(median(rates)), list(rates, report.Num), msf(median(p50s)), msf(median(p99s)),
			msf(median(p999s)), list(p99s, msf), ratio, perRatio, fmt.Sprint(failed), mbps, xfers}, cpuCells(cpu)...)...)
		for _, s := range rs {
			if s.small.firstErr != nil {
				tbl.Note("%s: first failure of a small request: %v", mixedStates[state], s.small.firstErr)
				break
			}
		}
		for _, s := range rs {
			if s.large.firstErr != nil {
				tbl.Note("%s: first failure of a large transfer: %v", mixedStates[state], s.large.firstErr)
				break
			}
		}
	}

	tbl.Note("Small load: %d clients, each with an account of its own, loop dial, send the request, read to EOF, close, retrieving the %d-byte file. Only complete replies count, each checked whole: status, length, every block hash, the total hash, and the file's SHA-256. Latency runs from the dial to the end of the reply; percentiles (nearest rank) are of all the requests of one measurement.",
		c.clients, c.size)
	tbl.Note("Large load: %d clients, each with an account of its own, download the %d-byte file (%s) over and over, one per connection, over the course protocol: every block's hash and position and the total hash are checked as the blocks arrive, and the bytes are discarded. They start %v before the small load's window and run through it, and are cut %v after it (the transfers then in flight count their checked bytes and are not failures). large MB/s = payload bytes / their whole run (%v), all clients together, median across rounds; transfers are summed over the rounds.",
		c.large, c.largeSize, mibStr(c.largeSize), mixedLeadIn, mixedTail, mixedLeadIn+c.duration+mixedTail)
	tbl.Note("%d rounds; each measures the small load alone for %v, then beside the large load for %v (A B A B …), on one larder (defaults: argon2id, its verification cache, the audit trail to its database). Figures are medians across rounds; p99 ÷ alone is the median of the per-round ratios, round i's mixed p99 over round i's alone p99.",
		c.rounds, c.duration, c.duration)
	if k := len(p99Ratios); k > 0 {
		p50Ratios := mixedRatios(results, func(s mixedSample) time.Duration { return s.small.lat.p50 })
		p999Ratios := mixedRatios(results, func(s mixedSample) time.Duration { return s.p999 })
		tbl.Note("The whole distribution against its tail, mixed ÷ alone (medians of the per-round ratios): p50 %s, p99 %s, p99.9 %s.",
			fmtFactor(median(p50Ratios)), fmtFactor(median(p99Ratios)), fmtFactor(median(p999Ratios)))
	}
	tbl.Note("Before the rounds, one retrieval per account, not measured; the first large download took %v, paying larder's SHA-256 of the file, which it then caches.",
		firstLarge.Round(time.Millisecond))
	tbl.Note("The bench runs its clients with GOMAXPROCS %d (Go's default here: %d). %s",
		c.clientProcs(), goDefault, procsNote(c.procs))
	tbl.Note("%s CPU is measured over the small load's window; the client's is the whole bench, large clients included, which hash every byte twice (block hash, total hash) on the same %d cores as larder.",
		cpuNote, runtime.NumCPU())
	if len(p99Ratios) > 0 {
		r := median(p99Ratios)
		verdict := "met"
		if !(r <= 2) {
			verdict = "NOT met"
		}
		tbl.Note("Aim: small requests' p99 under the mixed load ≤ 2× alone: %s (%s).", verdict, fmtFactor(r))
	}
	tbl.Note("%s.", serverLog)
	return tbl
}

// procsNote explains the bench's GOMAXPROCS: with Go's default, one per
// core, the large clients, always busy hashing what they receive, hold the
// bench's few Ps for whole 10 ms time slices while the small clients'
// goroutines, their replies in, wait in the run queue. That delay is the
// bench's own, yet the small requests' latencies would count it against
// larder. With a thread each, the kernel shares the cores among the
// clients as among separate client processes.
func procsNote(procs int) string {
	const why = "with one per core, the large clients, busy hashing what they receive, hold the bench's Ps for 10 ms time slices while the small clients' goroutines wait in its run queue, a delay of the bench's own that the small requests' latencies would count"
	if procs > 0 {
		return "Set by --client-procs; " + why + "."
	}
	return "One per client plus one per core, so that each client can have a thread, and the kernel shares the cores among the clients as among separate client processes: " + why + " (--client-procs N sets N)."
}

// mibStr formats a size in MiB, "256 MiB".
func mibStr(n int) string { return report.Num(float64(n)/(1<<20)) + " MiB" }

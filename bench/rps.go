//go:build linux

package main

import (
	"flag"
	"fmt"
	"math"
	"time"

	"github.com/larderfs/larder/bench/report"
)

// rpsConfig configures the rps scenario.
type rpsConfig struct {
	clients  intList
	duration time.Duration
	rounds   int
	users    int
	size     int
	files    int
	timeout  time.Duration
}

func newRPSConfig() scenarioConfig {
	return &rpsConfig{
		clients:  intList{1, 16, 64, 256},
		duration: 5 * time.Second,
		rounds:   3,
		users:    64,
		size:     1024,
		files:    1,
		timeout:  10 * time.Second,
	}
}

func (c *rpsConfig) register(fs *flag.FlagSet) {
	fs.Var(&c.clients, "clients", "comma-separated `list` of concurrent client counts")
	fs.DurationVar(&c.duration, "duration", c.duration, "duration of each measurement")
	fs.IntVar(&c.rounds, "rounds", c.rounds, "rounds per client count, each measuring larder then the baseline")
	fs.IntVar(&c.users, "users", c.users, "accounts; client i sends as account i mod users")
	fs.IntVar(&c.size, "size", c.size, "size of the file retrieved, in `bytes`")
	fs.IntVar(&c.files, "files", c.files, "distinct files of that size; each client goes through them in turn")
	fs.DurationVar(&c.timeout, "timeout", c.timeout, "deadline of each connection")
}

func (c *rpsConfig) quick() { c.duration, c.rounds = 2*time.Second, 2 }

func (c *rpsConfig) run(env *Env) (results, error) {
	if c.rounds < 1 || c.users < 1 || c.size < 1 || c.files < 1 || len(c.clients) == 0 {
		return nil, fmt.Errorf("need at least one round, user, byte, file and client count")
	}
	dir, specs, err := env.makeFiles(c.size)
	if c.files > 1 {
		dir, specs, err = env.makeSmallFiles(c.files, c.size)
	}
	if err != nil {
		return nil, err
	}
	f := specs[0]
	data, err := env.mkdir("larder-data")
	if err != nil {
		return nil, err
	}
	lp, err := env.startLarder(dir, data)
	if err != nil {
		return nil, err
	}
	accts := make([]account, c.users)
	reqs := make([][]byte, c.users)
	for i := range accts {
		accts[i] = newAccount(i)
		reqs[i] = accts[i].request(f.Path)
	}
	// The load: every file in turn, file i asked for by account i mod
	// users (the accounts' requests for the first file with one file).
	jobs := make([]loadJob, max(len(specs), len(accts)))
	for i := range jobs {
		spec := specs[i%len(specs)]
		jobs[i] = loadJob{req: accts[i%len(accts)].request(spec.Path), f: spec}
	}
	t0 := time.Now()
	if err := newClient(lp.Addr, c.timeout).registerAll(env.ctx, accts); err != nil {
		return nil, err
	}
	regTime := time.Since(t0)
	env.progress("registered %d users in %v", len(accts), regTime.Round(time.Millisecond))

	// A registration leaves its signature in the verification cache.
	// Restart larder on the same accounts so that the cache is empty, as
	// after any restart or once the entries expire: then each user's first
	// retrieval pays the password hash and the rest hit the cache.
	env.stop(lp)
	if lp, err = env.startLarder(dir, data); err != nil {
		return nil, err
	}
	bp, err := env.startBaseline(dir)
	if err != nil {
		return nil, err
	}
	larder := target{"larder", lp, newClient(lp.Addr, c.timeout)}
	baseline := target{"baseline", bp, newClient(bp.Addr, c.timeout)}

	// Measure the first retrievals apart, one at a time, so that the
	// figure is the hash and not a queue for the hashing pool.
	cold := make([]time.Duration, 0, len(reqs))
	for _, req := range reqs {
		r, err := sequential(env.ctx, larder, req, f, 1)
		if err != nil {
			return nil, fmt.Errorf("first retrieval: %w", err)
		}
		cold = append(cold, r.lat.p50)
	}
	coldSum := summarize(cold)
	env.progress("first retrieval per user (cache cold): p50 %s ms, p99 %s ms", ms(coldSum.p50), ms(coldSum.p99))
	same := "yes"
	if err := sameReply(env.ctx, larder, baseline, reqs[0], f); err != nil {
		same = "NO: " + err.Error()
	}

	systems := []target{larder, baseline}
	// results[point][system][round]
	results := make([][][]loadResult, len(c.clients))
	var runErr error
measure:
	for pi, n := range c.clients {
		results[pi] = make([][]loadResult, len(systems))
		for r := range c.rounds {
			for si, t := range systems {
				res := runJobs(env.ctx, t, jobs, n, c.duration)
				if err := env.ctx.Err(); err != nil {
					runErr = err
					break measure
				}
				results[pi][si] = append(results[pi][si], res)
				env.progress("clients %d round %d/%d %-8s %7.0f req/s  p99 %s ms  failed %d  %v",
					n, r+1, c.rounds, t.name, res.rate(), ms(res.lat.p99), res.failed, res.cpu)
				if exited, werr := t.proc.Exited(); exited {
					runErr = fmt.Errorf("%s exited (%v); its log:\n%s", t.name, werr, t.proc.LogTail(20))
					break measure
				}
			}
		}
	}

	return &rpsResults{c: c, systems: []string{larder.name, baseline.name}, results: results, files: len(specs),
		cold: coldSum, regTime: regTime, same: same, logs: [2]string{serverLogNote(lp), serverLogNote(bp)}}, runErr
}

// rpsResults is what the rps scenario measured: the loads of each client
// count, system and round, the first retrievals (cache cold), the
// registrations, whether the baseline's reply is larder's, and what the
// servers logged.
type rpsResults struct {
	c       *rpsConfig
	systems []string         // larder, baseline
	results [][][]loadResult // [client count][system][round]
	files   int
	cold    latencySummary
	regTime time.Duration
	same    string
	logs    [2]string // larder's and the baseline's, see serverLogNote
}

func (r *rpsResults) tables() []*report.Table {
	c, results, coldSum, regTime, same := r.c, r.results, r.cold, r.regTime, r.same
	tbl := &report.Table{
		Title: fmt.Sprintf("Requests per second: %s of %d bytes, one request per connection", plural(c.files, "file"), c.size),
		Header: append([]string{"clients", "system", "req/s", "req/s per round", "p50 ms", "p99 ms",
			"failed", "server µs/req", "client µs/req"}, cpuHeader...),
	}
	ratios := &report.Table{
		Title: "larder / baseline (median of the per-round ratios; each round measures both back to back)",
		Header: []string{"clients", "larder req/s", "baseline req/s", "req/s ratio", "per round",
			"larder p99 ms", "baseline p99 ms", "p99 ratio", "server µs/req ratio"},
	}
	at64, p99at64 := math.NaN(), math.NaN()
	rateChart := &report.Chart{Title: fmt.Sprintf("Authenticated %d-byte requests per second", c.size), YLabel: "requests/s",
		Lines: []report.Line{{Label: "aim 10,000 at 64", Y: 10000}}}
	p99Chart := &report.Chart{Title: fmt.Sprintf("p99 latency of authenticated %d-byte requests", c.size), YLabel: "p99 (ms)",
		Lines: []report.Line{{Label: "aim 20 ms at 64", Y: 20}}}
	for _, name := range r.systems {
		rateChart.Series = append(rateChart.Series, report.Series{Name: name})
		p99Chart.Series = append(p99Chart.Series, report.Series{Name: name})
	}
	for pi, n := range c.clients {
		rounds := results[pi]
		if len(rounds) < len(r.systems) || len(rounds[len(r.systems)-1]) == 0 {
			break
		}
		var med [2]struct{ rate, p99, srvReq float64 }
		for si, name := range r.systems {
			rs := rounds[si]
			rates, p50s, p99s := make([]float64, len(rs)), make([]float64, len(rs)), make([]float64, len(rs))
			srvReq, cliReq := make([]float64, len(rs)), make([]float64, len(rs))
			cpu := make([]cpuUse, len(rs))
			failed := 0
			for i, lr := range rs {
				rates[i] = lr.rate()
				p50s[i], p99s[i] = msOf(lr.lat.p50), msOf(lr.lat.p99)
				srvReq[i], cliReq[i] = lr.perRequest(lr.cpu.server), lr.perRequest(lr.cpu.client)
				cpu[i] = lr.cpu
				failed += lr.failed
			}
			med[si].rate, med[si].p99 = median(rates), median(p99s)
			rateChart.Series[si].Add(rates)
			p99Chart.Series[si].Add(p99s)
			med[si].srvReq = median(srvReq)
			tbl.Add(append([]string{fmt.Sprint(n), name, report.Num(median(rates)), list(rates, report.Num), msf(median(p50s)), msf(median(p99s)),
				fmt.Sprint(failed), report.Num(median(srvReq)), report.Num(median(cliReq))}, cpuCells(cpu)...)...)
			for _, lr := range rs {
				if lr.firstErr != nil {
					tbl.Note("%s at %d clients, first failure: %v", name, n, lr.firstErr)
					break
				}
			}
		}
		rateChart.Groups = append(rateChart.Groups, fmt.Sprintf("%d clients", n))
		p99Chart.Groups = append(p99Chart.Groups, fmt.Sprintf("%d clients", n))
		// Pair the rounds: larder's round i against the baseline's round i.
		k := min(len(rounds[0]), len(rounds[1]))
		rr, pr, cr := make([]float64, k), make([]float64, k), make([]float64, k)
		for i := range k {
			a, b := rounds[0][i], rounds[1][i]
			rr[i] = a.rate() / b.rate()
			pr[i] = float64(a.lat.p99) / float64(b.lat.p99)
			cr[i] = a.perRequest(a.cpu.server) / b.perRequest(b.cpu.server)
		}
		ratios.Add(fmt.Sprint(n), report.Num(med[0].rate), report.Num(med[1].rate), fmtFactor(median(rr)), list(rr, fmtFactor),
			msf(med[0].p99), msf(med[1].p99), fmtFactor(median(pr)), fmtFactor(median(cr)))
		if n == 64 {
			at64, p99at64 = med[0].rate, med[0].p99
		}
	}
	tbl.Note("Each client loops: dial, send the request, read to EOF, close. Only complete replies count, each checked whole: status, length, every block hash, the total hash, and the file's SHA-256. Latency runs from the dial to the end of the reply. %d rounds of %v per client count and system, alternating larder and baseline; figures are medians across rounds.", c.rounds, c.duration)
	tbl.Note("larder runs with its default password hashing (argon2id m=19456 KiB, t=2, p=1) and its verification cache: %d accounts; request k of the load is for file k mod %d (of %d) as account k mod %d, and client w sends requests w, w+clients, w+2·clients, … in turn. Registering leaves an account's signature in the cache, so the bench restarts larder on the same accounts before measuring: then each account's first retrieval pays the hash. Measured apart, one at a time, before the rounds: p50 %s ms, p99 %s ms, max %s ms (n=%d). The rounds are measured with the cache warm; its entries live 5 minutes from that first retrieval, so a run longer than that pays the hash again.",
		c.users, r.files, r.files, c.users, ms(coldSum.p50), ms(coldSum.p99), ms(coldSum.max), coldSum.n)
	tbl.Note("Registering the %d accounts (one hash each, two at a time) took %v.", c.users, regTime.Round(time.Millisecond))
	tbl.Note("Baseline: a bare Go server, one goroutine per connection, no authentication, sending a precomputed reply. Its reply is byte-identical to larder's: %s.", same)
	tbl.Note(cpuNote)
	tbl.Note("µs/req: CPU time per completed request, server (from /proc/PID/stat, 10 ms ticks) and client; the steadiest figure on a shared machine, as other processes slow a run without adding to it.")
	if !math.IsNaN(at64) {
		verdict := "met"
		if at64 < 5000 {
			verdict = "NOT met"
		}
		tbl.Note("Target ≥ 5,000 req/s at 64 clients: %s (larder %s req/s).", verdict, report.Num(at64))
		verdict = "met"
		if at64 < 10000 || p99at64 >= 20 {
			verdict = "NOT met"
		}
		tbl.Note("Aim (issue 6) ≥ 10,000 req/s at 64 clients with a p99 under 20 ms: %s (larder %s req/s, p99 %s ms).", verdict, report.Num(at64), msf(p99at64))
	}
	tbl.Note("%s; %s.", r.logs[0], r.logs[1])
	note := fmt.Sprintf("one request per connection, every reply checked whole; median of %d rounds of %v, min–max whiskers", c.rounds, c.duration)
	rateChart.Note, p99Chart.Note = note, note
	if len(rateChart.Groups) > 0 {
		tbl.Charts = []*report.Chart{rateChart, p99Chart}
	}
	return []*report.Table{tbl, ratios}
}

// fmtFactor formats a ratio already computed.
func fmtFactor(v float64) string { return ratio(v, 1) }

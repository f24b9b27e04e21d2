//go:build linux

package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/larderfs/larder/bench/report"
)

// spread formats the median of xs with its minimum and maximum,
// "9143 (8920–9301)".
func spread(xs []float64, format func(float64) string) string {
	if len(xs) == 0 {
		return "–"
	}
	return fmt.Sprintf("%s (%s–%s)", format(median(xs)), format(slices.Min(xs)), format(slices.Max(xs)))
}

// signed formats a difference with its sign, "+12.3".
func signed(v float64) string {
	if v >= 0 {
		return "+" + report.Num(v)
	}
	return report.Num(v)
}

// tables reports the audit scenario: each configuration's throughput and
// cost, what its pipeline did, and the ratios between them.
func (c *auditConfig) tables(setups []auditSetup, logs []string, results [][]auditRound, problems []string, same, spoolFS string) []*report.Table {
	idx := func(name string) int {
		return slices.IndexFunc(setups, func(s auditSetup) bool { return s.name == name })
	}
	off, up, down, bare, vs, alt := idx(auditOff), idx(auditUp), idx(auditDown), idx(auditBare), idx(auditVs), idx(auditAlt)

	load := &report.Table{
		Title: fmt.Sprintf("Requests per second by audit configuration: %d-byte file, %d clients, one request per connection", c.size, c.clients),
		Header: append([]string{"sink", "larder flags", "req/s: median (min–max)", "per round", "p99 ms: median (min–max)",
			"failed", "server CPU µs/req, until settled", "server CPU µs/req, load only"}, cpuHeader...),
	}
	pipe := &report.Table{
		Title: "The audit pipeline in each round (counters from the server's /metrics, before the load and once settled)",
		Header: []string{"sink", "events recorded per round", "events per request", "delivered per round",
			"recorded/s during the load", "delivered/s during the load", "undelivered at the end of the load",
			"settled after", "spool bytes after the last round", "not taken", "delivery failures"},
	}
	for si, s := range setups {
		rs := results[si]
		if len(rs) == 0 {
			continue
		}
		rates := perRound(rs, func(r auditRound) float64 { return r.load.rate() })
		p99s := perRound(rs, func(r auditRound) float64 { return msOf(r.load.lat.p99) })
		full := perRound(rs, auditRound.cpuPerRequest)
		window := perRound(rs, func(r auditRound) float64 { return r.load.perRequest(r.load.cpu.server) })
		cpu := make([]cpuUse, len(rs))
		failed := 0
		for i, r := range rs {
			cpu[i] = r.load.cpu
			failed += r.load.failed
		}
		flags := "–" // the bare server
		if s.name != auditBare {
			flags = "`" + strings.Join(s.flags, " ") + "`"
		}
		load.Add(append([]string{s.name, flags, spread(rates, report.Num), list(rates, report.Num),
			spread(p99s, msf), fmt.Sprint(failed), spread(full, report.Num), spread(window, report.Num)}, cpuCells(cpu)...)...)
		for _, r := range rs {
			if r.load.firstErr != nil {
				load.Note("%s, first failure: %v", s.name, r.load.firstErr)
				break
			}
		}

		last := rs[len(rs)-1].after
		if !last.exported {
			pipe.Add(s.name, "–", "–", "–", "–", "–", "–", spread(perRound(rs, func(r auditRound) float64 { return msOf(r.settle) }), msf)+" ms", "–", "–", "–")
			continue
		}
		var notTaken, failures float64
		for _, r := range rs {
			notTaken += r.notTaken()
			failures += r.after.failures - r.before.failures
		}
		lag := "all: none is delivered"
		if s.name != auditDown {
			lag = spread(perRound(rs, func(r auditRound) float64 { return r.atEnd.taken - r.atEnd.delivered }), fmtCount)
		}
		pipe.Add(s.name,
			spread(perRound(rs, auditRound.recorded), fmtCount),
			spread(perRound(rs, func(r auditRound) float64 { return r.recorded() / float64(r.served()) }), report.Num),
			spread(perRound(rs, auditRound.delivered), fmtCount),
			spread(perRound(rs, func(r auditRound) float64 { return (r.atEnd.taken - r.before.taken) / r.load.elapsed.Seconds() }), fmtCount),
			spread(perRound(rs, func(r auditRound) float64 { return (r.atEnd.delivered - r.before.delivered) / r.load.elapsed.Seconds() }), fmtCount),
			lag,
			spread(perRound(rs, func(r auditRound) float64 { return msOf(r.settle) }), msf)+" ms",
			bytesStr(last.spoolBytes), fmtCount(notTaken), fmtCount(failures))
	}

	ratios := &report.Table{
		Title: "Ratios, each the median of the per-round ratios (each round measures every server back to back)",
		Header: []string{"comparison", "req/s ratio: median (min–max)", "per round", "p99 ratio", "server CPU µs/req ratio",
			"server CPU µs/req difference", "aim"},
	}
	pair := func(a, b int, what, aim string, atLeast float64, cost bool) {
		if a < 0 || b < 0 {
			return
		}
		k := min(len(results[a]), len(results[b]))
		if k == 0 {
			return
		}
		rr, pr, cr, cd := make([]float64, k), make([]float64, k), make([]float64, k), make([]float64, k)
		for i := range k {
			x, y := results[a][i], results[b][i]
			rr[i] = x.load.rate() / y.load.rate()
			pr[i] = float64(x.load.lat.p99) / float64(y.load.lat.p99)
			cr[i] = x.cpuPerRequest() / y.cpuPerRequest()
			cd[i] = x.cpuPerRequest() - y.cpuPerRequest()
		}
		if cost {
			// What recording costs: the throughput given up, in %.
			lost := make([]float64, k)
			for i := range rr {
				lost[i] = 100 * (1 - rr[i])
			}
			aim = fmt.Sprintf("recording costs %s %% of the throughput (%s) and %s µs of server CPU per request (%s)",
				report.Num(median(lost)), list(lost, report.Num), signed(median(cd)), list(cd, signed))
		} else if aim != "" {
			verdict := "met"
			if median(rr) < atLeast {
				verdict = "NOT met"
			}
			aim = fmt.Sprintf("%s: %s (lowest round %s)", aim, verdict, fmtFactor(slices.Min(rr)))
		}
		ratios.Add(what, spread(rr, fmtFactor), list(rr, fmtFactor), fmtFactor(median(pr)), fmtFactor(median(cr)),
			signed(median(cd)), aim)
	}
	pair(down, up, "down ÷ up", "≥ 0.95×", 0.95, false)
	pair(up, off, "up ÷ off", "", 0, true)
	pair(down, off, "down ÷ off", "", 0, false)
	pair(up, bare, "up ÷ bare: larder as by default against the bare server", "≥ 0.9×", 0.9, false)
	pair(down, bare, "down ÷ bare: the spool alone", "", 0, false)
	pair(off, bare, "off ÷ bare: larder with no audit trail", "", 0, false)
	pair(alt, bare, "alt ÷ bare: the sink's work in another process", "", 0, false)
	pair(alt, up, "alt ÷ up", "", 0, false)
	pair(up, vs, "up ÷ vs: this build against the other (--vs), both as by default", "", 0, false)
	pair(vs, bare, "vs ÷ bare", "", 0, false)

	n := 0
	if len(results) > 0 {
		n = len(results[0])
	}
	load.Note("Each client loops: dial, send an authenticated retrieve, read to EOF, close; only complete replies count, each checked whole. Latency runs from the dial to the end of the reply. %d rounds of %v, each measuring the servers in the order of the table (A B C A B C …); figures are medians across rounds with the lowest and highest.", n, c.duration)
	load.Note("The servers run side by side, each larder with its own data folder (accounts, spool); those not measured sit idle. %d accounts, client i using account i mod %d, registered before the servers start and retrieved once each before the rounds, so the rounds run with the verification cache warm.", c.users, c.users)
	if bare >= 0 {
		load.Note("bare is the rps scenario's baseline, measured in the same rounds, so that the ratios to it say what each part of larder costs: off ÷ bare the request path (login, file, reply) with nothing recorded, down ÷ bare with the spool too, up ÷ bare with the sink as well. All send the same bytes for the same request: %s.", same)
	} else {
		load.Note("No baseline server here (--bare=false): the comparison is between larder configurations. All three send the same bytes for the same request: %s.", same)
	}
	load.Note("Server CPU per completed request, from /proc/PID/stat (10 ms ticks): \"until settled\" runs from the start of the load until the pipeline has nothing left to do with the round's events (every one fsync'd to the spool, and with the sink up delivered), so that it counts the deliveries that trail the load; \"load only\" is the load's window. The bench reads /metrics every 20 ms while it waits, a few hundred µs of the server's CPU in all.")
	load.Note(cpuNote)
	load.Note("The spool is in the bench's temporary folder, on %s.", spoolFS)
	for i, s := range setups {
		load.Note("%s: %s; %s.", s.name, s.what, logs[i])
	}
	pipe.Note("An authenticated retrieval records 2 events: login, download (4 in the issue 4 measurements, with the connection's conn.open and conn.close, no longer recorded for a course-protocol connection that was answered). The rates during the load count from its start to the reading taken as the last client finished; \"undelivered at the end of the load\" is events taken but not yet confirmed by the sink at that reading: the deliverer's lag. A delivery rate below the recording rate means the spool grows for as long as such a load lasts. \"Settled after\": from the end of the load until no connection is open, every event taken is fsync'd to the spool, and, with the sink up, delivered. Spool bytes count a segment until it is wholly delivered and sealed (16 MiB), so with the sink up they are the delivered part of the segment being written.")
	if len(problems) == 0 {
		pipe.Note("Checked after every round: no event refused (larder_audit_events_not_taken_total and larder_audit_events_lost_total unchanged), at least %d events recorded per retrieval, with the sink down none delivered, with the sink up every one delivered, and with it off no audit metrics at all: all held.", auditEventsPerRetrieval)
	} else {
		pipe.Note("Checked after every round (events refused or lost, %d events per retrieval, none delivered with the sink down, all with the sink up): **%d problems**: %s.", auditEventsPerRetrieval, len(problems), strings.Join(problems, "; "))
	}
	ratios.Note("up ÷ off is what recording costs a request: the queue, the spool's group commit, and delivery to SQLite, on the two cores that also run the clients. down ÷ up is the aim of issue 4: with the sink down, a request must not be much slower than with it up.")
	return []*report.Table{load, pipe, ratios}
}

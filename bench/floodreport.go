//go:build linux

package main

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/larderfs/larder/bench/report"
)

// medianRound returns the median across rounds of fig.
func medianRound(rs []floodRound, fig func(floodRound) float64) float64 {
	return median(perRound(rs, fig))
}

// p50Of returns the median latency of an outcome in ms, NaN for none.
func p50Of(t *outcomeTally, o loginOutcome) float64 {
	if len(t.lat[o]) == 0 {
		return math.NaN()
	}
	return msOf(summarize(t.lat[o]).p50)
}

// floodBound is the resident memory larder should stay within during the
// flood: its resting RSS, the hashing pool's memory and the margin.
func (c *floodConfig) floodBound(r floodRound) int64 {
	return r.rest + int64(float64(c.pool())*hashMiB*(1<<20)) + int64(c.marginMiB)<<20
}

func (c *floodConfig) tables(results map[string][]floodRound, logLevel string) []*report.Table {
	user := &report.Table{
		Title: fmt.Sprintf("An authenticated user's requests during a flood of %d concurrent wrong-password logins", c.conns),
		Header: []string{c.settingHeader(), "p50 ms, no flood", "p99 ms, no flood", "p50 ms, flood", "p99 ms, flood",
			"p99 flood / no flood", "p99 per round, flood", "requests no flood / flood", "failed", "p99 < 50 ms"},
	}
	mem := &report.Table{
		Title: "larder's memory during the flood",
		Header: []string{c.settingHeader(), "RSS at rest MiB", "peak MiB, no flood", "peak VmRSS MiB, flood", "per round", "VmHWM MiB", "anon / file at peak MiB",
			"Go heap peak MiB", "live heap max MiB", "stacks max MiB", "GC cycles", "bound MiB", "within bound"},
	}
	out := &report.Table{
		Title: "What the flood's attempts got (medians across rounds)",
		Header: append([]string{c.settingHeader(), "answered", "per s", "hashed (INVALID_LOGIN)", "refused by throttle",
			"gave up waiting for pool", "other / no reply", "cut at end", "hashed per round", "refused per round",
			"p50 ms hashed", "p50 ms refused", "p50 ms gave up"}, cpuHeader...),
	}
	latChart := &report.Chart{Title: fmt.Sprintf("An authenticated user's latency, alone and during a flood of %d wrong-password logins", c.conns),
		YLabel: "latency (ms)", Groups: []string{"p50", "p99"}, Lines: []report.Line{{Label: "aim: p99 under 50 ms", Y: 50}},
		Note: fmt.Sprintf("median of %d rounds, min–max whiskers", c.rounds)}
	memChart := &report.Chart{Title: "larder's resident memory during the flood", YLabel: "MiB",
		Note: fmt.Sprintf("VmRSS; the bound is the resting RSS + the hashing pool + a %d MiB margin; median of %d rounds", c.marginMiB, c.rounds)}
	for _, st := range c.settings() {
		memChart.Groups = append(memChart.Groups, st.group(c))
	}
	user.Charts, mem.Charts = []*report.Chart{latChart}, []*report.Chart{memChart}
	var firsts []string
	for _, st := range c.settings() {
		setting := st.label(c)
		rs := results[setting]
		if len(rs) == 0 {
			continue
		}
		suffix := ""
		if len(c.settings()) > 1 {
			suffix = ", " + st.group(c)
		}
		for _, state := range []struct {
			name string
			load func(floodRound) loadResult
		}{{"no flood", func(r floodRound) loadResult { return r.quiet }}, {"flood", func(r floodRound) loadResult { return r.loaded }}} {
			latChart.Put(state.name+suffix, "p50", perRound(rs, func(r floodRound) float64 { return msOf(state.load(r).lat.p50) }))
			latChart.Put(state.name+suffix, "p99", perRound(rs, func(r floodRound) float64 { return msOf(state.load(r).lat.p99) }))
		}
		group := st.group(c)
		memChart.Put("at rest", group, perRound(rs, func(r floodRound) float64 { return mib(r.rest) }))
		memChart.Put("peak, no flood", group, perRound(rs, func(r floodRound) float64 { return mib(r.quietPeak.rss) }))
		memChart.Put("peak, flood", group, perRound(rs, func(r floodRound) float64 { return mib(r.floodPeak.rss) }))
		memChart.Put("bound", group, perRound(rs, func(r floodRound) float64 { return mib(c.floodBound(r)) }))
		// The user.
		var ratios []float64
		failed, nq, nl := 0, 0, 0
		for _, r := range rs {
			ratios = append(ratios, float64(r.loaded.lat.p99)/float64(r.quiet.lat.p99))
			failed += r.quiet.failed + r.loaded.failed
			nq += r.quiet.ok
			nl += r.loaded.ok
		}
		p99 := perRound(rs, func(r floodRound) float64 { return msOf(r.loaded.lat.p99) })
		verdict := "met"
		if median(p99) >= 50 {
			verdict = "NOT met"
		}
		user.Add(setting,
			msf(medianRound(rs, func(r floodRound) float64 { return msOf(r.quiet.lat.p50) })),
			msf(medianRound(rs, func(r floodRound) float64 { return msOf(r.quiet.lat.p99) })),
			msf(medianRound(rs, func(r floodRound) float64 { return msOf(r.loaded.lat.p50) })),
			msf(median(p99)), fmtFactor(median(ratios)), list(p99, msf),
			fmt.Sprintf("%d / %d", nq, nl), fmt.Sprint(failed), verdict)
		for _, r := range rs {
			for _, l := range []loadResult{r.quiet, r.loaded} {
				if l.firstErr != nil {
					user.Note("%s: the user's first failure: %v", st.group(c), l.firstErr)
					break
				}
			}
		}

		// The memory.
		peaks := perRound(rs, func(r floodRound) float64 { return mib(r.floodPeak.rss) })
		within := "yes"
		for _, r := range rs {
			if max(r.floodPeak.rss, r.floodPeak.hwm) > c.floodBound(r) {
				within = "NO"
			}
		}
		mem.Add(setting,
			report.Num(medianRound(rs, func(r floodRound) float64 { return mib(r.rest) })),
			report.Num(medianRound(rs, func(r floodRound) float64 { return mib(r.quietPeak.rss) })),
			report.Num(median(peaks)), list(peaks, report.Num),
			report.Num(medianRound(rs, func(r floodRound) float64 { return mib(r.floodPeak.hwm) })),
			report.Num(medianRound(rs, func(r floodRound) float64 { return mib(r.floodPeak.anon) }))+" / "+
				report.Num(medianRound(rs, func(r floodRound) float64 { return mib(r.floodPeak.file) })),
			report.Num(medianRound(rs, func(r floodRound) float64 { return mib(r.gc.maxHeap) })),
			report.Num(medianRound(rs, func(r floodRound) float64 { return mib(r.gc.maxLive) })),
			report.Num(medianRound(rs, func(r floodRound) float64 { return mib(r.gc.maxStacks) })),
			fmtCount(medianRound(rs, func(r floodRound) float64 { return float64(r.gc.cycles) })),
			report.Num(medianRound(rs, func(r floodRound) float64 { return mib(c.floodBound(r)) })),
			within)

		// The flood.
		tallied := func(o loginOutcome) func(floodRound) float64 {
			return func(r floodRound) float64 { return float64(r.tally.n[o]) }
		}
		hashed := perRound(rs, tallied(outcomeWrong))
		refused := perRound(rs, tallied(outcomeThrottled))
		cpus := make([]cpuUse, len(rs))
		for i, r := range rs {
			cpus[i] = r.cpu
		}
		out.Add(append([]string{setting,
			fmtCount(medianRound(rs, func(r floodRound) float64 { return float64(r.tally.answered()) })),
			report.Num(medianRound(rs, func(r floodRound) float64 { return float64(r.tally.answered()) / r.floodTime.Seconds() })),
			fmtCount(median(hashed)), fmtCount(median(refused)),
			fmtCount(medianRound(rs, tallied(outcomePoolBusy))),
			fmtCount(medianRound(rs, func(r floodRound) float64 {
				return float64(r.tally.n[outcomeOther] + r.tally.n[outcomeNoReply] + r.tally.n[outcomeConnBusy] + r.tally.n[outcomeMissing])
			})),
			fmtCount(medianRound(rs, tallied(outcomeCut))),
			list(hashed, fmtCount), list(refused, fmtCount),
			msf(medianRound(rs, func(r floodRound) float64 { return p50Of(&r.tally, outcomeWrong) })),
			msf(medianRound(rs, func(r floodRound) float64 { return p50Of(&r.tally, outcomeThrottled) })),
			msf(medianRound(rs, func(r floodRound) float64 { return p50Of(&r.tally, outcomePoolBusy) }))}, cpuCells(cpus)...)...)
		for o := range numOutcomes {
			if t := rs[0].tally.first[o]; t != "" && o != outcomeCut {
				firsts = append(firsts, fmt.Sprintf("%s, %s: `%s`", st.group(c), o, strings.TrimSpace(t)))
			}
		}
		logs := perRound(rs, func(r floodRound) float64 { return float64(r.logLines) })
		if median(logs) > 0 {
			out.Note("%s: larder logged %s lines per flood (median; gctrace aside) at --log-level %s, the last: `%s`",
				st.group(c), report.Num(median(logs)), logLevel, rs[len(rs)-1].lastLog)
		}
	}

	user.Note("Each round starts a fresh larder per throttle setting on the same accounts (%d registered for the flood, 1 for the user) and logs the user in once (the hash, then the cache). The user then loops for %v with no flood, then for %v during a flood that started %v before: dial from %s, retrieve a 1 KiB file, check the reply whole, close. Latency runs from the dial to the end of the reply. %d rounds, settings alternating within each round; figures are medians across rounds, the ratio the median of the per-round ratios.",
		c.accounts, c.quiet, c.duration, c.ramp, userIP, c.rounds)
	user.Note("The flood: %d connections kept in flight, each sending a retrieve as one of the %d accounts (in turn) with a random signature, reading the answer and reconnecting, for %v. Connection i binds its source address to the (i mod %d)-th of %s–%s, so that larder's throttle, which counts by source address, sees %d clients, and the user's address, %s, is never the flood's.",
		c.conns, c.accounts, c.ramp+c.duration, c.addrs, floodIP(0), floodIP(c.addrs-1), c.addrs, userIP)
	if slices.Contains(c.protocols.values, protoLNP) {
		user.Note("LNP/1, in place of the course protocol's retrieves above: larder serves LNP/1 over TLS 1.3 (its self-signed certificate, pinned by the bench), every account enrolled for the channel-bound login before the rounds. The user logs in once with the password (its client runs argon2id) on one session from %s, then fetches the same 1 KiB file on it (GET /shared/NAME), one request after the other; latency runs from the request to the last byte, checked against the file's SHA-256. The flood: %d connections kept in flight, each dialling from the same addresses as above, completing the TLS handshake and logging in (HELLO v2, the password method) as one of the accounts in turn with a random salted key in place of argon2id's, so that its proof is wrong for the cost of a few HMACs, as a guesser who need not run argon2id would; then the next.",
			userIP, c.conns)
	}
	user.Note("throttle off: larder runs with %s, so every attempt reaches the hashing pool: the memory-bound test. throttle on: larder's defaults (5 failures per account and address per 30 s, 30 per address per 10 s, then refused; 20 per account per 30 s, then each attempt delayed 1 s).",
		strings.Join(throttleFlags("off"), " "))
	mem.Note("VmRSS sampled every 100 ms while the user runs with no flood, then during the flood (/proc/PID/status); VmHWM is the kernel's own peak since larder started; anon / file are RssAnon and RssFile of the peak sample. RSS at rest: settled, after the user's login, before the flood.")
	poolNote := "larder's default of one per core"
	if c.hashConc > 0 {
		poolNote = "--hash-concurrency"
	}
	mem.Note("Bound = RSS at rest + hashing pool (%d, %s) × %.0f MiB (m=%d KiB) + a margin of %d MiB for the connections' goroutines and buffers; within bound means neither the peak sample nor VmHWM exceeded it in any round. The RSS at rest already holds the work area of the user's login hash, which the Go runtime keeps for reuse, so the bound is generous by up to one work area.",
		c.pool(), poolNote, hashMiB, uint32(hashMiB*1024), c.marginMiB)
	mem.Note("Go heap from GODEBUG=gctrace=1, which the bench sets for larder: peak = the largest heap at the start or end of a collection during the flood, live = the largest heap a collection found reachable, stacks = the goroutine stacks it scanned. Go's collector lets the heap grow to about twice the live heap (GOGC=100) before collecting; GOMEMLIMIT (--server-env) caps that.")
	if c.serverEnv != "" {
		mem.Note("larder's environment adds: `%s`.", c.serverEnv)
	}
	out.Note("Counts per flood of %v (ramp included); per s = answered attempts per second of flood. An attempt still waiting when the flood ended is cut at end, not an answer. larder's request timeout (10 s) bounds the wait for the pool, after which it answers OTHER, server busy.", c.ramp+c.duration)
	out.Note("%s", "An answer is sorted by its status, and for OTHER by larder's message: "+strings.Join(outcomeNames[:], "; ")+". First of each kind, first round: "+strings.Join(firsts, "; ")+".")
	out.Note(cpuNote)
	if slices.Contains(c.protocols.values, protoLNP) {
		out.Note("For LNP/1, \"hashed, INVALID_LOGIN\" is a proof checked and found wrong: a few HMACs, no hash; LNP/1 answers an unknown user alike. A throttled LNP/1 login is refused after its TLS handshake and its challenge, when its proof comes.")
	}
	return []*report.Table{user, mem, out}
}

// settingHeader heads the tables' first column.
func (c *floodConfig) settingHeader() string {
	if len(c.protocols.values) == 1 && c.protocols.values[0] == protoCourse {
		return "throttle"
	}
	return "flood"
}

// group names a setting in the charts and notes.
func (s floodSetting) group(c *floodConfig) string {
	if len(c.protocols.values) == 1 && s.proto == protoCourse {
		return "throttle " + s.throttle
	}
	return s.label(c)
}

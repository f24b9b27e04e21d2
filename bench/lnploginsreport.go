//go:build linux

package main

import (
	"fmt"
	"slices"
	"time"

	"github.com/larderfs/larder/bench/report"
)

// The logins scenario's tables: the server's CPU per login by kind against
// the course signature's, and the client's time per login.

func (r *loginsResults) tables() []*report.Table {
	c := r.c
	t := &report.Table{
		Title: "Server CPU per successful login, and logins per second, at argon2id " + r.policy.String(),
		Header: append([]string{"login", "what one login is", "logins / failed", "logins/s", "server µs per login", "per round",
			"course ÷ this", "per round", "logins/s per server core", "client µs per login", "p50 ms", "p99 ms"}, cpuHeader...),
	}
	base := perRound(r.phases[loginCourse], loginPhase.serverMicros)
	micros := map[string][]float64{}
	for _, kind := range c.kinds.values {
		ps := r.phases[kind]
		if len(ps) == 0 {
			continue
		}
		us := perRound(ps, loginPhase.serverMicros)
		micros[kind] = us
		ok, failed := 0, 0
		cpus := make([]cpuUse, len(ps))
		for i, p := range ps {
			ok, failed, cpus[i] = ok+p.ok, failed+p.failed, p.cpu
		}
		ratios := perRoundRatios(base, us)
		ratioCell, ratioList := "–", "–"
		if kind != loginCourse && len(ratios) > 0 {
			ratioCell, ratioList = fmtTimes(median(ratios)), list(ratios, fmtTimes)
		}
		t.Add(append([]string{kind, loginWhat[kind], fmt.Sprintf("%d / %d", ok, failed),
			report.Num(median(perRound(ps, loginPhase.rate))),
			report.Num(median(us)), list(us, report.Num), ratioCell, ratioList,
			report.Num(1e6 / median(us)),
			report.Num(median(perRound(ps, loginPhase.clientMicros))),
			msf(median(perRound(ps, func(p loginPhase) float64 { return msOf(p.lat.p50) }))),
			msf(median(perRound(ps, func(p loginPhase) float64 { return msOf(p.lat.p99) })))}, cpuCells(cpus)...)...)
		for i, p := range ps {
			if p.firstErr != nil {
				t.Note("%s, round %d: %d failed logins, the first: %v", kind, i+1, p.failed, p.firstErr)
				break
			}
		}
	}
	t.Note("%d rounds; in each, every kind of login runs for %v with %d clients at once, each logging in one login after the other, the accounts (%d, registered over LNP/1 with both credentials) taken in turn; the order of the kinds is rotated round by round. Figures are medians across rounds; a ratio is the median of the per-round ratios, course µs ÷ this kind's µs in the same round (how many times fewer server µs per login).",
		c.rounds, c.duration, c.workers, c.accounts)
	t.Note("Server µs per login: larder's user+system CPU time over the phase (/proc/PID/stat), divided by the successful logins; logins/s per server core: 10⁶ ÷ that, the rate one core would sustain if the server did nothing else. The measured logins/s is lower: the clients run on the same two cores (client µs per login).")
	t.Note("The load generator derives each account's salted key once (argon2id, at its first login, before the rounds) and hands it to client.Login through LoginOptions.SaltedKey: each measured password login runs only the SCRAM steps on the client (HMACs, a SHA-256, an XOR) besides its TLS handshake. A device credential's secret is its salted key already.")
	if ps := r.phases[loginCourse]; len(ps) > 0 {
		hits, misses, n := cacheCounts(ps)
		verdict := "every course login ran argon2id"
		if hits > 0 {
			verdict = "NOT every course login ran argon2id: the course row understates its cost"
		}
		t.Note("The course row defeats larder's verification cache: larder runs with --auth-cache-ttl 1ns, so that an entry has expired before the next login, and the accounts are taken in turn. Its counters over the course phases: %s hits, %s misses, for %d logins answered: %s.",
			fmtCount(hits), fmtCount(misses), n, verdict)
	}
	if ps := r.phases[loginCached]; len(ps) > 0 {
		hits, misses, n := cacheCounts(ps)
		t.Note("The cached row runs against a second larder with the default cache (5 minutes, 10000 entries), filled by one login per account before the rounds; that larder serves the plaintext row too. Its counters over the cached phases: %s hits, %s misses, for %d logins answered.",
			fmtCount(hits), fmtCount(misses), n)
	}
	if pw, hs := micros[loginPassword], micros[loginHandshake]; len(pw) > 0 && len(hs) > 0 && len(pw) == len(hs) {
		diff := make([]float64, len(pw))
		for i := range pw {
			diff[i] = pw[i] - hs[i]
		}
		vs := ""
		if len(base) > 0 {
			vs = "; course ÷ that: " + fmtTimes(median(perRoundRatios(base, diff)))
		}
		t.Note("The password login over TLS less its handshake alone (per round, same larder): %s µs (%s)%s.",
			report.Num(median(diff)), list(diff, report.Num), vs)
	}
	for _, kind := range []string{loginPassword, loginPlaintext} {
		if us := micros[kind]; len(us) > 0 && len(base) > 0 {
			v := median(perRoundRatios(base, us))
			verdict := "met"
			if !(v >= 100) {
				verdict = "NOT met"
			}
			t.Note("Aim (issue 13) ≥ 100× fewer server µs per login than the course signature, %s: %s (%s).", kind, verdict, fmtTimes(v))
		}
	}
	t.Note("TLS: %s; larder's self-signed certificate, pinned by the bench on first use (tlsconf.ClientConfig); a full handshake for every connection, as larder's client makes.", r.suite)
	t.Note(cpuNote)
	for _, l := range r.logs {
		t.Note("%s.", l)
	}

	cl := &report.Table{
		Title:  "The client's time per LNP/1 password login: it runs argon2id",
		Header: []string{"what", "n", "p50 ms", "min ms", "max ms"},
	}
	for _, row := range []struct {
		what string
		ds   []time.Duration
	}{
		{"argon2id " + r.policy.String() + " in the bench's process (lnp.SaltedKey), one at a time", r.argon},
		{"a whole LNP/1 password login over TLS, the client running argon2id (client.Login), one at a time", r.whole},
	} {
		if len(row.ds) == 0 {
			continue
		}
		s := summarize(slices.Clone(row.ds))
		cl.Add(row.what, fmt.Sprint(s.n), ms(s.p50), ms(slices.Min(row.ds)), ms(s.max))
	}
	cl.Note("%d of each per round, after the round's measured logins, on the first account; the whole login is timed from the dial to WELCOME OK.", c.realLogins)
	return []*report.Table{t, cl}
}

// cacheCounts returns the cache's hits and misses over phases, and the
// logins answered.
func cacheCounts(ps []loginPhase) (hits, misses float64, n int) {
	for _, p := range ps {
		hits, misses, n = hits+p.cacheHits, misses+p.cacheMisses, n+p.ok+p.failed
	}
	return hits, misses, n
}

// perRoundRatios returns base[i] ÷ xs[i] for the rounds both have.
func perRoundRatios(base, xs []float64) []float64 {
	n := min(len(base), len(xs))
	out := make([]float64, n)
	for i := range n {
		out[i] = base[i] / xs[i]
	}
	return out
}

// fmtTimes formats a factor with three significant digits, "123×".
func fmtTimes(v float64) string { return report.Num(v) + "×" }

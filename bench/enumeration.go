//go:build linux

package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/larderfs/larder/bench/report"
)

// The enumeration scenario: does a login's time tell whether the name
// exists? larder checks a login for an unknown name against a dummy hash
// made by the current policy, so that it should cost what a wrong password
// for a real account costs.

// enumerationConfig configures the enumeration scenario.
type enumerationConfig struct {
	pairs    int
	rounds   int
	accounts int
	warmup   int
	timeout  time.Duration
}

func newEnumerationConfig() scenarioConfig {
	return &enumerationConfig{pairs: 100, rounds: 5, accounts: 50, warmup: 10, timeout: 10 * time.Second}
}

func (c *enumerationConfig) register(fs *flag.FlagSet) {
	fs.IntVar(&c.pairs, "pairs", c.pairs, "logins of each kind per round, alternating")
	fs.IntVar(&c.rounds, "rounds", c.rounds, "rounds")
	fs.IntVar(&c.accounts, "accounts", c.accounts, "registered accounts, guessed at in turn")
	fs.IntVar(&c.warmup, "warmup", c.warmup, "logins of each kind before the rounds, not counted")
	fs.DurationVar(&c.timeout, "timeout", c.timeout, "deadline of each login's connection")
}

func (c *enumerationConfig) quick() { c.pairs, c.rounds = 50, 2 }

// The two kinds of login, in the order of the table.
const (
	kindKnown   = 0 // a registered account, a wrong signature: INVALID_LOGIN
	kindUnknown = 1 // a name never registered: USER_MISSING
)

var kindNames = [2]string{"known user, wrong signature", "unknown user"}
var kindOutcomes = [2]loginOutcome{outcomeWrong, outcomeMissing}

// enumerationResults is what the enumeration scenario measured: the login
// times of each round by kind, and what the server logged.
type enumerationResults struct {
	c   *enumerationConfig
	lat [][2][]time.Duration // [round][kind]
	log string               // see serverLogNote
}

func (r *enumerationResults) tables() []*report.Table {
	return []*report.Table{r.c.table(r.lat, r.log)}
}

func (c *enumerationConfig) run(env *Env) (results, error) {
	if c.pairs < 1 || c.rounds < 1 || c.accounts < 1 || c.warmup < 0 {
		return nil, fmt.Errorf("need at least one pair, round and account")
	}
	dir, specs, err := env.makeFiles(1024)
	if err != nil {
		return nil, err
	}
	path := specs[0].Path
	// Throttling off: a few hundred failures from one address would be
	// refused after the first 30, and the per-account delay would add a
	// second to the known accounts' logins only.
	p, err := env.startLarder(dir, "", throttleFlags("off")...)
	if err != nil {
		return nil, err
	}
	cl := newClient(p.Addr, c.timeout)
	known := newAccounts(c.accounts)
	if err := cl.registerAll(env.ctx, known); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 8<<10)
	// login sends one login of a kind and returns its time.
	n := 0
	login := func(kind int) (time.Duration, error) {
		n++
		a := account{name: known[n%len(known)].name, sig: randomSignature(rng)}
		if kind == kindUnknown {
			a.name = fmt.Sprintf("nobody%05d", n) // never registered
		}
		o, d, msg := cl.tryLogin(env.ctx, a.request(path), buf)
		if o != kindOutcomes[kind] {
			return d, fmt.Errorf("%s: got %v (%s), want %v", kindNames[kind], o, msg, kindOutcomes[kind])
		}
		return d, nil
	}
	for i := range 2 * c.warmup {
		if _, err := login(i % 2); err != nil {
			return nil, err
		}
	}

	// lat[round][kind]
	lat := make([][2][]time.Duration, 0, c.rounds)
	var runErr error
rounds:
	for r := range c.rounds {
		var rl [2][]time.Duration
		meter := startCPU(p)
		for i := range c.pairs {
			// Alternate which kind goes first, so that neither always
			// follows the other.
			for j := range 2 {
				kind := (i + j) % 2
				d, err := login(kind)
				if err != nil {
					runErr = err
					break rounds
				}
				rl[kind] = append(rl[kind], d)
			}
		}
		lat = append(lat, rl)
		env.progress("round %d/%d: median known %s ms, unknown %s ms; %v", r+1, c.rounds,
			ms(medianDur(rl[kindKnown])), ms(medianDur(rl[kindUnknown])), meter.stop())
	}
	return &enumerationResults{c, lat, serverLogNote(p)}, runErr
}

func (c *enumerationConfig) table(lat [][2][]time.Duration, serverLog string) *report.Table {
	tbl := &report.Table{
		Title:  "Login time: unknown user against known user with a wrong signature",
		Header: []string{"login", "n", "p50 ms", "p90 ms", "mean ms", "p50 per round", "p50 ratio to known", "per round"},
	}
	var all [2][]time.Duration
	var perRound [2][]float64
	var ratios []float64
	for _, rl := range lat {
		for k := range 2 {
			all[k] = append(all[k], rl[k]...)
			perRound[k] = append(perRound[k], msOf(medianDur(rl[k])))
		}
		ratios = append(ratios, float64(medianDur(rl[kindUnknown]))/float64(medianDur(rl[kindKnown])))
	}
	var pooled [2]latencySummary
	var p90 [2]time.Duration
	for k := range 2 {
		pooled[k] = summarize(all[k]) // sorts all[k]
		p90[k] = percentile(all[k], 90)
	}
	for k := range 2 {
		r, per := "1×", ""
		if k == kindUnknown {
			r, per = fmtFactor(median(ratios)), list(ratios, fmtFactor)
		}
		tbl.Add(kindNames[k], fmt.Sprint(pooled[k].n), ms(pooled[k].p50), ms(p90[k]), ms(pooled[k].mean),
			list(perRound[k], msf), r, per)
	}
	tbl.Note("One login at a time, each on a new connection from 127.0.0.1, alternating the two kinds request by request (which goes first alternates too); %d of each per round, %d rounds, after %d of each not counted. Time runs from the dial to the end of the reply.", c.pairs, len(lat), c.warmup)
	tbl.Note("Known: one of %d registered accounts in turn, with a random signature; larder answers INVALID_LOGIN after checking it against the account's argon2id hash. Unknown: a name never registered, with a random signature; larder answers USER_MISSING after checking it against its dummy hash. Every answer is checked to be that one.", c.accounts)
	tbl.Note("larder runs with %s: throttling would refuse most of these logins, all from one address, before any hash.", shellArgs(throttleFlags("off")))
	if len(ratios) > 0 {
		pooledRatio := float64(pooled[kindUnknown].p50) / float64(pooled[kindKnown].p50)
		verdict := "met"
		if r := median(ratios); r < 0.95 || r > 1.05 {
			verdict = "NOT met"
		}
		tbl.Note("Ratio = median unknown / median known, per round, then the median across rounds (%s); over all rounds pooled: %s. Target 0.95–1.05: %s.",
			fmtFactor(median(ratios)), fmtFactor(pooledRatio), verdict)
	}
	tbl.Note("%s.", serverLog)
	return tbl
}

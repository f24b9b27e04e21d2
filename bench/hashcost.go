//go:build linux

package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/larderfs/larder/bench/report"
	"github.com/larderfs/larder/internal/auth"
)

// The hashcost scenario: what one password check costs larder, against
// what it costs the course's reference server, which stores
// SHA-256(signature ‖ server salt). The checks run in the bench process
// through internal/auth's Hasher, as larder's login does, and then over
// the network against larder itself, whose resident memory shows what
// the hashes cost a server.

// hashCostConfig configures the hashcost scenario.
type hashCostConfig struct {
	n      int
	rounds int
	batch  int
	logins int
}

func newHashCostConfig() scenarioConfig {
	return &hashCostConfig{n: 60, rounds: 5, batch: 1000, logins: 30}
}

func (c *hashCostConfig) register(fs *flag.FlagSet) {
	fs.IntVar(&c.n, "n", c.n, "argon2id verifications per round, one at a time, and as many again on every core at once")
	fs.IntVar(&c.rounds, "rounds", c.rounds, "rounds, each measuring argon2id then SHA-256")
	fs.IntVar(&c.batch, "batch", c.batch, "SHA-256 checks per timed batch (each round times n batches)")
	fs.IntVar(&c.logins, "logins", c.logins, "wrong-password logins per round sent to larder, one at a time, and as many again on every core at once")
}

func (c *hashCostConfig) quick() { c.n, c.rounds, c.logins = 20, 2, 10 }

// hashCostRound is one round's measurements. Durations are per check.
type hashCostRound struct {
	argon, course, sha   []time.Duration // in-process, one at a time; SHA-256 ones per batch
	argonAlloc, shaAlloc float64         // bytes allocated per check
	courseAlloc          float64
	argonRate, shaRate   float64 // checks per second on every core at once
	selfSeq, selfPar     rssPeak // the bench's memory while checking
	login                []time.Duration
	larderSeq, larderPar rssPeak // larder's memory during the logins
	larderRate           float64 // wrong logins per second on every core at once
}

// hashCostResults is what the hashcost scenario measured: its rounds, the
// workers that checked at once, and the resting memory of larder and of
// the bench.
type hashCostResults struct {
	c                    *hashCostConfig
	rounds               []hashCostRound
	workers              int
	larderRest, selfRest int64
}

func (r *hashCostResults) tables() []*report.Table {
	return r.c.tables(r.rounds, r.workers, r.larderRest, r.selfRest)
}

func (c *hashCostConfig) run(env *Env) (results, error) {
	if c.n < 1 || c.rounds < 1 || c.batch < 1 || c.logins < 0 {
		return nil, fmt.Errorf("need at least one check, round and batch")
	}
	ctx := env.ctx
	dir, err := env.mkdir("hashcost")
	if err != nil {
		return nil, err
	}
	peppers, err := auth.CreatePepperFile(filepath.Join(dir, "pepper"))
	if err != nil {
		return nil, err
	}
	workers := runtime.NumCPU()
	h := auth.NewHasher(auth.DefaultParams, peppers, workers)
	sig := newAccount(0).sig
	stored, err := h.Hash(ctx, sig[:])
	if err != nil {
		return nil, err
	}
	if ok, err := h.Verify(ctx, stored, sig[:]); !ok || err != nil {
		return nil, fmt.Errorf("the argon2id hash does not verify its own signature (%v)", err)
	}
	// The reference server's check, stored as larder imports it: the
	// same Verify, a fast hash with no pool and no pepper.
	salt := make([]byte, 16)
	rand.Read(salt)
	ref := sha256.Sum256(append(sig[:], salt...))
	courseStored := "$course-sha256$" + base64.RawStdEncoding.EncodeToString(salt) + "$" + base64.RawStdEncoding.EncodeToString(ref[:])
	wrong := newAccount(1).sig
	if ok, err := h.Verify(ctx, courseStored, sig[:]); !ok || err != nil {
		return nil, fmt.Errorf("the course-sha256 hash does not verify (%v): the comparison would be off", err)
	}
	shaInput := append(wrong[:], salt...)

	// larder, for the logins: one account, throttling off (the same
	// address fails again and again).
	files, specs, err := env.makeFiles(1024)
	if err != nil {
		return nil, err
	}
	lp, err := env.startLarder(files, "", throttleFlags("off")...)
	if err != nil {
		return nil, err
	}
	cl := newClient(lp.Addr, 30*time.Second)
	if err := cl.register(ctx, newAccount(0)); err != nil {
		return nil, err
	}
	// A registration leaves the signature in the cache and hashes once:
	// the resting RSS is taken after it, as a server's would be after
	// its first user.
	larderRest, _, _, err := settledRSS(ctx, lp, 5*time.Second)
	if err != nil {
		return nil, err
	}
	self, err := readMemStatus(os.Getpid())
	if err != nil {
		return nil, err
	}
	selfRest := self.rss
	wrongLogin := account{name: newAccount(0).name, sig: wrong}.request(specs[0].Path)

	var rounds []hashCostRound
	for r := range c.rounds {
		var hr hashCostRound
		// argon2id, one at a time, in this process.
		s := sampleRSS(os.Getpid(), 100*time.Millisecond)
		alloc := allocated()
		for range c.n {
			t0 := time.Now()
			if ok, err := h.Verify(ctx, stored, wrong[:]); ok || err != nil {
				s.stop()
				return &hashCostResults{c, rounds, workers, larderRest, selfRest}, fmt.Errorf("argon2id verification: ok %v, error %v; want a mismatch", ok, err)
			}
			hr.argon = append(hr.argon, time.Since(t0))
		}
		hr.argonAlloc = float64(allocated()-alloc) / float64(c.n)
		hr.selfSeq, _ = s.stop()

		// The reference server's SHA-256, in batches.
		alloc = allocated()
		for range c.n {
			t0 := time.Now()
			for range c.batch {
				if sha256.Sum256(shaInput) == ref {
					panic("a wrong signature matched")
				}
			}
			hr.sha = append(hr.sha, time.Since(t0)/time.Duration(c.batch))
		}
		hr.shaAlloc = float64(allocated()-alloc) / float64(c.n*c.batch)
		alloc = allocated()
		for range c.n {
			t0 := time.Now()
			for range c.batch {
				if ok, err := h.Verify(ctx, courseStored, wrong[:]); ok || err != nil {
					panic("a wrong signature matched")
				}
			}
			hr.course = append(hr.course, time.Since(t0)/time.Duration(c.batch))
		}
		hr.courseAlloc = float64(allocated()-alloc) / float64(c.n*c.batch)

		// Every core at once: the rate a guesser with this machine gets.
		s = sampleRSS(os.Getpid(), 100*time.Millisecond)
		hr.argonRate = onEveryCore(workers, c.n, func() {
			h.Verify(ctx, stored, wrong[:])
		})
		hr.selfPar, _ = s.stop()
		hr.shaRate = onEveryCore(workers, c.n*c.batch, func() {
			sha256.Sum256(shaInput)
		})

		// larder over the network, one login at a time, then on every
		// core at once.
		if c.logins > 0 {
			s = sampleRSS(lp.PID, 100*time.Millisecond)
			buf := make([]byte, 8<<10)
			for range c.logins {
				o, d, msg := cl.tryLogin(ctx, wrongLogin, buf)
				if o != outcomeWrong {
					s.stop()
					return &hashCostResults{c, rounds, workers, larderRest, selfRest}, fmt.Errorf("wrong-password login: got %v (%s), want %v", o, msg, outcomeWrong)
				}
				hr.login = append(hr.login, d)
			}
			hr.larderSeq, _ = s.stop()
			s = sampleRSS(lp.PID, 100*time.Millisecond)
			var bad atomic.Int64
			hr.larderRate = onEveryCore(workers, c.logins, func() {
				if o, _, _ := cl.tryLogin(ctx, wrongLogin, make([]byte, 8<<10)); o != outcomeWrong {
					bad.Add(1)
				}
			})
			hr.larderPar, _ = s.stop()
			if bad.Load() > 0 {
				return &hashCostResults{c, rounds, workers, larderRest, selfRest}, fmt.Errorf("%d concurrent wrong-password logins were not answered INVALID_LOGIN", bad.Load())
			}
		}
		if err := ctx.Err(); err != nil {
			return &hashCostResults{c, rounds, workers, larderRest, selfRest}, err
		}
		rounds = append(rounds, hr)
		env.progress("round %d/%d: argon2id p50 %v (%.1f MB allocated), SHA-256 %v; %.1f vs %.0f checks/s on %d cores; larder login p50 %v, RSS peak %.1f MiB",
			r+1, c.rounds, medianDur(hr.argon), hr.argonAlloc/1e6, medianDur(hr.sha), hr.argonRate, hr.shaRate, workers,
			medianDur(hr.login), mib(hr.larderPar.rss))
	}
	return &hashCostResults{c, rounds, workers, larderRest, selfRest}, nil
}

// allocated returns the bytes this process has allocated on the Go heap
// since it started.
func allocated() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.TotalAlloc
}

// onEveryCore runs check n times in all, from workers goroutines, and
// returns the checks per second.
func onEveryCore(workers, n int, check func()) float64 {
	var next atomic.Int64
	var wg sync.WaitGroup
	t0 := time.Now()
	for range workers {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				check()
			}
		})
	}
	wg.Wait()
	return float64(n) / time.Since(t0).Seconds()
}

func (c *hashCostConfig) tables(rounds []hashCostRound, workers int, larderRest, selfRest int64) []*report.Table {
	one := &report.Table{
		Title:  "One password check",
		Header: []string{"check", "n", "p50", "min", "max", "p50 per round", "allocated per check", "time / SHA-256's"},
	}
	rate := &report.Table{
		Title:  fmt.Sprintf("Checks per second with %d at once (one per core)", workers),
		Header: []string{"check", "checks/s", "per round", "SHA-256's / this"},
	}
	mem := &report.Table{
		Title:  "Resident memory while checking (VmRSS, sampled every 100 ms)",
		Header: []string{"process", "RSS before MiB", "peak, one at a time", "peak, " + fmt.Sprint(workers) + " at once", "VmHWM MiB", "growth MiB, " + fmt.Sprint(workers) + " at once"},
	}
	if len(rounds) == 0 {
		return []*report.Table{one, rate, mem}
	}
	type figure struct {
		name  string
		lat   func(hashCostRound) []time.Duration
		alloc func(hashCostRound) float64
	}
	figures := []figure{
		{"argon2id m=19456 KiB, t=2, p=1 over HMAC-SHA256(pepper, signature): Hasher.Verify", func(r hashCostRound) []time.Duration { return r.argon }, func(r hashCostRound) float64 { return r.argonAlloc }},
		{"larder login with a wrong signature, over loopback, timed by the client", func(r hashCostRound) []time.Duration { return r.login }, nil},
		{fmt.Sprintf("course-sha256 (the reference server's hash, imported): Hasher.Verify, per check in batches of %d", c.batch), func(r hashCostRound) []time.Duration { return r.course }, func(r hashCostRound) float64 { return r.courseAlloc }},
		{fmt.Sprintf("SHA-256(signature ‖ 16-byte salt), the reference server's check, per check in batches of %d", c.batch), func(r hashCostRound) []time.Duration { return r.sha }, func(r hashCostRound) float64 { return r.shaAlloc }},
	}
	for _, f := range figures {
		var all []time.Duration
		var p50s, ratios, allocs []float64
		for _, r := range rounds {
			lat := f.lat(r)
			all = append(all, lat...)
			p50s = append(p50s, float64(medianDur(lat)))
			ratios = append(ratios, float64(medianDur(lat))/float64(medianDur(r.sha)))
			if f.alloc != nil {
				allocs = append(allocs, f.alloc(r))
			}
		}
		if len(all) == 0 {
			continue
		}
		s := summarize(all)
		a := "–"
		if allocs != nil {
			a = bytesStr(median(allocs))
		}
		one.Add(f.name, fmt.Sprint(s.n), durStr(s.p50), durStr(all[0]), durStr(s.max),
			list(p50s, func(v float64) string { return durStr(time.Duration(v)) }), a, report.Num(median(ratios))+"×")
	}
	argonRates := perRound(rounds, func(r hashCostRound) float64 { return r.argonRate })
	shaRates := perRound(rounds, func(r hashCostRound) float64 { return r.shaRate })
	larderRates := perRound(rounds, func(r hashCostRound) float64 { return r.larderRate })
	rateRow := func(name string, rates []float64) {
		var rr []float64
		for i := range rates {
			rr = append(rr, shaRates[i]/rates[i])
		}
		rate.Add(name, report.Num(median(rates)), list(rates, report.Num), report.Num(median(rr))+"×")
	}
	rateRow("argon2id over HMAC-SHA256(pepper, signature): Hasher.Verify", argonRates)
	if rounds[0].login != nil {
		rateRow("larder logins with a wrong signature, over loopback (server and clients share the cores)", larderRates)
	}
	rateRow("SHA-256(signature ‖ salt), the reference server's check", shaRates)

	peak := func(f func(hashCostRound) rssPeak) []float64 {
		return perRound(rounds, func(r hashCostRound) float64 { return mib(f(r).rss) })
	}
	selfPar, larderPar := peak(func(r hashCostRound) rssPeak { return r.selfPar }), peak(func(r hashCostRound) rssPeak { return r.larderPar })
	last := rounds[len(rounds)-1]
	mem.Add("bench (Hasher.Verify in process)", report.Num(mib(selfRest)), list(peak(func(r hashCostRound) rssPeak { return r.selfSeq }), report.Num),
		list(selfPar, report.Num), report.Num(mib(last.selfPar.hwm)), report.Num(slices.Max(selfPar)-mib(selfRest)))
	if rounds[0].login != nil {
		mem.Add("larder (logins over loopback)", report.Num(mib(larderRest)), list(peak(func(r hashCostRound) rssPeak { return r.larderSeq }), report.Num),
			list(larderPar, report.Num), report.Num(mib(last.larderPar.hwm)), report.Num(slices.Max(larderPar)-mib(larderRest)))
	}

	argonP50 := median(perRound(rounds, func(r hashCostRound) float64 { return float64(medianDur(r.argon)) }))
	one.Note("%d rounds; in each, %d argon2id checks one at a time, then %d batches of %d SHA-256 checks and as many of the course-sha256 Verify, then the same again with %d goroutines at once, then %d wrong-password logins to larder one at a time and %d with %d clients at once. All checks use a wrong signature: a mismatch costs what a match does. p50, min and max are over every check of every round; per round are the rounds' medians; the ratio is the median of the per-round ratios of medians.",
		len(rounds), c.n, c.n, c.batch, workers, c.logins, c.logins, workers)
	one.Note("allocated per check: runtime.MemStats.TotalAlloc of the bench process before and after, divided by the checks. The argon2id figure is its 19 MiB work area plus small change (x/crypto/argon2 allocates the area afresh on every call).")
	one.Note("larder's login adds to the hash the connection, the request, an SQLite lookup of the account and the reply; larder runs with %s.", shellArgs(throttleFlags("off")))
	rate.Note("Guesses per second at m=19456 KiB, t=2, p=1 on this %d-core machine: **%s** (median of the rounds), measured with %d checks at once; a guesser holding the database and the pepper makes that many per second here, per account (salts are per user). Against the reference server's SHA-256 the same cores make %s.",
		workers, report.Num(median(argonRates)), workers, report.Num(median(shaRates)))
	rate.Note("%d at once do not make %d× one at a time: alone, a check takes %s (p50), which would give %s per second on %d cores; measured, each of %d concurrent checks takes %s (%d / the rate). argon2id is memory-bound, and the cores share the memory bandwidth (on this shared machine, with the host's other guests too).",
		workers, workers, durStr(time.Duration(argonP50)), report.Num(float64(workers)/time.Duration(argonP50).Seconds()), workers,
		workers, durStr(time.Duration(float64(workers)/median(argonRates)*float64(time.Second))), workers)
	mem.Note("RSS before: the bench once it has made its pepper file and its hash and checked it (two hashes); larder once settled after one registration (one hash). Peaks are per round; the first round shows the growth from rest, later ones what the process kept: the Go runtime keeps the freed work areas for reuse and returns them to the system slowly. Growth = the largest peak with %d at once − RSS before; one hash's work area is %.0f MiB.", workers, hashMiB)
	return []*report.Table{one, rate, mem}
}

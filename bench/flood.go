//go:build linux

package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/larderfs/larder/bench/report"
	"github.com/larderfs/larder/internal/auth"
	"github.com/larderfs/larder/internal/clientconf"
)

// The flood scenario: many clients guessing passwords at once, and a user
// already logged in who should not notice. larder's defence is its hashing
// pool (at most --hash-concurrency hashes at once, each 19 MiB) and its
// verification cache, which spares a logged-in user the hash.

// Source addresses. Linux routes all of 127.0.0.0/8 to the loopback
// interface, so a client can bind any of them and the server sees it as
// the connection's remote address, which its throttle counts by.
var userIP = net.IPv4(127, 0, 0, 3) // the authenticated user

// floodIP returns the source address of flood connection i: 127.0.1.0 to
// 127.0.1.255, then 127.0.2.0 and on.
func floodIP(i int) net.IP {
	return net.IPv4(127, 0, byte(1+i/256), byte(i%256)).To4()
}

// hashMiB is the memory of one hash at the default parameters, in MiB.
var hashMiB = float64(auth.DefaultParams.Memory) / 1024

// floodConfig configures the flood scenario.
type floodConfig struct {
	conns     int
	accounts  int
	addrs     int
	quiet     time.Duration
	ramp      time.Duration
	duration  time.Duration
	rounds    int
	protocols choiceList
	throttle  choiceList
	marginMiB int
	hashConc  int
	serverEnv string
	timeout   time.Duration
}

func newFloodConfig() scenarioConfig {
	return &floodConfig{
		conns: 500, accounts: 50, addrs: 256,
		quiet: 3 * time.Second, ramp: time.Second, duration: 8 * time.Second,
		rounds: 3, protocols: choiceList{values: []string{protoCourse}, allowed: []string{protoCourse, protoLNP}},
		throttle: choiceList{values: []string{"off", "on"}, allowed: []string{"off", "on"}}, marginMiB: 16, timeout: 10 * time.Second,
	}
}

func (c *floodConfig) register(fs *flag.FlagSet) {
	fs.IntVar(&c.conns, "conns", c.conns, "flood connections kept in flight")
	fs.IntVar(&c.accounts, "accounts", c.accounts, "registered accounts the flood guesses at")
	fs.IntVar(&c.addrs, "flood-addrs", c.addrs, "source addresses of the flood, from 127.0.1.0 on; connection i uses address i mod this")
	fs.DurationVar(&c.quiet, "quiet", c.quiet, "the user's measurement with no flood")
	fs.DurationVar(&c.ramp, "ramp", c.ramp, "flood before the user's measurement starts")
	fs.DurationVar(&c.duration, "duration", c.duration, "the user's measurement during the flood")
	fs.IntVar(&c.rounds, "rounds", c.rounds, "rounds, each measuring every protocol and throttle setting")
	fs.Var(&c.protocols, "protocol", "comma-separated `protocols` of the flood and the user: course (the course protocol) and lnp (LNP/1 over TLS, wrong channel-bound logins; the user on one LNP/1 session)")
	fs.Var(&c.throttle, "throttle", "comma-separated throttle `settings`: off (every limit off) and on (larder's defaults)")
	fs.IntVar(&c.marginMiB, "margin", c.marginMiB, "`MiB` allowed above the resting RSS plus the hashing pool's memory")
	fs.IntVar(&c.hashConc, "hash-concurrency", c.hashConc, "larder's --hash-concurrency; 0 leaves larder's default, one per core")
	fs.StringVar(&c.serverEnv, "server-env", c.serverEnv, "space-separated `VAR=VALUE`s for larder's environment, such as GOMEMLIMIT=64MiB")
	fs.DurationVar(&c.timeout, "timeout", c.timeout, "deadline of each of the user's connections")
}

func (c *floodConfig) quick() { c.rounds, c.duration = 1, 5*time.Second }

// pool returns the number of hashes larder computes at once.
func (c *floodConfig) pool() int {
	if c.hashConc > 0 {
		return c.hashConc
	}
	return auth.DefaultConcurrency() // larder's default, on the same machine
}

// larderFlags returns larder's flags for a throttle setting.
func (c *floodConfig) larderFlags(setting string) []string {
	flags := throttleFlags(setting)
	if c.hashConc > 0 {
		flags = append(flags, "--hash-concurrency", fmt.Sprint(c.hashConc))
	}
	return flags
}

// throttleFlags returns larder's flags for a throttle setting.
func throttleFlags(setting string) []string {
	if setting == "off" {
		return []string{"--throttle-pair", "off", "--throttle-address", "off", "--throttle-account", "off"}
	}
	return nil // larder's defaults
}

// floodSetting is what one row of the flood's tables measures: the
// protocol of the flood and the user, and larder's throttle.
type floodSetting struct{ proto, throttle string }

// label names the setting in the tables: the throttle alone when the
// course protocol is the only one, as before LNP/1 had its flood.
func (s floodSetting) label(c *floodConfig) string {
	if len(c.protocols.values) == 1 && s.proto == protoCourse {
		return s.throttle
	}
	name := "course"
	if s.proto == protoLNP {
		name = "LNP/1"
	}
	return name + ", throttle " + s.throttle
}

// settings returns the settings of a round, in the order measured.
func (c *floodConfig) settings() []floodSetting {
	var out []floodSetting
	for _, p := range c.protocols.values {
		for _, t := range c.throttle.values {
			out = append(out, floodSetting{p, t})
		}
	}
	return out
}

// floodRound is one measurement of one setting.
type floodRound struct {
	quiet, loaded loadResult // the user's requests
	rest          int64      // VmRSS at rest, the user logged in
	quietPeak     rssPeak
	floodPeak     rssPeak
	gc            gcTrace // during the flood
	tally         outcomeTally
	floodTime     time.Duration
	cpu           cpuUse // during the flood
	logLines      int    // logged during the flood, gctrace aside
	lastLog       string
}

// floodResults is what the flood scenario measured: its rounds by
// throttle setting.
type floodResults struct {
	c        *floodConfig
	rounds   map[string][]floodRound
	logLevel string
}

func (r *floodResults) tables() []*report.Table { return r.c.tables(r.rounds, r.logLevel) }

func (c *floodConfig) run(env *Env) (results, error) {
	if c.rounds < 1 || c.conns < 1 || c.accounts < 1 || c.addrs < 1 || c.addrs > 254*256 || len(c.throttle.values) == 0 || len(c.protocols.values) == 0 {
		return nil, fmt.Errorf("need at least one round, connection, account, flood address (at most %d), protocol and throttle setting", 254*256)
	}
	dir, specs, err := env.makeFiles(1024)
	if err != nil {
		return nil, err
	}
	f := specs[0]
	data, err := env.mkdir("larder-data")
	if err != nil {
		return nil, err
	}
	accts := newAccounts(c.accounts)
	user := newAccount(c.accounts) // not among the flood's
	if err := registerOnce(env, dir, data, append(accts, user), c.timeout); err != nil {
		return nil, err
	}
	if slices.Contains(c.protocols.values, protoLNP) {
		if err := enrollAll(env, dir, data, append(accts, user), c.timeout); err != nil {
			return nil, err
		}
	}
	environ := append([]string{"GODEBUG=gctrace=1"}, strings.Fields(c.serverEnv)...)

	results := make(map[string][]floodRound)
	var runErr error
rounds:
	for r := range c.rounds {
		for _, st := range c.settings() {
			setting := st.label(c)
			fr, err := c.measure(env, environ, dir, data, st, accts, user, f)
			if err != nil {
				runErr = fmt.Errorf("%s, round %d: %w", setting, r+1, err)
				break rounds
			}
			results[setting] = append(results[setting], fr)
			env.progress("round %d/%d %-20s user p99 %s → %s ms; RSS rest %.1f peak %.1f MiB; heap peak %.0f MiB; %d attempts: %d hashed, %d refused, %d pool timeouts",
				r+1, c.rounds, setting, ms(fr.quiet.lat.p99), ms(fr.loaded.lat.p99), mib(fr.rest), mib(fr.floodPeak.rss), mib(fr.gc.maxHeap),
				fr.tally.answered(), fr.tally.n[outcomeWrong], fr.tally.n[outcomeThrottled], fr.tally.n[outcomePoolBusy])
		}
	}
	return &floodResults{c, results, env.opts.serverLogLevel}, runErr
}

// registerOnce registers accts on a larder started for that, and stops it:
// each round then starts a fresh larder on the same data folder, with an
// empty throttle and cache.
func registerOnce(env *Env, dir, data string, accts []account, timeout time.Duration) error {
	return registerOnceBin(env, "", dir, data, accts, timeout)
}

// registerOnceBin is registerOnce with the larder binary bin ("" for the
// scenario's): a database is made by the binary that serves it.
func registerOnceBin(env *Env, bin, dir, data string, accts []account, timeout time.Duration) error {
	var p *Process
	var err error
	if bin != "" {
		p, err = env.startLarderBin(bin, nil, dir, data)
	} else {
		p, err = env.startLarder(dir, data)
	}
	if err != nil {
		return err
	}
	defer env.stop(p)
	t0 := time.Now()
	if err := newClient(p.Addr, timeout).registerAll(env.ctx, accts); err != nil {
		return err
	}
	env.progress("registered %d users in %v", len(accts), time.Since(t0).Round(time.Millisecond))
	return nil
}

// measure starts a fresh larder with the setting's throttle, logs the
// user in, measures the user's requests with no flood and then during
// one, and stops larder.
func (c *floodConfig) measure(env *Env, environ []string, dir, data string, st floodSetting, accts []account, user account, f fileSpec) (floodRound, error) {
	var fr floodRound
	var p *Process
	var ln *lnpLarder
	var err error
	if st.proto == protoLNP {
		if ln, err = env.startLNPLarderEnv(environ, dir, data, true, c.timeout, c.larderFlags(st.throttle)...); err != nil {
			return fr, err
		}
		p = ln.proc
	} else if p, err = env.startLarderEnv(environ, dir, data, c.larderFlags(st.throttle)...); err != nil {
		return fr, err
	}
	defer env.stop(p)
	if ln != nil {
		known, err := env.mkdir("client")
		if err != nil {
			return fr, err
		}
		ln.known = clientconf.Open(known).KnownServers()
	}
	// The user: on the course protocol, one retrieve per connection, the
	// first paying the hash, the rest answered by the cache; on LNP/1,
	// one session, logged in once with the password.
	var userLoad func(d time.Duration) loadResult
	if st.proto == protoLNP {
		u := &lnpUser{ln: ln, acct: user}
		ctx, cancel := context.WithTimeout(env.ctx, time.Minute)
		err := u.login(ctx)
		cancel()
		if err != nil {
			return fr, fmt.Errorf("the user's login: %w", err)
		}
		defer u.s.Close()
		userLoad = func(d time.Duration) loadResult { return u.runLoad(env.ctx, p, f, d, c.timeout) }
	} else {
		ut := target{"larder", p, clientFrom(p.Addr, userIP, c.timeout)}
		userReq := user.request(f.Path)
		if _, err := sequential(env.ctx, ut, userReq, f, 1); err != nil {
			return fr, fmt.Errorf("the user's first login: %w", err)
		}
		userLoad = func(d time.Duration) loadResult { return runLoad(env.ctx, ut, [][]byte{userReq}, f, 1, d) }
	}
	if fr.rest, _, _, err = settledRSS(env.ctx, p, 5*time.Second); err != nil {
		return fr, err
	}

	s := sampleRSS(p.PID, 100*time.Millisecond)
	fr.quiet = userLoad(c.quiet)
	if fr.quietPeak, err = s.stop(); err != nil {
		return fr, err
	}

	off := p.logSize()
	s = sampleRSS(p.PID, 100*time.Millisecond)
	meter := startCPU(p)
	start := time.Now()
	fctx, cancel := context.WithDeadline(env.ctx, start.Add(c.ramp+c.duration))
	defer cancel()
	var tally *outcomeTally
	done := make(chan struct{})
	go func() {
		defer close(done)
		if ln != nil {
			tally = runLNPFlood(fctx, ln, accts, c.conns, c.addrs)
		} else {
			tally = runFlood(fctx, p.Addr, accts, f.Path, c.conns, c.addrs)
		}
	}()
	select {
	case <-time.After(c.ramp):
	case <-env.ctx.Done():
	}
	fr.loaded = userLoad(c.duration)
	<-done
	fr.floodTime = time.Since(start)
	fr.cpu = meter.stop()
	fr.tally = *tally
	if fr.floodPeak, err = s.stop(); err != nil {
		return fr, err
	}
	if fr.gc, err = p.gcTraceSince(off); err != nil {
		return fr, err
	}
	fr.logLines, fr.lastLog = p.logRecordsSince(off)
	if exited, werr := p.Exited(); exited {
		return fr, fmt.Errorf("larder exited during the flood (%v); its log:\n%s", werr, p.LogTail(20))
	}
	return fr, env.ctx.Err()
}

// runFlood keeps conns wrong-password logins in flight until ctx ends:
// each connection sends a retrieve as one of accts with a random
// signature, reads the answer, and starts again. Connection i comes from
// floodIP(i mod addrs). Attempts still in flight when ctx ends are cut off
// (ctx's deadline bounds every connection).
func runFlood(ctx context.Context, addr string, accts []account, path string, conns, addrs int) *outcomeTally {
	tallies := make([]outcomeTally, conns)
	var next atomic.Uint64
	var wg sync.WaitGroup
	for w := range conns {
		wg.Go(func() {
			// The server answers within its request timeout (10 s)
			// plus a hash; the flood's deadline usually comes first.
			cl := clientFrom(addr, floodIP(w%addrs), 30*time.Second)
			rng := rand.New(rand.NewPCG(uint64(w), 0x666c6f6f64))
			buf := make([]byte, 8<<10)
			for !ended(ctx) {
				a := accts[next.Add(1)%uint64(len(accts))]
				req := account{name: a.name, sig: randomSignature(rng)}.request(path)
				o, d, msg := cl.tryLogin(ctx, req, buf)
				tallies[w].add(o, d, msg)
				if o == outcomeNoReply {
					time.Sleep(time.Millisecond) // no spinning on a dead server
				}
			}
		})
	}
	wg.Wait()
	var all outcomeTally
	for i := range tallies {
		all.merge(&tallies[i])
	}
	return &all
}

// choiceList is a flag holding comma-separated values, each one of
// allowed, without repeats.
type choiceList struct {
	values  []string
	allowed []string
}

func (l *choiceList) String() string { return strings.Join(l.values, ",") }

func (l *choiceList) Set(s string) error {
	var out []string
	for v := range strings.SplitSeq(s, ",") {
		v = strings.TrimSpace(v)
		if !slices.Contains(l.allowed, v) || slices.Contains(out, v) {
			return fmt.Errorf("want a comma-separated list of %s without repeats, got %q", strings.Join(l.allowed, ", "), s)
		}
		out = append(out, v)
	}
	l.values = out
	return nil
}

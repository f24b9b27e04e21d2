//go:build linux

package main

import (
	"context"
	"flag"
	"fmt"
	"syscall"
	"time"

	"github.com/larderfs/larder/bench/report"
)

// auditConfig configures the audit scenario: the rps scenario's load at
// one client count, against larder with its audit trail off, with its sink
// up, and with its sink down.
type auditConfig struct {
	clients   int
	duration  time.Duration
	rounds    int
	users     int
	size      int
	timeout   time.Duration
	downSink  string
	spoolMax  string
	settleMax time.Duration
	bare      bool
	vs        string // another larder binary, measured as "vs"
	altSink   string // another --audit-sink, measured as "alt"
}

func newAuditConfig() scenarioConfig {
	return &auditConfig{
		clients:  64,
		duration: 5 * time.Second,
		rounds:   3,
		users:    64,
		size:     1024,
		timeout:  10 * time.Second,
		// Nothing listens on port 1: every delivery is refused at once,
		// so the spool keeps every event.
		downSink:  "postgres://larder@127.0.0.1:1/none?sslmode=disable&connect_timeout=1",
		spoolMax:  "4GiB",
		settleMax: time.Minute,
		bare:      true,
	}
}

func (c *auditConfig) register(fs *flag.FlagSet) {
	fs.IntVar(&c.clients, "clients", c.clients, "concurrent clients")
	fs.DurationVar(&c.duration, "duration", c.duration, "duration of each measurement")
	fs.IntVar(&c.rounds, "rounds", c.rounds, "rounds, each measuring the sink off, up and down in turn")
	fs.IntVar(&c.users, "users", c.users, "accounts; client i sends as account i mod users")
	fs.IntVar(&c.size, "size", c.size, "size of the file retrieved, in `bytes`")
	fs.DurationVar(&c.timeout, "timeout", c.timeout, "deadline of each connection")
	fs.StringVar(&c.downSink, "down-sink", c.downSink, "--audit-sink of the server whose sink is down: a `URL` where nothing answers")
	fs.StringVar(&c.spoolMax, "spool-max", c.spoolMax, "--audit-spool-max of the servers: room for every round's events with the sink down")
	fs.DurationVar(&c.settleMax, "settle-max", c.settleMax, "after each measurement, the longest wait for the audit pipeline to settle (every event spooled, and delivered if the sink is up)")
	fs.StringVar(&c.vs, "vs", c.vs, "another larder `binary` (another build), measured in the same rounds with the default sink as \"vs\", for an A/B of two builds")
	fs.StringVar(&c.altSink, "alt-sink", c.altSink, "another --audit-sink `URL` that takes events (postgres://…, nats://…), measured in the same rounds as \"alt\": what larder pays for a sink whose work is done by another process")
	fs.BoolVar(&c.bare, "bare", c.bare, "measure the bare server too, in the same rounds, so that the ratios show what each part of larder costs against it")
}

func (c *auditConfig) quick() { c.duration, c.rounds = 2*time.Second, 2 }

// auditSetup is one configuration of larder's audit trail.
type auditSetup struct {
	name  string   // off, up, down, vs, bare
	flags []string // added to larder serve
	what  string   // for the table
	bin   string   // the larder binary; "" is the scenario's
}

// role is what s's events must do: vs's, as up's.
func (s auditSetup) role() string {
	if s.name == auditVs || s.name == auditAlt {
		return auditUp
	}
	return s.name
}

// Where the events of a round must end up once it has settled.
const (
	auditOff  = "off"  // nothing recorded, no audit metrics
	auditUp   = "up"   // every event delivered
	auditDown = "down" // every event spooled, none delivered
	auditBare = "bare" // not larder: the bench's bare server
	auditVs   = "vs"   // as up, another larder binary (--vs)
	auditAlt  = "alt"  // as up, another sink (--alt-sink)
)

func (c *auditConfig) setups() []auditSetup {
	spool := []string{"--audit-spool-max", c.spoolMax}
	setups := []auditSetup{
		{name: auditOff, flags: []string{"--audit-sink", "off"}, what: "`--audit-sink off`: nothing recorded"},
		{name: auditUp, flags: append([]string{"--audit-sink", "db"}, spool...),
			what: "`--audit-sink db` (the default): delivered to the SQLite account database"},
		// With the sink down, a stop would wait --audit-drain-timeout
		// (10s) for nothing, and the bench kills a server after 5s.
		{name: auditDown, flags: append([]string{"--audit-sink", c.downSink, "--audit-drain-timeout", "1s"}, spool...),
			what: "`--audit-sink " + c.downSink + "`: nothing listens, every event stays in the spool"},
	}
	if c.altSink != "" {
		setups = append(setups, auditSetup{name: auditAlt, flags: append([]string{"--audit-sink", c.altSink}, spool...),
			what: "`--audit-sink " + c.altSink + "`: delivered to another process"})
	}
	if c.vs != "" {
		setups = append(setups, auditSetup{name: auditVs, flags: setups[1].flags,
			what: "as up, with the larder binary " + c.vs, bin: c.vs})
	}
	if c.bare {
		setups = append(setups, auditSetup{name: auditBare,
			what: "the bench's bare server (no authentication, no audit trail, a precomputed reply; the same bytes)"})
	}
	return setups
}

// fsType names the file system that holds path, as far as the bench knows
// it: the spool's fsync costs what that file system makes it cost.
func fsType(path string) string {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return "unknown (" + err.Error() + ")"
	}
	switch st.Type {
	case 0xef53:
		return "ext2/3/4"
	case 0x58465342:
		return "xfs"
	case 0x9123683e:
		return "btrfs"
	case 0x01021994:
		return "tmpfs (fsync costs nothing)"
	case 0x794c7630:
		return "overlayfs"
	}
	return fmt.Sprintf("type %#x", st.Type)
}

// auditServer is a larder under test with the address of its metrics.
type auditServer struct {
	target
	setup   auditSetup
	metrics string
}

// auditRound is one measurement of one configuration.
type auditRound struct {
	load loadResult
	// serverCPU runs from the start of the load until the pipeline
	// settled: it includes what the deliverer did after the load for the
	// events the load recorded.
	serverCPU time.Duration
	settle    time.Duration // from the end of the load until the pipeline settled
	// The server's counters before the load, at its end, and once the
	// pipeline settled.
	before, atEnd, after auditCounters
}

// served is the number of requests the round sent and the server
// answered, well or not: each records its events.
func (r auditRound) served() int { return r.load.ok + r.load.failed }

// cpuPerRequest is the server's CPU per completed request in µs, counted
// until the pipeline settled.
func (r auditRound) cpuPerRequest() float64 {
	return r.serverCPU.Seconds() * 1e6 / float64(r.load.ok)
}

func (r auditRound) recorded() float64  { return r.after.taken - r.before.taken }
func (r auditRound) delivered() float64 { return r.after.delivered - r.before.delivered }
func (r auditRound) notTaken() float64  { return r.after.notTaken - r.before.notTaken }

// auditEventsPerRetrieval is what an answered course-protocol retrieval
// leaves in the audit trail: its login and its download (the connection's
// conn.open and conn.close are recorded only for a connection that was not
// answered).
const auditEventsPerRetrieval = 2

// check returns what went wrong with the round's events, if anything.
func (r auditRound) check(setup string) error {
	a := r.after
	switch {
	case setup == auditOff && a.exported:
		return fmt.Errorf("off: the server exports audit metrics, %v events taken", a.taken)
	case setup == auditOff, setup == auditBare:
		return nil
	case !a.exported:
		return fmt.Errorf("%s: the server exports no audit metrics", setup)
	case r.notTaken() != 0:
		return fmt.Errorf("%s: %v events not taken in the round", setup, r.notTaken())
	case a.lost != 0:
		return fmt.Errorf("%s: %v events lost", setup, a.lost)
	case r.recorded() < float64(auditEventsPerRetrieval*r.load.ok):
		return fmt.Errorf("%s: %v events recorded for %d retrievals, want at least %d each", setup, r.recorded(), r.load.ok, auditEventsPerRetrieval)
	case setup == auditDown && r.delivered() != 0:
		return fmt.Errorf("down: %v events delivered, want none", r.delivered())
	case setup == auditUp && r.delivered() < r.recorded():
		return fmt.Errorf("up: %v events delivered of %v recorded", r.delivered(), r.recorded())
	}
	return nil
}

// settled reports whether the pipeline has nothing left to do with the
// events recorded so far, given the previous reading.
func settled(setup string, cur, prev auditCounters) bool {
	if cur.connsOpen != 0 || cur.taken != prev.taken {
		return false // a conn.close may still come
	}
	switch setup {
	case auditUp:
		return cur.durable >= cur.taken && cur.delivered >= cur.durable
	case auditDown:
		return cur.durable >= cur.taken
	}
	return true
}

// auditResults is what the audit scenario measured: the rounds of each
// setup, what its server logged, the problems its checks found, whether
// the setups' replies were the same, and the spool's file system.
type auditResults struct {
	c        *auditConfig
	setups   []auditSetup
	logs     []string       // [setup], see serverLogNote
	rounds   [][]auditRound // [setup][round]
	problems []string
	same     string
	spoolFS  string
}

func (r *auditResults) tables() []*report.Table {
	return r.c.tables(r.setups, r.logs, r.rounds, r.problems, r.same, r.spoolFS)
}

func (c *auditConfig) run(env *Env) (results, error) {
	if c.rounds < 1 || c.users < 1 || c.size < 1 || c.clients < 1 {
		return nil, fmt.Errorf("need at least one round, user, byte and client")
	}
	dir, specs, err := env.makeFiles(c.size)
	if err != nil {
		return nil, err
	}
	f := specs[0]
	accts := newAccounts(c.users)
	reqs := make([][]byte, len(accts))
	for i, a := range accts {
		reqs[i] = a.request(f.Path)
	}

	// One data folder per configuration, the accounts registered by a
	// larder started for that (which then stops): the measured servers
	// start with an empty verification cache, and their counters count
	// only what the bench does to them.
	setups := c.setups()
	servers := make([]*auditServer, len(setups))
	spoolFS := ""
	for i, s := range setups {
		if s.name == auditBare {
			p, err := env.startBaseline(dir)
			if err != nil {
				return nil, err
			}
			servers[i] = &auditServer{target{s.name, p, newClient(p.Addr, c.timeout)}, s, ""}
			continue
		}
		data, err := env.mkdir("larder-data-" + s.name)
		if err != nil {
			return nil, err
		}
		if err := registerOnceBin(env, s.bin, dir, data, accts, c.timeout); err != nil {
			return nil, err
		}
		maddr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		var p *Process
		if s.bin != "" {
			p, err = env.startLarderBin(s.bin, nil, dir, data, append(s.flags, "--metrics-listen", maddr)...)
		} else {
			p, err = env.startLarder(dir, data, append(s.flags, "--metrics-listen", maddr)...)
		}
		if err != nil {
			return nil, err
		}
		servers[i] = &auditServer{target{s.name, p, newClient(p.Addr, c.timeout)}, s, maddr}
		spoolFS = fsType(data)
	}

	// Each account's first retrieval pays the password hash; measure
	// with the cache warm, as the rps scenario does.
	for _, s := range servers {
		for _, req := range reqs {
			if _, err := sequential(env.ctx, s.target, req, f, 1); err != nil {
				return nil, fmt.Errorf("first retrieval: %w", err)
			}
		}
	}
	same := "yes"
	for _, s := range servers[1:] {
		if err := sameReply(env.ctx, servers[0].target, s.target, reqs[0], f); err != nil {
			same = "NO: " + err.Error()
		}
	}

	results := make([][]auditRound, len(servers)) // [setup][round]
	var runErr error
	var problems []string
measure:
	for r := range c.rounds {
		for si, s := range servers {
			ar, err := c.measure(env.ctx, s, reqs, f)
			if err := env.ctx.Err(); err != nil {
				runErr = err
				break measure
			}
			if err != nil {
				runErr = fmt.Errorf("round %d, %s: %w", r+1, s.name, err)
				break measure
			}
			results[si] = append(results[si], ar)
			env.progress("round %d/%d %-4s %6.0f req/s  p99 %s ms  failed %d  server %s µs/req (%s in the load)  events %.0f (%.2f/req)  delivered %.0f  spool %s  not taken %.0f  settled in %v",
				r+1, c.rounds, s.name, ar.load.rate(), ms(ar.load.lat.p99), ar.load.failed,
				report.Num(ar.cpuPerRequest()), report.Num(ar.load.perRequest(ar.load.cpu.server)),
				ar.recorded(), ar.recorded()/float64(ar.served()), ar.delivered(), bytesStr(ar.after.spoolBytes),
				ar.notTaken(), ar.settle.Round(time.Millisecond))
			if err := ar.check(s.setup.role()); err != nil {
				problems = append(problems, fmt.Sprintf("round %d: %v", r+1, err))
				env.progress("round %d/%d: %v", r+1, c.rounds, err)
			}
			if exited, werr := s.proc.Exited(); exited {
				runErr = fmt.Errorf("%s exited (%v); its log:\n%s", s.name, werr, s.proc.LogTail(20))
				break measure
			}
		}
	}
	if runErr == nil && len(problems) > 0 {
		runErr = fmt.Errorf("the audit trail did not do what it should: %d problems, the first: %s", len(problems), problems[0])
	}
	logs := make([]string, len(servers))
	for i, s := range servers {
		logs[i] = serverLogNote(s.proc)
	}
	return &auditResults{c, setups, logs, results, problems, same, spoolFS}, runErr
}

// measure runs one load against s and waits until its audit pipeline has
// settled, reading its counters before, at the end of the load and after.
func (c *auditConfig) measure(ctx context.Context, s *auditServer, reqs [][]byte, f fileSpec) (auditRound, error) {
	var r auditRound
	var err error
	if s.name == auditBare {
		// No audit trail: only the load and the CPU it took.
		cpu0, err := s.proc.CPU()
		if err != nil {
			return r, err
		}
		if r.load = runLoad(ctx, s.target, reqs, f, c.clients, c.duration); r.load.ok == 0 {
			return r, fmt.Errorf("no request completed; the first failure: %v", r.load.firstErr)
		}
		cpu1, err := s.proc.CPU()
		r.serverCPU = cpu1 - cpu0
		return r, err
	}
	if r.before, err = scrapeAudit(ctx, s.metrics); err != nil {
		return r, err
	}
	cpu0, err := s.proc.CPU()
	if err != nil {
		return r, err
	}
	r.load = runLoad(ctx, s.target, reqs, f, c.clients, c.duration)
	if r.load.ok == 0 {
		return r, fmt.Errorf("no request completed; the first failure: %v", r.load.firstErr)
	}
	end := time.Now()
	if r.atEnd, err = scrapeAudit(ctx, s.metrics); err != nil {
		return r, err
	}
	prev := r.atEnd
	for {
		t := time.NewTimer(20 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return r, ctx.Err()
		case <-t.C:
		}
		cur, err := scrapeAudit(ctx, s.metrics)
		if err != nil {
			return r, err
		}
		if settled(s.setup.role(), cur, prev) {
			r.after, r.settle = cur, time.Since(end)
			break
		}
		if time.Since(end) > c.settleMax {
			return r, fmt.Errorf("the audit pipeline has not settled %v after the load: %d events taken, %d durable, %d delivered, %d connections open",
				c.settleMax, int64(cur.taken), int64(cur.durable), int64(cur.delivered), int64(cur.connsOpen))
		}
		prev = cur
	}
	cpu1, err := s.proc.CPU()
	if err != nil {
		return r, err
	}
	r.serverCPU = cpu1 - cpu0
	return r, nil
}

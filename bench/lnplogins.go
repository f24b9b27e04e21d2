//go:build linux

package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/larderfs/larder/bench/report"
	larderclient "github.com/larderfs/larder/client"
	"github.com/larderfs/larder/internal/auth"
	"github.com/larderfs/larder/internal/clientconf"
	"github.com/larderfs/larder/internal/tlsconf"
	"github.com/larderfs/larder/lnp"
)

// The logins scenario: what one successful login costs the server, and how
// many a second it sustains, for LNP/1's channel-bound login (the client
// runs argon2id, the server a few HMACs) against the course protocol's
// signature (the server runs argon2id), at the same argon2id policy.
//
// The client of a channel-bound login pays argon2id; a load generator that
// paid it for every login would measure itself. So the bench derives each
// account's salted key once and gives it to client.Login through
// LoginOptions.SaltedKey: each login it measures runs only the SCRAM steps
// on the client, as a client that kept its key would. What argon2id costs
// the client is measured apart, with whole logins that run it.

// The kinds of login the scenario measures, by their flag names.
const (
	loginCourse    = "course"
	loginCached    = "cached"
	loginPassword  = "password"
	loginDevice    = "device"
	loginHandshake = "tls"
	loginPlaintext = "plaintext"
)

var loginKinds = []string{loginCourse, loginCached, loginPassword, loginDevice, loginHandshake, loginPlaintext}

// loginWhat says what one login of a kind is, for the table.
var loginWhat = map[string]string{
	loginCourse:    "course protocol: one retrieve of a 1 KiB file with the account's signature; larder runs argon2id on it (cache defeated)",
	loginCached:    "course protocol: the same retrieve, answered from larder's verification cache (its default): what a course request costs besides argon2id",
	loginPassword:  "LNP/1 over TLS 1.3: TCP, TLS handshake, HELLO v2 with the password (SCRAM-SHA-256-PLUS, channel-bound) to WELCOME OK, close",
	loginDevice:    "LNP/1 over TLS 1.3: TCP, TLS handshake, HELLO v2 with a device credential to WELCOME OK, close",
	loginHandshake: "LNP/1 port, TLS 1.3: TCP and the TLS handshake alone, then close (no login: the part of the password and device logins that is TLS)",
	loginPlaintext: "LNP/1 in plaintext (--insecure-plaintext-native): TCP, HELLO v2 with the password to WELCOME OK, close; no TLS, no channel binding",
}

// loginsConfig configures the logins scenario.
type loginsConfig struct {
	kinds      choiceList
	accounts   int
	workers    int
	duration   time.Duration
	rounds     int
	realLogins int
	timeout    time.Duration
}

func newLoginsConfig() scenarioConfig {
	return &loginsConfig{
		kinds:    choiceList{values: slices.Clone(loginKinds), allowed: loginKinds},
		accounts: 8, workers: 4, duration: 3 * time.Second, rounds: 3, realLogins: 3, timeout: 10 * time.Second,
	}
}

func (c *loginsConfig) register(fs *flag.FlagSet) {
	fs.Var(&c.kinds, "kinds", "comma-separated `logins` to measure: course (the signature, argon2id on the server), cached (the same, answered from the verification cache), password and device (LNP/1 over TLS), tls (the handshake alone), plaintext (LNP/1's password login without TLS)")
	fs.IntVar(&c.accounts, "accounts", c.accounts, "accounts, logged in in turn")
	fs.IntVar(&c.workers, "workers", c.workers, "clients logging in at once, each one login after the other")
	fs.DurationVar(&c.duration, "duration", c.duration, "time each kind of login is measured for, per round")
	fs.IntVar(&c.rounds, "rounds", c.rounds, "rounds, each measuring every kind in turn, in an order rotated round by round")
	fs.IntVar(&c.realLogins, "client-logins", c.realLogins, "whole LNP/1 logins per round in which the client runs argon2id, one at a time, for the client's time")
	fs.DurationVar(&c.timeout, "timeout", c.timeout, "deadline of each login")
}

func (c *loginsConfig) quick() { c.rounds, c.duration = 1, 2*time.Second }

// loginAccount is an account as the bench logs it in: its course
// signature, its password, its salted key on each server, and a device
// credential.
type loginAccount struct {
	account
	key    map[*lnpLarder]*keptKey
	device [16]byte
	secret [lnp.DeviceSecretSize]byte
}

// keptKey is a client's salted key for one account on one server: derived
// (argon2id) at the first login, and kept for the next ones, as long as
// the server sends the same salt and cost. Its derive is a
// LoginOptions.SaltedKey.
type keptKey struct {
	mu      sync.Mutex
	salt    []byte
	kdf     lnp.KDF
	key     [32]byte
	derived int // argon2id runs
}

func (k *keptKey) derive(password string, salt []byte, kdf lnp.KDF) [32]byte {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.derived == 0 || !bytes.Equal(salt, k.salt) || kdf != k.kdf {
		k.key = lnp.SaltedKey(password, salt, kdf)
		k.salt, k.kdf = bytes.Clone(salt), kdf
		k.derived++
	}
	return k.key
}

// loginPhase is one kind of login measured for one round.
type loginPhase struct {
	ok, failed int
	firstErr   error
	elapsed    time.Duration
	lat        latencySummary
	cpu        cpuUse
	// The auth cache's hits and misses over the phase, from larder's
	// /metrics (the course logins only).
	cacheHits, cacheMisses float64
}

// serverMicros returns the server's CPU per successful login, in µs.
func (p loginPhase) serverMicros() float64 { return perLogin(p.cpu.server, p.elapsed, p.ok) }

// clientMicros returns the bench's CPU per successful login, in µs.
func (p loginPhase) clientMicros() float64 { return perLogin(p.cpu.client, p.elapsed, p.ok) }

// rate returns the successful logins per second.
func (p loginPhase) rate() float64 { return float64(p.ok) / p.elapsed.Seconds() }

// perLogin converts a CPU share over elapsed (in percent of one core) into
// µs of CPU per login, for n logins; NaN for none.
func perLogin(share float64, elapsed time.Duration, n int) float64 {
	if n <= 0 {
		return math.NaN()
	}
	return share / 100 * elapsed.Seconds() / float64(n) * 1e6
}

// loginsResults is what the logins scenario measured.
type loginsResults struct {
	c      *loginsConfig
	phases map[string][]loginPhase
	// The client's side: argon2id alone, in the bench's process, and
	// whole LNP/1 logins over TLS that run it.
	argon, whole []time.Duration
	policy       lnp.KDF
	suite        string // the TLS version, suite and key exchange
	logs         []string
}

func (c *loginsConfig) run(env *Env) (results, error) {
	if c.rounds < 1 || c.accounts < 1 || c.workers < 1 || c.duration <= 0 || len(c.kinds.values) == 0 {
		return nil, errors.New("need at least one round, account, worker, kind of login and a positive duration")
	}
	dir, specs, err := env.makeFiles(1024)
	if err != nil {
		return nil, err
	}
	f := specs[0]
	known, err := env.mkdir("client")
	if err != nil {
		return nil, err
	}
	accts := make([]*loginAccount, c.accounts)
	for i := range accts {
		accts[i] = &loginAccount{account: newAccount(i), key: map[*lnpLarder]*keptKey{}}
	}

	// One larder over TLS for the course, password, device and tls
	// kinds; one in plaintext if asked for. The course logins defeat the
	// verification cache: every entry expires a nanosecond after it is
	// made, and its counters say whether any login hit it.
	res := &loginsResults{c: c, phases: map[string][]loginPhase{}, policy: kdfOfParams(auth.DefaultParams)}
	maddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	tlsData, err := env.mkdir("larder-data")
	if err != nil {
		return nil, err
	}
	srv, err := env.startLNPLarderEnv(nil, dir, tlsData, true, c.timeout, "--auth-cache-ttl", "1ns", "--metrics-listen", maddr)
	if err != nil {
		return nil, err
	}
	srv.known = clientconf.Open(known).KnownServers()
	if err := srv.setUp(env, accts, true); err != nil {
		return nil, err
	}
	if res.suite, err = srv.suite(env.ctx); err != nil {
		return nil, err
	}
	// The second larder has the default cache.
	var plain *lnpLarder
	var plainMetrics string
	if slices.Contains(c.kinds.values, loginPlaintext) || slices.Contains(c.kinds.values, loginCached) {
		if plainMetrics, err = freeAddr(); err != nil {
			return nil, err
		}
		plainData, err := env.mkdir("larder-data")
		if err != nil {
			return nil, err
		}
		if plain, err = env.startLNPLarderEnv(nil, dir, plainData, false, c.timeout, "--metrics-listen", plainMetrics); err != nil {
			return nil, err
		}
		if err := plain.setUp(env, accts, false); err != nil {
			return nil, err
		}
		// Fill the cache: one course login per account.
		for _, a := range accts {
			b, err := newClient(plain.proc.Addr, c.timeout).roundTrip(env.ctx, a.request(f.Path), make([]byte, f.replySize()+1))
			if err == nil {
				err = checkFileReply(b, f, nil)
			}
			if err != nil {
				return nil, fmt.Errorf("filling the cache for %s: %w", a.name, err)
			}
		}
	}

	bufs := make([][]byte, c.workers)
	for w := range bufs {
		bufs[w] = make([]byte, f.replySize()+1)
	}
	pick := func(w, i int) *loginAccount { return accts[(w+i*c.workers)%len(accts)] }
	retrieve := func(cl *client) func(ctx context.Context, w, i int) error {
		return func(ctx context.Context, w, i int) error {
			b, err := cl.roundTrip(ctx, pick(w, i).request(f.Path), bufs[w])
			if err != nil {
				return err
			}
			return checkFileReply(b, f, nil)
		}
	}
	logins := map[string]func(ctx context.Context, w, i int) error{
		loginCourse: retrieve(newClient(srv.proc.Addr, c.timeout)),
		loginPassword: func(ctx context.Context, w, i int) error {
			return srv.loginPassword(ctx, pick(w, i))
		},
		loginDevice: func(ctx context.Context, w, i int) error {
			a := pick(w, i)
			conn, err := srv.dial(ctx)
			if err != nil {
				return err
			}
			s, err := larderclient.LoginDevice(ctx, conn, a.name, a.device, a.secret, larderclient.SessionOptions{})
			if err != nil {
				return err
			}
			return s.Close()
		},
		loginHandshake: func(ctx context.Context, w, i int) error {
			conn, err := srv.dial(ctx)
			if err != nil {
				return err
			}
			return conn.Close()
		},
		loginPlaintext: func(ctx context.Context, w, i int) error {
			return plain.loginPassword(ctx, pick(w, i))
		},
	}
	if plain != nil {
		logins[loginCached] = retrieve(newClient(plain.proc.Addr, c.timeout))
	}

	var runErr error
rounds:
	for r := range c.rounds {
		kinds := c.kinds.values
		// Rotate the order round by round, so that no kind always
		// follows the same one.
		k := r % len(kinds)
		order := append(slices.Clone(kinds[k:]), kinds[:k]...)
		for _, kind := range order {
			p, metrics := srv.proc, maddr
			if kind == loginPlaintext || kind == loginCached {
				p, metrics = plain.proc, plainMetrics
			}
			course := kind == loginCourse || kind == loginCached
			var before map[string]float64
			if course {
				if before, err = scrapeMetrics(env.ctx, metrics); err != nil {
					runErr = err
					break rounds
				}
			}
			ph := runLogins(env.ctx, p, c.workers, c.duration, c.timeout, logins[kind])
			if course {
				after, err := scrapeMetrics(env.ctx, metrics)
				if err != nil {
					runErr = err
					break rounds
				}
				ph.cacheHits = after["larder_auth_cache_hits_total"] - before["larder_auth_cache_hits_total"]
				ph.cacheMisses = after["larder_auth_cache_misses_total"] - before["larder_auth_cache_misses_total"]
			}
			if err := env.ctx.Err(); err != nil {
				runErr = err
				break rounds
			}
			res.phases[kind] = append(res.phases[kind], ph)
			env.progress("round %d/%d %-9s %5d logins (%d failed) %7.1f/s, server %s µs/login, client %s µs/login, p99 %s ms; %s",
				r+1, c.rounds, kind, ph.ok, ph.failed, ph.rate(), report.Num(ph.serverMicros()), report.Num(ph.clientMicros()), ms(ph.lat.p99), ph.cpu)
			if ph.ok == 0 {
				runErr = fmt.Errorf("round %d, %s: no login succeeded: %v", r+1, kind, ph.firstErr)
				break rounds
			}
		}
		// The client's side, one at a time: argon2id alone, then whole
		// logins that run it.
		a := accts[0]
		for range c.realLogins {
			k := a.key[srv]
			t0 := time.Now()
			lnp.SaltedKey(a.password, k.salt, k.kdf)
			res.argon = append(res.argon, time.Since(t0))
			t0 = time.Now()
			ctx, cancel := context.WithTimeout(env.ctx, c.timeout)
			err := srv.loginWith(ctx, a, larderclient.LoginOptions{})
			cancel()
			if err != nil {
				runErr = fmt.Errorf("round %d, a whole login: %w", r+1, err)
				break rounds
			}
			res.whole = append(res.whole, time.Since(t0))
		}
		env.progress("round %d/%d client: argon2id %s ms, whole login %s ms (medians so far)", r+1, c.rounds, ms(medianDur(slices.Clone(res.argon))), ms(medianDur(slices.Clone(res.whole))))
	}
	res.logs = append(res.logs, serverLogNote(srv.proc))
	if plain != nil {
		res.logs = append(res.logs, serverLogNote(plain.proc))
	}
	return res, runErr
}

func kdfOfParams(p auth.Params) lnp.KDF {
	return lnp.KDF{Memory: p.Memory, Time: p.Time, Threads: p.Threads}
}

// setUp registers the accounts over LNP/1 (the client runs argon2id for
// each, the server for each course verifier), logs each in once with the
// password, which derives the salted key the bench keeps, and, over TLS,
// adds a device credential.
func (ln *lnpLarder) setUp(env *Env, accts []*loginAccount, devices bool) error {
	t0 := time.Now()
	for _, a := range accts {
		a.key[ln] = &keptKey{}
		ctx, cancel := context.WithTimeout(env.ctx, time.Minute)
		conn, err := ln.dial(ctx)
		if err == nil {
			var s *larderclient.Session
			if s, err = larderclient.Register(ctx, conn, a.name, a.sig, a.password, larderclient.LoginOptions{}); err == nil {
				s.Close()
			}
		}
		if err == nil {
			err = ln.loginPassword(ctx, a)
		}
		if err == nil && devices {
			a.secret = larderclient.NewDeviceSecret()
			if conn, err = ln.dial(ctx); err == nil {
				var s *larderclient.Session
				if s, err = larderclient.Login(ctx, conn, a.name, a.password, larderclient.LoginOptions{SaltedKey: a.key[ln].derive}); err == nil {
					var r lnp.DeviceAddReply
					r, err = s.AddDevice(ctx, "bench", a.secret)
					a.device = r.ID
					s.Close()
				}
			}
		}
		cancel()
		if err != nil {
			return fmt.Errorf("setting up %s on %s: %w", a.name, ln.addr, err)
		}
	}
	env.progress("registered %d accounts over LNP/1 on %s, each logged in once, in %v", len(accts), ln.addr, time.Since(t0).Round(time.Millisecond))
	return nil
}

// dial connects to ln's LNP/1 port: over TLS, with the certificate pinned
// on first use, the handshake done; or in plaintext.
func (ln *lnpLarder) dial(ctx context.Context) (net.Conn, error) {
	d := &net.Dialer{Timeout: 10 * time.Second}
	if !ln.tls {
		return d.DialContext(ctx, "tcp", ln.addr)
	}
	cfg, err := ln.tlsConfig()
	if err != nil {
		return nil, err
	}
	return (&tls.Dialer{NetDialer: d, Config: cfg}).DialContext(ctx, "tcp", ln.addr)
}

// tlsConfig returns the client's TLS configuration for ln, made once.
func (ln *lnpLarder) tlsConfig() (*tls.Config, error) {
	ln.cfgOnce.Do(func() {
		ln.cfg, ln.cfgErr = tlsconf.ClientConfig(ln.addr, ln.known, tlsconf.ClientOptions{Warn: io.Discard})
	})
	return ln.cfg, ln.cfgErr
}

// loginPassword logs a in with its kept salted key, and closes.
func (ln *lnpLarder) loginPassword(ctx context.Context, a *loginAccount) error {
	return ln.loginWith(ctx, a, larderclient.LoginOptions{SaltedKey: a.key[ln].derive})
}

// loginWith logs a in with the password and opts, and closes.
func (ln *lnpLarder) loginWith(ctx context.Context, a *loginAccount, opts larderclient.LoginOptions) error {
	conn, err := ln.dial(ctx)
	if err != nil {
		return err
	}
	s, err := larderclient.Login(ctx, conn, a.name, a.password, opts)
	if err != nil {
		return err
	}
	return s.Close()
}

// suite returns the TLS version, cipher suite and key exchange that the
// bench and ln agree on.
func (ln *lnpLarder) suite(ctx context.Context) (string, error) {
	conn, err := ln.dial(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	cs := conn.(*tls.Conn).ConnectionState()
	return fmt.Sprintf("%s, %s, key exchange %s", tls.VersionName(cs.Version), tls.CipherSuiteName(cs.CipherSuite), cs.CurveID), nil
}

// runLogins runs workers clients against p for d, each one login after
// the other (login(ctx, w, i) is client w's i-th), and measures the
// logins, their latency and the CPU. No login starts after d; those in
// flight then finish, each bounded by timeout.
func runLogins(ctx context.Context, p *Process, workers int, d, timeout time.Duration, login func(ctx context.Context, w, i int) error) loginPhase {
	meter := startCPU(p)
	start := time.Now()
	end := start.Add(d)
	lats := make([][]time.Duration, workers)
	fails := make([]int, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := 0; time.Now().Before(end) && ctx.Err() == nil; i++ {
				lctx, cancel := context.WithTimeout(ctx, timeout)
				t0 := time.Now()
				err := login(lctx, w, i)
				d := time.Since(t0)
				cancel()
				if err != nil {
					fails[w]++
					if errs[w] == nil {
						errs[w] = err
					}
					continue
				}
				lats[w] = append(lats[w], d)
			}
		})
	}
	wg.Wait()
	ph := loginPhase{elapsed: time.Since(start), cpu: meter.stop()}
	var all []time.Duration
	for w := range workers {
		all = append(all, lats[w]...)
		ph.failed += fails[w]
		if ph.firstErr == nil {
			ph.firstErr = errs[w]
		}
	}
	ph.ok = len(all)
	ph.lat = summarize(all)
	return ph
}

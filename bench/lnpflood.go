//go:build linux

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	larderclient "github.com/larderfs/larder/client"
	"github.com/larderfs/larder/internal/clientconf"
	"github.com/larderfs/larder/lnp"
)

// The flood scenario over LNP/1: the same user, logged in, and the same
// flood of wrong passwords, on LNP/1 over TLS. A guesser that does not
// know the password has no reason to run argon2id: the flood answers
// each challenge with a random salted key, so that its proofs are wrong
// at the cost of a few HMACs, and what it costs is its TLS handshakes.

// The flood's protocols, by their flag names.
const (
	protoCourse = "course"
	protoLNP    = "lnp"
)

// enrollAll enrolls the accounts, registered on the course protocol, for
// LNP/1's channel-bound login with their passwords, on a larder started
// for that over data, and stops it: the LNP/1 flood then guesses at
// accounts that have a credential, as a real one would.
func enrollAll(env *Env, dir, data string, accts []account, timeout time.Duration) error {
	ln, err := env.startLNPLarderEnv(nil, dir, data, true, timeout)
	if err != nil {
		return err
	}
	defer env.stop(ln.proc)
	known, err := env.mkdir("client")
	if err != nil {
		return err
	}
	ln.known = clientconf.Open(known).KnownServers()
	t0 := time.Now()
	for _, a := range accts {
		ctx, cancel := context.WithTimeout(env.ctx, time.Minute)
		conn, err := ln.dial(ctx)
		if err == nil {
			var s *larderclient.Session
			if s, err = larderclient.Enroll(ctx, conn, a.name, a.sig, a.password, larderclient.LoginOptions{}); err == nil {
				s.Close()
			}
		}
		cancel()
		if err != nil {
			return fmt.Errorf("enrolling %s for LNP/1: %w", a.name, err)
		}
	}
	env.progress("enrolled %d users for LNP/1 in %v", len(accts), time.Since(t0).Round(time.Millisecond))
	return nil
}

// lnpUser is the logged-in user of the LNP/1 flood: one session, logged
// in once with the password, from userIP.
type lnpUser struct {
	ln   *lnpLarder
	acct account
	s    *larderclient.Session
}

// login logs the user in (the client runs argon2id).
func (u *lnpUser) login(ctx context.Context) error {
	if u.s != nil {
		u.s.Close()
	}
	conn, err := u.ln.dialFrom(ctx, userIP)
	if err != nil {
		return err
	}
	u.s, err = larderclient.Login(ctx, conn, u.acct.name, u.acct.password, larderclient.LoginOptions{})
	return err
}

// runLoad fetches /shared/PATH of f on the user's session, one request
// after the other, for d, checking each whole; latency runs from the
// request to the last byte. A broken session is logged in again,
// untimed.
func (u *lnpUser) runLoad(ctx context.Context, p *Process, f fileSpec, d, timeout time.Duration) loadResult {
	meter := startCPU(p)
	start := time.Now()
	end := start.Add(d)
	var r loadResult
	var lat []time.Duration
	var buf bytes.Buffer
	for time.Now().Before(end) && ctx.Err() == nil {
		buf.Reset()
		rctx, cancel := context.WithTimeout(ctx, timeout)
		t0 := time.Now()
		_, err := u.s.Get(rctx, "/shared/"+f.Path, 0, &buf, nil)
		el := time.Since(t0)
		if err == nil && (buf.Len() != f.Size || sha256.Sum256(buf.Bytes()) != f.Sum) {
			err = fmt.Errorf("GET /shared/%s: %d bytes that are not the file's", f.Path, buf.Len())
		}
		if err != nil {
			r.failed++
			if r.firstErr == nil {
				r.firstErr = err
			}
			if lerr := u.login(rctx); lerr != nil {
				time.Sleep(time.Millisecond) // no spinning on a dead server
			}
			cancel()
			continue
		}
		cancel()
		lat = append(lat, el)
	}
	r.elapsed, r.cpu = time.Since(start), meter.stop()
	r.ok = len(lat)
	r.lat = summarize(lat)
	return r
}

// dialFrom is dial from the loopback address ip.
func (ln *lnpLarder) dialFrom(ctx context.Context, ip net.IP) (net.Conn, error) {
	d := &net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: ip}}
	if !ln.tls {
		return d.DialContext(ctx, "tcp", ln.addr)
	}
	cfg, err := ln.tlsConfig()
	if err != nil {
		return nil, err
	}
	return (&tls.Dialer{NetDialer: d, Config: cfg}).DialContext(ctx, "tcp", ln.addr)
}

// runLNPFlood keeps conns wrong LNP/1 logins in flight until ctx ends:
// each connection dials over TLS from floodIP(i mod addrs), logs in as one
// of accts with a random salted key, sorts the answer, and starts again.
// Attempts in flight when ctx ends are cut off.
func runLNPFlood(ctx context.Context, ln *lnpLarder, accts []account, conns, addrs int) *outcomeTally {
	tallies := make([]outcomeTally, conns)
	var next atomic.Uint64
	// Any key but the account's: no argon2id, a wrong proof.
	guess := func(string, []byte, lnp.KDF) [32]byte {
		var k [32]byte
		rand.Read(k[:])
		return k
	}
	var wg sync.WaitGroup
	for w := range conns {
		wg.Go(func() {
			for !ended(ctx) {
				a := accts[next.Add(1)%uint64(len(accts))]
				t0 := time.Now()
				conn, err := ln.dialFrom(ctx, floodIP(w%addrs))
				if err == nil {
					var s *larderclient.Session
					s, err = larderclient.Login(ctx, conn, a.name, "not the password", larderclient.LoginOptions{SaltedKey: guess})
					if err == nil {
						s.Close()
					}
				}
				d := time.Since(t0)
				o, msg := classifyLNPLogin(err)
				if o == outcomeNoReply && ended(ctx) {
					o = outcomeCut
				}
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

// classifyLNPLogin sorts the outcome of an LNP/1 login bound to fail by
// its WELCOME's status: INVALID_LOGIN (the proof checked and wrong, or an
// unknown name: LNP/1 does not tell them apart), THROTTLED, BUSY (for too
// many connections, by larder's wording); no WELCOME is no reply, and a
// login that succeeded is another reply.
func classifyLNPLogin(err error) (loginOutcome, string) {
	if err == nil {
		return outcomeOther, "WELCOME OK"
	}
	var le *larderclient.LNPError
	if !errors.As(err, &le) {
		return outcomeNoReply, err.Error()
	}
	msg := fmt.Sprintf("%v: %s", le.Status, le.Message)
	switch {
	case le.Status == lnp.StatusInvalidLogin:
		return outcomeWrong, msg
	case le.Status == lnp.StatusThrottled:
		return outcomeThrottled, msg
	case le.Status == lnp.StatusBusy && strings.Contains(le.Message, "too many connections"):
		return outcomeConnBusy, msg
	}
	return outcomeOther, msg
}

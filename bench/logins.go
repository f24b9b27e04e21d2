//go:build linux

package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/course"
)

// This file sends logins that are meant to fail, as a password guesser
// does, and sorts the server's answers: the flood and enumeration
// scenarios are made of them.

// loginOutcome is how a server answered a login that the bench expected to
// fail.
type loginOutcome int

const (
	outcomeWrong     loginOutcome = iota // INVALID_LOGIN: the hash ran and did not match
	outcomeMissing                       // USER_MISSING: no such user (larder runs a dummy hash first)
	outcomeThrottled                     // refused by the throttle, before any hash
	outcomePoolBusy                      // waited for the hashing pool until the request timeout
	outcomeConnBusy                      // refused over the connection limit
	outcomeOther                         // any other reply, OK included
	outcomeNoReply                       // a dial or read error before a whole reply
	outcomeCut                           // still waiting when the load ended: not an answer
	numOutcomes
)

var outcomeNames = [numOutcomes]string{
	"hashed, INVALID_LOGIN", "hashed, USER_MISSING", "refused by the throttle",
	"gave up waiting for the hashing pool", "refused: too many connections",
	"other reply", "no reply", "cut off at the end",
}

func (o loginOutcome) String() string { return outcomeNames[o] }

// classifyLogin sorts a reply to a login bound to fail. larder answers
// throttling, a full hashing pool and a full server all with status OTHER,
// as the course protocol has no better code, and says which in the
// message: the bench tells them apart by larder's wording (the messages of
// auth.ThrottleDecision, auth's busy error and the server's busy reply).
// msg is the message or the error, for the notes.
func classifyLogin(b []byte, err error) (o loginOutcome, msg string) {
	if err != nil {
		return outcomeNoReply, err.Error()
	}
	r, err := decodeReply(b, nil)
	if err != nil {
		return outcomeNoReply, err.Error()
	}
	msg = fmt.Sprintf("%v: %s", r.status, r.payload)
	switch {
	case r.status == course.StatusInvalidLogin:
		return outcomeWrong, msg
	case r.status == course.StatusUserMissing:
		return outcomeMissing, msg
	case r.status != course.StatusOther:
		return outcomeOther, msg
	case strings.Contains(string(r.payload), "too many failed attempts"):
		return outcomeThrottled, msg
	case strings.Contains(string(r.payload), "too many password checks"):
		return outcomePoolBusy, msg
	case strings.Contains(string(r.payload), "too many connections"):
		return outcomeConnBusy, msg
	}
	return outcomeOther, msg
}

// tryLogin sends req on a new connection and sorts the reply, timed from
// the dial to the end of the reply. An attempt still unanswered when ctx
// ends (its deadline bounds the connection: see client.dial) is
// outcomeCut.
func (c *client) tryLogin(ctx context.Context, req, buf []byte) (loginOutcome, time.Duration, string) {
	t0 := time.Now()
	b, err := c.roundTrip(ctx, req, buf)
	d := time.Since(t0)
	if err != nil && ended(ctx) {
		return outcomeCut, d, err.Error()
	}
	o, msg := classifyLogin(b, err)
	return o, d, msg
}

// ended reports whether ctx is done or past its deadline: a connection's
// deadline, set from ctx's, can fire a moment before ctx's own timer.
func ended(ctx context.Context) bool {
	d, ok := ctx.Deadline()
	return ctx.Err() != nil || ok && !time.Now().Before(d)
}

// randomSignature returns a signature that matches no account.
func randomSignature(rng *rand.Rand) larder.Signature {
	var s larder.Signature
	for i := 0; i < len(s); i += 8 {
		v := rng.Uint64()
		for j := range 8 {
			s[i+j] = byte(v >> (8 * j))
		}
	}
	return s
}

// clientFrom returns a client to addr whose connections come from the
// loopback address ip, so that the server counts them apart from the
// bench's other clients.
func clientFrom(addr string, ip net.IP, timeout time.Duration) *client {
	c := newClient(addr, timeout)
	c.dialer.LocalAddr = &net.TCPAddr{IP: ip}
	return c
}

// outcomeTally counts login outcomes and keeps their latencies.
type outcomeTally struct {
	n     [numOutcomes]int
	lat   [numOutcomes][]time.Duration
	first [numOutcomes]string // the first message or error of each kind
}

func (t *outcomeTally) add(o loginOutcome, d time.Duration, msg string) {
	t.n[o]++
	t.lat[o] = append(t.lat[o], d)
	if t.first[o] == "" {
		t.first[o] = msg
	}
}

func (t *outcomeTally) merge(u *outcomeTally) {
	for o := range numOutcomes {
		t.n[o] += u.n[o]
		t.lat[o] = append(t.lat[o], u.lat[o]...)
		if t.first[o] == "" {
			t.first[o] = u.first[o]
		}
	}
}

// answered returns the attempts that got an answer or failed, leaving out
// those cut off by the end of the load.
func (t *outcomeTally) answered() int {
	n := 0
	for o := range numOutcomes {
		if o != outcomeCut {
			n += t.n[o]
		}
	}
	return n
}

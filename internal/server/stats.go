package server

import (
	"strings"
	"sync/atomic"
	"time"

	"github.com/larderfs/larder/course"
	"github.com/larderfs/larder/lnp"
)

// Op is the kind of a request, as Stats counts them.
type Op uint8

// The kinds of request.
const (
	OpNone     Op = iota // no request was read whole: malformed, cut off or reset
	OpRegister           // a registration
	OpRetrieve           // a file retrieval
)

// NumOps is the number of Ops; Stats' arrays are indexed by Op.
const NumOps = 3

// String returns "none", "register" or "retrieve".
func (op Op) String() string {
	switch op {
	case OpRegister:
		return "register"
	case OpRetrieve:
		return "retrieve"
	}
	return "none"
}

// logName returns op's name in the log: its String, but "" for OpNone,
// the exchange of a connection whose request was never read whole.
func (op Op) logName() string {
	if op == OpNone {
		return ""
	}
	return op.String()
}

// LNPOp is the kind of an LNP/1 request, as Stats counts them.
type LNPOp uint8

// lnpOps are the request types of LNP/1, indexed by LNPOp.
var lnpOps = [...]lnp.Type{
	lnp.TypeWhoami, lnp.TypeStat, lnp.TypeList, lnp.TypeMkdir, lnp.TypeDelete,
	lnp.TypeRename, lnp.TypePasswd, lnp.TypeSums, lnp.TypeGet, lnp.TypePut,
	lnp.TypeParts, lnp.TypeCancel,
}

// NumLNPOps is the number of LNPOps.
const NumLNPOps = len(lnpOps)

// String returns the request's type in lower case: "get", "put", ...
func (op LNPOp) String() string { return strings.ToLower(lnpOps[op].String()) }

// lnpOpOf returns the LNPOp of a request of type t.
func lnpOpOf(t lnp.Type) (LNPOp, bool) {
	for i, nt := range lnpOps {
		if nt == t {
			return LNPOp(i), true
		}
	}
	return 0, false
}

// NumLNPStatuses bounds the statuses of LNP/1 requests that Stats
// counts: Stats.LNPRequests is indexed by lnp.Status, up to
// lnp.StatusNoSpace.
const NumLNPStatuses = int(lnp.StatusNoSpace) + 1

// NumStatuses bounds the statuses Stats counts: Stats.Requests is indexed
// by course.Status, from 0, which counts exchanges that decided no reply (the
// client reset the connection before its request was read whole), to
// course.StatusMalformed.
const NumStatuses = int(course.StatusMalformed) + 1

// durationBounds are the upper bounds of the buckets of Stats.Durations,
// from a cached login on loopback (well under a millisecond) through the
// slow password hash (tens of milliseconds) to large downloads; a last
// bucket holds everything longer.
var durationBounds = [...]time.Duration{
	500 * time.Microsecond,
	time.Millisecond,
	2500 * time.Microsecond,
	5 * time.Millisecond,
	10 * time.Millisecond,
	25 * time.Millisecond,
	50 * time.Millisecond,
	100 * time.Millisecond,
	250 * time.Millisecond,
	500 * time.Millisecond,
	time.Second,
	2500 * time.Millisecond,
	5 * time.Second,
	10 * time.Second,
	30 * time.Second,
	60 * time.Second,
}

// DurationBuckets returns the upper bounds of the buckets of a Histogram,
// in increasing order. The result is a fresh copy.
func DurationBuckets() []time.Duration { return append([]time.Duration(nil), durationBounds[:]...) }

// Histogram is a snapshot of the durations of one kind of request.
type Histogram struct {
	// Counts[i], for i < len(DurationBuckets()), is the number of requests
	// that took at most DurationBuckets()[i] and longer than the bound
	// before it; the last element counts those longer than every bound.
	// The counts are per bucket, not cumulative.
	Counts [len(durationBounds) + 1]uint64

	// Sum is the total time the requests took. It wraps after 292 years
	// of accumulated request time, as a Prometheus counter may.
	Sum time.Duration
}

// Count returns the number of requests in h.
func (h *Histogram) Count() uint64 {
	var n uint64
	for _, c := range h.Counts {
		n += c
	}
	return n
}

// Stats is a snapshot of a Server's counters, for monitoring. Every field
// is read atomically, but not all at one instant: a request that ends
// during the snapshot may be counted in some fields and not yet in others.
type Stats struct {
	// Listening is the number of listeners being served; zero before
	// Serve, after it returned, and during shutdown.
	Listening int
	// ShuttingDown reports that Shutdown or Close has been called.
	ShuttingDown bool

	// MaxConns is the limit of connections served at once.
	MaxConns int
	// Accepted counts the connections accepted and served since the
	// server started; those turned away at the limit are in Rejected.
	Accepted int64
	// Open is the number of connections being served now.
	Open int
	// Rejected counts the connections turned away at MaxConns.
	Rejected int64
	// RejectedPerAddress counts the connections turned away at
	// MaxConnsPerAddress, SessionsRefused the LNP/1 logins refused at
	// MaxSessionsPerUser.
	RejectedPerAddress, SessionsRefused int64

	// AuditSuppressed counts the audit events of connections that never
	// logged in that were held back beyond their address's allowance,
	// and summed up in audit.suppressed events instead.
	AuditSuppressed int64

	// Requests counts the exchanges that ended, by op and by the status
	// of their reply (see NumStatuses). A connection that hung up without
	// sending a byte is an accepted connection but no exchange.
	Requests [NumOps][NumStatuses]int64
	// PayloadBytes counts the file bytes sent in replies (not the block
	// headers, nor the text of status messages).
	PayloadBytes int64
	// Durations holds, by op, how long the exchanges took: from accepting
	// the connection to the last byte of the reply handed to the kernel,
	// without the wait for the client to hang up.
	Durations [NumOps]Histogram

	// LNPRequests counts the LNP/1 requests that ended, by op and by
	// their status (a transfer cut off by the client counts as OTHER).
	LNPRequests [NumLNPOps][NumLNPStatuses]int64
	// LNPDurations holds, by op, how long LNP/1 requests took: from
	// the request read to the end of its reply (for a transfer, the END).
	LNPDurations [NumLNPOps]Histogram
	// LNPBytesSent and LNPBytesReceived count the file bytes of
	// LNP/1 downloads and uploads, without frame headers.
	LNPBytesSent, LNPBytesReceived int64
}

// histogram counts durations in the buckets of durationBounds.
type histogram struct {
	counts [len(durationBounds) + 1]atomic.Uint64
	sum    atomic.Int64 // nanoseconds
}

// count records an exchange that took d.
func (c *courseCounters) count(ex *exchange, d time.Duration) {
	op, st := ex.op, ex.status
	if op >= NumOps {
		op = OpNone // cannot happen: exchanges hold only these
	}
	if int(st) >= NumStatuses { // cannot happen: the server sends only valid statuses
		st = 0
	}
	c.requests[op][st].Add(1)
	if ex.bytes > 0 {
		c.payload.Add(ex.bytes)
	}
	c.durations[op].observe(d)
}

// snapshot returns what h holds.
func (h *histogram) snapshot() Histogram {
	var s Histogram
	for i := range h.counts {
		s.Counts[i] = h.counts[i].Load()
	}
	s.Sum = time.Duration(h.sum.Load())
	return s
}

// countLNP records an LNP/1 request of type t that ended with status
// after d.
func (c *lnpCounters) count(t lnp.Type, status lnp.Status, d time.Duration) {
	op, ok := lnpOpOf(t)
	if !ok || int(status) >= NumLNPStatuses {
		return // cannot happen: the session serves only these, and sends only valid statuses
	}
	c.requests[op][status].Add(1)
	c.durations[op].observe(d)
}

func (h *histogram) observe(d time.Duration) {
	i := 0
	for i < len(durationBounds) && d > durationBounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sum.Add(int64(d))
}

// Stats returns a snapshot of the server's counters. It is safe to call at
// any time, from any goroutine, before Serve and after Close too.
func (s *Server) Stats() Stats {
	s.init()
	st := Stats{
		ShuttingDown: s.inShutdown.Load(),
		MaxConns:     s.current().maxConns,
		Accepted:     s.accepted.Load(),
		Rejected:     s.rejected.Load(),

		RejectedPerAddress: s.rejectedAddr.Load(),
		SessionsRefused:    s.sessionsRefused.Load(),
		AuditSuppressed:    s.unauth.heldBack(),
		PayloadBytes:       s.course.counters.payload.Load(),
	}
	s.mu.Lock()
	st.Listening, st.Open = len(s.listeners), len(s.conns)
	s.mu.Unlock()
	for op := range NumOps {
		for status := range NumStatuses {
			st.Requests[op][status] = s.course.counters.requests[op][status].Load()
		}
		st.Durations[op] = s.course.counters.durations[op].snapshot()
	}
	for op := range NumLNPOps {
		for status := range NumLNPStatuses {
			st.LNPRequests[op][status] = s.lnp.counters.requests[op][status].Load()
		}
		st.LNPDurations[op] = s.lnp.counters.durations[op].snapshot()
	}
	st.LNPBytesSent, st.LNPBytesReceived = s.lnp.counters.sent.Load(), s.lnp.counters.received.Load()
	return st
}

package server

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/course"
	"github.com/larderfs/larder/lnp"
)

// Connections that never log in cost their client nothing but a connect,
// and each left one or two events: one client filled the audit trail with
// 26,000 events (7 MB) in 4.7 s. Their events are recorded within an
// allowance per client address, a token bucket: DefaultAuditUnauthBurst at
// once, then one more per DefaultAuditUnauthEvery. Beyond it an event is
// not recorded but counted, by kind; every AuditSummaryInterval, and when
// the server stops, each address with events held back gets one
// audit.suppressed event saying how many of each kind, and since when.
// Nothing is dropped unsaid: Stats.AuditSuppressed counts them too.

// Defaults of the allowance.
const (
	DefaultAuditUnauthBurst     = 100
	DefaultAuditUnauthEvery     = 100 * time.Millisecond
	DefaultAuditSummaryInterval = time.Minute
)

// maxUnauthAddrs bounds the addresses tracked at once; events from more
// are counted under one entry for all of them, the invalid address.
const maxUnauthAddrs = 1 << 16

// bounded reports whether ev counts against its address's allowance: an
// event of a connection that has not logged in (one that names no user: a
// connection opened, closed or refused before a login; a failed login or
// registration), or a refusal at a limit (BUSY), which a client can
// provoke as fast as it can connect.
func bounded(ev *larder.Event) bool {
	switch ev.Kind {
	case larder.EventLoginFailed, larder.EventThrottled:
		return true
	case larder.EventRegister:
		return ev.Status != int(course.StatusOK)
	case larder.EventRefused:
		return ev.User == "" || ev.Status == int(lnp.StatusBusy)
	case larder.EventConnOpen, larder.EventConnClose:
		return ev.User == ""
	}
	return false
}

// unauthLimiter holds each address's allowance.
type unauthLimiter struct {
	mu     sync.Mutex
	byAddr map[netip.Addr]*allowance
	held   int64 // events held back since the server started
}

// allowance is one address's token bucket and what it held back.
type allowance struct {
	tokens float64
	last   time.Time
	since  time.Time // of the first event held back, zero if none
	held   map[larder.EventKind]int64
}

// allow takes one event of ev's address's allowance, or counts ev as held
// back and reports false.
func (l *unauthLimiter) allow(s *Server, ev *larder.Event) bool {
	lim := s.current()
	burst, every := lim.auditUnauthBurst, lim.auditUnauthEvery
	if burst < 0 {
		return true
	}
	key := remoteKey(ev.Remote)
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byAddr == nil {
		l.byAddr = map[netip.Addr]*allowance{}
	}
	a := l.byAddr[key]
	if a == nil {
		if len(l.byAddr) >= maxUnauthAddrs {
			key = netip.Addr{}
			a = l.byAddr[key]
		}
		if a == nil {
			a = &allowance{tokens: float64(burst), last: now}
			l.byAddr[key] = a
		}
	}
	a.tokens = min(float64(burst), a.tokens+float64(now.Sub(a.last))/float64(every))
	a.last = now
	if a.tokens >= 1 {
		a.tokens--
		return true
	}
	if a.held == nil {
		a.held = map[larder.EventKind]int64{}
		a.since = now
	}
	a.held[ev.Kind]++
	l.held++
	return false
}

// summaries returns the audit.suppressed events of the addresses that had
// events held back, and forgets those and the addresses whose allowance
// is whole again.
func (l *unauthLimiter) summaries(s *Server) []larder.Event {
	lim := s.current()
	burst, every := float64(lim.auditUnauthBurst), lim.auditUnauthEvery
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	var evs []larder.Event
	for key, a := range l.byAddr {
		if a.held != nil {
			evs = append(evs, summary(key, a, now))
			a.held, a.since = nil, time.Time{}
		}
		if a.tokens+float64(now.Sub(a.last))/float64(every) >= burst {
			delete(l.byAddr, key)
		}
	}
	return evs
}

// summary is the audit.suppressed event of the address key.
func summary(key netip.Addr, a *allowance, now time.Time) larder.Event {
	addr := "other addresses"
	if key.IsValid() {
		addr = key.String()
		if key.Is6() {
			addr += "/64"
		}
	}
	kinds := make([]larder.EventKind, 0, len(a.held))
	var n int64
	for k, c := range a.held {
		kinds = append(kinds, k)
		n += c
	}
	slices.Sort(kinds)
	var b strings.Builder
	fmt.Fprintf(&b, "suppressed %d events from %s of connections that never logged in, since %s:", n, addr, a.since.UTC().Format(time.RFC3339))
	for i, k := range kinds {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, " %s %d", k, a.held[k])
	}
	return larder.Event{Kind: larder.EventSuppressed, Remote: addr, Time: now, Duration: now.Sub(a.since), Reason: b.String()}
}

// remoteKey is addrKey for an event's Remote, host:port.
func remoteKey(remote string) netip.Addr {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return netip.Addr{}
	}
	return maskAddr(ap.Addr())
}

// summarize records the audit.suppressed events due, every
// AuditSummaryInterval until the server is closed, and then once more.
func (s *Server) summarize() {
	t := time.NewTicker(s.current().auditSummaryInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.recordSummaries()
		case <-s.ctx.Done():
			s.recordSummaries()
			return
		}
	}
}

// recordSummaries records the audit.suppressed events due now.
func (s *Server) recordSummaries() {
	if s.Audit == nil {
		return
	}
	for _, ev := range s.unauth.summaries(s) {
		s.logger().Warn("audit events of connections that never logged in held back", "remote", ev.Remote, "summary", ev.Reason)
		s.store(context.Background(), ev)
	}
}

// heldBack returns how many events were held back since the start.
func (l *unauthLimiter) heldBack() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.held
}

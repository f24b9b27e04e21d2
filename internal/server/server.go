// Package server runs larder's two protocols: the course protocol (Serve;
// conn.go, course.go) and LNP/1 (ServeLNP; the lnp*.go files). Both share
// one lifecycle, modelled on net/http's Server: configure the exported
// fields, call Serve and ServeLNP on their listeners, stop with Shutdown or
// Close, then Wait. The accept loop takes a connection slot (MaxConns, and
// MaxConnsPerAddress) before it hands the connection to a goroutine of its
// own (one kept from an earlier connection, or a new one: workers.go),
// which owns its deadlines; every connection, login, transfer and refusal is
// logged and recorded on the audit trail (Audit). Each protocol has a
// handler of its own (courseHandler, lnpHandler) holding its settings,
// its state and its counters; the Server holds what they share: the
// listeners and connection slots, the accounts (Auth), the files service
// (Files) and the audit trail.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/course"
	"github.com/larderfs/larder/internal/auth"
	"github.com/larderfs/larder/internal/files"
	"github.com/larderfs/larder/lnp"
)

// Defaults for the Server fields whose zero value means "default".
const (
	DefaultMaxConns       = 4096
	DefaultRequestTimeout = 10 * time.Second
	DefaultWriteTimeout   = 30 * time.Second

	DefaultMaxSessionsPerUser = 16
	DefaultMaxConnsPerAddress = 64
)

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("server: closed")

// Server serves the course protocol (Serve) and LNP/1 (ServeLNP). Set its
// fields before calling either and do not change them afterwards: what
// may change while serving changes through SetLimits, SetLoginPolicy and
// SetShuffleBlocks.
type Server struct {
	Auth *auth.Authenticator // accounts; required

	// Files owns the stored files of both protocols: the served folder
	// (the course protocol's files, LNP/1's read-only shared area), the
	// users' private spaces, their records, quotas and free-space
	// reserve; every read, upload, rename and delete goes through it.
	// Required, and for ServeLNP with private spaces; a program runs its
	// Recover before serving.
	Files *files.Service

	// Logger receives one line per request and the server's own events.
	// Nil means slog.Default().
	Logger *slog.Logger

	// Audit receives an event for every connection, registration,
	// login, download and refusal (see audit.go); nil records none.
	Audit larder.EventRecorder

	// MaxConns bounds the connections served at once. A slot is taken in
	// the accept loop, before a goroutine is started; a connection over
	// the limit is told the server is busy and closed. Zero means
	// DefaultMaxConns.
	MaxConns int

	// RequestTimeout is how long a client has, from the moment it is
	// accepted, to send its whole request; it also bounds the password
	// check. A client that sends one byte a second is cut off when it
	// runs out. Zero means DefaultRequestTimeout.
	RequestTimeout time.Duration

	// WriteTimeout bounds every write of reply blocks to the socket, so a
	// client that stops reading is cut off. Zero means DefaultWriteTimeout.
	WriteTimeout time.Duration

	// ClosedRegistration refuses registrations; the course server accepts
	// anyone, which is the default.
	ClosedRegistration bool

	// WithheldFeatures are LNP/1 features this server has but does not
	// grant: FeatureTreeDelete on a bucket that other servers share,
	// whose removal of a tree this server cannot fence from their
	// uploads into it (their clients then remove trees file by file).
	WithheldFeatures lnp.Features

	// ShuffleBlocks sends the blocks of a reply in random order, as the
	// course's reference server does, so that client authors can test
	// their reassembly against larder.
	ShuffleBlocks bool

	// The native protocol (ServeLNP). BlockSize is the largest block
	// (zero means 1 MiB), IdleTimeout how long a session may wait between
	// requests (zero means DefaultIdleTimeout), MaxTransfersPerUser how
	// many transfers one user may run at once (zero means
	// DefaultMaxTransfersPerUser). Name is sent in WELCOME.
	BlockSize           int
	IdleTimeout         time.Duration
	MaxTransfersPerUser int
	Name                string

	// CloseSignatureLogins refuses the course signature on LNP/1 for
	// every account, ending the window in which an account not yet
	// enrolled for the channel-bound login still logs in (and enrolls)
	// with it. The zero value keeps the window open; an enrolled account
	// is refused the signature either way.
	CloseSignatureLogins bool

	// MaxSessionsPerUser bounds the LNP/1 sessions one account may hold
	// at once; a login beyond it is answered BUSY, naming the limit. Zero
	// means DefaultMaxSessionsPerUser, a negative value no limit.
	MaxSessionsPerUser int

	// MaxConnsPerAddress bounds the connections, of both protocols
	// together, served at once for one client address (an IPv6 address's
	// /64); one more is told the server is busy, naming the limit.
	// Loopback is not exempt. Zero means DefaultMaxConnsPerAddress, a
	// negative value no limit.
	MaxConnsPerAddress int

	// AuditUnauthBurst and AuditUnauthEvery bound the audit events of
	// connections that never log in, per client address: a burst of
	// AuditUnauthBurst, then one more per AuditUnauthEvery; the rest are
	// counted and summed up every AuditSummaryInterval in one
	// audit.suppressed event per address (see unauthenticated.go). Zero
	// means DefaultAuditUnauthBurst, DefaultAuditUnauthEvery and
	// DefaultAuditSummaryInterval; a negative AuditUnauthBurst records
	// every event.
	AuditUnauthBurst     int
	AuditUnauthEvery     time.Duration
	AuditSummaryInterval time.Duration

	// UploadRetention is how long an interrupted upload is kept for a
	// resume; zero means DefaultUploadRetention.
	UploadRetention time.Duration

	initOnce sync.Once
	fsvc     *files.Service // Files, as init found it
	rejects  chan struct{}  // bounds goroutines telling clients we are busy
	ctx      context.Context
	cancel   context.CancelFunc // cancels ctx on Close

	inShutdown atomic.Bool
	mu         sync.Mutex
	listeners  map[*net.Listener]struct{}
	conns      map[*conn]netip.Addr // each with its address's key (addrKey)
	perAddr    map[netip.Addr]int   // connections being served, by addrKey
	running    sync.WaitGroup       // connection goroutines, for Wait
	workers    workers              // goroutines kept to serve the next connections

	course    *courseHandler // serves the course protocol (Serve)
	downloads *downloads     // course.downloads, for watchAccounts
	lnp       *lnpHandler    // serves LNP/1 (ServeLNP)
	janitor   sync.Once      // starts sweep
	watcher   sync.Once      // starts watchAccounts

	unauth     unauthLimiter // the audit allowance of connections that never logged in
	summarizer sync.Once     // starts summarize

	rejected     atomic.Int64 // at MaxConns
	rejectedAddr atomic.Int64 // at MaxConnsPerAddress

	sessionsRefused atomic.Int64 // LNP/1 logins at MaxSessionsPerUser (hello counts them)
	lastWarning     atomic.Int64 // unix nanoseconds of the last "busy" log line
	accepted        atomic.Int64 // connections served, for Stats

	live   atomic.Pointer[settings] // the fields above, defaults resolved (init, SetLimits)
	active atomic.Int64             // connections being served, against maxConns
	// closedRegistration and closedSignatures are ClosedRegistration and
	// CloseSignatureLogins, which SetLoginPolicy changes while serving.
	closedRegistration, closedSignatures atomic.Bool
}

// Limits are the limits and timeouts of a Server that SetLimits changes
// while it serves. Each field means what the Server's field of the same
// name means, its zero value included.
type Limits struct {
	MaxConns            int
	MaxConnsPerAddress  int
	MaxSessionsPerUser  int
	MaxTransfersPerUser int

	RequestTimeout time.Duration
	WriteTimeout   time.Duration
	IdleTimeout    time.Duration

	AuditUnauthBurst int
	AuditUnauthEvery time.Duration
}

// settings are the Server's limits and timeouts with their defaults
// resolved: the code reads these, never the fields. init makes the first
// from the fields, SetLimits the next ones; each is never changed once
// stored, so that a connection or a request reads one snapshot
// (Server.current) and sees its values agree.
type settings struct {
	maxConns                     int
	requestTimeout, writeTimeout time.Duration

	maxConnsPerAddress int // negative: no limit
	maxSessionsPerUser int // negative: no limit
	maxTransfers       int // per user
	idleTimeout        time.Duration
	uploadRetention    time.Duration

	auditUnauthBurst     int // negative: every event is recorded
	auditUnauthEvery     time.Duration
	auditSummaryInterval time.Duration
}

// resolve returns s's settings, each field's zero (or, where a negative
// value has no meaning of its own, negative) value replaced by its
// default.
func (s *Server) resolve() settings {
	c := settings{
		uploadRetention:      positiveOr(s.UploadRetention, DefaultUploadRetention),
		auditSummaryInterval: positiveOr(s.AuditSummaryInterval, DefaultAuditSummaryInterval),
	}
	c.setLimits(Limits{
		MaxConns:            s.MaxConns,
		MaxConnsPerAddress:  s.MaxConnsPerAddress,
		MaxSessionsPerUser:  s.MaxSessionsPerUser,
		MaxTransfersPerUser: s.MaxTransfersPerUser,
		RequestTimeout:      s.RequestTimeout,
		WriteTimeout:        s.WriteTimeout,
		IdleTimeout:         s.IdleTimeout,
		AuditUnauthBurst:    s.AuditUnauthBurst,
		AuditUnauthEvery:    s.AuditUnauthEvery,
	})
	return c
}

// setLimits sets c's limits to l's, defaults resolved.
func (c *settings) setLimits(l Limits) {
	c.maxConns = positiveOr(l.MaxConns, DefaultMaxConns)
	c.requestTimeout = positiveOr(l.RequestTimeout, DefaultRequestTimeout)
	c.writeTimeout = positiveOr(l.WriteTimeout, DefaultWriteTimeout)
	c.maxConnsPerAddress = l.MaxConnsPerAddress
	c.maxSessionsPerUser = l.MaxSessionsPerUser
	c.maxTransfers = positiveOr(l.MaxTransfersPerUser, DefaultMaxTransfersPerUser)
	c.idleTimeout = positiveOr(l.IdleTimeout, DefaultIdleTimeout)
	c.auditUnauthBurst = l.AuditUnauthBurst
	c.auditUnauthEvery = positiveOr(l.AuditUnauthEvery, DefaultAuditUnauthEvery)
	if c.maxConnsPerAddress == 0 {
		c.maxConnsPerAddress = DefaultMaxConnsPerAddress
	}
	if c.maxSessionsPerUser == 0 {
		c.maxSessionsPerUser = DefaultMaxSessionsPerUser
	}
	if c.auditUnauthBurst == 0 {
		c.auditUnauthBurst = DefaultAuditUnauthBurst
	}
}

// SetLimits changes, while serving, the limits and timeouts that the
// Server's fields set at start (a configuration reload). They apply from
// the next connection accepted, and on LNP/1 from each session's next
// request: a deadline already set is kept, and connections and sessions
// already served are never cut for a lower limit; they only count
// against it, so that new ones wait until enough have ended.
func (s *Server) SetLimits(l Limits) {
	s.init()
	s.mu.Lock() // one writer at a time: the copy must not lose another's
	defer s.mu.Unlock()
	c := *s.current()
	c.setLimits(l)
	s.live.Store(&c)
}

// current returns the settings in force.
func (s *Server) current() *settings { return s.live.Load() }

// positiveOr returns v if it is positive, else def.
func positiveOr[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

func (s *Server) init() {
	s.initOnce.Do(func() {
		conf := s.resolve()
		s.live.Store(&conf)
		s.closedRegistration.Store(s.ClosedRegistration)
		s.closedSignatures.Store(s.CloseSignatureLogins)
		s.course = newCourseHandler(s)
		s.downloads = &s.course.downloads
		s.lnp = newLNPHandler(s)
		s.rejects = make(chan struct{}, 64)
		s.ctx, s.cancel = context.WithCancel(context.Background())
		s.listeners = make(map[*net.Listener]struct{})
		s.conns = make(map[*conn]netip.Addr)
		s.perAddr = make(map[netip.Addr]int)
		s.fsvc = s.Files
		s.workers.init()
	})
}

// SetLoginPolicy changes, while serving, what ClosedRegistration and
// CloseSignatureLogins set at start: from the next registration or login
// on, on both protocols (a configuration reload).
func (s *Server) SetLoginPolicy(closedRegistration, closeSignatureLogins bool) {
	s.init()
	s.closedRegistration.Store(closedRegistration)
	s.closedSignatures.Store(closeSignatureLogins)
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// Serve accepts connections on ln and serves the course protocol on each
// in its own goroutine. It always returns a non-nil error and closes ln;
// after Shutdown or Close the error is ErrServerClosed.
func (s *Server) Serve(ln net.Listener) error {
	if s.Files == nil {
		ln.Close()
		return errors.New("server: Serve without Files")
	}
	// Segments of one block each keep blocks whole for clients that read
	// a block with one recv (segments_linux.go); without, replies go one
	// block per write.
	if err := alignSegments(ln); err != nil {
		s.logger().Warn("course listener: segments of one block not set; replies go one block per write", "error", err)
	}
	s.init()
	s.startWatch()
	return s.serve(ln, s.course.serve, courseBusy)
}

// courseBusy is the course protocol's answer to a client turned away at a
// limit: status OTHER with msg.
func courseBusy(msg string) []byte {
	b, _ := course.AppendMessage(nil, busyStatus, msg)
	return b
}

const tooManyConns = "server busy: too many connections, retry later"

// serve is the accept loop of both protocols: handle serves a connection,
// busy encodes the answer to one turned away at a limit.
func (s *Server) serve(ln net.Listener, handle func(*conn), busy func(msg string) []byte) error {
	s.init()
	s.summarizer.Do(func() { s.running.Go(s.summarize) })
	if !s.trackListener(&ln, true) {
		ln.Close()
		return ErrServerClosed
	}
	defer s.trackListener(&ln, false)

	var backoff time.Duration
	for {
		rwc, err := ln.Accept()
		if err != nil {
			if s.inShutdown.Load() {
				return ErrServerClosed
			}
			// Out of descriptors and the like: wait and retry, as
			// net/http does, rather than spin or give up.
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.logger().Warn("accept failed; retrying", "error", err, "retry_in", backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		// The settings of this accept: a limit lowered by SetLimits
		// turns away new connections until enough have ended, and
		// never cuts one being served.
		lim := s.current()
		if s.active.Add(1) > int64(lim.maxConns) {
			s.active.Add(-1)
			s.reject(rwc, busy(tooManyConns), "connection limit reached")
			continue
		}
		c := &conn{srv: s, rwc: rwc, accepted: time.Now(), lim: lim}
		switch s.admit(c) {
		case admitClosed:
			s.active.Add(-1)
			rwc.Close()
			return ErrServerClosed
		case admitAddressFull:
			s.active.Add(-1)
			n := lim.maxConnsPerAddress
			s.rejectedAddr.Add(1)
			s.reject(rwc, busy(fmt.Sprintf("server busy: too many connections from your address (the limit is %d per address), retry later", n)),
				fmt.Sprintf("connection limit per address reached (%d)", n))
			continue
		}
		s.accepted.Add(1)
		s.dispatch(func() { handle(c) })
	}
}

// Shutdown stops the server gracefully: it closes the listeners, tells
// every client still sending its request that the server is shutting down,
// and waits for the replies in flight to finish. If ctx ends first it
// returns ctx.Err() and leaves the remaining connections open; call Close
// to cut them.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	s.inShutdown.Store(true)
	s.workers.stop()
	s.closeListeners()

	ticker := time.NewTicker(10 * time.Millisecond)
	defer ticker.Stop()
	for {
		if s.interruptReaders() == 0 {
			s.recordSummaries() // before the audit trail is closed
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ticker.C:
		}
	}
}

// Close stops the server at once: listeners and every connection are
// closed, whatever they were doing.
func (s *Server) Close() error {
	s.init()
	s.inShutdown.Store(true)
	s.workers.stop()
	s.cancel()
	err := s.closeListeners()
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.rwc.Close()
	}
	return err
}

// Wait waits for every connection goroutine (and every goroutine telling
// a client the server is busy) to end: after Close, so that their last
// events are recorded before the audit trail is closed.
func (s *Server) Wait() {
	s.running.Wait()
}

// interruptReaders wakes every connection still waiting for its request,
// which then answers that the server is shutting down, and returns how
// many connections remain.
func (s *Server) interruptReaders() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.state.Load() == stateReading {
			c.rwc.SetReadDeadline(time.Now())
		}
	}
	return len(s.conns)
}

func (s *Server) closeListeners() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	for ln := range s.listeners {
		if cerr := (*ln).Close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	clear(s.listeners)
	return err
}

func (s *Server) trackListener(ln *net.Listener, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !add {
		delete(s.listeners, ln)
		return true
	}
	if s.inShutdown.Load() {
		return false
	}
	s.listeners[ln] = struct{}{}
	return true
}

// trackConn starts tracking c (see admit), reporting whether it did, or
// stops tracking c, which has ended.
func (s *Server) trackConn(c *conn, add bool) bool {
	if add {
		return s.admit(c) == admitted
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if key, ok := s.conns[c]; ok {
		delete(s.conns, c)
		if s.perAddr[key]--; s.perAddr[key] <= 0 {
			delete(s.perAddr, key)
		}
	}
	return true
}

// What admit decided.
const (
	admitted = iota
	admitClosed
	admitAddressFull
)

// admit starts tracking c, unless the server is closed or c's address
// already has MaxConnsPerAddress connections being served.
func (s *Server) admit(c *conn) int {
	key := addrKey(c.rwc)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx.Err() != nil { // closed hard
		return admitClosed
	}
	if n := c.lim.maxConnsPerAddress; n >= 0 && s.perAddr[key] >= n {
		return admitAddressFull
	}
	s.conns[c] = key
	s.perAddr[key]++
	return admitted
}

// addrKey returns the key under which rwc's connections are counted: its
// IPv4 address, or its IPv6 address's /64 prefix (one subscriber usually
// holds a whole /64, as the login throttle assumes too).
func addrKey(rwc net.Conn) netip.Addr { return maskAddr(remoteIP(rwc)) }

// maskAddr returns a's key (see addrKey).
func maskAddr(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		a = netip.PrefixFrom(a.WithZone(""), 64).Masked().Addr()
	}
	return a
}

// Conns returns the number of connections being served.
func (s *Server) Conns() int {
	s.init()
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Rejected returns how many connections were turned away at the
// connection limit.
func (s *Server) Rejected() int64 { return s.rejected.Load() }

// reject turns away a connection over the limit. Telling the client why
// takes a write and a drain (closing with unread input would reset the
// connection and destroy the reply), so it is done off the accept loop by
// at most cap(s.rejects) goroutines; beyond that the connection is simply
// closed.
func (s *Server) reject(rwc net.Conn, busy []byte, reason string) {
	if reason == "connection limit reached" {
		s.rejected.Add(1)
	}
	ev := larder.Event{Kind: larder.EventRefused, Remote: rwc.RemoteAddr().String(), Time: time.Now(),
		Status: int(busyStatus), Reason: reason}
	if now, last := time.Now().UnixNano(), s.lastWarning.Load(); now-last > int64(time.Second) && s.lastWarning.CompareAndSwap(last, now) {
		s.logger().Warn(reason+"; turning clients away", "remote", ev.Remote,
			"max_conns", s.current().maxConns, "rejected_total", s.rejected.Load(), "rejected_per_address_total", s.rejectedAddr.Load())
	}
	select {
	case s.rejects <- struct{}{}:
	default:
		rwc.Close()
		s.record(s.ctx, ev)
		return
	}
	s.running.Go(func() {
		defer func() { <-s.rejects }()
		// Off the accept loop: a sync kind would wait for its fsync.
		s.record(s.ctx, ev)
		// Reads too: over TLS, the write waits for the client's side of
		// the handshake, which a silent client would never send.
		rwc.SetDeadline(time.Now().Add(time.Second))
		rwc.Write(busy)
		lingerClose(rwc, time.Second)
	})
}

package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/files"
	"github.com/larderfs/larder/lnp"
)

// Defaults of the native protocol's settings.
const (
	DefaultIdleTimeout         = 5 * time.Minute
	DefaultMaxTransfersPerUser = 4
	DefaultUploadRetention     = 24 * time.Hour
)

// ServeLNP accepts connections on ln, which is a TLS listener unless
// plaintext was asked for, and serves LNP/1 sessions on each in its own
// goroutine; the connections count against MaxConns with the course
// protocol's. Files must be set, with the users' private spaces. It
// returns as Serve does.
func (s *Server) ServeLNP(ln net.Listener) error {
	if s.Files == nil {
		ln.Close()
		return errors.New("server: ServeLNP without Files")
	}
	s.init()
	s.janitor.Do(func() { s.running.Go(s.lnp.sweep) })
	s.startWatch()
	return s.serve(ln, (*conn).serveLNP, lnpBusy)
}

// sweep, at start and then every hour until Close, removes the
// interrupted uploads older than UploadRetention and the block sums of
// contents no file has any more.
func (h *lnpHandler) sweep() {
	s := h.srv
	keep := h.uploadRetention
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if n, err := s.fsvc.RemoveStaleUploads(time.Now().Add(-keep)); err != nil {
			s.logger().Warn("cannot remove stale uploads", "error", err)
		} else if n > 0 {
			s.logger().Info("removed interrupted uploads", "count", n, "older_than", keep)
		}
		if n, err := s.fsvc.PruneBlockSums(s.ctx); err != nil && s.ctx.Err() == nil {
			s.logger().Warn("cannot prune block sums", "error", err)
		} else if n > 0 {
			s.logger().Info("pruned the block sums of contents no file has", "count", n)
		}
		select {
		case <-t.C:
		case <-s.ctx.Done():
			return
		}
	}
}

// lnpBusy is LNP/1's answer to a client turned away at a limit.
func lnpBusy(msg string) []byte {
	return frame(lnp.Welcome{Status: lnp.StatusBusy, Message: msg})
}

// frame encodes m as a whole frame.
func frame(m lnp.Message) []byte {
	var b bytes.Buffer
	w := lnp.NewWriter(&b, 0)
	w.Write(m)
	w.Flush()
	return b.Bytes()
}

// session is one logged-in LNP/1 connection.
type session struct {
	c         *conn
	s         *Server
	user      *larder.User
	tried     string // the name the HELLO gave, for a login refused on the way
	space     *files.Space
	r         *lnp.Reader
	w         *lnp.Writer
	dw        deadlineWriter
	blockSize int
	buf       []byte       // a block's worth, lent for a SUMS request (see buffers.go)
	ended     atomic.Bool  // another session changed the password
	device    [16]byte     // the device credential that logged in; zero for the password
	status    lnp.Status   // how the request being served ended, for Stats
	last      larder.Event // the event it recorded, for its log line
	lastErr   error        // the cause of its failure, for its log line
	listing   *listCursor  // the listing in progress, if any
	features  lnp.Features // granted in WELCOME
}

// serverFeatures are the LNP/1 features this server grants to a client
// that offers them.
const serverFeatures = lnp.FeaturePutTime | lnp.FeatureNoBlockHashes | lnp.FeatureTreeDelete | lnp.FeatureReasons

// serveLNP serves one LNP/1 connection. Until the client has sent
// something, the goroutine runs nothing deep, so that its stack, which a
// connection keeps while it idles, stays small (see lnphandshake.go):
// the opening is recorded aside, and the session runs in sessionLNP,
// once there is something to read.
func (c *conn) serveLNP() {
	var end lnpEnd
	defer c.endLNP(&end)
	aside(c.openLNP)
	// The TLS handshake and the HELLO must come within the request
	// timeout, counted from the accept.
	deadline := c.accepted.Add(c.lim.requestTimeout)
	c.rwc.SetReadDeadline(deadline)
	early := c.awaitClient(deadline)
	c.sessionLNP(early, &end)
}

// lnpEnd is how an LNP/1 connection ended, for its conn.close event.
type lnpEnd struct {
	user   string // who had logged in, if anyone
	reason string
}

// openLNP records the connection's opening.
func (c *conn) openLNP() {
	c.remote = c.rwc.RemoteAddr().String()
	c.srv.record(c.srv.ctx, larder.Event{Kind: larder.EventConnOpen, Remote: c.remote, Time: c.accepted})
}

// endLNP, deferred by serveLNP, logs a panic, closes the connection and
// records how it ended.
func (c *conn) endLNP(end *lnpEnd) {
	s := c.srv
	if p := recover(); p != nil {
		s.logger().Error("panic serving a native session", "remote", c.remote, "user", end.user,
			"panic", p, "stack", string(debug.Stack()))
		end.reason = "internal error"
	}
	if c.cutError() != nil {
		c.closeCut()
	} else {
		c.rwc.Close()
	}
	s.record(s.ctx, larder.Event{Kind: larder.EventConnClose, User: end.user, Remote: c.remote,
		Duration: time.Since(c.accepted), Reason: end.reason})
	s.trackConn(c, false)
	s.active.Add(-1)
}

// sessionLNP runs the session once the client has sent something: its
// login, then its requests. early is what the TLS handshake read of the
// client's first frame.
func (c *conn) sessionLNP(early []byte, end *lnpEnd) {
	s := c.srv
	var src io.Reader = c.rwc
	if len(early) > 0 {
		src = &earlyReader{early: early, r: c.rwc}
	}
	// Until the login, the session holds a small read buffer and no
	// writer, and takes no frame larger than a HELLO: an idle connection
	// or a stranger's flood costs a few KiB (see buffers.go).
	ss := &session{c: c, s: s, r: lnp.NewReaderSize(src, sessionBuffer)}
	ss.r.Limit(lnp.MaxHelloBody)
	ss.dw = deadlineWriter{c: c, timeout: c.lim.writeTimeout}
	if !ss.hello() {
		end.reason = "no login"
		return
	}
	end.user = ss.user.Name
	defer ss.space.Close()
	defer ss.closeListing()
	defer s.lnp.removeSession(ss) // hello added it
	end.reason = ss.loop()
}

// hello reads the HELLO, logs the user in and answers WELCOME. It reports
// whether the session goes on.
func (ss *session) hello() bool {
	s, c := ss.s, ss.c
	t, body, err := ss.r.Next()
	ss.w = lnp.NewWriter(&ss.dw, sessionBuffer)
	if err != nil || t != lnp.TypeHello {
		if err == nil {
			err = &lnp.ProtocolError{Msg: "the first frame is " + t.String() + ", not HELLO"}
		}
		ss.refuse(lnp.StatusMalformed, "malformed HELLO: "+err.Error(), err)
		return false
	}
	if lnp.IsHello2(body) {
		return ss.hello2(body)
	}
	h, err := lnp.ParseHello(body)
	if err != nil {
		if bytes.HasPrefix(body, []byte("LNP")) && len(body) >= 4 && body[3] != '1' {
			ss.refuse(lnp.StatusVersion, "this server speaks LNP/1, with a HELLO of version 1 or 2", err)
			return false
		}
		ss.refuse(lnp.StatusMalformed, "malformed HELLO: "+err.Error(), err)
		return false
	}
	ss.tried = h.User
	ss.c.state.Store(stateReplying)
	ctx, cancel := context.WithTimeout(s.ctx, c.lim.requestTimeout)
	defer cancel()
	start := time.Now()
	u, err := s.Auth.LoginSignature(ctx, h.User, h.Signature[:], remoteIP(c.rwc), !s.closedSignatures.Load())
	if !ss.loggedIn(ctx, h.User, credSignature, err, start) {
		return false
	}
	ss.features = h.Features & serverFeatures &^ s.WithheldFeatures
	return ss.start(ctx, u, h.MaxBlock, start)
}

// loggedIn records the outcome of a login that checked cred and, if it
// failed, answers it. It reports whether the login succeeded.
func (ss *session) loggedIn(ctx context.Context, user string, cred credential, err error, start time.Time) bool {
	ss.s.recordLogin(ctx, larder.Event{User: user, Remote: ss.c.remote}, cred, err, time.Since(start))
	if err != nil {
		status, msg := loginStatus(err)
		ss.logRequest("login", &larder.Event{User: user, Status: int(status), Reason: msg}, time.Since(start))
		ss.welcome(lnp.Welcome{Status: status, Message: msg})
		return false
	}
	return true
}

// start starts the session of u, who logged in, and answers WELCOME. It
// reports whether the session goes on.
func (ss *session) start(ctx context.Context, u *larder.User, maxBlock uint32, start time.Time) bool {
	s, c := ss.s, ss.c
	space, err := s.fsvc.AccountSpace(u)
	if err != nil {
		ss.refuse(lnp.StatusOther, larder.ErrorMessage(err), err)
		return false
	}
	ss.user, ss.space = u, space
	if n, ok := s.lnp.addSession(ss); !ok {
		space.Close()
		s.sessionsRefused.Add(1)
		msg := fmt.Sprintf("too many sessions at once for this account (the limit is %d per account): close one, or retry later", n)
		ev := larder.Event{Kind: larder.EventRefused, User: u.Name, Remote: c.remote, Status: int(lnp.StatusBusy), Reason: msg}
		s.record(ctx, ev)
		ss.logRequest("login", &ev, time.Since(start))
		ss.welcome(lnp.Welcome{Status: lnp.StatusBusy, Message: msg})
		return false
	}
	ss.blockSize = min(max(int(maxBlock), lnp.MinBlockSize), s.lnp.blockSize)
	ss.r.SetBlockSize(ss.blockSize)
	s.Auth.RecordLogin(ctx, u)
	ss.logRequest("login", &larder.Event{User: u.Name, Status: int(lnp.StatusOK)}, time.Since(start))
	if !ss.welcome(lnp.Welcome{Status: lnp.StatusOK, BlockSize: uint32(ss.blockSize), Server: s.Name, Features: ss.features}) {
		s.lnp.removeSession(ss)
		space.Close()
		return false
	}
	return true
}

// badLogin answers both a name that has no account and a wrong password:
// unlike the course protocol, whose clients depend on its two codes,
// LNP/1 does not tell which names exist (see docs/SECURITY.md). The
// timing does not tell either: an unknown name is checked against a dummy
// hash of the same cost.
const badLogin = "unknown user or wrong password"

// loginStatus maps a failed login to its status and message.
func loginStatus(err error) (lnp.Status, string) {
	switch code := larder.ErrorCode(err); {
	case code == larder.ENOTFOUND, code == larder.EUNAUTHORIZED:
		return lnp.StatusInvalidLogin, badLogin
	default:
		return statusOf(err), larder.ErrorMessage(err)
	}
}

// statusOf maps an error's code to its LNP/1 status.
func statusOf(err error) lnp.Status {
	switch larder.ErrorCode(err) {
	case "":
		return lnp.StatusOK
	case larder.EINVALID:
		return lnp.StatusBadRequest
	case larder.ENOTFOUND:
		return lnp.StatusNotFound
	case larder.ECONFLICT:
		return lnp.StatusConflict
	case larder.EUNAUTHORIZED, larder.EDISABLED:
		return lnp.StatusInvalidLogin
	case larder.EFORBIDDEN:
		return lnp.StatusDenied
	case larder.EQUOTA:
		return lnp.StatusQuotaExceeded
	case larder.ENOSPACE:
		return lnp.StatusNoSpace
	case larder.ETHROTTLED:
		return lnp.StatusThrottled
	case larder.EINTEGRITY:
		return lnp.StatusHashMismatch
	case larder.EUNAVAILABLE:
		return lnp.StatusBusy
	}
	return lnp.StatusOther
}

// reasonOf returns the LNP/1 reason of err, a refusal, for a session
// granted lnp.FeatureReasons.
func reasonOf(err error) lnp.Reason {
	if errors.Is(err, larder.ErrTreeBeingRemoved) {
		return lnp.ReasonBeingRemoved
	}
	return lnp.ReasonNone
}

func (ss *session) welcome(m lnp.Welcome) bool {
	if err := ss.w.Write(m); err != nil {
		return false
	}
	return ss.w.Flush() == nil
}

// refuse answers a session that cannot start, and records why.
func (ss *session) refuse(status lnp.Status, msg string, cause error) {
	ev := larder.Event{Kind: larder.EventRefused, User: ss.tried, Remote: ss.c.remote, Status: int(status), Reason: msg}
	ss.s.record(ss.s.ctx, ev)
	ss.logRequest("login", &ev, time.Since(ss.c.accepted))
	if !errors.Is(cause, os.ErrDeadlineExceeded) && !errors.Is(cause, io.EOF) && !errors.Is(cause, net.ErrClosed) {
		ss.welcome(lnp.Welcome{Status: status, Message: msg})
	}
}

// loop serves requests until the session ends, and says why it ended.
func (ss *session) loop() string {
	s, c := ss.s, ss.c
	for {
		c.state.Store(stateReading)
		if s.inShutdown.Load() {
			return "server shutting down"
		}
		// Each request is served by the settings in force when it is
		// awaited, so that a reload's timeouts reach every session.
		c.lim = s.current()
		ss.dw.timeout = c.lim.writeTimeout
		idle := c.lim.idleTimeout
		c.rwc.SetReadDeadline(time.Now().Add(idle))
		t, body, err := ss.r.Next()
		c.state.Store(stateReplying)
		ss.status, ss.last, ss.lastErr = 0, larder.Event{}, nil
		switch {
		case err == io.EOF:
			return ""
		case errors.Is(err, os.ErrDeadlineExceeded) && s.inShutdown.Load():
			return "server shutting down"
		case errors.Is(err, os.ErrDeadlineExceeded) && ss.ended.Load():
			if err := ss.checkAccount(s.ctx); accountEnded(err) {
				return ss.endSession(s.ctx, err)
			}
			return "the password changed in another session"
		case errors.Is(err, os.ErrDeadlineExceeded):
			return "idle for " + idle.String()
		case err != nil:
			// Not a request: no op to name.
			ss.refuseRequest("", lnp.StatusMalformed, err.Error())
			return "malformed frame: " + err.Error()
		}
		start := time.Now()
		op := strings.ToLower(t.String())
		m, err := lnp.ParseRequest(t, body)
		if err != nil {
			ss.refuseRequest(op, lnp.StatusMalformed, err.Error())
			return "malformed request: " + err.Error()
		}
		c.rwc.SetReadDeadline(time.Now().Add(c.lim.requestTimeout))
		ctx, cancel := context.WithCancel(s.ctx)
		if err := ss.checkAccount(ctx); err != nil {
			cancel()
			reason := ss.endSession(s.ctx, err)
			ss.logRequest(op, &larder.Event{User: ss.user.Name, Status: int(statusOf(err)), Reason: larder.ErrorMessage(err)}, time.Since(start))
			return reason
		}
		release := ss.borrowBuffers(t)
		goOn := ss.handle(ctx, m)
		release()
		cancel()
		d := time.Since(start)
		s.lnp.counters.count(t, ss.status, d)
		ss.logRequest(op, &ss.last, d)
		if !goOn {
			return "ended in a transfer"
		}
	}
}

// refuseRequest answers a request that cannot be served with status and
// msg, and logs it; op names the request, "" if it could not be read.
func (ss *session) refuseRequest(op string, status lnp.Status, msg string) {
	start := time.Now()
	ss.reply(status, msg, nil)
	ss.logRequest(op, &larder.Event{User: ss.user.Name, Status: int(status), Reason: msg}, time.Since(start))
}

// reply writes a REPLY and flushes it. It reports whether that worked.
func (ss *session) reply(status lnp.Status, msg string, body []byte) bool {
	return ss.writeReply(lnp.Reply{Status: status, Message: msg, Body: body})
}

// writeReply writes m and flushes it. It reports whether that worked.
func (ss *session) writeReply(m lnp.Reply) bool {
	if err := ss.w.Write(m); err != nil {
		return false
	}
	return ss.w.Flush() == nil
}

// lnpHandler serves LNP/1 on the connections its Server accepts
// (ServeLNP). It holds the protocol's settings that never change while
// serving, its live sessions with each user's transfer slots, and its
// counters (the limits and timeouts are the Server's settings, which
// SetLimits changes); the Server runs the lifecycle (listeners, connection
// slots, Shutdown, Close), the audit trail and the account watch.
type lnpHandler struct {
	srv *Server

	blockSize       int // the largest block a session agrees to
	uploadRetention time.Duration

	// sessions is embedded: the account watch (watchAccounts) reads the
	// sessions through the Server's lnp field.
	sessions
	counters lnpCounters // for Stats
}

// newLNPHandler returns the LNP/1 handler of s, whose settings init has
// resolved.
func newLNPHandler(s *Server) *lnpHandler {
	return &lnpHandler{
		srv:             s,
		blockSize:       positiveOr(s.BlockSize, lnp.DefaultBlockSize),
		uploadRetention: s.current().uploadRetention,
		sessions: sessions{
			byUser:    map[string]map[*session]struct{}{},
			transfers: map[string]int{},
		},
	}
}

// lnpCounters are LNP/1's statistics. Counting a request costs a few
// atomic adds: no lock, no allocation.
type lnpCounters struct {
	requests  [NumLNPOps][NumLNPStatuses]atomic.Int64
	durations [NumLNPOps]histogram
	sent      atomic.Int64 // file bytes of downloads
	received  atomic.Int64 // file bytes of uploads
}

// sessions tracks the live sessions of each user, so that a password
// change ends the others at once.
type sessions struct {
	mu     sync.Mutex
	byUser map[string]map[*session]struct{}
	// transfers counts each user's transfers in progress.
	transfers map[string]int
}

// addSession adds ss to its user's sessions, unless the user has
// MaxSessionsPerUser already; it returns that limit and whether it added.
func (h *lnpHandler) addSession(ss *session) (int, bool) {
	limit := h.srv.current().maxSessionsPerUser
	h.mu.Lock()
	defer h.mu.Unlock()
	m := h.byUser[ss.user.Name]
	if limit >= 0 && len(m) >= limit {
		return limit, false
	}
	if m == nil {
		m = map[*session]struct{}{}
		h.byUser[ss.user.Name] = m
	}
	m[ss] = struct{}{}
	return limit, true
}

func (h *lnpHandler) removeSession(ss *session) {
	h.mu.Lock()
	defer h.mu.Unlock()
	m := h.byUser[ss.user.Name]
	delete(m, ss)
	if len(m) == 0 {
		delete(h.byUser, ss.user.Name)
	}
}

// endOtherSessions wakes every idle session of user but except, which
// then finds the account changed and ends; a session in a transfer ends
// at its next request.
func (h *lnpHandler) endOtherSessions(user string, except *session) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ss := range h.byUser[user] {
		if ss != except {
			ss.ended.Store(true)
			if ss.c.state.Load() == stateReading {
				ss.c.rwc.SetReadDeadline(time.Now())
			}
		}
	}
}

// startTransfer takes one of user's transfer slots, or reports that all
// are taken.
func (h *lnpHandler) startTransfer(user string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.transfers[user] >= h.srv.current().maxTransfers {
		return false
	}
	h.transfers[user]++
	return true
}

func (h *lnpHandler) endTransfer(user string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.transfers[user]--; h.transfers[user] <= 0 {
		delete(h.transfers, user)
	}
}

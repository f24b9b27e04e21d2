package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/course"
	"github.com/larderfs/larder/internal/files"
)

// Connection states, for Shutdown to tell a client still sending its
// request (interrupted) from one being answered (left to finish).
const (
	stateReading int32 = iota
	stateReplying
)

// lingerTimeout bounds how long a connection drains the client's unread
// input after the reply, so that closing does not reset the connection
// and destroy the reply's tail in flight.
const lingerTimeout = 2 * time.Second

// conn is one client connection, of either protocol, owned by the
// goroutine serving it (courseHandler.serve, conn.serveLNP).
type conn struct {
	srv      *Server
	rwc      net.Conn
	remote   string // the client's address, host:port
	accepted time.Time
	// lim is the settings the connection is served by: those at its
	// accept, and on LNP/1 those at the start of its latest request.
	// Only the connection's goroutine reads or changes it.
	lim   *settings
	state atomic.Int32
	cut   cut // set when the account served ends during a reply
}

// exchange is what one request-reply turn did, for the log line.
type exchange struct {
	op     Op // OpNone if no request was read whole
	remote string
	user   string
	path   string
	status course.Status
	bytes  int64 // payload bytes sent
	err    error // the internal cause of a failure, never sent to the client

	// refused says the answer refuses the request, for the audit trail;
	// registrations and failed logins are recorded as such instead.
	refused bool

	// The answer: msg with status, or the file with its SHA-256. An
	// exchange with neither status nor file sends nothing.
	msg  string
	file *files.File
	sum  [32]byte

	// blockSums are the file's blocks' SHA-256, remembered from an
	// earlier reply; nil for a small file, which is hashed as it is sent.
	blockSums [][32]byte

	// sendPath is how the file's blocks went to the socket, for the log.
	sendPath sendPath

	// recorded says the download event was recorded, before the reply's
	// last block (see recordDownload).
	recorded bool

	// account is the account the file is sent to, watched during the
	// reply (see watchAccounts).
	account *larder.User
}

// serve serves one course-protocol connection: its one request and
// reply.
func (h *courseHandler) serve(c *conn) {
	s := h.srv
	c.remote = c.rwc.RemoteAddr().String()
	var ex exchange
	closeReason := ""
	defer func() {
		if p := recover(); p != nil {
			s.logger().Error("panic serving connection", "remote", c.remote,
				"panic", p, "stack", string(debug.Stack()))
			c.rwc.Close()
			closeReason = "internal error"
		}
		// A connection carries one request, whose events (login,
		// download, refused, ...) say all there is to say of it; only one
		// that ends without them leaves an event of its own. Four events
		// per request, with the connection's open and close, made the
		// audit trail a third of the server's work.
		if closeReason != "" {
			s.record(s.ctx, larder.Event{Kind: larder.EventConnClose, User: ex.user, Remote: c.remote,
				Status: int(ex.status), Bytes: ex.bytes, Duration: time.Since(c.accepted), Reason: closeReason})
		}
		s.trackConn(c, false)
		s.active.Add(-1)
	}()

	deadline := c.accepted.Add(c.lim.requestTimeout)
	c.rwc.SetReadDeadline(deadline)
	req, readErr := course.ReadRequest(c.rwc)
	c.state.Store(stateReplying)
	if readErr == io.EOF {
		c.rwc.Close() // connected and hung up without a word
		closeReason = "closed without a request"
		return
	}

	// Handling gets its own allowance from the moment the request is in:
	// the password check may queue for the hash pool, and a registration
	// waits for the database's fsync.
	ctx, cancel := context.WithTimeout(s.ctx, c.lim.requestTimeout)
	defer cancel()
	if readErr != nil {
		ex = h.refuseUnreadable(c, readErr)
	} else {
		ex = h.handle(ctx, req, remoteIP(c.rwc), c.remote)
	}
	if ex.file == nil {
		// A refusal is recorded before its reply, as a registration
		// is: an event of a sync kind is durable before the client
		// hears the answer. A download records itself before its last
		// block (recordDownload).
		s.recordOutcome(ctx, &ex, time.Since(c.accepted))
	}
	if ex.file != nil {
		h.startDownload(c, ex.account)
	}
	h.send(c, &ex)
	if ex.file != nil {
		h.endDownload(c)
	}
	cutErr := c.cutError()
	if cutErr != nil {
		// The account ended during the reply: the connection is closed
		// mid-reply, the only way the course protocol has to say so
		// (the client's hashes fail).
		ex.err = fmt.Errorf("reply cut off: %s", larder.ErrorMessage(cutErr))
	}
	d := time.Since(c.accepted)
	h.counters.count(&ex, d)
	if ex.file != nil {
		s.recordOutcome(ctx, &ex, d) // only if cut short before recordDownload
	}
	if cutErr != nil {
		c.closeCut()
	} else {
		closeAfterReply(c.rwc, readErr == nil)
	}
	switch {
	case ex.status == 0 && ex.err != nil:
		closeReason = ex.err.Error()
	case errors.Is(ex.err, errLastBlockWithheld):
		closeReason = ex.err.Error()
	case ex.recorded && ex.err != nil:
		// The download event is in the trail, but the client has not
		// got the whole file: this says so.
		closeReason = "reply cut short after its download event: " + ex.err.Error()
	}
	c.log(ex)
}

// send writes the answer that ex holds to c: a file through a pooled
// writer, a message encoded on the spot.
func (h *courseHandler) send(c *conn, ex *exchange) {
	var err error
	switch {
	case ex.file != nil:
		defer ex.file.Close()
		count, _ := course.BlockCount(ex.file.Size) // checked by retrieve
		path, raw := chooseSendPath(c.rwc, count)
		ex.sendPath = path
		w := c.newWriter(sendWriter(path, c.rwc, raw), c.lim.writeTimeout)
		defer w.release()
		if path.blockPerWrite() {
			w.SetBlocksPerWrite(1)
		}
		var order func(uint32) uint32
		if h.shuffleBlocks.Load() {
			// A short last block sent in the middle would shift every
			// later block off the segment boundaries of the aligned
			// path: it goes last, the others in any order.
			order = shuffled(count, ex.file.Size%course.MaxBlockPayload != 0)
		}
		w.SetBeforeLast(func() error { return h.recordDownload(c, ex) })
		if ex.bytes, err = w.WritePayloadSums(ex.status, yielding{ex.file}, ex.file.Size, ex.sum, ex.blockSums, order); err == nil {
			err = w.Flush()
		}
		if ferr := finishSend(path, raw); err == nil {
			err = ferr
		}
	case ex.status != 0:
		var buf [course.BlockHeaderSize + course.MaxBlockPayload]byte
		b, aerr := course.AppendMessage(buf[:0], ex.status, ex.msg)
		if err = aerr; err == nil {
			c.setWriteDeadline(time.Now().Add(c.lim.writeTimeout))
			_, err = c.rwc.Write(b)
		}
	}
	if err != nil && ex.err == nil {
		ex.err = err
	}
}

// recordDownload records ex's download event; the reply's writer calls it
// once every block but the last is written, before the last one. So the
// client cannot have the whole file before the event is recorded: for a
// sync kind (--audit-sync), before it is durable. If a sync event cannot
// be made durable, the last block is withheld and the download fails:
// with sync, no complete download goes unrecorded. The event says what
// the reply carries whole: a reply cut short after it is recorded leaves
// a conn.close event saying so.
func (h *courseHandler) recordDownload(c *conn, ex *exchange) error {
	ev := ex.event(larder.EventDownload)
	ev.Bytes, ev.SHA256, ev.Duration = ex.file.Size, ex.sum, time.Since(c.accepted)
	// The request's context may have run out during a long transfer;
	// the event gets the time a write has.
	ctx, cancel := context.WithTimeout(h.srv.ctx, c.lim.writeTimeout)
	defer cancel()
	ex.recorded = true
	if err := h.srv.record(ctx, ev); err != nil {
		return fmt.Errorf("%w: the download event was not recorded: %w", errLastBlockWithheld, err)
	}
	return nil
}

// errLastBlockWithheld says a download failed because its event could not
// be made durable.
var errLastBlockWithheld = errors.New("the last block withheld")

// refuseUnreadable answers a request of c that could not be read whole.
func (h *courseHandler) refuseUnreadable(c *conn, err error) exchange {
	ex := exchange{remote: c.remote, err: err}
	var pe *course.ProtocolError
	switch {
	case !errors.As(err, &pe):
		// A reset or similar: nobody is left to answer, and conn.close
		// says what happened.
		return ex
	}
	ex.refused = true
	switch {
	case h.srv.inShutdown.Load():
		ex.status = busyStatus
		ex.err = nil
		return reply(ex, shuttingDownMessage)
	case errors.Is(err, os.ErrDeadlineExceeded):
		ex.status = course.StatusMalformed
		return reply(ex, "malformed request: not complete within "+
			c.lim.requestTimeout.String()+": "+pe.Msg)
	default:
		ex.status = course.StatusMalformed
		return reply(ex, "malformed request: "+pe.Msg)
	}
}

const shuttingDownMessage = "server is shutting down; retry later"

// busyStatus is the status of "busy" and "shutting down" replies: the
// course protocol has no better code than OTHER for "try again".
const busyStatus = course.StatusOther

func (c *conn) log(ex exchange) {
	// Warn of what an operator should look at: connections lost without a
	// reply, and server-side failures. A throttled guesser is expected
	// traffic, and a flood of them must not flood the log at warn level.
	level := slog.LevelInfo
	if ex.err != nil && ex.status == 0 || ex.status == course.StatusOther && larder.ErrorCode(ex.err) != larder.ETHROTTLED {
		level = slog.LevelWarn
	}
	l := c.srv.logger()
	if !l.Enabled(context.Background(), level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("remote", c.remote),
		slog.String("protocol", "course"),
		slog.String("op", ex.op.logName()),
		slog.String("user", ex.user),
		slog.String("path", ex.shownPath()),
		slog.Int("status", int(ex.status)),
		slog.Int64("bytes", ex.bytes),
		slog.Duration("duration", time.Since(c.accepted)),
	}
	if ex.status != course.StatusOK && ex.msg != "" {
		// What the client was told, as LNP/1's lines say it.
		attrs = append(attrs, slog.String("reason", ex.msg))
	}
	if ex.file != nil && ex.sendPath != sendAligned && ex.sendPath != sendFew {
		// Slower than the aligned path: say why a transfer was.
		attrs = append(attrs, slog.String("send", ex.sendPath.String()))
	}
	if ex.err != nil {
		attrs = append(attrs, slog.String("error", ex.err.Error()))
	}
	l.LogAttrs(context.Background(), level, "request", attrs...)
}

// remoteIP returns the client's IP address, for throttling; the zero
// netip.Addr for a connection without one (a pipe).
func remoteIP(rwc net.Conn) netip.Addr {
	if a, ok := rwc.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort().Addr()
	}
	return netip.Addr{}
}

// closeAfterReply closes rwc after the reply. A client whose request was
// read whole and which has sent nothing since has, if it follows the
// protocol, nothing left to send: it is simply hung up on. Other clients,
// or any where the kernel cannot say, get lingerClose (nginx's
// lingering_close makes the same choice). Draining every connection was a
// tenth of the server's work for small retrievals.
func closeAfterReply(rwc net.Conn, requestRead bool) {
	if pending, known := inputPending(rwc); requestRead && known && !pending {
		rwc.Close()
		return
	}
	lingerClose(rwc, lingerTimeout)
}

// lingerClose closes rwc after the reply: it half-closes the sending side,
// so the client sees the end of the reply, then drains what the client
// sent beyond its request, bounded in time and size, before closing.
func lingerClose(rwc net.Conn, timeout time.Duration) {
	if cw, ok := rwc.(interface{ CloseWrite() error }); ok {
		if cw.CloseWrite() == nil {
			rwc.SetReadDeadline(time.Now().Add(timeout))
			io.CopyN(io.Discard, rwc, 64<<10)
		}
	}
	rwc.Close()
}

// deadlineWriter sets a fresh write deadline before every write to the
// socket, so that each batch of blocks must be taken by the client within
// the timeout: a client that stops reading is cut off, one that reads
// slowly but steadily is not. A connection cut (see cutWrites) keeps the
// cut's deadline.
type deadlineWriter struct {
	c       *conn     // whose deadline is set
	w       io.Writer // a writer on c's descriptor; nil writes to c.rwc
	timeout time.Duration
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	d.c.setWriteDeadline(time.Now().Add(d.timeout))
	if d.w != nil {
		return d.w.Write(p)
	}
	return d.c.rwc.Write(p)
}

// Writers carry buffers of 64 KiB; pooling them keeps a busy server from
// allocating them per request. Only a file reply takes one, once the
// request has been authenticated: connections waiting for their request
// or for the hash pool hold none.
var writerPool sync.Pool

// pooledWriter is a reply writer bound to one connection's deadlines.
type pooledWriter struct {
	*course.Writer
	dw deadlineWriter
}

// newWriter returns a reply writer that writes to dst, c's connection or
// a writer on its descriptor, each write within timeout.
func (c *conn) newWriter(dst io.Writer, timeout time.Duration) *pooledWriter {
	pw, _ := writerPool.Get().(*pooledWriter)
	if pw == nil {
		pw = &pooledWriter{}
		pw.Writer = course.NewWriter(&pw.dw)
	}
	pw.dw = deadlineWriter{c: c, w: dst, timeout: timeout}
	pw.Reset(&pw.dw)
	return pw
}

func (pw *pooledWriter) release() {
	pw.dw = deadlineWriter{}
	pw.Reset(&pw.dw)
	writerPool.Put(pw)
}

// isTemporary reports accept errors worth retrying: running out of file
// descriptors or memory, or a connection aborted before it was accepted.
func isTemporary(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM) ||
		errors.Is(err, syscall.ECONNABORTED)
}

// yielding is a file that lets other goroutines run before each read. A
// large reply reads its file 64 blocks (60 KiB) at a time, and between
// reads hashes and writes without ever blocking: on a machine with few
// cores, a few such replies would hold every P of the scheduler for its
// whole 10 ms time slice while small requests, ready to answer, wait. A
// yield per read costs well under a microsecond, against about 40 µs of
// hashing per read.
type yielding struct{ io.ReaderAt }

func (y yielding) ReadAt(p []byte, off int64) (int, error) {
	runtime.Gosched()
	return y.ReaderAt.ReadAt(p, off)
}

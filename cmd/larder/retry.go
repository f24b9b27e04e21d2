package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/larderfs/larder/client"
	"github.com/larderfs/larder/internal/tlsconf"
	"github.com/larderfs/larder/lnp"
)

// transferFlags are the flags of the commands that move files: put, get
// and rm.
type transferFlags struct {
	recursive bool
	checksum  bool // -r compares files by SHA-256 alone
	transfers int
	retries   int
	copying   bool // --transfers is defined
}

// Defaults of --transfers, as rclone's, and of --retries.
const (
	defaultTransfers = 4
	defaultRetries   = 3
	maxTransfers     = 64
)

// define declares the flags on fs; copying is false for rm, which
// transfers nothing.
func (t *transferFlags) define(fs *flag.FlagSet, copying bool) {
	fs.BoolVar(&t.recursive, "r", false, "recursive: the whole tree of a folder (see above)")
	fs.IntVar(&t.retries, "retries", defaultRetries, "retry a file this many times after the server said BUSY or the connection\n"+
		"failed, waiting 0.5 s, 1 s, 2 s, … (at most 30 s, with jitter) in between; 0 never retries")
	t.copying = copying
	if copying {
		fs.IntVar(&t.transfers, "transfers", defaultTransfers, fmt.Sprintf("with -r, move this many files at once, each on a session of its own (1 to %d);\n"+
			"the server allows a few at once per account (--max-transfers-per-user), and\n"+
			"refuses more with BUSY, which is retried", maxTransfers))
		usage := "with -r, compare a file on both sides by its SHA-256 even when their sizes and\n" +
			"modification times agree (by default such a file is taken as unchanged without\n" +
			"reading it, as rsync does)"
		fs.BoolVar(&t.checksum, "checksum", false, usage)
		fs.BoolVar(&t.checksum, "c", false, "short for --checksum")
	}
}

// check refuses values out of range.
func (t *transferFlags) check() error {
	if t.retries < 0 {
		return usageError("--retries may not be negative")
	}
	if t.copying && (t.transfers < 1 || t.transfers > maxTransfers) {
		return usageError("--transfers takes 1 to %d", maxTransfers)
	}
	if t.checksum && !t.recursive {
		return usageError("--checksum goes with -r: a single file is always compared whole")
	}
	return nil
}

// retrier runs an operation again, after a growing pause, when it failed
// in a way that another try may cure.
type retrier struct {
	retries int
	// base is the first pause, doubled at each retry up to most.
	base, most time.Duration
	// note, if set, is told of each retry before its pause.
	note func(string)
	// sleep pauses for d, or until ctx ends; nil means a timer.
	sleep func(ctx context.Context, d time.Duration) error
	// yield, if set, is called at a BUSY; it reports whether it waited
	// for another transfer of the command's own to end, in which case
	// the BUSY was the command's own doing and is tried again at once,
	// not counted as a retry.
	yield func(ctx context.Context) bool
}

func newRetrier(retries int, note func(string)) *retrier {
	return &retrier{retries: retries, base: 500 * time.Millisecond, most: 30 * time.Second, note: note}
}

// delay returns the pause before retry number attempt (0 the first):
// base doubled attempt times, at most most, of which a random part, up to
// a half, is taken off, so that clients that failed together do not come
// back together.
func (r *retrier) delay(attempt int) time.Duration {
	d := r.most
	if attempt < 30 {
		d = min(r.base<<attempt, r.most)
	}
	return d - time.Duration(rand.Int64N(int64(d)/2+1))
}

func (r *retrier) pause(ctx context.Context, d time.Duration) error {
	if r.sleep != nil {
		return r.sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// retryable reports whether err is one that another try may cure: the
// server said BUSY, or the connection failed or was closed. A refusal
// (not found, denied, quota), an integrity failure, a certificate that
// changed and an interruption are not.
func retryable(err error) bool {
	switch {
	case err == nil, errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, client.ErrIntegrity), errors.Is(err, errNotTLS), isType[*tlsconf.CertChangedError](err):
		return false
	}
	if isType[*retryLater](err) {
		return true
	}
	if st, ok := lnpStatus(err); ok {
		return st == lnp.StatusBusy
	}
	if isType[*lnp.ProtocolError](err) {
		// A frame the client could not parse; the connection it came
		// on may have been cut in the middle of one.
		pe, _ := errors.AsType[*lnp.ProtocolError](err)
		return pe.Err != nil && retryable(pe.Err)
	}
	return errors.Is(err, errServerClosed) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNABORTED) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, net.ErrClosed) ||
		isType[*net.OpError](err)
}

// busy reports whether err is the server's BUSY to a request, after which
// the session goes on.
func busy(err error) bool {
	st, ok := lnpStatus(err)
	return ok && st == lnp.StatusBusy
}

// sessionSlot is the session one worker of a command uses: opened when
// first needed, and opened again after its connection failed.
type sessionSlot struct {
	s    *client.Session
	open func(context.Context) (*client.Session, error)
	// owned is whether s is the slot's to close (not the command's own).
	owned bool
}

func (w *sessionSlot) get(ctx context.Context) (*client.Session, error) {
	if w.s != nil {
		return w.s, nil
	}
	if w.open == nil {
		return nil, errServerClosed
	}
	s, err := w.open(ctx)
	if err != nil {
		return nil, err
	}
	w.s, w.owned = s, true
	return s, nil
}

// drop closes the session after a failure that may have left it in the
// middle of a request.
func (w *sessionSlot) drop() {
	if w.s != nil {
		w.s.Close()
		w.s = nil
	}
}

// close closes the slot's session if it opened it.
func (w *sessionSlot) close() {
	if w.owned && w.s != nil {
		w.s.Close()
	}
	w.s = nil
}

// do runs fn with the slot's session, again after a pause if it failed
// in a way retryable says another try may cure, up to r.retries times.
// what names the file in the notes of retries. A connection that failed
// is replaced by a new session.
func (r *retrier) do(ctx context.Context, w *sessionSlot, what string, fn func(s *client.Session, attempt int) error) error {
	for attempt, tries := 0, 0; ; tries++ {
		s, err := w.get(ctx)
		if err == nil {
			err = fn(s, tries)
		}
		if busy(err) && r.yield != nil && ctx.Err() == nil && r.yield(ctx) {
			continue
		}
		if err == nil || !retryable(err) || attempt >= r.retries || ctx.Err() != nil {
			return err
		}
		attempt++
		if !busy(err) {
			w.drop()
		}
		d := r.delay(attempt - 1)
		if r.note != nil {
			r.note(fmt.Sprintf("%s: %s; retry %d of %d in %.1fs", what, Message(sessionError(err)), attempt, r.retries, d.Seconds()))
		}
		if err := r.pause(ctx, d); err != nil {
			return err
		}
	}
}

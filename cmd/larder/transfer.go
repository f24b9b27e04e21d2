package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"path"
	"time"

	"github.com/larderfs/larder/client"
	"github.com/larderfs/larder/lnp"
)

// retryLater is an error that another try may cure though its kind alone
// would not say so: a CONFLICT just after a connection failed in the
// middle of the same upload, whose lock the server may not have seen
// released yet.
type retryLater struct{ err error }

func (e *retryLater) Error() string { return e.err.Error() }
func (e *retryLater) Unwrap() error { return e.err }

// upload is one file to upload.
type upload struct {
	remote string
	src    io.ReaderAt
	size   int64
	opts   client.PutOptions
	// restart starts over, once, an upload that resumed from an
	// interrupted one and that the server then found wrong: the local
	// file changed since.
	restart bool
	// progress, if set, is told of the bytes of each attempt; reset, at
	// the start of each attempt but the first, to forget the ones before.
	progress func(n int)
	reset    func()
}

// putOne uploads u with r's retries in w's session. An upload retried
// after its connection failed resumes where the server has it (with
// Resume set), and one whose reply was lost after it committed is found
// complete rather than in conflict.
func putOne(ctx context.Context, r *retrier, w *sessionSlot, u upload) (lnp.Entry, error) {
	var (
		e         lnp.Entry
		netFailed bool
		restarted bool
	)
	err := r.do(ctx, w, u.remote, func(s *client.Session, attempt int) error {
		for {
			if attempt > 0 && u.reset != nil {
				u.reset()
			}
			opts := u.opts
			opts.Progress = u.progress
			var resumedAt int64
			opts.Resumed = func(off int64) {
				resumedAt = off
				if u.opts.Resumed != nil {
					u.opts.Resumed(off)
				}
			}
			var err error
			e, err = s.Put(ctx, u.remote, u.src, u.size, opts)
			if st, ok := lnpStatus(err); ok && st == lnp.StatusConflict {
				if netFailed {
					if same, serr := sameRemote(ctx, s, u); serr == nil && same {
						e, err = s.Stat(ctx, u.remote)
						return err
					}
					return &retryLater{err: err}
				}
				if writing(ctx, s, u.remote) {
					// An upload of the path is being written: one
					// interrupted a moment ago whose end the server
					// has not seen yet (its connection still drains),
					// or another client's, which may end.
					return &retryLater{err: err}
				}
			}
			if st, ok := lnpStatus(err); ok && st == lnp.StatusHashMismatch && u.restart && resumedAt > 0 && !restarted {
				// The session ends after a refused upload.
				restarted, u.opts.Resume = true, false
				w.drop()
				if s, err = w.get(ctx); err != nil {
					return err
				}
				attempt++
				continue
			}
			netFailed = err != nil && retryable(err) && !busy(err)
			return err
		}
	})
	return e, err
}

// sameRemote reports whether the file at u.remote is u's: its size and
// SHA-256 are.
func sameRemote(ctx context.Context, s *client.Session, u upload) (bool, error) {
	e, err := s.Stat(ctx, u.remote)
	if err != nil || e.Dir || e.Size != uint64(u.size) || e.SHA256 == ([32]byte{}) {
		return false, err
	}
	sum, err := hashOf(u.src, u.size)
	return err == nil && sum == e.SHA256, err
}

// hashOf returns the SHA-256 of the first size bytes of src.
func hashOf(src io.ReaderAt, size int64) ([32]byte, error) {
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(src, 0, size)); err != nil {
		return [32]byte{}, err
	}
	return [32]byte(h.Sum(nil)), nil
}

// downloadOne downloads remote into local with r's retries in w's
// session: a retry goes on from the part file the failed try kept.
func downloadOne(ctx context.Context, r *retrier, w *sessionSlot, remote, local string, opts client.DownloadOptions, reset func()) (client.DownloadResult, error) {
	var res client.DownloadResult
	err := r.do(ctx, w, remote, func(s *client.Session, attempt int) error {
		if attempt > 0 && reset != nil {
			reset()
		}
		var err error
		res, err = s.Download(ctx, remote, local, opts)
		return err
	})
	return res, err
}

// putSingle uploads one file, with a progress bar on a terminal that
// shows label, a word when it resumes an interrupted upload, and tf's
// retries.
func putSingle(ctx context.Context, env *Env, s *lnpSession, tf transferFlags, label, remote string, src io.ReaderAt, size int64, opts client.PutOptions) (lnp.Entry, error) {
	var bar *progressBar
	note := func(msg string) {
		if bar != nil {
			bar.clear()
		}
		fmt.Fprintf(env.Stderr, "larder: put %s\n", msg)
	}
	u := upload{remote: remote, src: src, size: size, opts: opts}
	u.opts.Resumed = func(off int64) {
		note(fmt.Sprintf("%s: resuming at %s of %s (%d%%), where an interrupted upload stopped (--no-resume starts over)",
			printable(remote), formatBytes(off), formatBytes(size), off*100/max(size, 1)))
	}
	if showProgress(env, false) {
		bar = newProgressBar(env.Stderr, time.Now)
		bar.name = label
		defer bar.done()
		m := &transferMeter{bar: bar, total: size}
		u.progress = m.add
		u.reset = func() { *m = transferMeter{bar: bar, total: size} }
	}
	w := &sessionSlot{s: s.Session, open: s.reopen}
	defer w.close()
	return putOne(ctx, newRetrier(tf.retries, note), w, u)
}

// writing reports whether the server says an upload of remote is being
// written now (PARTS, active).
func writing(ctx context.Context, s *client.Session, remote string) bool {
	parts, err := s.Parts(ctx)
	if err != nil {
		return false
	}
	want := path.Join("/", remote)
	for _, p := range parts {
		if p.Active && path.Join("/", p.Path) == want {
			return true
		}
	}
	return false
}

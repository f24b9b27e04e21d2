package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"
)

// treeRun is one recursive put, get or rm: its display, its retries and
// parallel sessions, and what came of each file.
type treeRun struct {
	verb      string // "put", "get", "rm"
	env       *Env
	disp      *treeDisplay
	retrier   *retrier
	transfers int
	checksum  bool // --checksum: no quick check by size and time

	mu sync.Mutex
	// active is how many files are being moved now, limit how many may
	// be: --transfers, lowered when the server says BUSY to one of them
	// (see yield). changed is signalled when either changes.
	active, limit int
	changed       *sync.Cond
	limited       bool  // the lower limit was said
	moved         int   // files transferred (or removed)
	folders       int   // folders removed (rm)
	bytes         int64 // bytes sent or received by this run
	unchanged     int   // files that were there already, the same
	resumed       int   // files that went on from an interrupted transfer
	skipped       []treeNote
	failed        []treeNote
}

// A treeNote is a file skipped or failed, and why.
type treeNote struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
	err    error
}

func newTreeRun(env *Env, verb string, tf transferFlags) *treeRun {
	t := &treeRun{verb: verb, env: env, disp: newTreeDisplay(env, time.Now), transfers: max(tf.transfers, 1), checksum: tf.checksum}
	t.limit = t.transfers
	t.changed = sync.NewCond(&t.mu)
	t.retrier = newRetrier(tf.retries, func(msg string) { t.disp.note("%s %s", verb, msg) })
	t.retrier.yield = t.yield
	return t
}

// acquire waits until one more file may be moved, and counts it; it
// reports false if ctx ended first.
func (t *treeRun) acquire(ctx context.Context) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for t.active >= t.limit && ctx.Err() == nil {
		t.changed.Wait()
	}
	if ctx.Err() != nil {
		return false
	}
	t.active++
	return true
}

func (t *treeRun) release() {
	t.mu.Lock()
	t.active--
	t.mu.Unlock()
	t.changed.Broadcast()
}

// yield is the retrier's at a BUSY: with other files of this command
// under way, the server's limit of transfers (or sessions) per account is
// below --transfers, and the command itself is what made it busy. The
// limit is lowered to what the server took, once said, and the file
// waits for its turn instead of using up its retries.
func (t *treeRun) yield(ctx context.Context) bool {
	t.mu.Lock()
	if t.active <= 1 {
		t.mu.Unlock()
		return false // someone else's transfers: a BUSY to retry later
	}
	t.active--
	if t.limit > t.active {
		t.limit = max(t.active, 1)
		if !t.limited {
			t.limited = true
			defer t.disp.note("%s: the server takes fewer transfers at once for this account than --transfers %d: the other files wait for their turn", t.verb, t.transfers)
		}
	}
	for t.active >= t.limit && ctx.Err() == nil {
		t.changed.Wait()
	}
	t.active++
	t.mu.Unlock()
	t.changed.Broadcast()
	return ctx.Err() == nil
}

// skip notes a file left alone, and why.
func (t *treeRun) skip(name, reason string) {
	t.mu.Lock()
	t.skipped = append(t.skipped, treeNote{Path: name, Reason: reason})
	t.mu.Unlock()
	t.disp.note("%s %s: skipped: %s", t.verb, printable(name), reason)
}

// fail notes a file that failed, unless the run was interrupted, which is
// no failure of the file's.
func (t *treeRun) fail(ctx context.Context, name string, err error) {
	if ctx.Err() != nil {
		return
	}
	err = sessionError(err)
	t.mu.Lock()
	t.failed = append(t.failed, treeNote{Path: name, Reason: Message(err), err: err})
	t.mu.Unlock()
	t.disp.note("%s %s: failed: %s", t.verb, printable(name), Message(err))
}

// A treeJob is one file of a tree to move or remove.
type treeJob struct {
	do func(ctx context.Context, w *sessionSlot)
}

// work runs jobs on up to t.transfers sessions at once: s's own, and more
// opened with s's credential as they are needed. It returns when every
// job is done, or, once ctx ends, those under way are.
func (t *treeRun) work(ctx context.Context, s *lnpSession, jobs []treeJob) {
	ch := make(chan treeJob)
	var wg sync.WaitGroup
	for i := range min(t.transfers, len(jobs)) {
		w := &sessionSlot{open: s.reopen}
		if i == 0 {
			w.s = s.Session
		}
		wg.Go(func() {
			defer w.close()
			for j := range ch {
				if !t.acquire(ctx) {
					continue
				}
				j.do(ctx, w)
				t.release()
			}
		})
	}
	// Waiters in acquire and yield wake up to an interruption.
	stop := context.AfterFunc(ctx, t.changed.Broadcast)
	defer stop()
feed:
	for _, j := range jobs {
		select {
		case ch <- j:
		case <-ctx.Done():
			break feed
		}
	}
	close(ch)
	wg.Wait()
}

// treeError is a recursive command of which some files failed: it exits
// with the first failure's code.
type treeError struct {
	verb          string
	failed, files int
	first         treeNote
}

func (e *treeError) Error() string {
	return fmt.Sprintf("%s -r: %d of %d files failed (listed above); the first, %s: %v", e.verb, e.failed, e.files, printable(e.first.Path), e.first.err)
}
func (e *treeError) Unwrap() error { return e.first.err }

// treeJSON is what put -r, get -r and rm -r print with --json.
type treeJSON struct {
	Files     int        `json:"files"` // transferred, or removed
	Folders   int        `json:"folders,omitempty"`
	Bytes     int64      `json:"bytes"`
	Seconds   float64    `json:"seconds"`
	Unchanged int        `json:"unchanged"`
	Resumed   int        `json:"resumed"`
	Skipped   []treeNote `json:"skipped"`
	Failed    []treeNote `json:"failed"`
	Stopped   bool       `json:"interrupted,omitempty"`
}

// finish clears the display, prints the summary, and returns the run's
// error: the interruption, or the first failure.
func (t *treeRun) finish(ctx context.Context, files int, asJSON bool) error {
	t.disp.close()
	el := t.disp.elapsed()
	t.mu.Lock()
	defer t.mu.Unlock()
	var b strings.Builder
	switch t.verb {
	case "rm":
		fmt.Fprintf(&b, "rm: removed %s and %s in %s", plural(t.moved, "file"), plural(t.folders, "folder"), formatElapsed(el))
	default:
		fmt.Fprintf(&b, "%s: %s (%s) in %s", t.verb, plural(t.moved, "file"), formatBytes(t.bytes), formatElapsed(el))
		if s := el.Seconds(); s > 0 && t.bytes > 0 {
			fmt.Fprintf(&b, ", %s/s", formatBytes(int64(float64(t.bytes)/s)))
		}
		fmt.Fprintf(&b, "; %d unchanged, %d resumed", t.unchanged, t.resumed)
	}
	fmt.Fprintf(&b, ", %d skipped, %d failed", len(t.skipped), len(t.failed))
	if ctx.Err() != nil {
		b.WriteString("; interrupted: the same command goes on from there")
	}
	fmt.Fprintln(t.env.Stderr, "larder: "+b.String())
	if asJSON {
		j := treeJSON{Files: t.moved, Folders: t.folders, Bytes: t.bytes, Seconds: el.Seconds(), Unchanged: t.unchanged, Resumed: t.resumed,
			Skipped: t.skipped, Failed: t.failed, Stopped: ctx.Err() != nil}
		if j.Skipped == nil {
			j.Skipped = []treeNote{}
		}
		if j.Failed == nil {
			j.Failed = []treeNote{}
		}
		if err := writeJSON(t.env.Stdout, j); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(t.failed) > 0 {
		return &treeError{verb: t.verb, failed: len(t.failed), files: files, first: t.failed[0]}
	}
	return nil
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// formatElapsed renders a duration to the tenth of a second under a
// minute, as formatLeft does above.
func formatElapsed(d time.Duration) string {
	if d < time.Minute {
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return formatLeft(d)
}

// run moves the files of jobs, total bytes, that planning found, unless
// it failed with err, and sums up.
func (t *treeRun) run(ctx context.Context, s *lnpSession, jobs []treeJob, total int64, err error, asJSON bool) error {
	if err != nil {
		t.disp.close()
		return err
	}
	t.disp.plan(len(jobs), total)
	t.work(ctx, s, jobs)
	return t.finish(ctx, len(jobs), asJSON)
}

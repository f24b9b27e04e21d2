package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/flock"
)

// JSONLines is a Sink that writes one JSON object per event and per line
// (larder.Event's MarshalJSON form), for log shippers: to a file, synced
// per batch, or to any writer such as standard output.
//
// It cannot look back to tell an event already written, so it is
// idempotent only in the sense that matters downstream: after a crash, or
// after a batch whose write or sync failed, the events of that batch may be
// written again, and a shipper should dedupe by "id". A write that fails
// halfway leaves a partial line; the next batch first ends it with a
// newline, so each later line is whole.
//
// A file follows rotation (logrotate's default: move the file away, or
// remove it, then signal the server): before each batch it checks that
// its path still names the file it has open, and if not opens the file at
// the path anew, creating it; Reopen does the same at once. A batch that
// went into a file removed meanwhile is written again into the new one.
type JSONLines struct {
	mu      sync.Mutex
	w       io.Writer
	sync    func() error
	close   func() error
	buf     []byte
	partial bool // the last write stopped inside a line

	path   string   // of a file opened by OpenJSONLinesFile; "" for a writer
	f      *os.File // the file open at path, nil after a reopen failed
	closed bool     // Close was called: nothing is opened again

	reopens, unwritten atomic.Uint64

	beforeWrite func() // for tests: called before each write
}

var _ Sink = (*JSONLines)(nil)

// NewJSONLines returns a JSONLines that writes to w and, if sync is not
// nil, calls it after each batch (os.File.Sync, for a file).
func NewJSONLines(w io.Writer, sync func() error) *JSONLines {
	return &JSONLines{w: w, sync: sync}
}

// OpenJSONLinesFile opens (creating it with mode 0600 if need be) the file
// at path for appending and returns a JSONLines that fsyncs it per batch
// and follows its rotation.
func OpenJSONLinesFile(path string) (*JSONLines, error) {
	j := &JSONLines{path: path}
	if err := j.open(); err != nil {
		return nil, err
	}
	j.close = func() error {
		j.mu.Lock()
		defer j.mu.Unlock()
		j.closed = true
		if j.f == nil {
			return nil
		}
		err := j.f.Close()
		j.f = nil
		return err
	}
	return j, nil
}

// open opens the file at j.path, in place of the one open; j.mu is held
// (or j not yet shared).
func (j *JSONLines) open() error {
	if j.closed {
		return fmt.Errorf("audit: %s: the sink is closed", j.path)
	}
	f, err := os.OpenFile(j.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	// The new file's name must survive a crash as its lines do.
	if err := flock.SyncDir(filepath.Dir(j.path)); err != nil {
		f.Close()
		return fmt.Errorf("audit: sync the folder of %s: %w", j.path, err)
	}
	if j.f != nil {
		j.f.Close()
	}
	j.f, j.w, j.sync, j.partial = f, f, f.Sync, false
	return nil
}

// Reopen opens the file at the path anew, in place of the one open, as
// logrotate's postrotate step asks of a server with SIGHUP; the file it
// had open is closed. For a JSONLines of a writer it does nothing. If the
// file cannot be opened, the error says why, and the next batch tries
// again.
func (j *JSONLines) Reopen() error {
	if j.path == "" {
		return nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return nil
	}
	if err := j.open(); err != nil {
		// Let go of the old file all the same (logrotate may be waiting
		// to compress it); the events wait in the spool meanwhile.
		if j.f != nil {
			j.f.Close()
			j.f = nil
		}
		return err
	}
	j.reopens.Add(1)
	return nil
}

// JSONLinesStats counts what a JSONLines did beside writing.
type JSONLinesStats struct {
	// Reopens counts the times the file was opened anew: on Reopen, or
	// because its path no longer named it.
	Reopens uint64
	// Unwritten counts the events of batches that did not reach the file:
	// the write or the sync failed, the file could not be opened, or it
	// was removed while the batch was written. Each such batch is offered
	// again (or, removed, written again at once), so an event counted here
	// is not lost, unless the spool loses it too.
	Unwritten uint64
}

// Stats returns the counters.
func (j *JSONLines) Stats() JSONLinesStats {
	return JSONLinesStats{Reopens: j.reopens.Load(), Unwritten: j.unwritten.Load()}
}

// current makes sure the open file is the one at the path: it reopens if
// the path names another file or none, or if an earlier reopen failed.
// Two stats, against a batch's write and fsync.
func (j *JSONLines) current() error {
	if j.f != nil {
		at, err := os.Stat(j.path)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("audit: %w", err)
		}
		open, ferr := j.f.Stat()
		if ferr != nil {
			return fmt.Errorf("audit: %w", ferr)
		}
		if err == nil && os.SameFile(at, open) {
			return nil
		}
	}
	if err := j.open(); err != nil {
		return err
	}
	j.reopens.Add(1)
	return nil
}

// removed reports whether the open file has no name left: it was removed
// (not moved) after it was opened, and what is written to it is lost.
func (j *JSONLines) removed() bool {
	if j.f == nil {
		return false
	}
	fi, err := j.f.Stat()
	return err == nil && unlinked(fi)
}

// StoreEvents writes events, one line each, with one write, then syncs.
// A file removed while the batch was written is replaced by a new one at
// its path, and the batch written again there.
func (j *JSONLines) StoreEvents(ctx context.Context, events []larder.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	for attempt := 1; ; attempt++ {
		if err := j.store(events); err != nil {
			j.unwritten.Add(uint64(len(events)))
			return err
		}
		if j.path == "" || !j.removed() {
			return nil
		}
		j.unwritten.Add(uint64(len(events)))
		if attempt == 3 {
			// Someone keeps removing it: let the pipeline retry later.
			return fmt.Errorf("audit: %s was removed while a batch was written to it, %d times in a row", j.path, attempt)
		}
	}
}

// store writes and syncs one batch; j.mu is held.
func (j *JSONLines) store(events []larder.Event) error {
	if j.path != "" {
		if err := j.current(); err != nil {
			return err
		}
	}
	b := j.buf[:0]
	if j.partial {
		b = append(b, '\n')
	}
	for i := range events {
		line, err := events[i].MarshalJSON()
		if err != nil {
			return fmt.Errorf("audit: encode event %v: %w", events[i].ID, err)
		}
		b = append(append(b, line...), '\n')
	}
	j.buf = b
	if j.beforeWrite != nil {
		j.beforeWrite()
	}
	n, err := j.w.Write(b)
	if err != nil {
		j.partial = n > 0 && b[n-1] != '\n' || j.partial && n == 0
		return fmt.Errorf("audit: write json lines: %w", err)
	}
	j.partial = false
	if j.sync != nil {
		if err := j.sync(); err != nil {
			return fmt.Errorf("audit: sync json lines: %w", err)
		}
	}
	return nil
}

// Close closes the file that OpenJSONLinesFile opened; for a JSONLines
// from NewJSONLines it does nothing.
func (j *JSONLines) Close() error {
	if j.close == nil {
		return nil
	}
	return j.close()
}

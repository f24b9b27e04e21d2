package audit

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/larderfs/larder"
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
type JSONLines struct {
	mu      sync.Mutex
	w       io.Writer
	sync    func() error
	close   func() error
	buf     []byte
	partial bool // the last write stopped inside a line
}

var _ Sink = (*JSONLines)(nil)

// NewJSONLines returns a JSONLines that writes to w and, if sync is not
// nil, calls it after each batch (os.File.Sync, for a file).
func NewJSONLines(w io.Writer, sync func() error) *JSONLines {
	return &JSONLines{w: w, sync: sync}
}

// OpenJSONLinesFile opens (creating it with mode 0600 if need be) the file
// at path for appending and returns a JSONLines that fsyncs it per batch.
func OpenJSONLinesFile(path string) (*JSONLines, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	j := NewJSONLines(f, f.Sync)
	j.close = f.Close
	return j, nil
}

// StoreEvents writes events, one line each, with one write, then syncs.
func (j *JSONLines) StoreEvents(ctx context.Context, events []larder.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
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

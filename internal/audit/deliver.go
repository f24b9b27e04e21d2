package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/larderfs/larder"
	"github.com/larderfs/larder/internal/flock"
)

// deliverer is the deliverer goroutine's state: the folders it delivers,
// oldest first, and where it is in each. Only that goroutine touches it
// after Open.
type deliverer struct {
	adopted []*source // folders of other Logs, by name (oldest first)
	own     source
	held    map[string]bool // names of the adopted folders held
	rr      *recordReader
	events  []larder.Event
	cur     *source // the source of events
	next    int64   // where cur goes once events are delivered

	down      bool // the sink failed and has not yet succeeded again
	downSince time.Time
	failures  int // since down
}

// source is one folder being delivered: the Log's own, or one adopted.
type source struct {
	name string
	dir  string
	lock *os.File
	own  bool
	segs []segment // adopted: the segments left, oldest first
	seq  uint64    // own: the segment being read

	f           *os.File // the segment being read
	openFailing bool     // opening it failed, and that was logged
	off         int64    // where its next record starts; 0 before its header is read
	released    int64    // bytes of the segment taken off Stats.SpoolBytes already
	bad         bool     // a damaged record starts at off
	why         error    // what was wrong with it
	reads       int      // read errors in a row (an I/O error is retried, then taken for damage)
}

// segment is one segment of an adopted folder and the bytes it counts for
// in Stats.SpoolBytes.
type segment struct {
	seq  uint64
	size int64
}

const lockName = "LOCK"

func (d *deliverer) init(l *Log) {
	d.held = map[string]bool{}
	d.rr = newRecordReader()
	d.own = source{name: l.own.name, dir: l.own.dir, lock: l.own.lock, own: true, seq: 1}
}

// deliverLoop is the deliverer goroutine. It delivers the adopted folders,
// oldest first, then its own up to the durable end the writer published,
// and sleeps on the writer's signal when there is nothing to deliver.
func (l *Log) deliverLoop() {
	d := &l.dl
	defer close(l.done)
	defer d.finish(l)
	if l.cfg.Sink == nil {
		<-l.writerDone
		return
	}
	tick := time.NewTicker(adoptInterval)
	defer tick.Stop()
	writerDone := l.writerDone
	for {
		select {
		case <-l.giveUp:
			return
		default:
		}
		if n := d.fill(l); n > 0 {
			if !l.deliver(d.events) {
				return
			}
			// Delivered bytes leave the count as they are delivered,
			// not when their segment is deleted.
			d.cur.released += d.next - d.cur.off
			l.stats.spoolBytes.Add(-(d.next - d.cur.off))
			d.cur.off = d.next
			if n < l.cfg.DeliverBatch && l.cfg.DeliverLinger > 0 && writerDone != nil {
				// Let more gather before the next batch (see
				// Config.DeliverLinger); a drain does not wait.
				linger := time.NewTimer(l.cfg.DeliverLinger)
				select {
				case <-linger.C:
				case <-writerDone:
					writerDone = nil
				case <-l.giveUp:
					linger.Stop()
					return
				}
				linger.Stop()
			}
			continue
		}
		if writerDone == nil {
			return // the writer has ended and everything is delivered
		}
		select {
		case <-l.wake:
		case <-writerDone:
			writerDone = nil
		case <-tick.C:
			l.adopt()
		case <-l.poke:
			l.adopt()
		case <-l.giveUp:
			return
		}
	}
}

// fill reads the next batch into d.events, from the oldest folder that has
// events to deliver, finishing the segments and folders it has delivered
// on its way. It returns how many events it read.
func (d *deliverer) fill(l *Log) int {
	for i := 0; i < len(d.adopted); {
		s := d.adopted[i]
		if n := d.read(l, s); n > 0 {
			return n
		}
		if len(s.segs) == 0 {
			d.release(l, s, true)
			d.adopted = append(d.adopted[:i], d.adopted[i+1:]...)
			continue
		}
		i++ // a read error: try again on the next round
	}
	return d.read(l, &d.own)
}

// bounds says which segment of s is to be read, up to where, and whether
// that end is final.
func (s *source) bounds(l *Log) (seq uint64, end int64, final, ok bool) {
	if !s.own {
		if len(s.segs) == 0 {
			return 0, 0, false, false
		}
		return s.segs[0].seq, s.segs[0].size, true, true
	}
	l.pos.Lock()
	defer l.pos.Unlock()
	if end, ok := l.pos.sealed[s.seq]; ok {
		return s.seq, end, true, true
	}
	if s.seq == l.pos.seq {
		return s.seq, l.pos.off, false, true
	}
	return 0, 0, false, false // the writer has not begun it yet
}

// read reads up to DeliverBatch events of s's current segment into
// d.events, finishing segments that are wholly delivered or damaged.
func (d *deliverer) read(l *Log, s *source) int {
	for {
		seq, end, final, ok := s.bounds(l)
		if !ok {
			return 0
		}
		path := segPath(s.dir, seq)
		if s.f == nil {
			f, err := os.Open(path)
			if err != nil {
				if s.own || !errors.Is(err, fs.ErrNotExist) {
					// Once, not at every commit that wakes us.
					if !s.openFailing {
						l.log.Error("audit: cannot open a spool segment; its events wait", "path", path, "err", err)
						s.openFailing = true
					}
					return 0
				}
				s.finished(l, seq, end) // gone: an operator removed it
				continue
			}
			s.f, s.off, s.bad, s.openFailing = f, 0, false, false
		}
		if s.off == 0 {
			if err := readHeader(s.f); err != nil {
				s.bad, s.why = true, err
			} else {
				s.off = headerSize
			}
		}
		if !s.bad && s.off < end {
			d.rr.reset(s.f, s.off, end)
			d.events = d.events[:0]
			var err error
			for len(d.events) < l.cfg.DeliverBatch {
				var p []byte
				if p, err = d.rr.next(); err != nil {
					break
				}
				var ev larder.Event
				if ev, err = decodeEvent(p); err != nil {
					d.rr.off -= recHeaderSize + int64(len(p))
					break
				}
				d.events = append(d.events, ev)
			}
			if err != nil && err != io.EOF {
				if len(d.events) == 0 && !errors.Is(err, errBadRecord) && !errors.Is(err, errCodec) && s.reads < 3 {
					s.reads++ // an I/O error: try again before calling it damage
					l.log.Error("audit: cannot read a spool segment", "path", path, "err", err)
					return 0
				}
				s.reads = 0
				if len(d.events) == 0 {
					s.bad, s.why = true, err
				}
			}
			if n := len(d.events); n > 0 {
				d.cur, d.next = s, d.rr.off
				return n
			}
		}
		switch {
		case s.bad && final:
			l.quarantine(s, seq, end)
		case s.bad && s.own:
			// Damage in the segment being written: ask the writer to
			// begin the next, and set this one aside once it is sealed.
			l.rotate.Store(true)
			return 0
		case s.off == end && final:
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				l.log.Error("audit: cannot remove a delivered spool segment", "path", path, "err", err)
			}
		default:
			return 0 // everything up to the durable end is delivered
		}
		s.finished(l, seq, end)
	}
}

// finished moves s past segment seq, which counted end bytes.
func (s *source) finished(l *Log, seq uint64, end int64) {
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
	l.stats.spoolBytes.Add(-(end - s.released))
	s.off, s.bad, s.why, s.released = 0, false, nil, 0
	l.stats.segments.Add(-1)
	if s.own {
		l.pos.Lock()
		delete(l.pos.sealed, seq)
		l.pos.Unlock()
		s.seq = seq + 1
	} else {
		s.segs = s.segs[1:]
	}
}

// quarantine sets aside segment seq of s, which has a damaged record at
// s.off: the events before it are delivered; the segment is moved whole to
// DIR/quarantine for an operator to inspect. Processing of a segment stops
// at its first damaged record: guessing where the next record starts
// could take bytes inside a record (a path, a reason: text a client
// chose) for a record, and an audit trail must never show an event that
// was not recorded.
func (l *Log) quarantine(s *source, seq uint64, end int64) {
	from := segPath(s.dir, seq)
	qdir := filepath.Join(l.cfg.Dir, quarantineName)
	to, err := quarantinePath(qdir, s.name+"-"+filepath.Base(from))
	if err == nil {
		err = os.Rename(from, to)
	}
	if err == nil {
		err = flock.SyncDir(qdir)
	}
	lost := max(end-s.off, 0)
	l.stats.corrupt.Add(lost)
	if err != nil {
		// Left where it is, as evidence; its folder then stays too.
		to = from
	}
	l.log.Error("audit: damaged spool segment: the events before the damage are delivered; the segment is set aside",
		"segment", from, "offset", s.off, "bytes_after", lost, "damage", s.why, "kept_at", to, "move_err", err)
}

// quarantinePath returns a path in qdir, created if need be, for a file
// named name that takes the place of no other: a segment damaged again
// after a copy of it was set aside (see repairTail) keeps both.
func quarantinePath(qdir, name string) (string, error) {
	if err := os.MkdirAll(qdir, 0o700); err != nil {
		return "", err
	}
	path := filepath.Join(qdir, name)
	for i := 1; ; i++ {
		if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
			return path, nil
		} else if err != nil {
			return "", err
		}
		path = filepath.Join(qdir, fmt.Sprintf("%s.%d", name, i))
	}
}

const quarantineName = "quarantine"

// deliver hands events to the sink until it takes them, retrying with
// backoff. It returns false if Close gave up first.
func (l *Log) deliver(events []larder.Event) bool {
	d := &l.dl
	backoff := l.cfg.RetryMin
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			l.stats.retries.Add(1)
		}
		err := l.store(events)
		if err == nil {
			l.stats.delivered.Add(uint64(len(events)))
			if d.down {
				d.down = false
				l.stats.sinkDown.Store(false)
				l.log.Info("audit: the sink is up again", "down_for", time.Since(d.downSince).Round(time.Millisecond),
					"failed_attempts", d.failures, "spool_bytes", l.stats.spoolBytes.Load())
			}
			return true
		}
		l.stats.deliveryFailures.Add(1)
		l.stats.lastErr.Store(&deliveryError{msg: err.Error(), at: time.Now()})
		d.failures++
		if !d.down {
			d.down, d.downSince, d.failures = true, time.Now(), 1
			l.stats.sinkDown.Store(true)
			l.log.Warn("audit: the sink is down; events wait in the spool", "err", err)
		}
		t := time.NewTimer(jitter(backoff))
		select {
		case <-t.C:
		case <-l.giveUp:
			t.Stop()
			return false
		}
		backoff = min(2*backoff, l.cfg.RetryMax)
	}
}

// store makes one StoreEvents call; a panic in the sink is an error.
func (l *Log) store(events []larder.Event) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("audit: sink panicked: %v\n%s", p, debug.Stack())
		}
	}()
	ctx, cancel := context.WithTimeout(l.sinkCtx, l.cfg.DeliverTimeout)
	defer cancel()
	return l.cfg.Sink.StoreEvents(ctx, events)
}

// release lets go of an adopted folder: removed, if all of it was
// delivered, or left for another Log.
func (d *deliverer) release(l *Log, s *source, empty bool) {
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
	if empty {
		removeFolder(l, s.dir, true)
		l.log.Info("audit: delivered an adopted spool folder and removed it", "folder", s.dir)
	}
	s.lock.Close()
	delete(d.held, s.name)
}

// removeFolder removes a folder whose segments are all gone: its LOCK
// first, still held, then the folder. A folder left without a LOCK by a
// crash in between is empty, and the next scan removes it.
func removeFolder(l *Log, dir string, logErrs bool) {
	err := os.Remove(filepath.Join(dir, lockName))
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		err = os.Remove(dir)
	}
	if err == nil {
		err = flock.SyncDir(l.cfg.Dir)
	}
	if err != nil && logErrs {
		l.log.Warn("audit: cannot remove a delivered spool folder", "folder", dir, "err", err)
	}
}

// finish runs as the deliverer ends: it lets go of the adopted folders,
// and removes the own folder if nothing in it is left to deliver.
func (d *deliverer) finish(l *Log) {
	for _, s := range d.adopted {
		d.release(l, s, false)
	}
	d.adopted = nil
	<-l.writerDone // the own folder is the writer's until then
	s := &d.own
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
	segs, err := listSegments(s.dir)
	if err == nil && l.cfg.Sink == nil && l.stats.durable.Load() == 0 {
		// No sink, and nothing was ever written: the segments hold
		// only their headers.
		for _, seq := range segs {
			if os.Remove(segPath(s.dir, seq)) != nil {
				break
			}
			segs = segs[1:]
		}
	}
	if err == nil && len(segs) == 0 {
		removeFolder(l, s.dir, true)
	}
	s.lock.Close()
}

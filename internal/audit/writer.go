package audit

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/larderfs/larder/internal/flock"
)

// Group commit limits: a batch is written with one write and one
// fdatasync, and holds at most this much. maxTornTail follows: the writer
// never has more than one unsynced batch at the end of a segment, so a
// damaged tail longer than that is not a torn write.
const (
	maxBatchBytes  = 1 << 20
	maxBatchEvents = 8192
	maxTornTail    = maxBatchBytes + recHeaderSize + maxPayload
)

// ownFolder is the writer's state: the Log's own spool folder and the
// segment it appends to. Only the writer goroutine touches it after Open.
type ownFolder struct {
	name string   // the folder's name in Dir
	dir  string   // its path
	lock *os.File // LOCK, flocked while the Log lives
	f    *os.File // the segment being written; nil after a write error
	seq  uint64   // its number
	size int64    // its durable size

	buf     []byte       // the batch being built
	n       int          // events in it
	waiters []chan error // the sync Records among them
	failing bool         // the last write failed
}

// createOwn makes the Log's own folder with its lock and first segment.
// It builds them under a hidden name and renames the whole into place, so
// that another Log scanning for folders to adopt never sees one half made.
func (l *Log) createOwn() error {
	for try := 0; ; try++ {
		name := writerID(time.Now(), os.Getpid())
		tmp := filepath.Join(l.cfg.Dir, ".tmp-"+name)
		if err := os.Mkdir(tmp, 0o700); err != nil {
			if errors.Is(err, fs.ErrExist) && try < 100 {
				continue
			}
			return fmt.Errorf("audit: %w", err)
		}
		o := &l.own
		err := func() error {
			lock, err := os.OpenFile(filepath.Join(tmp, lockName), os.O_RDWR|os.O_CREATE, 0o600)
			if err != nil {
				return err
			}
			o.lock = lock
			if ok, err := flock.TryLock(lock); !ok {
				return fmt.Errorf("audit: cannot lock %s: %v", lock.Name(), err)
			}
			o.dir = tmp
			if err := o.create(l, 1); err != nil {
				return err
			}
			final := filepath.Join(l.cfg.Dir, name)
			if err := os.Rename(tmp, final); err != nil {
				return err
			}
			o.name, o.dir = name, final
			return flock.SyncDir(l.cfg.Dir)
		}()
		if err != nil {
			if o.f != nil {
				o.f.Close()
			}
			if o.lock != nil {
				o.lock.Close()
			}
			os.RemoveAll(tmp)
			return fmt.Errorf("audit: create spool folder: %w", err)
		}
		l.pos.seq, l.pos.off = o.seq, o.size
		return nil
	}
}

// create starts segment seq: its header is synced, and so is the folder,
// before any event goes into it.
func (o *ownFolder) create(l *Log, seq uint64) error {
	path := segPath(o.dir, seq)
	// O_TRUNC, not O_EXCL: a file left by a creation that failed halfway
	// is ours to reuse.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(segHeader())
	if err == nil {
		err = datasync(f)
	}
	if err == nil {
		err = flock.SyncDir(o.dir)
	}
	if err != nil {
		f.Close()
		return err
	}
	o.f, o.seq, o.size = f, seq, headerSize
	l.stats.spoolBytes.Add(headerSize)
	l.stats.segments.Add(1)
	return nil
}

// seal closes the current segment, whose durable end is final, and tells
// the deliverer.
func (o *ownFolder) seal(l *Log) {
	if o.f == nil {
		return
	}
	o.f.Close()
	o.f = nil
	l.pos.Lock()
	l.pos.sealed[o.seq] = o.size
	l.pos.Unlock()
}

// writeLoop is the writer goroutine: it owns the spool folder, and
// commits what the queue holds in batches. A batch closes when it is
// full, when CommitInterval has passed since its first event, or, if an
// event of a sync kind waits in it, as soon as the queue runs empty. An
// fdatasync costs this machine's kernel about 150 µs of CPU, more than
// a dozen events' encoding, so a batch of asynchronous events waits out
// its interval for company rather than committing each time the queue
// is momentarily empty; their requests do not wait for it.
func (l *Log) writeLoop() {
	defer close(l.writerDone)
	o := &l.own
	limit := min(maxBatchBytes, int(l.cfg.SegmentSize-headerSize))
	var items []item
	for {
		items = l.q.take(items, true)
		if len(items) == 0 {
			// Closed, and every event let in is written.
			o.seal(l)
			l.signal()
			return
		}
		deadline := time.Now().Add(l.cfg.CommitInterval)
		for len(items) > 0 {
			for i := range items {
				l.add(&items[i])
				if o.n >= maxBatchEvents || len(o.buf) >= limit {
					l.commit()
					deadline = time.Now().Add(l.cfg.CommitInterval)
				}
			}
			if o.n == 0 {
				break
			}
			if time.Now().After(deadline) {
				l.commit()
				break
			}
			if items = l.q.take(items, false); len(items) > 0 {
				continue
			}
			// The queue ran empty.
			if len(o.waiters) == 0 && !l.q.isClosed() {
				items = l.q.takeBy(items, deadline)
			}
			if len(items) == 0 {
				l.commit()
			}
		}
	}
}

func (l *Log) add(it *item) {
	o := &l.own
	var cut bool
	o.buf, cut = appendRecord(o.buf, &it.ev)
	if cut {
		l.stats.cut.Add(1)
	}
	o.n++
	if it.done != nil {
		o.waiters = append(o.waiters, it.done)
	}
}

// commit writes the batch with one write, fdatasyncs it, then releases its
// sync Records and tells the deliverer. A write error is retried with
// backoff in a new segment, until it succeeds or Close gives up.
func (l *Log) commit() {
	o := &l.own
	if h := l.hooks.beforeCommit; h != nil {
		h()
	}
	backoff := l.cfg.RetryMin
	for {
		err := o.append(l)
		if err == nil {
			break
		}
		l.stats.writeErrors.Add(1)
		if !o.failing {
			l.log.Error("audit: cannot write the spool; retrying", "dir", o.dir, "err", err)
			o.failing = true
			l.stats.spoolFailing.Store(true)
		}
		o.abandon(l)
		select {
		case <-l.giveUp:
		default:
			t := time.NewTimer(jitter(backoff))
			select {
			case <-t.C:
				backoff = min(2*backoff, l.cfg.RetryMax)
				continue
			case <-l.giveUp:
				t.Stop()
			}
		}
		// Close has given up: these events are lost, and said so.
		l.stats.failed.Add(uint64(o.n))
		l.log.Error("audit: events lost: the spool could not be written before Close gave up",
			"events", o.n, "err", err)
		for _, ch := range o.waiters {
			ch <- fmt.Errorf("audit: write spool: %w", err)
		}
		o.reset()
		return
	}
	if h := l.hooks.afterSync; h != nil {
		h()
	}
	if o.failing {
		l.log.Info("audit: the spool is writable again", "dir", o.dir)
		o.failing = false
		l.stats.spoolFailing.Store(false)
	}
	l.stats.durable.Add(uint64(o.n))
	l.stats.commits.Add(1)
	for _, ch := range o.waiters {
		ch <- nil
	}
	o.reset()
	l.pos.Lock()
	l.pos.seq, l.pos.off = o.seq, o.size
	l.pos.Unlock()
	l.signal()
}

// signal wakes the deliverer.
func (l *Log) signal() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

func (o *ownFolder) reset() {
	o.buf = o.buf[:0]
	o.n = 0
	clear(o.waiters)
	o.waiters = o.waiters[:0]
}

// append writes the batch at the end of the current segment, after
// starting the next one if this batch would take the current one past
// SegmentSize, and syncs it.
func (o *ownFolder) append(l *Log) error {
	full := o.size > headerSize && o.size+int64(len(o.buf)) > l.cfg.SegmentSize
	if o.f != nil && (full || l.rotate.CompareAndSwap(true, false)) {
		o.seal(l)
		if err := o.create(l, o.seq+1); err != nil {
			return err
		}
		l.pos.Lock()
		l.pos.seq, l.pos.off = o.seq, o.size
		l.pos.Unlock()
	}
	if o.f == nil {
		if err := o.create(l, o.seq+1); err != nil {
			return err
		}
	}
	if _, err := o.f.Write(o.buf); err != nil {
		return err
	}
	if err := datasync(o.f); err != nil {
		return err
	}
	o.size += int64(len(o.buf))
	l.stats.spoolBytes.Add(int64(len(o.buf)))
	return nil
}

// abandon leaves the current segment after a failed write or sync: it
// cuts what the failed batch may have left (best effort: the deliverer
// reads a left segment only up to its durable end anyway) and seals it at
// its durable end. After a failed fsync the kernel may have dropped the
// dirty pages, so the batch is written again into a new segment rather
// than over the old one.
func (o *ownFolder) abandon(l *Log) {
	if o.f == nil {
		return
	}
	if o.f.Truncate(o.size) == nil {
		datasync(o.f)
	}
	o.seal(l)
}

// jitter returns a duration drawn at random from [d/2, d].
func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}

package audit

import (
	"sync"
	"time"
)

// queue is the bounded queue between Record and the writer. Records append
// to a slice under a mutex; the writer swaps the whole slice for an empty
// one, so it takes the lock once per batch, not once per event, and a
// Record contends only with other Records, for the few nanoseconds of an
// append. (A buffered channel costs each event a lock handed between the
// cores of producer and consumer: measured here, 1.3 to 1.6 times as much
// under load, and twelve times on an idle server, where every send wakes
// the consumer.)
//
// The same mutex guards the closed flag, so that once Close has set it no
// event can enter; a Record already waiting for room when Close came is
// still let in, and the writer waits for it.
//
// A Record of an asynchronous kind does not wake the writer while events
// keep coming: waking a goroutine whose thread sleeps is a futex call and,
// on a virtual machine, an interrupt to another core, some microseconds
// that would be the larger part of Record's cost. Instead the writer,
// finding the queue empty, looks again every tick (CommitInterval) and only
// after a second without events parks until a Record wakes it. So a busy
// Log commits each event within a tick, a quiet one uses no CPU, and only
// the first event after a quiet second pays for the wake-up. Records that
// wait (sync kinds, a full queue) and Close wake the writer at once.
type queue struct {
	mu      sync.Mutex
	items   []item
	limit   int
	closed  bool
	taken   uint64
	waiters int           // Records let in and waiting for room
	room    chan struct{} // closed when the writer takes the items, if a Record waits for room
	state   writerState
	wake    chan struct{} // cap 1: wakes the writer
	tick    time.Duration
	timer   *time.Timer
	last    time.Time // when the writer last took items
}

type writerState int

const (
	writing writerState = iota // the writer is at work
	ticking                    // it sleeps until the next tick, or a wake-up
	parked                     // it sleeps until a wake-up
)

// parkAfter is how long the writer ticks without finding events before
// it parks.
const parkAfter = time.Second

func (q *queue) init(limit int, tick time.Duration) {
	q.limit = limit
	q.items = make([]item, 0, min(limit, 1024))
	q.wake = make(chan struct{}, 1)
	q.tick = tick
	q.timer = time.NewTimer(time.Hour)
	q.timer.Stop()
}

// tryPut appends it if there is room. It is called with q.mu held, and
// releases it if it appended.
func (q *queue) tryPut(it *item) bool {
	if len(q.items) >= q.limit {
		return false
	}
	q.items = append(q.items, *it)
	q.taken++
	q.unlockWaking(it.done != nil)
	return true
}

// unlockWaking releases q.mu, waking the writer if it is parked, or, if
// urgent, if it sleeps at all.
func (q *queue) unlockWaking(urgent bool) {
	wake := q.state == parked || urgent && q.state == ticking
	if wake {
		q.state = writing
	}
	q.mu.Unlock()
	if wake {
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
}

// waitPut waits for room and appends it, or gives up when stop (which may
// be nil) is ready. It is called with q.mu held, the queue full, and
// releases it.
func waitPut[T any](q *queue, it *item, stop <-chan T) bool {
	q.waiters++
	for {
		if q.state != writing { // it must make room
			q.state = writing
			select {
			case q.wake <- struct{}{}:
			default:
			}
		}
		if q.room == nil {
			q.room = make(chan struct{})
		}
		room := q.room
		q.mu.Unlock()
		select {
		case <-room:
		case <-stop:
			q.mu.Lock()
			q.waiters--
			if q.tryPut(it) { // room came too
				return true
			}
			q.unlockWaking(true) // a closing writer may wait for this Record
			return false
		}
		q.mu.Lock()
		if len(q.items) < q.limit {
			q.waiters--
			return q.tryPut(it)
		}
	}
}

// take swaps the queued items for dst (emptied) and returns them. If
// there are none it returns an empty slice at once, unless block is set:
// then it waits for some, and returns an empty slice only once the queue
// is closed, empty, and no Record waits for room.
func (q *queue) take(dst []item, block bool) []item {
	clear(dst)
	dst = dst[:0]
	q.mu.Lock()
	for len(q.items) == 0 {
		if !block || q.closed && q.waiters == 0 {
			q.mu.Unlock()
			return dst
		}
		if time.Since(q.last) < parkAfter {
			q.state = ticking
			q.timer.Reset(q.tick)
			q.mu.Unlock()
			select {
			case <-q.wake:
				q.timer.Stop()
			case <-q.timer.C:
			}
		} else {
			q.state = parked
			q.mu.Unlock()
			<-q.wake
		}
		q.mu.Lock()
		q.state = writing
	}
	q.last = time.Now()
	items := q.items
	q.items = dst
	if q.room != nil {
		close(q.room)
		q.room = nil
	}
	q.mu.Unlock()
	return items
}

// takeBy is take for a writer gathering a batch: it waits until deadline
// for items, or until a Record that must not wait for the deadline (a
// sync kind, a full queue) or close wakes it, and returns what is queued
// then, perhaps nothing.
func (q *queue) takeBy(dst []item, deadline time.Time) []item {
	q.mu.Lock()
	if d := time.Until(deadline); len(q.items) == 0 && !q.closed && d > 0 {
		q.state = ticking
		q.timer.Reset(d)
		q.mu.Unlock()
		select {
		case <-q.wake:
			q.timer.Stop()
		case <-q.timer.C:
		}
		q.mu.Lock()
		q.state = writing
	}
	q.mu.Unlock()
	return q.take(dst, false)
}

// isClosed reports whether close was called.
func (q *queue) isClosed() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.closed
}

// close stops the queue from letting in new Records.
func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	q.unlockWaking(true)
}

// stats returns the depth and the count of items taken.
func (q *queue) stats() (depth int, taken uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items), q.taken
}
